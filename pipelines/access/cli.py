"""`doanvien users …` (accounts) and `doanvien sql "QUERY"` (the analysts' SQL sandbox from the terminal)."""
from __future__ import annotations

import getpass
import json
import sys

import click

from pipelines.access import accounts, audit
from pipelines.access.accounts import ROLES, AccountError


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli"


def _known_units() -> set[str] | None:
    try:
        from pipelines.access.scope import load_registry
        return {u.code for u in load_registry()}
    except Exception:  # noqa: BLE001 - no registry yet: accept any code
        return None


@click.group()
def users():
    """Tài khoản / accounts: first admin, officials, passwords, demo accounts."""


@users.command("create-admin")
@click.argument("username")
@click.option("--name", "display_name", default="Quản trị hệ thống", show_default=True)
@click.option("--email", default=None)
@click.option("--password", default=None, help="default: prompt (or generated with --generate)")
@click.option("--generate", is_flag=True, help="generate a password and print it once")
def create_admin(username, display_name, email, password, generate):
    """Create the first administrator (refused when an active admin exists)."""
    if accounts.count_admins() > 0:
        raise click.ClickException("Đã có quản trị viên / an admin exists; an admin adds others from the "
                                   "Quản trị page or with `doanvien users add --role admin`.")
    if generate:
        password = accounts.generate_password()
    elif password is None:
        password = click.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    try:
        u = accounts.create_user(username, display_name=display_name, role="admin", password=password, email=email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(_actor(), "account_change", detail={"op": "create-admin", "username": u.username})
    click.echo(f"Đã tạo quản trị viên / admin created: {u.username}")
    if generate:
        click.echo(f"Mật khẩu / password: {password}")


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", required=True)
@click.option("--unit", "unit_code", default=None, help="unit code (officials): T08, N05, X08001, CS0000123 ...")
@click.option("--member-code", default=None)
@click.option("--member-key", default=None)
@click.option("--email", default=None, help="e-mail used to match an OpenID Connect login")
@click.option("--password", default=None, help="default: generated, printed once, must change at first login")
def add(username, role, display_name, unit_code, member_code, member_key, email, password):
    """Add one account."""
    known = _known_units()
    if unit_code and known is not None and unit_code not in known:
        raise click.ClickException(f"Không có đơn vị / unknown unit: {unit_code}")
    generated = password is None
    password = password or accounts.generate_password()
    try:
        u = accounts.create_user(username, display_name=display_name, role=role, password=password,
                                 unit_code=unit_code, member_code=member_code, member_key=member_key, email=email,
                                 must_change_password=generated)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(_actor(), "account_change", detail={"op": "add", "username": u.username, "role": role,
                                                     "unit_code": unit_code})
    click.echo(f"{u.username}\t{u.role}\t{u.unit_code or u.member_code or ''}")
    if generated:
        click.echo(f"Mật khẩu tạm / temporary password: {password}")


@users.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--role", "default_role", type=click.Choice(ROLES), default="cdcs_official", show_default=True,
              help="role for rows without one")
@click.option("--update", is_flag=True, help="replace accounts that already exist")
def import_cmd(path, default_role, update):
    """Import officials from a CSV or XLSX file (username, display_name/họ và tên, role, unit_code/mã đơn vị,
    email). Temporary passwords are printed once; users change them at first login."""
    try:
        created = accounts.import_officials(path, default_role=default_role, known_units=_known_units(),
                                            update=update)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(_actor(), "account_change", detail={"op": "import", "count": len(created)})
    for u, pw in created:
        click.echo(f"{u.username}\t{u.role}\t{u.unit_code or ''}\t{pw or '(from file)'}")
    click.echo(f"Đã tạo / created: {len(created)}", err=True)


@users.command("reset-password")
@click.argument("username")
@click.option("--password", default=None, help="default: generated (must change at next login)")
def reset_password(username, password):
    """Set a new password, end the user's sessions and clear their lockout."""
    generated = password is None
    password = password or accounts.generate_password()
    try:
        accounts.set_password(username, password, must_change=generated)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(_actor(), "account_change", detail={"op": "reset-password", "username": username})
    click.echo(f"Đã đặt lại / reset: {username}")
    if generated:
        click.echo(f"Mật khẩu tạm / temporary password: {password}")


@users.command("disable")
@click.argument("username")
def disable(username):
    """Disable an account (its sessions end at the next click)."""
    accounts.set_active(username, False)
    audit.record(_actor(), "account_change", detail={"op": "disable", "username": username})
    click.echo(f"Đã khoá / disabled: {username}")


