"""Sending the briefs: at most once per subscription and period.

The ledger (`deliveries`, UNIQUE (subscription_id, period)) is written *before* and *after* every send:

    pending ──claim──> sending ──> sent       (final)
                          │──────> refused    (5xx for the recipient; final until an admin retries)
                          │──────> failed     (nothing delivered; retried with back-off, then by later runs)
                          │──────> unknown    (body sent, no confirmation: maybe delivered; never resent
                          │                    automatically; an admin decides with `reports resolve`)
                          └──────> skipped    (recipient no longer entitled / no address; re-checked next run)

A claim is one `BEGIN IMMEDIATE` transaction, so two runs (a schedule and the post-refresh sensor, or a
retry racing a re-run) cannot both claim the same row; a row that is `sent`, `sending`, `unknown` or
`refused` is never claimed again. A process that dies while `sending` leaves the row for
`reap_stale()`: if it died before handing the body to the server the row becomes `failed` (safe to
retry), otherwise `unknown`. Each message carries a deterministic Message-ID, so even a manual resend
can be de-duplicated by mail systems.

Within one run a transient failure is retried `DOANVIEN_REPORTS_RETRIES` times (default 3) with
exponential back-off (`DOANVIEN_REPORTS_BACKOFF` seconds, default 2); if it still fails the row is
`failed` with `next_attempt_at` set (5 min, 10 min, 20 min, ... up to 6 h) and the `reports_retry`
schedule (or `doanvien reports retry`) takes it from there, until `MAX_ATTEMPTS` attempts.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field

from pipelines.reports import periods as P
from pipelines.reports import subscriptions as S
from pipelines.reports.transport import (
    DeliveryError, PermanentError, SendResult, TransientError, UnknownOutcome, make_transport)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
STALE_AFTER = dt.timedelta(minutes=30)
FINAL = ("sent", "refused", "unknown")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def message_id(sub_id: int, period: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "doanvien.local"
    h = hashlib.sha256(f"{sub_id}|{period}".encode()).hexdigest()[:16]
    return f"<bao-cao.{sub_id}.{period}.{h}@{domain}>"


def next_delay(attempts: int) -> dt.timedelta:
    return dt.timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 360))


@dataclass
class RunSummary:
    cadence: str
    period: str
    sent: list[int] = field(default_factory=list)          # subscription ids
    failed: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)       # recipient not entitled any more
    already_done: list[int] = field(default_factory=list)  # sent before / in flight / final
    not_due: list[int] = field(default_factory=list)       # failed, waiting for its back-off
    waiting_for_data: bool = False
    note: str = ""

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def line(self) -> str:
        if self.waiting_for_data:
            return f"{self.cadence} {self.period}: waiting for data ({self.note})"
        return (f"{self.cadence} {self.period}: sent {len(self.sent)}, failed {len(self.failed)}, "
                f"refused {len(self.refused)}, unknown {len(self.unknown)}, skipped {len(self.skipped)}, "
                f"already done {len(self.already_done)}, not due {len(self.not_due)}")


# --- the ledger -------------------------------------------------------------------------------

def _attempt(con, delivery_id: int, outcome: str, detail: str = ""):
    con.execute("INSERT INTO delivery_attempts (delivery_id, at, outcome, detail) VALUES (?, ?, ?, ?)",
                (delivery_id, _iso(_utcnow()), outcome, (detail or "")[:2000]))


def ensure_rows(sub_ids: list[int], period: str):
    with S.connect() as con:
        now = _iso(_utcnow())
        con.executemany(
            "INSERT OR IGNORE INTO deliveries (subscription_id, period, status, created_at, updated_at)"
            " VALUES (?, ?, 'pending', ?, ?)", [(i, period, now, now) for i in sub_ids])


def claim(sub_id: int, period: str, *, respect_backoff: bool, now: dt.datetime | None = None):
    """Atomically move the row to `sending`. Returns (row, None) or (None, reason)."""
    now = now or _utcnow()
    with S.connect() as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT * FROM deliveries WHERE subscription_id = ? AND period = ?",
                              (sub_id, period)).fetchone()
            if row is None:
                con.execute("ROLLBACK")
                return None, "missing"
            st = row["status"]
            if st in FINAL or st == "sending":
                con.execute("ROLLBACK")
                return None, "done"
            if st == "failed" and respect_backoff:
                due = row["next_attempt_at"]
                if due is None or due > _iso(now) or row["attempts"] >= MAX_ATTEMPTS:
                    con.execute("ROLLBACK")
                    return None, "not_due"
            con.execute("UPDATE deliveries SET status = 'sending', claimed_at = ?, transmit_at = NULL,"
                        " updated_at = ? WHERE id = ?", (_iso(now), _iso(now), row["id"]))
            _attempt(con, row["id"], "claimed", f"was {st}")
            con.execute("COMMIT")
            return dict(row), None
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _finish(delivery_id: int, status: str, *, error: str | None = None, smtp_code: int | None = None,
            next_attempt_at: str | None = None, outcome: str | None = None, **cols):
    now = _iso(_utcnow())
    sets = {"status": status, "updated_at": now, "last_error": error, "smtp_code": smtp_code,
            "next_attempt_at": next_attempt_at, **cols}
    if status == "sent":
        sets["sent_at"] = now
    with S.connect() as con:
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"UPDATE deliveries SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                    [*sets.values(), delivery_id])
        _attempt(con, delivery_id, outcome or status, error or "")
        con.execute("COMMIT")


def _mark_transmitting(delivery_id: int, address: str, msg_id: str, transport: str, version: str | None):
    with S.connect() as con:
        con.execute("UPDATE deliveries SET transmit_at = ?, attempts = attempts + 1, address = ?,"
                    " message_id = ?, transport = ?, warehouse_version = ?, updated_at = ? WHERE id = ?",
                    (_iso(_utcnow()), address, msg_id, transport, version, _iso(_utcnow()), delivery_id))


def _clear_transmitting(delivery_id: int):
    with S.connect() as con:
        con.execute("UPDATE deliveries SET transmit_at = NULL WHERE id = ?", (delivery_id,))


def reap_stale(now: dt.datetime | None = None, stale_after: dt.timedelta = STALE_AFTER) -> int:
    """Rows left in `sending` by a process that died: `failed` if the body never left, else `unknown`."""
    now = now or _utcnow()
    cutoff = _iso(now - stale_after)
    n = 0
    with S.connect() as con:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute("SELECT id, transmit_at FROM deliveries WHERE status = 'sending' AND claimed_at < ?",
                           (cutoff,)).fetchall()
        for r in rows:
            if r["transmit_at"] is None:
                con.execute("UPDATE deliveries SET status = 'failed', next_attempt_at = ?, updated_at = ?,"
                            " last_error = 'interrupted before sending' WHERE id = ?",
                            (_iso(now), _iso(now), r["id"]))
                _attempt(con, r["id"], "failed", "interrupted before sending")
            else:
                con.execute("UPDATE deliveries SET status = 'unknown', updated_at = ?, last_error ="
                            " 'interrupted while sending: maybe delivered' WHERE id = ?", (_iso(now), r["id"]))
                _attempt(con, r["id"], "unknown", "interrupted while sending: maybe delivered")
            n += 1
        con.execute("COMMIT")
    return n


def resolve(delivery_id: int, action: str, *, actor: str) -> dict:
    """An admin settles a delivery that automation will not touch: `mark-sent` (the recipient confirms
    they got it) or `retry` (send again: for `unknown` this knowingly risks a duplicate)."""
    if action not in ("mark-sent", "retry"):
        raise ValueError("action must be mark-sent or retry")
    with S.connect() as con:
        con.execute("BEGIN IMMEDIATE")
        row = con.execute("SELECT * FROM deliveries WHERE id = ?", (int(delivery_id),)).fetchone()
        if row is None:
            con.execute("ROLLBACK")
            raise LookupError(f"no delivery {delivery_id}")
        if row["status"] in ("sent", "sending"):
            con.execute("ROLLBACK")
            raise ValueError(f"delivery {delivery_id} is {row['status']}; nothing to resolve")
        now = _iso(_utcnow())
        if action == "mark-sent":
            con.execute("UPDATE deliveries SET status = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
                        (now, now, row["id"]))
        else:
            con.execute("UPDATE deliveries SET status = 'failed', next_attempt_at = ?, updated_at = ?,"
                        " attempts = 0 WHERE id = ?", (now, now, row["id"]))
        _attempt(con, row["id"], f"resolved:{action}", f"by {actor}")
        con.execute("COMMIT")
        return dict(con.execute("SELECT * FROM deliveries WHERE id = ?", (row["id"],)).fetchone())


# --- sending ------------------------------------------------------------------------------------

def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def send_reports(cadence: str, period: str | None = None, *, subscription_ids: list[int] | None = None,
                 respect_backoff: bool = False, transport=None, renderer=None, resolver=None,
                 retries: int | None = None, backoff: float | None = None, sleep=time.sleep) -> RunSummary:
    """Send the `cadence` brief for `period` (default: the period a run today reports on) to every
    active subscription of that cadence (or only `subscription_ids`). Safe to run any number of times."""
    period = period or P.default_key(cadence)
    per = P.parse(cadence, period)
    retries = int(retries if retries is not None else _env_float("DOANVIEN_REPORTS_RETRIES", 3))
    backoff = backoff if backoff is not None else _env_float("DOANVIEN_REPORTS_BACKOFF", 2.0)
    summary = RunSummary(cadence, per.key)

    subs = [s for s in S.list_subscriptions(cadence=cadence)
            if subscription_ids is None or s.id in set(subscription_ids)]
    reap_stale()
    if not subs:
        summary.note = "no active subscriptions"
        return summary

    if renderer is None:
        from pipelines.reports.brief import Renderer
        renderer = Renderer()
    if resolver is None:
        from pipelines.reports.recipients import resolve as resolver

    ready, why = renderer.ready(per)
    if not ready:  # e.g. the month is not in the published warehouse yet: nothing recorded, nothing sent
        summary.waiting_for_data, summary.note = True, why
        return summary

    ensure_rows([s.id for s in subs], per.key)
    own_transport = transport is None
    transport = transport or make_transport()
    try:
        for sub in subs:
            _send_one(sub, per, summary, transport=transport, renderer=renderer, resolver=resolver,
                      respect_backoff=respect_backoff, retries=retries, backoff=backoff, sleep=sleep)
    finally:
        if own_transport:
            transport.close()
    log.info(summary.line())
    return summary


def _send_one(sub, per, summary: RunSummary, *, transport, renderer, resolver, respect_backoff,
              retries, backoff, sleep):
    row, why = claim(sub.id, per.key, respect_backoff=respect_backoff)
    if row is None:
        (summary.not_due if why == "not_due" else summary.already_done).append(sub.id)
        return
    did = row["id"]
    attempts_before = row["attempts"]
    try:
        who = resolver(sub)
        if not who.address:
            _finish(did, "skipped", error=who.reason or "no address")
            summary.skipped.append(sub.id)
            return
        msg_id = message_id(sub.id, per.key, transport.sender)
        msg = renderer.message(sub, per, to_addr=who.address, from_addr=transport.sender, msg_id=msg_id)
    except Exception as exc:  # noqa: BLE001 - one bad subscription must not stop the others
        if getattr(exc, "skip", False):  # e.g. the unit does not exist in that month: nothing to report
            _finish(did, "skipped", error=str(exc))
            summary.skipped.append(sub.id)
            return
        log.exception("rendering subscription %s failed", sub.id)
        attempts = attempts_before + 1
        _finish(did, "failed", error=f"render: {exc.__class__.__name__}: {exc}", outcome="render_failed",
                next_attempt_at=_iso(_utcnow() + next_delay(attempts)), attempts=attempts)
        summary.failed.append(sub.id)
        return

    last: DeliveryError | None = None
    for i in range(max(retries, 1)):
        _mark_transmitting(did, who.address, msg_id, transport.name, getattr(renderer, "version", None))
        try:
            res: SendResult = transport.send(msg, [who.address], name=f"{per.key}/sub{sub.id}")
        except UnknownOutcome as exc:
            _finish(did, "unknown", error=str(exc))
            summary.unknown.append(sub.id)
            return
        except TransientError as exc:
            last = exc
            _clear_transmitting(did)
            with S.connect() as con:
                _attempt(con, did, "transient_error", str(exc))
            if i + 1 < retries:
                sleep(backoff * 2 ** i)
            continue
        except PermanentError as exc:
            _clear_transmitting(did)
            _finish(did, "failed", error=str(exc), smtp_code=exc.smtp_code, outcome="permanent_error")
            summary.failed.append(sub.id)
            return
        # the server answered: check this recipient's own result, not just the absence of an exception
        if who.address in res.refused:
            code, text = res.refused[who.address]
            if 400 <= code < 500:
                last = TransientError(f"recipient deferred: {code} {text}", code)
                _clear_transmitting(did)
                with S.connect() as con:
                    _attempt(con, did, "recipient_deferred", f"{code} {text}")
                if i + 1 < retries:
                    sleep(backoff * 2 ** i)
                continue
            _finish(did, "refused", error=f"recipient refused: {code} {text}", smtp_code=code)
            summary.refused.append(sub.id)
            return
        _finish(did, "sent", outbox_path=res.outbox_path, transport=res.transport)
        summary.sent.append(sub.id)
        _audit(sub, per, who, res)
        return

    with S.connect() as con:
        attempts = con.execute("SELECT attempts FROM deliveries WHERE id = ?", (did,)).fetchone()[0]
    nxt = _iso(_utcnow() + next_delay(attempts)) if attempts < MAX_ATTEMPTS else None
    _finish(did, "failed", error=str(last), smtp_code=getattr(last, "smtp_code", None), next_attempt_at=nxt)
    summary.failed.append(sub.id)


def _audit(sub, per, who, res):
    """One audit record per brief that left (an outward artefact: VN-02). Never blocks the delivery."""
    try:
        from pipelines.access import audit
        audit.record("reports", "export", page="bao_cao_email", outcome="ok",
                     detail={"what": "report_email", "subscription_id": sub.id, "unit_code": sub.unit_code,
                             "cadence": per.cadence, "period": per.key, "recipient": who.username or who.address,
                             "transport": res.transport})
    except Exception:  # noqa: BLE001
        log.warning("audit record for subscription %s failed", sub.id, exc_info=True)


def retry_due(*, transport=None, renderer=None, resolver=None, **kw) -> list[RunSummary]:
    """Retry every `failed` delivery whose back-off has passed (the `reports_retry` schedule)."""
    reap_stale()
    with S.connect() as con:
        rows = con.execute(
            "SELECT d.subscription_id, d.period, s.cadence FROM deliveries d JOIN subscriptions s"
            " ON s.id = d.subscription_id WHERE d.status = 'failed' AND d.next_attempt_at <= ?"
            " AND d.attempts < ? AND s.active = 1", (_iso(_utcnow()), MAX_ATTEMPTS)).fetchall()
    groups: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        groups.setdefault((r["cadence"], r["period"]), []).append(r["subscription_id"])
    out = []
    for (cadence, period), ids in sorted(groups.items()):
        out.append(send_reports(cadence, period, subscription_ids=ids, respect_backoff=True,
                                transport=transport, renderer=renderer, resolver=resolver, **kw))
    return out
