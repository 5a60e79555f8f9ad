"""Member search by name through the name index (dbt models restricted.member_search / member_search_tokens):
the same members, in the same order, as a brute-force scan of every name, for every scope.

The rule: every typed word but the last is a whole word of the accent/case-folded name, the last typed word
is the beginning of a word of the name (a search box answering while the official types), any order.

The fixture warehouse is hand-made (no dbt run): the index tables are made here from the models' own SQL
(`{{ ref('x') }}` read as `restricted.x`), on a published version whose names were chosen to trip a word
index: shared given names, a name that holds another as a substring ("An" / "Anh"), a repeated word, words
in another order, upper case, names written without accents, several words that one prefix begins ("Hữu
Hùng", "Hùng" / "Huy").
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

import access_fixture as wf
from pipelines.access import audit, lookup
from pipelines.access.warehouse import connect_full, name_token_count, table_columns

MODELS = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "restricted"

NAMES = ["Nguyễn Văn An", "Nguyễn Văn Anh", "Nguyễn Thị An", "Trần An", "An Văn Nguyễn", "Nguyễn Nguyễn An",
         "NGUYỄN VĂN AN", "Lê Thị Lan", "Lê Lan", "Đỗ Đức Độ", "Do Duc Do", "Nguyễn Văn Hùng", "Nguyễn Văn An",
         "Hoàng Thị Lan Anh", "Lan Văn Hoàng", "Nguyễn Hữu Hùng", "Nguyễn Thanh An", "Trần Văn Anh",
         "Nguyễn Văn Huy",
         "Nguyễn Văn An", "Lê Văn Lân", "Đặng Quốc Huy", "Nguyễn Văn", "Thị Nguyễn"]

QUERIES = ["Nguyễn Văn An", "nguyen van an", "NGUYEN VAN AN", "An", "an", "Nguyễn An", "van an", "an nguyen",
           "Anh", "Lan", "  Lê   Lan ", "Lân", "Đỗ", "do duc", "do do", "nguyen nguyen", "Thị", "Văn",
           "Hoàng Lan Anh", "Khong Co Ai", "Nguyễn Văn Không", "ng", "guyen",
           # the last word as a prefix: of several words (and of two words of one name: Hữu, Hùng), equal to a
           # whole word, of one letter, typed without accents or with them, after whole words in any order
           "nguyen van hu", "Nguyễn Văn Hù", "hu", "Hu", "hung", "Hùng", "huy", "huu hu", "hung hu", "hu nguyen",
           "nguyen h", "van h", "Nguyễn V", "do d", "Đỗ Đ", "le l", "Lê Lâ", "hoang thi lan a", "lan a", "nguyen z",
           "nguyen ng", "Nguy", "ngu", "van an", "an n", "tran van a", "uy", "van ung", "nguyen van anh"]


def render_model(name: str) -> str:
    """A restricted model's SQL as dbt runs it when it builds the search from nothing (its refs are restricted
    tables; the gap between ranks as the project's macro says)."""
    import jinja2

    sql = (MODELS / f"{name}.sql").read_text(encoding="utf-8")
    macros = (MODELS.parents[1] / "macros" / "member_search.sql").read_text(encoding="utf-8")
    gap = re.search(r"macro member_search_gap\(\) -%\}(\d+)\{", macros).group(1)
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    return env.from_string(sql).render(
        config=lambda **_: "", is_incremental=lambda: False, member_search_rebuild=lambda: True,
        member_search_gap=lambda: gap, ref=lambda m: f"restricted.{m}")


