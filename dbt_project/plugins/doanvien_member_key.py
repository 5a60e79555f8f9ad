"""dbt-duckdb plugin: hand the member-key secret to DuckDB as a session variable.

The secret never appears in SQL text (compiled models, run_results.json, logs) nor in any table:
every DuckDB cursor dbt opens gets `SET VARIABLE doanvien_member_key_secret = ?` (a bound
parameter), and models read it with `getvariable('doanvien_member_key_secret')` through the
`keyed_hash` macro. Session variables live in the connection only and are not written to the
database file, so the published warehouse holds keyed hashes, never the key.

Source of the secret, first hit wins:
1. env var DOANVIEN_MEMBER_KEY_SECRET;
2. the dev secret file `<DOANVIEN_DATA_DIR or ./data>/app/member_key.secret` (CONTRACTS §6).
Without either, the variable stays unset and any model computing a member key fails with a clear
message (the `keyed_hash` macro raises), instead of silently hashing with an empty key.
"""
from __future__ import annotations

import os
from pathlib import Path

from dbt.adapters.duckdb.plugins import BasePlugin

VARIABLE = "doanvien_member_key_secret"


def _secret() -> str | None:
    value = os.environ.get("DOANVIEN_MEMBER_KEY_SECRET")
    if value:
        return value
    path = Path(os.environ.get("DOANVIEN_DATA_DIR", "data")) / "app" / "member_key.secret"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


class Plugin(BasePlugin):
    def _set(self, conn):
        value = _secret()  # read at each connection: in-process runners may change the env
        if value:
            conn.execute(f"SET VARIABLE {VARIABLE} = ?", [value])

    def configure_connection(self, conn):
        self._set(conn)

    def configure_cursor(self, cursor):
        self._set(cursor)
