"""Thin seam onto the orchestration engineer's serving module (`pipelines.warehouse.serving`).

Every read of the published warehouse from `pipelines.access` goes through here: a read-only connection per
use, to the version the `CURRENT` pointer names at that moment, so a newly published version is picked up at
the next call.

Opening a DuckDB file costs tens of milliseconds (catalog load), a connection to an already open one a tenth
of a millisecond (DuckDB's per-process instance cache, keyed by path and config). So the process keeps one
idle "keeper" connection per published version it has read (the newest two; a version file is immutable, so
nothing it holds can go stale), and each use still gets a connection of its own, closed after the use: a
keeper closed when a newer version arrives never cuts off a reader in flight. The table columns and the latest
period of a version are read once per version (a published file never changes).
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import duckdb

_KEEP_VERSIONS = 2  # the current version and the one before (serving never deletes those two)


class NoWarehouse(RuntimeError):
    """Nothing has been published yet (run `doanvien refresh`)."""


class _Version:
    """One published file held open by this process, with what never changes in it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.keeper = duckdb.connect(path, read_only=True)  # same (default) config as serving.connect()
        self.columns: dict[tuple[str, str], list[str]] | None = None
        self.latest: tuple | None = None  # (latest period,) once read
        self.token_counts: dict[str, int] = {}  # postings per name word (name_token_count), read on first use
        self.hash_ok: bool | None = None  # serving.lookup_hash_ok of this file, once read

    def table_columns(self, con, schema: str, table: str) -> list[str]:
        cols = self.columns
        if cols is None:
            cols = {}
            for sch, tab, col in con.execute(
                    "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                    "ORDER BY table_schema, table_name, ordinal_position").fetchall():
                cols.setdefault((sch, tab), []).append(col)
            self.columns = cols
        return list(cols.get((schema, table), ()))


_LOCK = threading.Lock()
_HELD: "collections.OrderedDict[str, _Version]" = collections.OrderedDict()
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("access_warehouse", default=None)


def _held(path: str) -> _Version:
    with _LOCK:
        v = _HELD.get(path)
        if v is None:
            v = _HELD[path] = _Version(path)
            while len(_HELD) > _KEEP_VERSIONS:
                _, old = _HELD.popitem(last=False)
                with contextlib.suppress(Exception):
                    old.keeper.close()  # connections opened from it stay usable until they close
        else:
            _HELD.move_to_end(path)
        return v


def _open_current() -> tuple[duckdb.DuckDBPyConnection, _Version]:
    """As `serving.connect()`: read the pointer, open read-only; retried when the version was retired
    between reading the pointer and opening it."""
    from pipelines.warehouse import serving

    last_exc: Exception | None = None
    for _attempt in range(3):
        try:
            path = os.fspath(serving.warehouse_path())
        except serving.WarehouseNotPublished as exc:
            raise NoWarehouse(str(exc)) from exc
        try:
            v = _held(path)
            return duckdb.connect(path, read_only=True), v
        except duckdb.IOException as exc:
            last_exc = exc
            if os.path.exists(path):
                raise
            time.sleep(0.05)
    assert last_exc is not None
    raise last_exc


@contextlib.contextmanager
def connect_full() -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the full published warehouse (includes `restricted`). Access code only."""
    con, v = _open_current()
    token = _ACTIVE.set((con, v))
    try:
        yield con
    finally:
        _ACTIVE.reset(token)
        con.close()


def _version_of(con) -> _Version | None:
    active = _ACTIVE.get()
    return active[1] if active is not None and active[0] is con else None


def analyst_path() -> Path:
    """The de-identified analyst file of the current version (marts only)."""
    from pipelines.warehouse import serving

    v = serving.current_version()
    if v is None or not v.analyst_path:
        raise NoWarehouse("Chưa có kho dữ liệu phân tích / no analyst warehouse published: run `doanvien refresh`")
    return Path(v.analyst_path)


def version() -> str | None:
    from pipelines.warehouse import serving

    v = serving.current_version()
    return v.version if v else None


def table_columns(con, schema: str, table: str) -> list[str]:
    """The columns of `schema.table` (empty when there is no such table); read once per version when `con`
    comes from `connect_full`."""
    v = _version_of(con)
    if v is not None:
        return v.table_columns(con, schema, table)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]).fetchall()
    return [r[0] for r in rows]


_TOKEN_COUNTS_MAX = 100_000  # distinct words remembered per version (Vietnamese names use a few thousand)


def name_token_count(con, token: str) -> int:
    """How many people have `token` among the words of their name: the length of its postings in
    `restricted.member_search_tokens`, read from `restricted.member_search_words` (one row per word, built with
    the postings) when the version has it, else counted on the postings; once per version, remembered in this
    process's memory (never logged or written anywhere).

    The word table matters on a version whose postings were kept up to date rather than sorted again: a word's
    postings are then its range plus rows in every row group later builds appended, and counting them read
    ~10 ms where the word table reads one row (bench/README.md)."""
    v = _version_of(con)
    if v is not None:
        n = v.token_counts.get(token)
        if n is not None:
            return n
    if table_columns(con, "restricted", "member_search_words"):
        row = con.execute("SELECT n_people FROM restricted.member_search_words WHERE token = ?", [token]).fetchone()
        n = row[0] if row else 0
    else:  # a version published before the word table
        n = con.execute("SELECT count(*) FROM restricted.member_search_tokens WHERE token = ?", [token]).fetchone()[0]
    if v is not None and len(v.token_counts) < _TOKEN_COUNTS_MAX:
        v.token_counts[token] = n
    return n


def lookup_hash_ok(con) -> bool:
    """`serving.lookup_hash_ok` (may the member code's hash index be used?), read once per version when `con`
    comes from `connect_full`."""
    from pipelines.warehouse import serving

    v = _version_of(con)
    if v is not None and v.hash_ok is not None:
        return v.hash_ok
    ok = serving.lookup_hash_ok(con)
    if v is not None:
        v.hash_ok = ok
    return ok


def latest_period(con) -> dt.date | None:
    """The latest month present in the membership fact (the default 'period viewed'); once per version."""
    v = _version_of(con)
    if v is not None and v.latest is not None:
        return v.latest[0]
    if not table_columns(con, "marts", "fct_membership_monthly"):
        value = None
    else:
        r = con.execute("SELECT max(period) FROM marts.fct_membership_monthly").fetchone()
        value = r[0] if r else None
        if isinstance(value, dt.datetime):
            value = value.date()
    if v is not None:
        v.latest = (value,)
    return value
