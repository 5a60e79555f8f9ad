"""Serving: versioned files, atomic pointer, no WAL, failed builds publish nothing, rollback, retention,
and a real second process reading throughout builds (reliability notes §1, DB-01/03/04/05/11)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse import build, serving

REPO_ROOT = Path(__file__).resolve().parents[2]


def fake_build(run_id: str, rows: int, *, full_refresh: bool = False, keep: int = 3) -> serving.Version:
    """A build without dbt: prepare (copy of current or empty), write marts, finish and publish."""
    plan = build.prepare_build(run_id, full_refresh=full_refresh)
    con = duckdb.connect(plan.build_path)
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE SCHEMA IF NOT EXISTS restricted")
    con.execute(f"CREATE OR REPLACE TABLE marts.t AS SELECT range AS i, 'x' || range AS s FROM range({rows})")
    con.execute(f"CREATE OR REPLACE TABLE marts.expected AS SELECT {rows}::BIGINT AS n")
    con.execute("CREATE OR REPLACE TABLE restricted.secret AS SELECT '001234567890' AS cccd")
    con.close()
    return build.finish_and_publish(run_id, keep=keep)


def test_nothing_published_yet(data_root):
    assert serving.current_version() is None
    with pytest.raises(serving.WarehouseNotPublished):
        serving.warehouse_path()
    with pytest.raises(serving.WarehouseNotPublished):
        with serving.connect():
            pass


def test_publish_pointer_files_and_readonly(data_root):
    v = fake_build("run-a", 1000)
    cur = serving.current_version()
    assert cur == v
    pointer = json.loads((data_root / "warehouse" / "CURRENT").read_text())
    assert set(pointer) == {"version", "path", "analyst_path", "published_at", "run_id"}
    assert pointer["run_id"] == "run-a"
    full, analyst = Path(v.path), Path(v.analyst_path)
    assert full.parent == data_root / "warehouse" / "versions" and full.name == f"{v.version}.duckdb"
    assert analyst.name == f"{v.version}.analyst.duckdb"
    # no WAL published, no build leftovers, no temp pointer files
    assert not list((data_root / "warehouse").rglob("*.wal"))
    assert not list((data_root / "warehouse" / "build").iterdir())
    assert not [p for p in (data_root / "warehouse").iterdir() if p.name.startswith(".CURRENT")]
    assert serving.warehouse_path() == full
    with serving.connect() as con:
        assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 1000
        assert con.execute("SELECT version FROM meta.warehouse_version").fetchone()[0] == v.version
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE marts.x AS SELECT 1")
    # the analyst copy holds marts (and meta) only
    with serving.connect(analyst=True) as con:
        schemas = {r[0] for r in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
        assert schemas == {"marts", "meta"}
        assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 1000


def test_incremental_build_starts_from_a_copy(data_root):
    v1 = fake_build("run-1", 10)
    plan = build.prepare_build("run-2")
    assert plan.base_version == v1.version and not plan.full_refresh
    con = duckdb.connect(plan.build_path)
    assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 10  # the copy
    con.execute("INSERT INTO marts.t SELECT 99, 'new'")
    con.close()
    v2 = build.finish_and_publish("run-2")
    with serving.connect() as con:
        assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 11
    # the previous version's file is untouched
    c = duckdb.connect(v1.path, read_only=True)
    assert c.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 10
    c.close()
    assert v2.version > v1.version
    full = build.prepare_build("run-3", full_refresh=True)
    assert full.full_refresh and not Path(full.build_path).exists()
    build.discard_build("run-3")


def test_pointer_replace_is_atomic(data_root, monkeypatch):
    v1 = fake_build("run-1", 10)
    before = (data_root / "warehouse" / "CURRENT").read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(serving.os, "replace", boom)
        with pytest.raises(OSError):
            serving.atomic_write_text(serving.pointer_path(), '{"broken": true}')
    assert (data_root / "warehouse" / "CURRENT").read_bytes() == before
    assert serving.current_version() == v1
    assert not [p for p in (data_root / "warehouse").iterdir() if p.name.endswith(".tmp")]


def test_file_with_leftover_wal_is_never_published(data_root):
    v1 = fake_build("run-1", 10)
    plan = build.prepare_build("run-2")
    serving.stamp_version(plan.build_path, plan.version, "run-2")
    wal = Path(plan.build_path + ".wal")
    wal.write_bytes(b"junk")  # e.g. a writer that died without a checkpoint
    with pytest.raises(serving.PublishError, match="wal"):
        serving.publish(plan.build_path, version=plan.version, run_id="run-2")
    assert serving.current_version() == v1
    assert not (data_root / "warehouse" / "versions" / f"{plan.version}.duckdb").exists()
    # the normal path checkpoints the build itself, so what it publishes never has a WAL
    wal.unlink()
    v2 = build.finish_and_publish("run-2")
    assert not Path(v2.path + ".wal").exists() and not Path(v2.analyst_path + ".wal").exists()
    assert not list((data_root / "warehouse").rglob("*.wal"))


def test_failed_dbt_build_publishes_nothing(data_root, monkeypatch):
    v1 = fake_build("run-1", 10)

    class Failed:
        success = False
        exception = RuntimeError("model failed: contract mismatch")
        result = None

    def fake_run_dbt(args, env, target_path=None):
        # dbt wrote half a warehouse before failing
        con = duckdb.connect(env["DOANVIEN_BUILD_DB"])
        con.execute("CREATE OR REPLACE TABLE marts.t AS SELECT 1 AS i")
        con.close()
        return Failed()

    monkeypatch.setattr(build, "run_dbt", fake_run_dbt)
    with pytest.raises(RuntimeError, match="contract mismatch"):
        build.build_and_publish(run_id="run-bad")
    assert serving.current_version() == v1
    assert not list((data_root / "warehouse" / "build").glob("run-bad*"))
    assert not build.dbt_database_link().exists()  # dbt's second link to the failed build is gone with it
    with serving.connect() as con:
        assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 10


def test_dbt_reaches_each_build_through_one_link(data_root):
    """dbt's path (one per data root, so its parse state holds from build to build) is a second link to the build's
    file: what dbt writes through it is in the file; a crashed build's WAL beside it is never replayed onto the
    next build's file; the link is gone once the build is published; a crashed build's link older than a day
    is removed with the other stale build files."""
    fake_build("run-1", 10)
    plan = build.prepare_build("run-2")
    link = build.dbt_database_link()
    serving.wal_path(link).write_bytes(b"a crashed build's log")  # left by another build's DuckDB
    env = build.dbt_env(plan)
    assert env["DOANVIEN_BUILD_DB"] == os.fspath(link) and os.path.samefile(link, plan.build_path)
    assert not serving.wal_path(link).exists()
    con = duckdb.connect(env["DOANVIEN_BUILD_DB"])  # what dbt does
    con.execute("CREATE OR REPLACE TABLE marts.t AS SELECT range AS i, 'x' || range AS s FROM range(7)")
    con.execute("CREATE OR REPLACE TABLE marts.expected AS SELECT 7::BIGINT AS n")
    con.close()
    v2 = build.finish_and_publish("run-2")
    assert not link.exists()
    with serving.connect() as c:
        assert c.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 7 and serving.current_version() == v2
    # a build that crashed while dbt ran: its file and link are removed when stale
    plan = build.prepare_build("run-3")
    build.dbt_env(plan)
    old = time.time() - build.STALE_BUILD_SECONDS - 60
    for p in (plan.build_path, build.plan_path("run-3")):
        os.utime(p, (old, old))
    removed = build.remove_stale_builds()
    assert "dbt/warehouse.duckdb" in removed and not link.exists() and not Path(plan.build_path).exists()


def test_missing_schema_is_not_published(data_root):
    plan = build.prepare_build("run-1")
    con = duckdb.connect(plan.build_path)
    con.execute("CREATE TABLE x AS SELECT 1 AS i")
    con.close()
    serving.stamp_version(plan.build_path, plan.version, "run-1")
    with pytest.raises(serving.PublishError):
        serving.publish(plan.build_path, version=plan.version, run_id="run-1",
                        required_schemas=("meta", "marts"))
    assert serving.current_version() is None


def test_rollback_and_retention(data_root):
    versions = []
    for i in range(5):
        versions.append(fake_build(f"run-{i}", 10 + i, keep=3))
        time.sleep(1.05)  # version ids have one-second resolution
    # the grace period keeps superseded versions for a while: all five are still there
    assert [v.version for v in serving.list_versions()] == [v.version for v in versions]
    removed = serving.retire_old_versions(keep=3, grace_seconds=0)
    assert removed == [versions[0].version, versions[1].version]
    assert not Path(versions[0].path).exists() and not Path(versions[0].analyst_path).exists()
    # rollback to the previous version, then to an explicit one
    back = serving.rollback()
    assert back.version == versions[3].version
    with serving.connect() as con:
        assert con.execute("SELECT count(*) FROM marts.t").fetchone()[0] == 13
    serving.rollback(versions[2].version)
    assert serving.current_version().version == versions[2].version
    # retention never removes the current version, the one before it, nor newer ones
    serving.retire_old_versions(keep=2, grace_seconds=0)
    left = {v.version for v in serving.list_versions()}
    assert {versions[2].version, versions[3].version, versions[4].version} <= left
    with pytest.raises(serving.WarehouseNotPublished):
        serving.rollback("20000101T000000Z-nope")


def test_a_copied_data_root_reads_and_retires_its_own_files(data_root, tmp_path, monkeypatch):
    """A data root copied whole (`cp -a`) keeps pointer and version records naming the original's files by absolute
    path: the copy must read its own files, and retiring old versions in the copy must not delete the original's."""
    import shutil

    versions = []
    for i in range(3):
        versions.append(fake_build(f"run-{i}", 10 + i))
        time.sleep(1.05)  # version ids have one-second resolution
    copy = tmp_path / "copy"
    shutil.copytree(data_root, copy)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(copy))
    assert serving.warehouse_path() == copy / "warehouse" / "versions" / f"{versions[-1].version}.duckdb"
    assert all(Path(v.path).parent == copy / "warehouse" / "versions" for v in serving.list_versions())
    assert serving.retire_old_versions(keep=2, grace_seconds=0) == [versions[0].version]
    assert not (copy / "warehouse" / "versions" / f"{versions[0].version}.duckdb").exists()
    assert Path(versions[0].path).exists() and Path(versions[0].analyst_path).exists()  # the original's, untouched


