"""An incremental refresh across months on `tiny` generated data: the first two months' inbox ingested and built
from nothing, then the later months' inbox ingested and the warehouse refreshed incrementally (`build_and_publish`,
a new version each time), then a full rebuild of the same raw zone. The two published files must be identical in
every compared table (marts, restricted, per-person states: `verify.COMPARED_TABLES`) and both equal the ground
truth.

The analysts' file the refresh brought up to date from the previous one (its restated months and re-keyed people
only: serving.make_analyst_copy) must equal the one the rebuild copied table by table.

The months include legacy members whose CCCD is first written after months already built (the generator's
`cccd_from`): the refresh of those months must link their CMND record to the CCCD person and rename the stored
rows of the months before (int_member_key_changes, a pure re-key), exactly as a rebuild from nothing decides.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.generate.verify import COMPARED_TABLES, truth_mismatches, version_differences

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_month_by_month_refresh_equals_a_full_rebuild_across_cccd_switches(tmp_path, monkeypatch):
    from pipelines.ingest.engine import ingest_inbox
    from pipelines.warehouse import build as wbuild
    from pipelines.warehouse import serving
    from pipelines.warehouse.build import build_and_publish

    # how dbt parsed the project in each build: a data root's builds after the first parse nothing (the profile and
    # the project's variables are the same every build: wbuild.dbt_database_link, restate_from())
    # and the SQL each build ran for int_member_keys (the build removes its run artifacts when it ends)
    parsing, real_run_dbt, keys_sql = [], wbuild.run_dbt, []

    def run_dbt(args, env, target_path=None, callbacks=None):
        seen: set[str] = set()
        res = real_run_dbt(args, env, target_path=target_path,
                           callbacks=[*(callbacks or []), lambda m: seen.add(m.info.name)])
        keys_sql.append("".join(f.read_text() for f in Path(target_path).glob("run/**/int_member_keys.sql")))
        parsing.append(seen & {"PartialParsingSkipParsing", "UnableToPartialParse", "PartialParsingNotEnabled"})
        return res
    monkeypatch.setattr(wbuild, "run_dbt", run_dbt)

    gen = tmp_path / "gen"
    subprocess.run([sys.executable, "-m", "pipelines.cli", "generate", "--scale", "tiny", "--seed", "7",
                    "--out", str(gen), "--quiet"], check=True, cwd=REPO,
                   env={**os.environ, "DOANVIEN_DATA_DIR": str(gen)})
    root = tmp_path / "data"
    shutil.copytree(gen, root, ignore=shutil.ignore_patterns("inbox"))
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    con = duckdb.connect()
    switches = con.execute(f"SELECT DISTINCT strftime(cccd_from, '%Y-%m') FROM "
                           f"read_parquet('{gen}/ground_truth/members.parquet') WHERE cccd_from IS NOT NULL"
                           ).fetchall()
    con.close()
    months = sorted({d.name for d in (gen / "inbox").glob("*/*") if d.is_dir()})
    assert switches and all(m in months[2:] for (m,) in switches)  # the switches fall after months built

    # two refreshes: the first two months (a build from nothing), then the rest (an incremental refresh that
    # re-keys every switched member; each build costs ~20 s, so no more steps than that)
    batches = [months[:2], months[2:]]
    renamed, analyst_copies, search, versions = {}, [], {}, []
    for i, batch in enumerate(batches):
        for d in sorted(d for m in batch for d in (gen / "inbox").glob(f"*/{m}")):
            dest = root / "inbox" / d.relative_to(gen / "inbox")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(d, dest)
        ingest_inbox()
        v = build_and_publish()
        versions.append(v.path)
        analyst_copies.append(wbuild.LAST_ANALYST_COPY[0])
        con = duckdb.connect(v.path, read_only=True)
        try:
            if i > 0:
                # int_member_keys kept in place (macros/member_keys.sql): the refresh wrote the changed records
                # only, clearing the flags the build from nothing set on every record in place ...
                assert "set is_new_record = false" in keys_sql[-1]
                # ... and its flags say what changed since the version it started from, as a full build would
                con.execute(f"ATTACH '{versions[i - 1]}' AS prev (READ_ONLY)")
                assert con.execute(
                    "SELECT count(*) FILTER (WHERE k.is_new_record), count(*) FILTER (WHERE k.is_new_record "
                    "<> (p.identity_record IS NULL) OR k.previous_member_key IS DISTINCT FROM (CASE WHEN "
                    "p.member_key <> k.member_key THEN p.member_key END)) FROM intermediate.int_member_keys AS k "
                    "LEFT JOIN prev.intermediate.int_member_keys AS p USING (identity_record)").fetchone()[1] == 0
                con.execute("DETACH prev")
            info = json.loads(con.execute("SELECT build_info FROM meta.warehouse_version").fetchone()[0])
            assert info["full_refresh"] == (i == 0) and (i == 0 or info["periods"] == batch)
            renamed[i] = con.execute("SELECT count(*) FILTER (WHERE is_pure_rename), count(*) "
                                     "FROM intermediate.int_member_key_changes").fetchone()
            # the member search: numbered from nothing first, then brought up to date (people placed between
            # their neighbours; the comparison with the rebuild below checks the order it gives)
            search[i] = con.execute(
                "SELECT (SELECT bool_or(rebuild) FROM intermediate.int_member_search_plan), "
                "(SELECT count(*) FILTER (WHERE NOT is_removed) FROM intermediate.int_member_search_changes), "
                "(SELECT count(*) FILTER (WHERE is_removed) FROM intermediate.int_member_search_changes), "
                f"(SELECT count(*) FILTER (WHERE name_rank % {2 ** 32} <> 0) FROM restricted.member_search)"
            ).fetchone()
        finally:
            con.close()
    # each refresh whose months first write a switched member's CCCD re-keyed their CMND records, as pure renames
    assert {i for i, (pure, _) in renamed.items() if pure} == {i for i, b in enumerate(batches) for (m,) in switches
                                                               if m in b}
    assert all(pure == n for pure, n in renamed.values())
    assert search[0] == (True, 0, 0, 0)
    # placed and changed people, and the re-keyed people's rows under their old key deleted
    assert search[1][0] is False and search[1][1] > 0 and search[1][2] > 0 and search[1][3] > 0, search
    incremental, incremental_analyst = serving.current_version().path, serving.current_version().analyst_path

    rebuilt = build_and_publish(full_refresh=True)
    full = rebuilt.path
    assert full != incremental
    assert len(parsing) == 3 and parsing[1:] == [{"PartialParsingSkipParsing"}] * 2, parsing
    diffs = version_differences(incremental, full, COMPARED_TABLES)
    assert len(diffs) == len(COMPARED_TABLES)
    assert {t: d for t, d in diffs.items() if d != (0, 0)} == {}

    # the analysts' file: the refresh brought the previous one up to date (the marts kept month by month: their
    # restated months and re-keyed people), the rebuild copied every table; the same rows in every table
    monthly = {"marts.fct_membership_monthly", "marts.fct_member_events", "marts.fct_dues_monthly",
               "marts.mart_membership_cube"}
    assert analyst_copies[0].updated == [] and monthly <= set(analyst_copies[0].copied)
    assert monthly <= set(analyst_copies[1].updated) and not monthly & set(analyst_copies[1].copied)
    assert "marts.dim_member" in analyst_copies[1].copied
    assert wbuild.LAST_ANALYST_COPY[0].updated == []
    con = duckdb.connect(incremental_analyst, read_only=True)
    analyst_tables = [tuple(r) for r in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE (schema_name, table_name) <> ('meta', "
        "'warehouse_version') ORDER BY 1, 2").fetchall()]
    con.close()
    assert len(analyst_tables) > 20 and set(analyst_copies[1].updated) <= {f"{s}.{t}" for s, t in analyst_tables}
    analyst_diffs = version_differences(incremental_analyst, rebuilt.analyst_path, analyst_tables)
    assert {t: d for t, d in analyst_diffs.items() if d != (0, 0)} == {}
    assert len(analyst_diffs) == len(analyst_tables)
    for path in (incremental, full):
        assert {k: v for k, v in truth_mismatches(path, root).items() if v} == {}
