"""Report subscriptions and the delivery ledger: SQLite in `<data>/app/reports.sqlite`.

Separate from the warehouse (which is rebuilt and swapped every refresh). Tables:

- `subscriptions`: recipient (an account username, or an email address for external leaders),
  `unit_code` (the organisation unit whose subtree is the report's scope), cadence, language,
  active flag and who created/cancelled it. One active subscription per (recipient, unit, cadence).
- `deliveries`: one row per (subscription_id, period), UNIQUE. Status moves
  `pending -> sending -> sent | failed | refused | unknown | skipped`; see `delivery.py`.
- `delivery_attempts`: every attempt with its outcome (the log shown in the app and the CLI).

Only aggregates are ever stored here; the recipient address is the only personal datum.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines import config
from pipelines.reports.periods import CADENCES, check_cadence

LANGUAGES = ("vi", "en")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNIT_RE = re.compile(r"^(TLD|T\d{2}|N\d{2}|[QKX]\d{4,5}|C\d{4}|CS\d{7})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient      TEXT NOT NULL,
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('account', 'email')),
    unit_code      TEXT NOT NULL,
    cadence        TEXT NOT NULL CHECK (cadence IN ('weekly', 'monthly', 'semiannual')),
    language       TEXT NOT NULL DEFAULT 'vi' CHECK (language IN ('vi', 'en')),
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    created_by     TEXT,
    cancelled_at   TEXT,
    cancelled_by   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_one_active
    ON subscriptions (recipient, unit_code, cadence) WHERE active = 1;

CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    period          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'sending', 'sent', 'failed', 'refused', 'unknown', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    address         TEXT,
    message_id      TEXT,
    transport       TEXT,
    outbox_path     TEXT,
    warehouse_version TEXT,
    last_error      TEXT,
    smtp_code       INTEGER,
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    claimed_at      TEXT,
    transmit_at     TEXT,
    sent_at         TEXT,
    UNIQUE (subscription_id, period)
);

CREATE TABLE IF NOT EXISTS delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    at          TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT
);
"""


def db_path() -> Path:
    return config.app_dir() / "reports.sqlite"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def connect(path: Path | None = None):
    """A connection in autocommit mode (explicit BEGIN IMMEDIATE where a claim must be atomic)."""
    path = path or db_path()
    new = not Path(path).exists()
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    if new:  # holds recipients' addresses: owner-only
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass
    con.row_factory = sqlite3.Row
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        con.executescript(SCHEMA)
        yield con
    finally:
        con.close()


@dataclass(frozen=True)
class Subscription:
    id: int
    recipient: str
    recipient_kind: str
    unit_code: str
    cadence: str
    language: str
    active: bool
    created_at: str
    created_by: str | None
    cancelled_at: str | None
    cancelled_by: str | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> "Subscription":
        d = dict(r)
        d["active"] = bool(d["active"])
        return cls(**d)


def classify_recipient(recipient: str) -> str:
    """'email' for an address, 'account' for a username; raises ValueError for anything else
    (CR/LF and other control characters can never reach a mail header)."""
    r = (recipient or "").strip()
    if not r or any(ord(c) < 32 or c == "\x7f" for c in recipient):
        raise ValueError("recipient must be an account username or an email address")
    if "@" in r:
        if not EMAIL_RE.match(r) or len(r) > 254:
            raise ValueError(f"not a valid email address: {r!r}")
        return "email"
    if not USERNAME_RE.match(r):
        raise ValueError(f"not a valid account username: {r!r}")
    return "account"


def check_unit_code(unit_code: str) -> str:
    u = (unit_code or "").strip().upper()
    if not UNIT_RE.match(u):
        raise ValueError(f"not an organisation unit code (TLD, T01, N05, X01001, CS0000001, ...): {unit_code!r}")
    return u