def publish_with_names(names: list[str], *, index: bool, version: str, words: bool = True) -> list[dict]:
    """Publish a copy of the current version whose members carry `names` (in member order), with or without
    the name index tables built by the dbt models' SQL (with or without the word counts, as a version published
    before them). Returns the members as now named."""
    from pipelines.warehouse import serving

    ms = wf.members()
    build = serving.build_dir() / f"{version}.duckdb"
    shutil.copyfile(serving.warehouse_path(), build)
    con = duckdb.connect(str(build))
    for m, name in zip(ms, names):
        m["full_name"] = name
        con.execute("UPDATE restricted.member_pii SET full_name = ?, name_search = ? WHERE member_key = ?",
                    [name, wf.fold(name), m["member_key"]])
    if index:
        for model in ("member_search", "member_search_tokens", "member_search_words")[:3 if words else 2]:
            con.execute(f"CREATE OR REPLACE TABLE restricted.{model} AS {render_model(model)}")
    con.execute("CHECKPOINT")
    con.close()
    if index:
        from pipelines.warehouse.build import set_lookup_indexes
        assert "ix_member_search_name_rank" in set_lookup_indexes(build, present=True)  # as at publish time
    serving.stamp_version(build, version, "test")
    analyst = serving.build_dir() / f"{version}.analyst.duckdb"
    serving.make_analyst_copy(build, analyst)
    serving.publish(build, version=version, run_id="test", analyst_build_path=analyst)
    return ms


def matches(name: str, query: str) -> bool:
    """The rule, in plain Python: every folded query word but the last is a word of the folded name, and some
    word of the name starts with the last one."""
    typed, words = wf.fold(query).split(), wf.fold(name).split()
    return bool(typed) and set(typed[:-1]) <= set(words) and any(w.startswith(typed[-1]) for w in words)


def brute_force(user, members: list[dict], query: str, limit: int) -> list[tuple]:
    """Every member whose name `matches` the query, in the user's scope (their current CĐCS), ordered by full
    name then member_key: what the search must return, computed without any index."""
    from pipelines.access.scope import scope_for
    from pipelines.access.warehouse import latest_period

    with connect_full() as con:
        scope = scope_for(user, latest_period(con))
    found = [m for m in members if matches(m["full_name"], query) and scope.allows_cdcs(m["cdcs_code"])]
    found.sort(key=lambda m: (m["full_name"].encode("utf-8"), m["member_key"]))
    return [(m["member_key"], m["full_name"], m["cdcs_code"]) for m in found[:limit]]


def _keys(hits) -> list[tuple]:
    return [(h.member_key, h.full_name, h.cdcs_code) for h in hits]


@pytest.fixture
def indexed(users):
    ms = publish_with_names(NAMES, index=True, version="20260102T000000Z-names")
    with connect_full() as con:
        assert lookup._has_name_index(con)
    return ms


OFFICIALS = ["national_leader", "province_leader", "upper_official", "cdcs_official"]


@pytest.mark.parametrize("role", OFFICIALS)
def test_index_search_equals_brute_force_and_scan(users, indexed, role, monkeypatch):
    user = users[role]
    calls = []
    real = lookup._search_by_name_index
    monkeypatch.setattr(lookup, "_search_by_name_index", lambda *a, **k: calls.append(1) or real(*a, **k))
    for q in QUERIES:
        for limit in (50, 2):
            expected = brute_force(user, indexed, q, limit)
            got = _keys(lookup.search_members(user, q, limit=limit))
            assert got == expected, (role, q, limit)
    assert calls, "the index was not used"
    # the plain scan (a version without the index) gives the same answers
    monkeypatch.setattr(lookup, "_has_name_index", lambda con: False)
    for q in QUERIES:
        for limit in (50, 2):
            assert _keys(lookup.search_members(user, q, limit=limit)) == brute_force(user, indexed, q, limit), \
                (role, q, limit)


