"""End to end on tiny generated data (the shared `tiny_published` session fixture runs `doanvien refresh`,
i.e. the Dagster job monthly_refresh in-process): the published warehouse's member counts equal the ground
truth (CONTRACTS §5); then, on a copy, an incremental refresh materialises every asset of the job, starts
from a copy of the published file and publishes the same figures as a new version."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(request):
    for mod in ("pipelines.generate.cli", "pipelines.ingest.engine"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not there yet")
    return request.getfixturevalue("tiny_published")


def members_by_period(con) -> dict[str, int]:
    return dict(con.execute(
        "SELECT strftime(CAST(period AS DATE), '%Y-%m'), sum(members)::BIGINT FROM marts.fct_membership_monthly "
        "GROUP BY 1 ORDER BY 1").fetchall())


def truth_by_period(root: Path) -> dict[str, int]:
    con = duckdb.connect()
    try:
        return dict(con.execute(
            "SELECT strftime(CAST(period AS DATE), '%Y-%m'), sum(members_expected)::BIGINT "
            f"FROM read_parquet('{root}/ground_truth/membership_monthly.parquet') GROUP BY 1 ORDER BY 1").fetchall())
    finally:
        con.close()


def test_published_members_equal_ground_truth(tiny, monkeypatch):
    from pipelines.warehouse import serving

    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tiny))
    v = serving.current_version()
    assert v is not None
    assert not list((tiny / "warehouse").rglob("*.wal"))
    truth = truth_by_period(tiny)
    with serving.connect() as con:
        assert members_by_period(con) == truth
    with serving.connect(analyst=True) as con:
        schemas = {r[0] for r in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        assert "marts" in schemas and not schemas & {"restricted", "staging", "intermediate"}
        assert members_by_period(con) == truth


def test_incremental_refresh_runs_every_asset(tiny, tmp_path, monkeypatch):
    from pipelines.definitions import defs
    from pipelines.warehouse import serving
    from pipelines.warehouse.orchestrate import run_monthly_refresh

    root = tmp_path / "data"
    shutil.copytree(tiny, root, ignore=shutil.ignore_patterns("dagster_home", "*.lock"))
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    before = serving.current_version()

    out = run_monthly_refresh()
    assert out.success, out.summary()
    job = defs.resolve_job_def("monthly_refresh")
    every_asset = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert out.materialized_keys >= every_asset
    assert out.checks_failed == []
    v = serving.current_version()
    assert v.version == out.version != before.version
    assert Path(v.path).parent == root / "warehouse" / "versions"
    with serving.connect() as con:
        info = con.execute("SELECT build_info FROM meta.warehouse_version").fetchone()[0]
        assert before.version in info  # built from a copy of the previous version
        assert members_by_period(con) == truth_by_period(root)
    assert not list((root / "warehouse").rglob("*.wal"))



def test_published_warehouse_has_the_lookup_indexes(tiny_published, monkeypatch):
    """The published file carries the ART indexes the lookups use (made at publish time, not by dbt, and
    dropped from the copy an incremental build starts from)."""
    import duckdb

    from pipelines.warehouse import serving
    from pipelines.warehouse.build import LOOKUP_INDEXES

    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tiny_published))
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
    finally:
        con.close()
    assert {f"ix_{t}_{c}" for _, t, c in LOOKUP_INDEXES} <= names, names
