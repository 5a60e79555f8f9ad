"""How many models dbt runs at once (`build.default_dbt_threads`): two for a small warehouse, one when a month of
roster rows is large enough that two big models side by side share DuckDB's memory limit and spill; an operator's
DOANVIEN_DBT_THREADS wins."""
from __future__ import annotations

import os

from pipelines.warehouse import build


def _month(raw, month, size):
    d = raw / "roster" / f"file_month={month}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{month}.parquet", "wb") as f:
        f.truncate(size)  # sparse: the size is all that is read


def test_threads_follow_the_size_of_the_latest_month(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    assert build.default_dbt_threads(raw) == 2  # nothing ingested yet
    _month(raw, "0000-00", 10)  # the schema file sorts first
    _month(raw, "2026-07", build.LARGE_MONTH_BYTES + 1)  # large, but older than the three latest months
    for m in ("2026-08", "2026-09", "2026-10"):
        _month(raw, m, 2_000_000)
    assert build.default_dbt_threads(raw) == 2
    _month(raw, "2026-11", build.LARGE_MONTH_BYTES + 1)
    assert build.default_dbt_threads(raw) == 1
    _month(raw, "2026-12", 50_000)  # one branch sent December's roster early: November still counts
    assert build.default_dbt_threads(raw) == 1
    plan = build.BuildPlan(run_id="r", version="v", build_path=os.fspath(tmp_path / "b.duckdb"),
                           analyst_build_path=os.fspath(tmp_path / "b.analyst.duckdb"), full_refresh=True,
                           base_version=None, periods=None)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", os.fspath(tmp_path))
    monkeypatch.delenv("DOANVIEN_DBT_THREADS", raising=False)
    assert build.dbt_env(plan)["DOANVIEN_DBT_THREADS"] == "1"
    monkeypatch.setenv("DOANVIEN_DBT_THREADS", "2")  # the operator's choice wins
    assert build.dbt_env(plan)["DOANVIEN_DBT_THREADS"] == "2"
