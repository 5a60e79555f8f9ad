"""`doanvien reports ...`: subscriptions, sending, and the delivery log.

The command line is the operator's (admin) door; `--as USERNAME` acts as that account instead, which
limits `list`, `cancel` and `deliveries` to the account's own subscriptions, as on the app page.
"""
from __future__ import annotations

import json
import sys

import click

from pipelines.reports import subscriptions as S
from pipelines.reports.periods import CADENCES


def _actor(as_user: str | None):
    """(username, email, is_admin) of whoever runs the command."""
    if not as_user:
        return "cli", None, True
    from pipelines.access.accounts import get_user

    u = get_user(as_user)
    if u is None or not u.active:
        raise click.ClickException(f"no active account {as_user!r}")
    return u.username, u.email, u.role == "admin"


def _table(rows: list[dict], cols: list[str]):
    if not rows:
        click.echo("(none)")
        return
    widths = {c: min(max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows)), 48)
              for c in cols}
    click.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        click.echo("  ".join(str(r.get(c) if r.get(c) is not None else "")[:48].ljust(widths[c]) for c in cols))


@click.group()
def reports():
    """Report emails: subscriptions, sending, delivery log (Báo cáo qua email)."""


@reports.command()
@click.argument("recipient")
@click.argument("unit_code")
@click.option("--cadence", type=click.Choice(CADENCES), required=True)
@click.option("--lang", "language", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
def subscribe(recipient, unit_code, cadence, language):
    """Subscribe RECIPIENT (account username or email) to the brief of UNIT_CODE's subtree."""
    try:
        s = S.subscribe(recipient, unit_code, cadence, language, created_by="cli")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"subscription {s.id}: {s.recipient} ({s.recipient_kind}) <- {s.unit_code} {s.cadence} {s.language}")


@reports.command(name="list")
@click.option("--recipient", help="only this recipient's subscriptions")
@click.option("--cadence", type=click.Choice(CADENCES))
@click.option("--all", "include_cancelled", is_flag=True, help="include cancelled subscriptions")
@click.option("--as", "as_user", help="act as this account (sees only its own)")
@click.option("--json", "as_json", is_flag=True)
def list_(recipient, cadence, include_cancelled, as_user, as_json):
    """List subscriptions."""
    who, email, admin = _actor(as_user)
    if not admin:
        subs = S.list_subscriptions(recipients=[who, email or ""], cadence=cadence, include_cancelled=include_cancelled)
    else:
        subs = S.list_subscriptions(recipient=recipient, cadence=cadence, include_cancelled=include_cancelled)
    rows = [s.__dict__ for s in subs]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        _table(rows, ["id", "recipient", "recipient_kind", "unit_code", "cadence", "language", "active", "created_at"])


@reports.command()
@click.argument("subscription_id", type=int)
@click.option("--as", "as_user", help="act as this account (may cancel only its own)")
def cancel(subscription_id, as_user):
    """Cancel a subscription."""
    who, email, admin = _actor(as_user)
    try:
        s = S.cancel(subscription_id, actor=who, is_admin=admin, actor_email=email)
    except (LookupError, PermissionError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"subscription {s.id} cancelled")


@reports.command()
@click.argument("cadence", type=click.Choice(CADENCES))
@click.option("--period", help="2025-W23 (weekly), 2025-05 (monthly), 2025-05-31 (semiannual); default: due now")
@click.option("--subscription", "subscription_ids", type=int, multiple=True, help="only these subscriptions")
def send(cadence, period, subscription_ids):
    """Send a cadence's brief for a period now (never twice to the same subscription)."""
    from pipelines.reports.delivery import send_reports

    try:
        summary = send_reports(cadence, period, subscription_ids=list(subscription_ids) or None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.line())
    if summary.failed or summary.refused or summary.unknown:
        sys.exit(2)


@reports.command()
def retry():
    """Retry failed deliveries whose back-off has passed."""
    from pipelines.reports.delivery import retry_due

    out = retry_due()
    for s in out:
        click.echo(s.line())
    if not out:
        click.echo("nothing due")


@reports.command()
@click.option("--period")
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "refused", "unknown", "skipped"]))
@click.option("--limit", default=100, show_default=True)
@click.option("--as", "as_user", help="act as this account (sees only its own)")
@click.option("--json", "as_json", is_flag=True)
def deliveries(period, status, limit, as_user, as_json):
    """The delivery log, newest first."""
    who, email, admin = _actor(as_user)
    ids = None
    if not admin:
        ids = [s.id for s in S.list_subscriptions(recipients=[who, email or ""], include_cancelled=True)]
    rows = S.deliveries_log(subscription_ids=ids, period=period, status=status, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
    else:
        _table(rows, ["id", "subscription_id", "recipient", "unit_code", "cadence", "period", "status",
                      "attempts", "transport", "updated_at", "last_error"])


@reports.command()
@click.argument("delivery_id", type=int)
@click.argument("action", type=click.Choice(["mark-sent", "retry"]))
def resolve(delivery_id, action):
    """Settle a delivery automation leaves alone (unknown outcome, refused address)."""
    from pipelines.reports.delivery import resolve as _resolve

    try:
        row = _resolve(delivery_id, action, actor="cli")
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"delivery {row['id']}: {row['status']}")


@reports.command()
@click.argument("unit_code")
@click.option("--cadence", type=click.Choice(CADENCES), default="monthly", show_default=True)
@click.option("--period")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="write the message here (.eml)")
def preview(unit_code, cadence, period, lang, out):
    """Render a brief to a file without sending or recording anything."""
    from types import SimpleNamespace

    from pipelines.reports import periods as P
    from pipelines.reports.brief import Renderer
    from pipelines.reports.transport import sender_from_env

    per = P.parse(cadence, period or P.default_key(cadence))
    r = Renderer()
    ok, why = r.ready(per)
    if not ok:
        raise click.ClickException(why)
    sub = SimpleNamespace(id=0, unit_code=S.check_unit_code(unit_code), language=lang)
    msg = r.message(sub, per, to_addr="preview@doanvien.local", from_addr=sender_from_env(), msg_id="<preview@doanvien.local>")
    with open(out, "wb") as fh:
        fh.write(bytes(msg))
    click.echo(f"{msg['Subject']} -> {out}")