@users.command("enable")
@click.argument("username")
def enable(username):
    accounts.set_active(username, True)
    audit.record(_actor(), "account_change", detail={"op": "enable", "username": username})
    click.echo(f"Đã mở / enabled: {username}")


@users.command("list")
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(role, as_json):
    """List accounts (never passwords)."""
    us = accounts.list_users(role)
    if as_json:
        click.echo(json.dumps([u.__dict__ for u in us], ensure_ascii=False, indent=1))
        return
    for u in us:
        click.echo("\t".join([u.username, u.role, u.unit_code or u.member_code or "-", u.email or "-",
                              "active" if u.active else "disabled", u.display_name]))


@users.command("demo-accounts")
@click.option("--json", "as_json", is_flag=True)
def demo_accounts_cmd(as_json):
    """Create (or re-create) the documented demo accounts on real units and a real member of the current
    data (docs/ACCESS.md). For demonstrations only: the passwords are public."""
    from pipelines.access.demo import create_demo_accounts

    try:
        rows = create_demo_accounts()
    except (AccountError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    audit.record(_actor(), "account_change", detail={"op": "demo-accounts", "count": len(rows)})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    click.echo("Tài khoản demo / demo accounts (tên đăng nhập / username, mật khẩu / password, vai trò / role, "
               "đơn vị hoặc đoàn viên / unit or member):")
    for r in rows:
        click.echo(f"  {r['username']:<16} {r['password']:<18} {r['role']:<16} {r['link']}  {r['note']}")


@click.command("sql")
@click.argument("query", required=False)
@click.option("--file", "sql_file", type=click.File("r", encoding="utf-8"), default=None, help="read SQL from a file")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--max-rows", type=int, default=1000, show_default=True)
@click.option("--timeout", type=float, default=None, help="seconds (default 20, env DOANVIEN_SQL_TIMEOUT)")
@click.option("--schema", "show_schema", is_flag=True, help="list the tables and columns with descriptions")
@click.option("--self-test", "self_test", is_flag=True, help="run the sandbox escape probes")
def sql(query, sql_file, fmt, max_rows, timeout, show_schema, self_test):
    """Run one read-only query against the de-identified analyst warehouse (marts), in the same sandbox as
    the SQL page: separate worker process, no file or network access, memory/row/time limits. Audited."""
    from pipelines.access import sqlsandbox
    from pipelines.access.export import to_csv_bytes
    from pipelines.access.warehouse import NoWarehouse

    try:
        if self_test:
            leaks = sqlsandbox.self_test()
            if leaks:
                raise click.ClickException("SANDBOX LEAK: " + "; ".join(leaks))
            click.echo(f"ok: {len(sqlsandbox.SELF_TEST_PROBES)} probes refused")
            return
        if show_schema:
            for t in sqlsandbox.schema_catalog():
                click.echo(f"{t['schema']}.{t['table']}  {t['description']}")
                for c in t["columns"]:
                    click.echo(f"    {c['column']:<28} {c['type']:<12} {c['description']}")
            return
        text = sql_file.read() if sql_file else query
        if not text:
            raise click.UsageError('give a QUERY, e.g. doanvien sql "SELECT count(*) FROM marts.dim_member"')
        res = sqlsandbox.run_sql(text, actor=_actor(), timeout=timeout, max_rows=max_rows, page="cli")
    except sqlsandbox.SqlRefused as exc:
        raise click.ClickException(f"Từ chối / refused: {exc}") from None
    except NoWarehouse as exc:
        raise click.ClickException(str(exc)) from None
    if not res.ok:
        raise click.ClickException(f"{res.error_type}: {res.error}")
    if fmt == "json":
        click.echo(json.dumps({"columns": res.columns, "rows": res.rows, "truncated": res.truncated},
                              ensure_ascii=False, default=str))
    elif fmt == "csv":
        sys.stdout.buffer.write(to_csv_bytes(res.columns, res.rows))
    else:
        widths = [min(40, max([len(str(c))] + [len(str(r[i])) for r in res.rows[:200]])) for i, c in
                  enumerate(res.columns)]
        click.echo("  ".join(str(c).ljust(w)[:w] for c, w in zip(res.columns, widths)))
        for r in res.rows:
            click.echo("  ".join(("" if v is None else str(v)).ljust(w)[:w] for v, w in zip(r, widths)))
    if res.truncated:
        click.echo(f"(cắt bớt ở {len(res.rows)} dòng / truncated at {len(res.rows)} rows)", err=True)
