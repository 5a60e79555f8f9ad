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
    import threading

    from pipelines.warehouse import build as wbuild

    copies = []
    real_copy = wbuild._copy_base
    monkeypatch.setattr(wbuild, "_copy_base",
                        lambda src, dst: copies.append(threading.current_thread().name) or real_copy(src, dst))
    sent, real_periods = [], wbuild.periods_env
    monkeypatch.setattr(wbuild, "periods_env", lambda plan: sent.append(real_periods(plan)) or sent[-1])

    # a loose ledger file a disk fault truncated: the build sets it aside, and the operator is told through the
    # publish asset's materialisation metadata of this real run (RefreshOutcome reads the notices from there)
    from pipelines.ingest import ledger

    ledger.loose_path("deadbeefdeadbeef").write_bytes(b"PAR1 not a parquet file")

    out = run_monthly_refresh()
    assert out.success, out.summary()
    assert len(out.notices) == 1 and "deadbeefdeadbeef" in out.notices[0] and "không đọc được" in out.notices[0]
    assert f"lưu ý / notice: {out.notices[0]}" in out.summary()
    assert (root / "raw" / "files" / "unreadable" / "deadbeefdeadbeef.parquet.unreadable").exists()
    # the copy the build started from was made in the background while the inbox was ingested, and taken
    assert copies == ["prefetch-base-copy"]
    assert not [p.name for p in (root / "warehouse" / "build").iterdir() if p.name.startswith("prefetch-")]
    # so was the analysts' file, brought up to date (no month restated: nothing written in the monthly marts)
    assert "marts.fct_membership_monthly" in wbuild.LAST_ANALYST_COPY[0].updated
    assert not list((root / "warehouse" / "build").glob("*analyst*"))
    # nothing new in the inbox: dbt was told to restate no month (not "" = every month), and the operator is told
    assert sent and set(sent) == {wbuild.NO_MONTH_CHANGED}
    assert ("cách dựng / build: tăng dần: không có tệp mới, không tháng nào phải tính lại / incremental: "
            "no new file, no month restated") in out.summary().splitlines()[2]
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


def test_a_prefetched_copy_of_another_version_is_never_used(tiny, tmp_path, monkeypatch):
    """A prefetched copy is taken only by a build starting from that very version; otherwise it is deleted and
    the build copies the current version itself (or builds in full)."""
    from pipelines.warehouse import build as wbuild
    from pipelines.warehouse import serving

    root = tmp_path / "data"
    shutil.copytree(tiny, root, ignore=shutil.ignore_patterns("dagster_home", "*.lock"))
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    version = wbuild.prefetch_base_copy()
    assert version == serving.current_version().version
    assert wbuild.take_prefetched_copy("another-version") is None
    assert not [p for p in (root / "warehouse" / "build").iterdir() if p.name.startswith("prefetch-")]
    wbuild.prefetch_base_copy()
    plan = wbuild.prepare_build("full-run", full_refresh=True)  # a full build deletes it, copies nothing
    assert plan.full_refresh and not Path(plan.build_path).exists()
    assert not [p for p in (root / "warehouse" / "build").iterdir() if p.name.startswith("prefetch-")]
    wbuild.discard_build("full-run")
    wbuild.prefetch_base_copy()
    plan = wbuild.prepare_build("inc-run")  # the same version: taken, the build file is that copy
    assert not plan.full_refresh and plan.base_version == version and Path(plan.build_path).exists()
    assert not [p for p in (root / "warehouse" / "build").iterdir() if p.name.startswith("prefetch-")]
    wbuild.discard_build("inc-run")
    # steps in separate processes (a run launched from the Dagster UI): the raw_files step finishes the copy and
    # leaves it on disk; the build step's process, which never started a copy, takes that finished file
    prefetches = lambda: sorted(p.name for p in (root / "warehouse" / "build").iterdir()  # noqa: E731
                                if p.name.startswith("prefetch-"))
    wbuild.prefetch_base_copy()
    assert wbuild.finish_prefetch() == version and wbuild._PREFETCH == {}
    # with the analysts' file of that version beside it (a name the listing of finished copies does not match)
    assert prefetches() == [f"prefetch-{version}.duckdb", f"prefetch-{version}.duckdb.analyst"]
    copied, real_copy = [], wbuild._copy_base
    monkeypatch.setattr(wbuild, "_copy_base", lambda src, dst: copied.append(dst) or real_copy(src, dst))
    analyst_copied, real_analyst = [], wbuild._copy_analyst_base
    monkeypatch.setattr(wbuild, "_copy_analyst_base",
                        lambda base, dst: analyst_copied.append(dst) or real_analyst(base, dst))
    plan = wbuild.prepare_build("step-run")
    assert not plan.full_refresh and Path(plan.build_path).exists() and copied == []  # taken, not copied again
    assert Path(plan.analyst_base_path).exists() and analyst_copied == []
    assert prefetches() == []
    wbuild.discard_build("step-run")
    # a finished copy nobody took (the run failed after ingesting) is removed by discard_prefetch, and one of
    # another version by the next build
    (root / "warehouse" / "build" / f"prefetch-{version}.duckdb").write_bytes(b"x")
    (root / "warehouse" / "build" / f"prefetch-{version}.duckdb.analyst").write_bytes(b"x")
    wbuild.discard_prefetch()
    assert prefetches() == []
    (root / "warehouse" / "build" / "prefetch-20200101T000000Z-old.duckdb").write_bytes(b"x")
    plan = wbuild.prepare_build("step-run-2")
    assert copied and prefetches() == []  # not of the base version: deleted, the build copied by itself
    assert analyst_copied == [Path(plan.analyst_base_path)]  # the analysts' file too
    wbuild.discard_build("step-run-2")
    assert not [p.name for p in (root / "warehouse" / "build").iterdir() if "step-run" in p.name]
