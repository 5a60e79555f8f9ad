"""The application's own SQLite databases, separate from the warehouse.

- `<data>/app/accounts.sqlite`: accounts, sessions, login attempts, correction requests, data stewards' reviews
  of identity conflicts, saved queries, uploads (the warehouse is rebuilt every month; these are not).
- `<data>/app/audit.sqlite`: the append-only audit log (kept apart so it can have its own retention and
  file permissions).
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

from pipelines import config

ACCOUNTS_DB = "accounts.sqlite"
AUDIT_DB = "audit.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    unit_code     TEXT,
    member_key    TEXT,
    member_code   TEXT,
    email         TEXT,
    lang          TEXT NOT NULL DEFAULT 'vi',
    password_hash TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users(lower(email)) WHERE email IS NOT NULL;
CREATE TABLE IF NOT EXISTS login_attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    username  TEXT NOT NULL,
    ts        REAL NOT NULL,
    ok        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_user ON login_attempts(username, ts);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    expires_at  REAL NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    via         TEXT NOT NULL DEFAULT 'password'
);
CREATE TABLE IF NOT EXISTS correction_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    member_key   TEXT NOT NULL,
    cdcs_code    TEXT,
    requested_by TEXT NOT NULL,
    field        TEXT NOT NULL,
    message      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open',
    created_at   TEXT NOT NULL,
    resolved_by  TEXT,
    resolved_at  TEXT,
    resolution   TEXT
);
CREATE TABLE IF NOT EXISTS conflict_reviews (
    conflict_id  TEXT PRIMARY KEY,
    cdcs_code    TEXT NOT NULL,
    decision     TEXT NOT NULL,
    note         TEXT,
    reviewed_by  TEXT NOT NULL,
    reviewed_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saved_queries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    username   TEXT NOT NULL,
    name       TEXT NOT NULL,
    sql        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE(username, name)
);
CREATE TABLE IF NOT EXISTS uploads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL,
    branch_code   TEXT NOT NULL,
    period        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    original_name TEXT NOT NULL,
    stored_name   TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    status        TEXT,
    file_id       TEXT,
    report_json   TEXT,
    report_xlsx   TEXT,
    inbox_path    TEXT,
    created_at    TEXT NOT NULL
);
"""

_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT,
    action      TEXT NOT NULL,
    page        TEXT,
    member_key  TEXT,
    detail      TEXT,
    outcome     TEXT NOT NULL,
    rows        INTEGER,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit_log(ts);
CREATE INDEX IF NOT EXISTS audit_member ON audit_log(member_key);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""


def _path(name: str) -> Path:
    return config.app_dir() / name


def _open(name: str, schema: str, *, any_thread: bool = False) -> sqlite3.Connection:
    path = _path(name)
    new = not path.exists()
    con = sqlite3.connect(os.fspath(path), timeout=30, isolation_level=None, check_same_thread=not any_thread)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA foreign_keys = ON")
    con.executescript(schema)
    if new:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    return con


@contextlib.contextmanager
def accounts_db() -> Iterator[sqlite3.Connection]:
    con = _open(ACCOUNTS_DB, _SCHEMA)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def audit_db() -> Iterator[sqlite3.Connection]:
    con = _open(AUDIT_DB, _AUDIT_SCHEMA)
    try:
        yield con
    finally:
        con.close()


# The audit log is written on every look at a person: opening SQLite, setting the pragmas and running the
# schema script each time cost more than the write (and closing the last connection of a WAL database
# checkpoints it). Writers in this process share one connection per audit file, one at a time (a lock);
# other processes still meet it through SQLite's own locking (BEGIN IMMEDIATE, busy_timeout), and the previous
# hash is read inside that transaction, so the chain holds across processes. The connection is re-opened when
# the data root changes, when the file at that path is no longer the one it has open (removed or replaced),
# and in a forked child.
_AUDIT_LOCK = threading.Lock()
_AUDIT_WRITER: dict = {}  # {"key": (path, pid, (st_dev, st_ino)), "con": sqlite3.Connection}
# Connections to a file that was removed or replaced under them are never closed: closing the last connection
# of a WAL database checkpoints and deletes "<path>-wal" by name, which would now be the new file's.
_AUDIT_ORPHANS: list = []


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def audit_writer() -> Iterator[sqlite3.Connection]:
    """The process's connection to the audit log, held exclusively by the caller for one transaction."""
    with _AUDIT_LOCK:
        path = _path(AUDIT_DB)
        key = (os.fspath(path), os.getpid(), _file_id(path))
        con, old = _AUDIT_WRITER.get("con"), _AUDIT_WRITER.get("key")
        if con is None or key[2] is None or old != key:
            if con is not None and old[1] == os.getpid():  # (a forked child leaves the parent's alone)
                if old[0] == key[0]:
                    _AUDIT_ORPHANS.append(con)
                else:  # another data root: that file is still there, close normally
                    with contextlib.suppress(sqlite3.Error):
                        con.close()
            _AUDIT_WRITER.clear()
            con = _open(AUDIT_DB, _AUDIT_SCHEMA, any_thread=True)
            _AUDIT_WRITER.update(key=(os.fspath(path), os.getpid(), _file_id(path)), con=con)
        yield con