READER = textwrap.dedent(
    """
    import json, sys, time
    from pipelines.warehouse import serving
    deadline = time.time() + float(sys.argv[1])
    seen, errors, n = set(), [], 0
    while time.time() < deadline:
        try:
            with serving.connect() as con:
                version = con.execute("SELECT version FROM meta.warehouse_version").fetchone()[0]
                got = con.execute("SELECT count(*) FROM marts.t").fetchone()[0]
                want = con.execute("SELECT n FROM marts.expected").fetchone()[0]
            if got != want:
                errors.append(f"incomplete version {version}: {got} != {want}")
            seen.add(version)
            n += 1
        except serving.WarehouseNotPublished:
            pass
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"seen": sorted(seen), "errors": errors[:20], "queries": n}))
    """
)


def test_reader_process_sees_only_complete_versions(data_root):
    fake_build("run-0", 1000)
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(data_root), "PYTHONPATH": str(REPO_ROOT)}
    reader = subprocess.Popen([sys.executable, "-c", READER, "12"], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    published = []
    t_end = time.time() + 9
    i = 1
    while time.time() < t_end:
        # builds large enough to take a while, incremental (copy of the current file) and full in turn
        published.append(fake_build(f"run-{i}", 300_000 + 1000 * i, full_refresh=(i % 2 == 0), keep=2).version)
        time.sleep(1.05)
        i += 1
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    print({"published": len(published), "queries": result["queries"], "seen": len(result["seen"])})
    assert result["errors"] == []
    assert result["queries"] > 20
    assert len(published) >= 2
    # the reader picked up new versions without restarting
    assert len(set(result["seen"]) & set(published)) >= 2


def test_an_incremental_build_drops_the_lookup_indexes_an_older_build_made(tmp_path):
    """The copy an incremental build starts from loses its lookup indexes, also one the build no longer makes
    (`build.RETIRED_LOOKUP_INDEXES`: dim_member's since lookups read member_pii), because dbt replaces a table by
    renaming it, which DuckDB refuses for an indexed table."""
    import duckdb

    from pipelines.warehouse.build import RETIRED_LOOKUP_INDEXES, set_lookup_indexes

    db = tmp_path / "base.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA restricted")
    con.execute("CREATE TABLE marts.dim_member AS SELECT replace(CAST(uuid() AS VARCHAR), '-', '') AS member_key "
                "FROM range(10)")
    con.execute("CREATE TABLE restricted.member_pii AS SELECT member_key, '001085000001' AS cccd, 'MC1' AS member_code "
                "FROM marts.dim_member")
    con.execute("CREATE INDEX ix_dim_member_member_key ON marts.dim_member ((TRY_CAST(member_key AS UUID)))")
    con.close()
    assert ("marts", "dim_member", "member_key") in RETIRED_LOOKUP_INDEXES
    made = set_lookup_indexes(db, present=True)
    assert "ix_member_pii_member_key" in made and "ix_dim_member_member_key" not in made
    set_lookup_indexes(db, present=False)
    con = duckdb.connect(str(db))
    try:
        assert con.execute("SELECT index_name FROM duckdb_indexes()").fetchall() == []
        con.execute("ALTER TABLE marts.dim_member RENAME TO dim_member__dbt_backup")  # what dbt does
    finally:
        con.close()
