"""Thin seam onto the orchestration engineer's serving module (`pipelines.warehouse.serving`).

Every read of the published warehouse from `pipelines.access` goes through here: a short-lived read-only
connection per use, so a newly published version is picked up at the next call.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Iterator

import duckdb


class NoWarehouse(RuntimeError):
    """Nothing has been published yet (run `doanvien refresh`)."""


@contextlib.contextmanager
def connect_full() -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection to the full published warehouse (includes `restricted`). Access code only."""
    from pipelines.warehouse import serving

    try:
        cm = serving.connect()  # same config as every other reader (DuckDB refuses mixed configs per file)
        con = cm.__enter__()
    except serving.WarehouseNotPublished as exc:
        raise NoWarehouse(str(exc)) from exc
    try:
        yield con
    finally:
        cm.__exit__(None, None, None)


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
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]).fetchall()
    return [r[0] for r in rows]


def latest_period(con) -> dt.date | None:
    """The latest month present in the membership fact (the default 'period viewed')."""
    if not table_columns(con, "marts", "fct_membership_monthly"):
        return None
    r = con.execute("SELECT max(period) FROM marts.fct_membership_monthly").fetchone()
    v = r[0] if r else None
    if isinstance(v, dt.datetime):
        v = v.date()
    return v
