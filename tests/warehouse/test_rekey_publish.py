"""End to end: a member account follows its person when a monthly refresh re-keys them.

The hand-made raw zone (test_marts_handmade) has P3 writing only a legacy CMND until June 2025 and her CCCD
from July. Through the real build door (`build_and_publish`: copy of the current version, dbt build with the
months the ledger recorded since the last publish, indexes, analyst copy, atomic publish), June is built in
full, a member account is linked to P3's June key (her CMND person), then July arrives and the incremental
refresh links the CMND to her CCCD person. The account must point at the new key and her own record must open;
an account of a person who was not re-keyed must not move.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_handmade import PEOPLE, SECRET, build_raw_zone, key_of  # noqa: E402

pytestmark = pytest.mark.slow
D = dt.date


def _mark_ingested_now(root: Path, period: dt.date) -> None:
    """The hand-made ledger dates each file's ingestion in 2025; the refresh restates the months ingested
    after the last publish, so `period`'s files are marked as ingested now (as a real upload would be)."""
    import duckdb

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=1)
    con = duckdb.connect()
    try:
        for f in sorted((root / "raw" / "files").glob("*.parquet")):
            con.execute(f"CREATE OR REPLACE TEMP TABLE l AS SELECT * FROM read_parquet('{f}')")
            if con.execute("SELECT count(*) FROM l WHERE period = ?", [period]).fetchone()[0]:
                con.execute("UPDATE l SET ingested_at = ?", [now])
                con.execute(f"COPY l TO '{f}' (FORMAT parquet)")
    finally:
        con.close()