def test_index_search_semantics(users, indexed):
    nat = users["national_leader"]
    names = lambda q: sorted({h.full_name for h in lookup.search_members(nat, q)})  # noqa: E731
    # accent- and case-insensitive, words in any order: "họ + tên" finds the middle-named too; the last word typed
    # is the beginning of a word ("an": An, Anh), the others whole words
    assert names("nguyen an") == names("Nguyễn An") == ["An Văn Nguyễn", "NGUYỄN VĂN AN", "Nguyễn Nguyễn An",
                                                        "Nguyễn Thanh An", "Nguyễn Thị An", "Nguyễn Văn An",
                                                        "Nguyễn Văn Anh"]
    assert "Nguyễn Văn Anh" not in names("an nguyen")  # "an" typed first: a whole word
    # the beginning of a word, never a piece inside one: "an" does not find "Lan", "guyen" nothing
    assert "Nguyễn Văn Anh" in names("an") and "Lê Thị Lan" not in names("an")
    assert names("guyen") == [] and names("uy") == []
    # typing the given name: several words begin with "hu" (one name holds two of them), a whole word still finds
    assert names("nguyen van hu") == names("Nguyễn Văn Hù") == ["Nguyễn Văn Huy", "Nguyễn Văn Hùng"]
    assert names("hu") == ["Nguyễn Hữu Hùng", "Nguyễn Văn Huy", "Nguyễn Văn Hùng", "Đặng Quốc Huy"]
    assert names("hung") == names("Hùng") == ["Nguyễn Hữu Hùng", "Nguyễn Văn Hùng"]
    hu2 = lookup.search_members(nat, "hu", limit=2)  # one row per person, in name order, within the limit
    assert [h.full_name for h in hu2] == ["Nguyễn Hữu Hùng", "Nguyễn Văn Huy"]
    assert names("nguyen h") == ["Nguyễn Hữu Hùng", "Nguyễn Văn Huy", "Nguyễn Văn Hùng"]  # a one-letter prefix
    assert names("Đỗ") == ["Do Duc Do", "Đỗ Đức Độ"]  # written without accents in the source, still found
    assert names("Khong Co Ai") == [] and names("nguyen z") == []
    nat_all = lookup.search_members(nat, "Nguyễn Văn An")  # three, one in capitals, "An Văn Nguyễn", "…Anh"
    assert len(nat_all) == 6 and all("*****" in h.cccd for h in nat_all)  # masked for leaders, as before


def test_name_query_rule():
    """The words of a query: the last one a prefix (dropped when an earlier word starts with it)."""
    nq = lookup.name_query
    assert nq("  Nguyễn   Văn HÙ ") == lookup.NameQuery(("nguyen", "van"), "hu")
    assert nq("hung") == lookup.NameQuery((), "hung")
    assert nq("hung hu") == nq("hung hung") == lookup.NameQuery(("hung",), None)
    assert nq("an nguyen an") == lookup.NameQuery(("an", "nguyen"), None)
    assert nq("").empty and nq("   ").empty
    rng = lookup._prefix_range_sql
    assert rng("t.token", "hu") == ("t.token >= ? AND t.token < ?", ["hu", "hv"])
    assert rng("t.token", "h\U0010FFFF") == ("t.token >= ? AND t.token < ?", ["h\U0010FFFF", "i"])
    assert rng("t.token", "\ud7ff")[1] == ["\ud7ff", "\ue000"]


def test_index_search_scope_and_audit(users, indexed):
    up, cs = users["upper_official"], users["cdcs_official"]  # X08001: CS0000002, CS0000004; CS0000002
    every = lookup.search_members(users["national_leader"], "an")
    assert {h.cdcs_code for h in every} - {"CS0000002", "CS0000004"}  # some outside X08001
    assert {h.cdcs_code for h in lookup.search_members(up, "an")} <= {"CS0000002", "CS0000004"}
    mine = lookup.search_members(cs, "an")
    assert mine and {h.cdcs_code for h in mine} == {"CS0000002"}
    assert all(len(h.cccd) == 12 and "*" not in h.cccd for h in mine)  # the CĐCS official sees full CCCDs
    ev = audit.events(action="search_members")
    assert len(ev) == 3 and ev[0]["actor"] == cs.username and ev[0]["rows"] == len(mine)
    details = [json.loads(e["detail"]) for e in ev]
    assert {d["by"] for d in details} == {"name"} and {d["query"] for d in details} == {"an"}
    assert audit.verify_chain() == (True, None)


