"""End to end on tiny generated data: the monthly_refresh job (the one `doanvien refresh` runs) ingests the
inbox, builds with dbt, publishes; the published member counts equal the ground truth (CONTRACTS §5);
an incremental refresh and a full refresh publish new versions with the same figures."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _available() -> str | None:
    for mod in ("pipelines.generate.cli", "pipelines.ingest.engine"):
        if importlib.util.find_spec(mod) is None:
            return mod
    return None


@pytest.fixture
def tiny_root(data_root, monkeypatch):
    missing = _available()
    if missing:
        pytest.skip(f"{missing} is not there yet")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(data_root)}
    subprocess.run([sys.executable, "-m", "pipelines.cli", "generate", "--scale", "tiny", "--seed", "7",
                    "--out", str(data_root)], check=True, env=env, cwd=REPO_ROOT, capture_output=True)
    return data_root


def members_by_period(con) -> dict[str, int]:
    rows = con.execute(
        "SELECT strftime(CAST(period AS DATE), '%Y-%m'), sum(members)::BIGINT FROM marts.fct_membership_monthly "
        "GROUP BY 1 ORDER BY 1").fetchall()
    return dict(rows)


def truth_by_period(root: Path) -> dict[str, int]:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT strftime(CAST(period AS DATE), '%Y-%m'), sum(members_expected)::BIGINT "
        f"FROM read_parquet('{root}/ground_truth/membership_monthly.parquet') GROUP BY 1 ORDER BY 1").fetchall()
    con.close()
    return dict(rows)


def test_monthly_refresh_matches_ground_truth(tiny_root):
    from pipelines.definitions import defs
    from pipelines.warehouse import serving
    from pipelines.warehouse.orchestrate import run_monthly_refresh

    out = run_monthly_refresh()
    assert out.success, out.summary()
    job = defs.resolve_job_def("monthly_refresh")
    every_asset = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert out.materialized_keys >= every_asset - {"organisation_registry"}
    assert out.checks_failed == []

    v1 = serving.current_version()
    assert v1 is not None and v1.version == out.version
    assert not list((tiny_root / "warehouse").rglob("*.wal"))
    assert not [p for p in (tiny_root / "warehouse" / "build").iterdir() if p.suffix == ".duckdb"]
    truth = truth_by_period(tiny_root)
    with serving.connect() as con:
        got = members_by_period(con)
    assert got == truth

    # the analyst copy: marts (and reference seeds, version stamp), nothing restricted
    with serving.connect(analyst=True) as con:
        schemas = {r[0] for r in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        assert "marts" in schemas and "restricted" not in schemas and "staging" not in schemas
        assert members_by_period(con) == truth

    # an incremental refresh (nothing new in the inbox) and a full refresh give the same figures
    out2 = run_monthly_refresh()
    assert out2.success, out2.summary()
    out3 = run_monthly_refresh(full_refresh=True)
    assert out3.success, out3.summary()
    assert len({out.version, out2.version, out3.version}) == 3
    with serving.connect() as con:
        assert members_by_period(con) == truth
        assert con.execute("SELECT version FROM meta.warehouse_version").fetchone()[0] == out3.version
