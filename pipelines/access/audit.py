"""The audit log: who looked at whom, which SQL ran, logins and failures, exports, uploads.

Append-only: an SQLite table whose UPDATE and DELETE are refused by triggers, with a hash chain
(`hash = sha256(prev_hash || record)`) so that a row removed or altered outside the app is detectable
(`verify_chain`). A person is recorded by `member_key` (the warehouse's keyed hash), never by CCCD.
The log itself is personal data (who viewed whom): only admins read it (`quan_tri` page), and reading or
exporting it is itself audited.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re

from pipelines.access.appdb import audit_db, audit_writer

GENESIS = "0" * 64
_CCCD_RE = re.compile(r"(?<!\d)\d{12}(?!\d)")

ACTIONS = (
    "login", "login_failed", "login_locked", "logout", "oidc_login", "oidc_unmapped",
    "view_member", "search_members", "view_own_record", "correction_request", "correction_resolved",
    "sql_query", "sql_refused", "export", "upload", "denied", "account_change", "audit_view", "audit_export",
)


def _scrub(value):
    """Never let a full 12-digit identifier into the log (search terms, SQL text)."""
    if isinstance(value, str):
        return _CCCD_RE.sub(lambda m: m.group(0)[:3] + "*****" + m.group(0)[-4:], value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _digest(prev: str, rec: dict) -> str:
    payload = json.dumps(rec, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256((prev + payload).encode("utf-8")).hexdigest()


def record(actor: str, action: str, *, role: str | None = None, page: str | None = None,
           member_key: str | None = None, detail: dict | str | None = None, outcome: str = "ok",
           rows: int | None = None) -> int:
    """Append one audit record; returns its id."""
    if isinstance(detail, str):
        detail = {"text": detail}
    detail_json = json.dumps(_scrub(detail), ensure_ascii=False, default=str) if detail else None
    ts = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
    rec = {"ts": ts, "actor": actor or "?", "role": role, "action": action, "page": page,
           "member_key": member_key, "detail": detail_json, "outcome": outcome, "rows": rows}
    with audit_writer() as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            last = con.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
            prev = last["hash"] if last else GENESIS
            h = _digest(prev, rec)
            cur = con.execute(
                "INSERT INTO audit_log (ts, actor, role, action, page, member_key, detail, outcome, rows, "
                "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [ts, rec["actor"], role, action, page, member_key, detail_json, outcome, rows, prev, h])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return cur.lastrowid


def record_for(user, action: str, **kw) -> int:
    """`record` with the actor and role taken from a `User`."""
    return record(getattr(user, "username", None) or "anonymous", action, role=getattr(user, "role", None), **kw)


def events(*, actor: str | None = None, action: str | None = None, member_key: str | None = None,
           since: str | None = None, until: str | None = None, limit: int = 1000) -> list[dict]:
    sql = "SELECT id, ts, actor, role, action, page, member_key, detail, outcome, rows FROM audit_log WHERE 1=1"
    params: list = []
    for col, val in (("actor", actor), ("action", action), ("member_key", member_key)):
        if val:
            sql += f" AND {col} = ?"
            params.append(val)
    if since:
        sql += " AND ts >= ?"
        params.append(since)
    if until:
        sql += " AND ts < ?"
        params.append(until)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(int(limit))
    with audit_db() as con:
        return [dict(r) for r in con.execute(sql, params).fetchall()]


def verify_chain() -> tuple[bool, int | None]:
    """(True, None) when every record chains to the previous; else (False, id of the first broken one)."""
    prev = GENESIS
    with audit_db() as con:
        for r in con.execute("SELECT * FROM audit_log ORDER BY id"):
            rec = {k: r[k] for k in ("ts", "actor", "role", "action", "page", "member_key", "detail",
                                     "outcome", "rows")}
            if r["prev_hash"] != prev or _digest(prev, rec) != r["hash"]:
                return False, r["id"]
            prev = r["hash"]
    return True, None


def export_csv(rows: list[dict]) -> bytes:
    from pipelines.access.export import formula_safe
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: formula_safe(v) for k, v in r.items()})
    return buf.getvalue().encode("utf-8-sig")