def test_index_tables_from_the_models(users, indexed):
    """One posting per distinct word of each name; name_rank is the order (full_name, member_key)."""
    with connect_full() as con:
        ranks = con.execute("SELECT member_key FROM restricted.member_search ORDER BY name_rank").fetchall()
        assert [r[0] for r in ranks] == [m["member_key"] for m in sorted(
            indexed, key=lambda m: (m["full_name"].encode("utf-8"), m["member_key"]))]
        n = con.execute("SELECT count(*) FROM restricted.member_search_tokens").fetchone()[0]
        assert n == sum(len(set(wf.fold(m["full_name"]).split())) for m in indexed)
        assert con.execute("SELECT count(*) FROM restricted.member_search_tokens WHERE token = 'nguyen' "
                           "AND name_search = 'nguyen nguyen an'").fetchone()[0] == 1
        # the word counts the search picks the rarest word by: people per word, as the names say
        words = {}
        for m in indexed:
            for w in set(wf.fold(m["full_name"]).split()):
                words[w] = words.get(w, 0) + 1
        assert dict(con.execute("SELECT token, n_people FROM restricted.member_search_words").fetchall()) == words
        assert {w: name_token_count(con, w) for w in [*words, "khong"]} == {**words, "khong": 0}


def test_word_counts_are_read_from_the_word_table(users):
    """The count of a word comes from `member_search_words` (one row), not from counting its postings: a version
    whose table says otherwise is believed (the counts only choose which word's postings are read)."""
    from pipelines.warehouse import serving

    ms = publish_with_names(NAMES, index=True, version="20260102T000000Z-words")
    build = serving.build_dir() / "20260102T000001Z-tampered.duckdb"
    shutil.copyfile(serving.warehouse_path(), build)
    con = duckdb.connect(str(build))
    con.execute("UPDATE restricted.member_search_words SET n_people = 999 WHERE token = 'nguyen'")
    con.execute("CHECKPOINT")
    con.close()
    serving.stamp_version(build, "20260102T000001Z-tampered", "test")
    analyst = serving.build_dir() / "20260102T000001Z-tampered.analyst.duckdb"
    serving.make_analyst_copy(build, analyst)
    serving.publish(build, version="20260102T000001Z-tampered", run_id="test", analyst_build_path=analyst)
    with connect_full() as con:
        assert name_token_count(con, "nguyen") == 999
        assert name_token_count(con, "an") == sum("an" in wf.fold(m["full_name"]).split() for m in ms)


def test_search_without_word_counts(users):
    """A version published before `member_search_words` counts a word on its postings: same answers."""
    ms = publish_with_names(NAMES, index=True, version="20260102T000000Z-nowords", words=False)
    nat = users["national_leader"]
    with connect_full() as con:
        assert lookup._has_name_index(con) and not table_columns(con, "restricted", "member_search_words")
        assert name_token_count(con, "nguyen") == sum("nguyen" in wf.fold(m["full_name"]).split() for m in ms)
    for q in ["Nguyễn Văn An", "an", "lan a", "do duc", "Khong Co Ai", "nguyen van hu"]:
        assert _keys(lookup.search_members(nat, q, limit=5)) == brute_force(nat, ms, q, 5), q


def test_probe_cutoff_uses_the_projects_rank_gap():
    """The search's probe of the first people in name order (`lookup._PROBE_RANKS`) reads ranks up to
    `_PROBE_RANKS * NAME_RANK_GAP`: the gap must be the one the dbt models number the people with."""
    macros = (MODELS.parents[1] / "macros" / "member_search.sql").read_text(encoding="utf-8")
    assert lookup.NAME_RANK_GAP == int(re.search(r"macro member_search_gap\(\) -%\}(\d+)\{", macros).group(1))