def subscribe(recipient: str, unit_code: str, cadence: str, language: str = "vi", *,
              created_by: str | None = None, account_exists=None) -> Subscription:
    """Create a subscription (admins only: the caller checks the role).

    `account_exists(username) -> bool` validates account recipients; by default the access
    engineer's account store is asked (see `recipients.account_exists`)."""
    kind = classify_recipient(recipient)
    unit_code = check_unit_code(unit_code)
    check_cadence(cadence)
    if language not in LANGUAGES:
        raise ValueError(f"language must be vi or en: {language!r}")
    if account_exists is None:
        from pipelines.reports.recipients import account_exists
    recipient = recipient.strip().lower()  # usernames and addresses are stored lower-case
    if kind == "email" and account_exists(recipient):
        kind = "account"  # usernames may contain '@': an existing account wins
    elif kind == "account" and not account_exists(recipient):
        raise ValueError(f"no such account: {recipient!r}")
    with connect() as con:
        try:
            cur = con.execute(
                "INSERT INTO subscriptions (recipient, recipient_kind, unit_code, cadence, language,"
                " created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (recipient, kind, unit_code, cadence, language, now_iso(), created_by))
        except sqlite3.IntegrityError:
            raise ValueError(f"{recipient} already receives the {cadence} report of {unit_code}") from None
        return get(cur.lastrowid, con=con)


def get(sub_id: int, *, con=None) -> Subscription | None:
    if con is None:
        with connect() as c:
            return get(sub_id, con=c)
    r = con.execute("SELECT * FROM subscriptions WHERE id = ?", (int(sub_id),)).fetchone()
    return Subscription.from_row(r) if r else None


def list_subscriptions(*, recipient: str | None = None, cadence: str | None = None,
                       include_cancelled: bool = False, recipients: list[str] | None = None
                       ) -> list[Subscription]:
    """All subscriptions (admins), or only one recipient's own (`recipient=` or `recipients=[username,
    email]` for a leader who was subscribed both by username and by address)."""
    where, args = [], []
    if not include_cancelled:
        where.append("active = 1")
    if cadence:
        where.append("cadence = ?")
        args.append(check_cadence(cadence))
    names = [x for x in ([recipient] if recipient else []) + list(recipients or []) if x]
    if recipient is not None or recipients is not None:
        if not names:
            return []
        where.append(f"lower(recipient) IN ({','.join('?' * len(names))})")
        args.extend(n.lower() for n in names)
    sql = "SELECT * FROM subscriptions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    with connect() as con:
        return [Subscription.from_row(r) for r in con.execute(sql, args)]


def cancel(sub_id: int, *, actor: str, is_admin: bool = False, actor_email: str | None = None) -> Subscription:
    """Cancel a subscription. An admin may cancel any; anyone else only their own
    (recipient equals their username or their email). Raises PermissionError / LookupError."""
    with connect() as con:
        s = get(sub_id, con=con)
        if s is None:
            raise LookupError(f"no subscription {sub_id}")
        own = {actor.lower()} | ({actor_email.lower()} if actor_email else set())
        if not is_admin and s.recipient.lower() not in own:
            raise PermissionError("you can only cancel your own subscriptions")
        if s.active:
            con.execute("UPDATE subscriptions SET active = 0, cancelled_at = ?, cancelled_by = ? WHERE id = ?",
                        (now_iso(), actor, s.id))
        return get(s.id, con=con)


def deliveries_log(*, subscription_ids: list[int] | None = None, period: str | None = None,
                   status: str | None = None, limit: int = 200) -> list[dict]:
    """The delivery ledger joined with its subscription, newest first."""
    where, args = [], []
    if subscription_ids is not None:
        if not subscription_ids:
            return []
        where.append(f"d.subscription_id IN ({','.join('?' * len(subscription_ids))})")
        args.extend(int(i) for i in subscription_ids)
    if period:
        where.append("d.period = ?")
        args.append(period)
    if status:
        where.append("d.status = ?")
        args.append(status)
    sql = ("SELECT d.id, d.subscription_id, s.recipient, s.unit_code, s.cadence, s.language, d.period,"
           " d.status, d.attempts, d.address, d.transport, d.message_id, d.smtp_code, d.last_error,"
           " d.next_attempt_at, d.warehouse_version, d.created_at, d.updated_at, d.sent_at, d.outbox_path"
           " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY d.updated_at DESC, d.id DESC LIMIT ?")
    args.append(int(limit))
    with connect() as con:
        return [dict(r) for r in con.execute(sql, args)]


def attempts_log(delivery_id: int) -> list[dict]:
    with connect() as con:
        return [dict(r) for r in con.execute(
            "SELECT at, outcome, detail FROM delivery_attempts WHERE delivery_id = ? ORDER BY id", (delivery_id,))]


__all__ = ["CADENCES", "LANGUAGES", "Subscription", "subscribe", "get", "list_subscriptions", "cancel",
           "deliveries_log", "attempts_log", "connect", "db_path"]