def test_member_account_follows_its_person_through_an_incremental_publish(data_root, monkeypatch):
    from pipelines.access import accounts, lookup
    from pipelines.warehouse import serving
    from pipelines.warehouse.build import build_and_publish

    monkeypatch.setenv("DOANVIEN_MEMBER_KEY_SECRET", SECRET)
    old_key, new_key = key_of("cmnd:111222333"), key_of(PEOPLE["P3"][4])
    other_key = key_of(PEOPLE["P1"][4])

    build_raw_zone(data_root, upto=D(2025, 6, 1))
    june = build_and_publish(full_refresh=True)
    with serving.connect() as con:
        keys = {r[0] for r in con.execute("SELECT member_key FROM marts.dim_member").fetchall()}
    assert old_key in keys and new_key not in keys  # in June P3 is her CMND person
    p3 = accounts.create_user("p3.member", display_name="P3", role="member", member_key=old_key,
                              password="Mat-khau-2025!")
    accounts.create_user("p1.member", display_name="P1", role="member", member_key=other_key,
                         password="Mat-khau-2025!")
    assert lookup.own_record(p3)  # her June record opens under the CMND key

    build_raw_zone(data_root, upto=D(2025, 7, 1))
    _mark_ingested_now(data_root, D(2025, 7, 1))
    # the member search numbered again from the stored one (delete every row, insert every row: the path a refresh
    # takes when a quarter of the people were placed between others; test_month_by_month takes the other path)
    monkeypatch.setenv("DOANVIEN_SEARCH_RENUMBER", "always")
    july = build_and_publish()
    monkeypatch.delenv("DOANVIEN_SEARCH_RENUMBER")
    assert july.version != june.version and serving.current_version().version == july.version
    from pipelines.warehouse import build as wbuild

    july_analyst = wbuild.LAST_ANALYST_COPY[0]
    assert "marts.fct_member_events" in july_analyst.updated  # brought up to date from June's analysts' file
    with serving.connect() as con:
        info = json.loads(con.execute("SELECT build_info FROM meta.warehouse_version").fetchone()[0])
        keys = {r[0] for r in con.execute("SELECT member_key FROM marts.dim_member").fetchall()}
        moved = con.execute("SELECT count(*) FROM intermediate.int_member_key_changes "
                            "WHERE previous_member_key = ? AND member_key = ?", [old_key, new_key]).fetchone()[0]
    assert (info["full_refresh"], info["periods"], info["base_version"]) == (False, ["2025-07"], june.version)
    from pipelines.warehouse.build import LAST_BUILD

    assert LAST_BUILD["build"].startswith("tăng dần: tính lại từ tháng 07/2025 (1 tháng có tệp mới)")
    assert new_key in keys and old_key not in keys
    assert moved == 1  # the published version says who was re-keyed
    with serving.connect() as con:
        assert con.execute("SELECT rebuild, stored_people > 0 FROM intermediate.int_member_search_plan").fetchone() \
            == (True, True)
        assert con.execute("SELECT count(*) FROM intermediate.int_member_search_changes").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM restricted.member_search WHERE member_key = ?",
                           [old_key]).fetchone()[0] == 0

    assert accounts.get_user("p3.member").member_key == new_key
    assert accounts.get_user("p1.member").member_key == other_key
    rec = lookup.own_record(accounts.get_user("p3.member"))  # opens without an administrator
    assert (rec["member_key"], rec["member_code"], rec["cdcs_code"]) == (new_key, "MCP3", "CS0000001")
    assert rec["cccd"] != PEOPLE["P3"][4] and rec["cccd"].endswith(PEOPLE["P3"][4][-3:])  # masked, now known

    # a new version of the warehouse code: the next refresh cannot trust the tables the old code kept month by
    # month, so it runs in full, says why, and gives the same people

    assert info["code_fingerprint"] == wbuild.warehouse_code_fingerprint()
    monkeypatch.setattr(wbuild, "warehouse_code_fingerprint", lambda: "0123456789abcdef")
    upgraded = wbuild.build_and_publish()
    with serving.connect() as con:
        info = json.loads(con.execute("SELECT build_info FROM meta.warehouse_version").fetchone()[0])
        after = {r[0] for r in con.execute("SELECT member_key FROM marts.dim_member").fetchall()}
    assert serving.current_version().version == upgraded.version
    assert info["full_refresh"] is True and info["base_version"] is None
    assert july.version in info["full_refresh_reason"] and info["code_fingerprint"] == "0123456789abcdef"
    assert info["full_refresh_reason_code"] == "code_changed"
    assert wbuild.LAST_BUILD["build"].startswith("dựng lại toàn bộ vì mã kho dữ liệu đã đổi")  # what the CLI prints
    assert after == keys and accounts.get_user("p3.member").member_key == new_key

    # July's analysts' file, brought up to date from June's (the rows of P3 and P8 under their new keys), has the
    # rows of the one the full build copied table by table
    from pipelines.generate.verify import version_differences

    assert wbuild.LAST_ANALYST_COPY[0].updated == []
    with serving.connect(analyst=True) as con:
        tables = [tuple(r) for r in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'meta' ORDER BY 1, 2").fetchall()]
        keyed = [t for s, t in con.execute("SELECT DISTINCT schema_name, table_name FROM duckdb_columns() "
                                           "WHERE column_name = 'member_key'").fetchall()
                 if f"{s}.{t}" in july_analyst.updated]
        # P8 (a CMND until June, re-keyed in July like P3) transferred in May: events of a month before the window
        p8_before = {t: con.execute(f"SELECT count(*) FROM marts.{t} WHERE member_key = ? "
                                    "AND period < DATE '2025-07-01'", [key_of(PEOPLE["P8"][4])]).fetchone()[0]
                     for t in keyed}
    assert p8_before["fct_member_events"] > 0, p8_before  # rows the re-key renamed in the months kept
    diffs = version_differences(july.analyst_path, upgraded.analyst_path, tables)
    assert len(diffs) == len(tables) > 20 and {t: d for t, d in diffs.items() if d != (0, 0)} == {}
    # the search July numbered again from the stored one is the search the full build numbered (ranks included)
    search = [("restricted", "member_search"), ("restricted", "member_search_tokens")]
    assert version_differences(july.path, upgraded.path, search) == {f"{s}.{t}": (0, 0) for s, t in search}
    import duckdb

    a, b = (duckdb.connect(v.path, read_only=True) for v in (july, upgraded))
    try:
        ranks = [c.execute("SELECT list(name_rank ORDER BY name_rank) FROM restricted.member_search").fetchone()[0]
                 for c in (a, b)]
    finally:
        a.close()
        b.close()
    assert ranks[0] == ranks[1] and len(ranks[0]) > 10


def test_code_fingerprint_follows_the_models_not_dbt_housekeeping(tmp_path, monkeypatch):
    """The fingerprint changes with a model or macro, not with what dbt writes on its own (profiles/.user.yml on
    a first run, target/, logs/): otherwise the second refresh on a fresh machine would run in full."""
    from pipelines import config
    from pipelines.warehouse.build import warehouse_code_fingerprint

    for rel, text in (("dbt_project.yml", "name: x\n"), ("dbt_project/models/a.sql", "select 1\n"),
                      ("dbt_project/macros/m.sql", "{% macro m() %}1{% endmacro %}\n"),
                      ("dbt_project/profiles/profiles.yml", "x: {}\n"), ("data/reference/p.csv", "a\n1\n")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    first = warehouse_code_fingerprint()
    (tmp_path / "dbt_project/profiles/.user.yml").write_text("id: 1\n")
    (tmp_path / "dbt_project/target").mkdir()
    (tmp_path / "dbt_project/target/manifest.yml").write_text("x\n")
    assert warehouse_code_fingerprint() == first
    (tmp_path / "dbt_project/models/a.sql").write_text("select 2\n")
    second = warehouse_code_fingerprint()
    assert second != first
    (tmp_path / "data/reference/p.csv").write_text("a\n2\n")
    third = warehouse_code_fingerprint()
    assert third not in (first, second)
    # a YAML edit that only changes descriptions (documentation) keeps the fingerprint; any other edit changes it
    yml = tmp_path / "dbt_project/models/_m.yml"
    yml.write_text("models:\n- name: a\n  description: grain one row\n  columns:\n  - name: x\n"
                   "    description: the x\n    data_type: integer\n")
    fourth = warehouse_code_fingerprint()
    assert fourth != third
    yml.write_text("models:\n- name: a\n  description: >\n    grain: one row per a (reworded)\n  columns:\n"
                   "  - name: x\n    description: số x\n    data_type: integer\n")
    assert warehouse_code_fingerprint() == fourth
    yml.write_text("models:\n- name: a\n  description: grain one row\n  columns:\n  - name: x\n"
                   "    description: the x\n    data_type: bigint\n")  # a contract type: counts
    fifth = warehouse_code_fingerprint()
    assert fifth not in (first, second, third, fourth)
    # comments in a model or macro (whole-line SQL comments, Jinja comments) are documentation too
    sql = tmp_path / "dbt_project/models/a.sql"
    sql.write_text("-- grain: one row\n{#- a Jinja note\n   on two lines -#}\nselect 2\n")
    assert warehouse_code_fingerprint() == fifth
    sql.write_text("-- grain: one row, reworded\nselect 2\n    -- an indented note\n")
    assert warehouse_code_fingerprint() == fifth
    sql.write_text("select 2 -- after code: counts (it could be inside a string)\n")
    assert warehouse_code_fingerprint() != fifth
    sql.write_text("-- grain: one row\nselect 3\n")
    assert warehouse_code_fingerprint() not in (fifth, second)
