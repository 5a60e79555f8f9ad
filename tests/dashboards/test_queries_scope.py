"""The query layer: every page's queries run, respect the scope (fail-closed), and cache per scope."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipelines.analytics import db
from pipelines.analytics import queries as q
from pipelines.analytics.filters import Filters
from pipelines.analytics.pages import PAGE_QUERIES
from pipelines.analytics.scoping import DevScope, national_scope, scope_sql

P = dt.date(2025, 12, 1)


def _scope(role, unit):
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_for
    return scope_for(User(username="x", display_name="x", role=role, unit_code=unit), P)


def _sql(sql, params=()):
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("page", list(PAGE_QUERIES))
def test_every_page_query_runs_for_national_and_province(dash_root, page):
    for scope in (national_scope(), _scope("province_leader", "T08")):
        out = PAGE_QUERIES[page](scope, Filters())
        assert out["filters"].period_to == P


def test_province_scope_sees_only_its_subtree(dash_root):
    s = _scope("province_leader", "T08")
    f = q.resolve(Filters())
    kids = q.children(s, f)
    assert set(kids["unit_code"]) == {"T08"}
    prov = q.by_province(s, f)
    assert set(prov["province_new_code"]) <= {"08"}
    expected = _sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? AND top_unit_code = 'T08'",
                    [P])[0][0]
    kpis = q.overview_kpis(s, f).set_index("kpi")
    assert kpis.at["members", "value"] == expected
    # the whole country is bigger, and both results live side by side in the cache under different keys
    nat = q.overview_kpis(national_scope(), f).set_index("kpi")
    assert nat.at["members", "value"] > expected
    keys = [k for k in db.cache_keys() if k[0].endswith("overview_kpis") and k[3] == f.key()]
    assert len({k[2] for k in keys}) >= 2


def test_scope_fails_closed_on_tables_without_its_column(dash_root):
    cdcs = _scope("cdcs_official", "CS0000001")
    f = q.resolve(Filters())
    assert q.structure(cdcs, f, "gender").empty  # the cube has no cdcs_code: nothing, never everything
    assert q.overview_kpis(cdcs, f).set_index("kpi").at["members", "value"] == _sql(
        "SELECT members FROM marts.fct_membership_monthly WHERE period = ? AND cdcs_code = 'CS0000001'", [P])[0][0]
    sql, params = scope_sql(DevScope("cdcs_code", "CS0000001"), "t", {"province_new_code"})
    assert sql == "(FALSE)" and params == []


def test_unit_outside_scope_gives_no_path_and_no_rows(dash_root):
    s = _scope("province_leader", "T08")
    f = q.resolve(Filters(unit="X01001"))  # a Hà Nội commune union
    assert q.unit_path(s, f) == []
    assert q.children(s, f).empty
    assert q.overview_kpis(s, f).set_index("kpi").at["members", "value"] is None


def test_drill_path_country_to_cdcs(dash_root):
    s = national_scope()
    f = q.resolve(Filters(unit="CS0000006"))
    assert [p["code"] for p in q.unit_path(s, f)] == ["T08", "X08001", "CS0000006"]
    f_old = q.resolve(Filters(unit="CS0000006", period_to=dt.date(2025, 3, 1)))
    assert [p["code"] for p in q.unit_path(s, f_old)] == ["T02", "Q0201", "CS0000006"]


def test_cached_results_are_copies(dash_root):
    s, f = national_scope(), q.resolve(Filters())
    a = q.children(s, f)
    a.loc[:, "members"] = -1
    assert (q.children(s, f)["members"] >= 0).all()


def test_new_version_is_picked_up_without_restart(dash_root, tmp_path, monkeypatch):
    import shutil

    from pipelines.warehouse import serving
    v1 = db.version()
    src = serving.warehouse_path()
    other = tmp_path / "data2"
    other.mkdir()
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(other))
    build = serving.build_dir() / "copy.duckdb"
    shutil.copy(src, build)
    con = duckdb.connect(str(build))
    con.execute("UPDATE marts.fct_membership_monthly SET members = members + 1 WHERE cdcs_code = 'CS0000001'")
    con.close()
    version = serving.new_version_id("copy")
    serving.stamp_version(build, version, "copy")
    serving.publish(build, version=version, run_id="copy")
    try:
        assert db.version() != v1
        n = q.overview_kpis(national_scope(), q.resolve(Filters())).set_index("kpi").at["members", "value"]
        assert n == _sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ?", [P])[0][0]
    finally:
        monkeypatch.setenv("DOANVIEN_DATA_DIR", str(dash_root))


def test_recruitment_employers_without_cdcs_reach_their_provincial_federation(dash_root):
    """Employers with no CĐCS have no top unit: a provincial leader sees those of their province, and only
    those; everything linked to another unit stays out; the page query (UserScope) does the same."""
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_over_time

    f = q.resolve(Filters())
    for scope in (_scope("province_leader", "T08"),
                  scope_over_time(User(username="x", display_name="x", role="province_leader", unit_code="T08"), P)):
        db.clear_cache()
        no_cdcs = q.recruitment_top(scope, f, 500, True)
        expect = _sql("SELECT employer_code FROM marts.fct_recruitment_potential WHERE period = ? AND NOT has_cdcs "
                      "AND top_unit_code IS NULL AND province_new_code = '08' ORDER BY 1", [P])
        assert sorted(no_cdcs["employer_code"]) == [r[0] for r in expect] and len(expect) > 0
        every = q.recruitment_top(scope, f, 500)
        linked = _sql("SELECT employer_code FROM marts.fct_recruitment_potential WHERE period = ? AND "
                      "(top_unit_code = 'T08' OR (top_unit_code IS NULL AND province_new_code = '08'))", [P])
        assert sorted(every["employer_code"]) == sorted(r[0] for r in linked)
        by_prov = q.recruitment_by_province(scope, f)
        assert set(by_prov["province_new_code"]) == {"08"}
    # an upper-level official gets no unlinked employers (nothing widened below the federation)
    up = _scope("upper_official", "X08001")
    assert not q.recruitment_top(up, f, 500, True)["has_cdcs"].eq(False).any()
    # the national view of the drilled province matches the provincial leader's view
    db.clear_cache()
    drilled = q.recruitment_top(national_scope(), f.with_(unit="T08"), 500, True)
    assert sorted(drilled["employer_code"]) == [r[0] for r in expect]


def test_unit_names_on_the_submissions_and_statutory_pages(dash_root):
    """Every unit these queries list carries its latest name from dim_union_unit (`_names_join`, which names only the
    codes its source table holds): never the bare code, when the unit has a name."""
    latest = dict(_sql("SELECT unit_code, arg_max(unit_name, valid_from) FROM marts.dim_union_unit GROUP BY 1"))
    s, f = national_scope(), q.resolve(Filters(period_from=dt.date(2025, 1, 1)))

    def named(df, code_col, name_col):
        df = df[df[code_col].notna()]
        assert len(df) > 0
        for code, name in zip(df[code_col], df[name_col], strict=True):
            assert name == latest.get(code, code), (code, name)
        assert any(latest.get(c, c) != c for c in df[code_col])

    named(q.submissions_matrix(s, f), "branch_code", "unit_name")
    named(q.branch_quality(s, f), "branch_code", "unit_name")
    named(q.refused_files(s, f), "branch_code", "unit_name")
    report_date = q.statutory_dates(s, f)[0]
    units = q.statutory_units(s, f, report_date)
    assert len(units) > 0 and all(units["unit_name"] == [latest.get(c, c) for c in units["unit_code"]])
    cdcs = _sql("SELECT cdcs_code FROM marts.dq_member_conflicts WHERE other_cdcs_code IS NOT NULL LIMIT 1")
    if cdcs:
        named(q.member_conflicts(s, q.resolve(Filters(period_from=dt.date(2020, 1, 1))), cdcs[0][0]),
              "other_cdcs_code", "other_unit_name")


def test_submissions_matrix_equals_the_fixture(dash_root):
    """Per expected (branch, month) the status the fixture wrote (BRANCH_OVERRIDES, else on time): a branch is
    expected only in the months its unit is valid (a district union until 30/06/2025, a ward union from 01/07/2025),
    which `_expected_branch_months` reads from dim_union_unit for the submitting branches only."""
    import warehouse_fixture as wf

    status = {"missing": "missing", "late": "late", "refused_then_late": "late", "on_time": "on_time"}
    truth = {(code, p): status[wf.BRANCH_OVERRIDES.get((code, p), "on_time")]
             for code, u in wf.UPPER.items() for p in wf.PERIODS
             if not ((u[5] and u[5] > p) or (u[6] and u[6] < p))}
    f = q.resolve(Filters(period_from=wf.PERIODS[0], period_to=wf.PERIODS[-1]))
    df = q.submissions_matrix(national_scope(), f)
    got = {(b, p.date() if hasattr(p, "date") else p): s for b, p, s in zip(df["branch_code"], df["period"],
                                                                          df["status"], strict=True)}
    assert got == truth
    quality = q.branch_quality(national_scope(), f).set_index("branch_code")
    for code in wf.UPPER:
        months = [p for (c, p) in truth if c == code]
        assert quality.loc[code, "months_expected"] == len(months), code
        assert quality.loc[code, "missing"] == sum(truth[(code, p)] == "missing" for p in months), code
