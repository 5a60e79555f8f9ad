"""Scope: subtrees as of the period viewed (the 1 July 2025 restructuring), the SQL predicate, and a
property test: random officials × random periods × random mart tables return only their subtree."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import access_fixture as wf
from pipelines.access.accounts import User
from pipelines.access.scope import Scope, range_predicate, scope_for


def official(unit: str) -> User:
    level = wf.UNITS[unit][1] if unit in wf.UNITS else "cdcs"
    role = {"confederation": "national_leader", "province_federation": "province_leader",
            "sector_union": "province_leader", "upper_level": "upper_official", "cdcs": "cdcs_official"}[level]
    return User(username="u", display_name="u", role=role, unit_code=unit)


def test_merged_province_sees_old_provinces_before_merger(dw):
    s = scope_for(official("T08"), "2025-03-01")
    assert s.top_codes == {"T08", "T02"}
    assert "CS0000001" in s.cdcs_codes and "CS0000005" in s.cdcs_codes  # old province 02
    assert "CS0000007" not in s.cdcs_codes  # sector union N05's CĐCS in the same province
    after = scope_for(official("T08"), "2025-09-01")
    assert after.top_codes == {"T08"}
    assert "CS0000001" in after.cdcs_codes and "CS0000005" not in after.cdcs_codes
    assert scope_for(official("T02"), "2025-09-01").kind == "none"  # ended units see nothing afterwards


def test_commune_union_sees_its_cdcs_before_it_existed(dw):
    s = scope_for(official("X08001"), "2025-02-01")
    assert s.kind == "units" and s.exact_column == "cdcs_code"
    assert s.cdcs_codes == {"CS0000002", "CS0000004"}
    sql, params = s.predicate("f", columns={"upper_unit_code", "top_unit_code"})
    assert sql == "FALSE" and params == []  # a table without cdcs_code: nothing rather than a wrong subtree
    assert scope_for(official("X08001"), "2025-08-01").predicate("")[0] == "upper_unit_code IN (?)"


def test_roles_and_keys(dw):
    n = scope_for(User("a", "a", "national_leader", unit_code="TLD"))
    assert n.predicate() == ("TRUE", []) and n == Scope.national(n.period)
    assert scope_for(User("m", "m", "member", member_key="k")).predicate() == ("FALSE", [])
    assert scope_for(User("x", "x", "upper_official", unit_code="NOPE")).predicate() == ("FALSE", [])
    assert scope_for(User("x", "x", "upper_official", unit_code=None)).kind == "none"
    a, b = scope_for(official("X08001"), "2025-08-01"), scope_for(official("X08002"), "2025-08-01")
    assert a.key != b.key and a.key == scope_for(official("X08001"), "2025-08-01").key
    assert scope_for(official("X08001"), "2025-02-01").key != a.key  # the period is part of the key


def _rows(con, table, pred, params, cols):
    return con.execute(f"SELECT {', '.join(cols)} FROM marts.{table} WHERE {pred}", params).fetchall()


UNITS = [u for u in list(wf.UNITS) + list(wf.CDCS) if u != "TLD"]
TABLES = {"fct_membership_monthly": ("period", "cdcs_code", "upper_unit_code", "top_unit_code", "province_new_code"),
          "fct_dues_monthly": ("period", "cdcs_code", "upper_unit_code", "top_unit_code", "province_new_code"),
          "fct_service_deliveries": ("period", "cdcs_code", "upper_unit_code", "top_unit_code", "province_new_code"),
          "mart_membership_cube": ("period", "upper_unit_code", "top_unit_code", "province_new_code")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=st.sampled_from(UNITS), period=st.sampled_from(wf.PERIODS), table=st.sampled_from(sorted(TABLES)))
def test_property_only_own_subtree(dw, unit, period, table):
    """ST-03: every row a scoped query returns belongs to the official's subtree (oracle written separately)."""
    from pipelines.access.warehouse import connect_full

    s = scope_for(official(unit), period)
    cols = TABLES[table]
    sql, params = s.predicate("", columns=set(cols) - {"period"})
    allowed = wf.visible_cdcs(unit, period)
    with connect_full() as con:
        rows = _rows(con, table, f"period = ? AND ({sql})", [period, *params], cols)
        if "cdcs_code" in cols:
            got = {r[1] for r in rows}
            assert got <= allowed, (unit, period, got - allowed)
            # and nothing of theirs is missing from the per-CĐCS fact
            if table == "fct_membership_monthly":
                expect = {c for c in allowed if wf.cdcs_exists(c, period)}
                assert got == expect
        else:  # the cube: each (top, upper) cell must consist only of allowed CĐCS
            for r in rows:
                cell = {c for c in wf.CDCS if wf.cdcs_exists(c, period) and wf.parent_of(c, period) == r[1]}
                assert cell <= allowed, (unit, period, r)


def test_range_predicate_follows_the_tree_per_period(dw):
    from pipelines.access.warehouse import connect_full

    u = official("X08001")
    sql, params = range_predicate(u, wf.PERIODS, alias="f")
    with connect_full() as con:
        rows = con.execute(f"SELECT period, cdcs_code FROM marts.fct_membership_monthly f WHERE {sql}",
                           params).fetchall()
    for p, c in rows:
        assert c in wf.visible_cdcs("X08001", p)
    assert {p for p, _ in rows} == set(wf.PERIODS)


def test_registry_from_the_warehouse_when_units_parquet_is_missing(dw):
    """Without registry/units.parquet the scope reads marts.dim_union_unit (column `unit_level`)."""
    from pipelines.access import scope as S

    (dw / "registry" / "units.parquet").unlink()
    S._WAREHOUSE_REGISTRY.clear()
    reg = S.load_registry()
    assert {u.level for u in reg} >= {"province_federation", "upper_level", "cdcs"}
    s = scope_for(official("T08"), "2025-03-01")
    assert s.top_codes == {"T08", "T02"} and "CS0000001" in s.cdcs_codes
    assert scope_for(official("X08001"), "2025-02-01").cdcs_codes == {"CS0000002", "CS0000004"}
    for unit in ("T08", "X08001", "Q0201", "CS0000002"):
        for p in (wf.PERIODS[1], wf.PERIODS[8]):
            assert scope_for(official(unit), p).cdcs_codes <= wf.visible_cdcs(unit, p) | {unit}


def test_federation_of_a_merged_away_province_sees_only_its_own(dw):
    s = scope_for(official("T02"), "2025-03-01")
    assert s.top_codes == {"T02"} and s.province_codes == frozenset() and s.province_old_codes == {"02"}
    assert "CS0000002" not in s.cdcs_codes


def _trend(scope, first, last):
    from pipelines.analytics import db, queries as q
    from pipelines.analytics.filters import Filters

    db.clear_cache()
    df = q.members_trend(scope, Filters(period_from=first, period_to=last))
    return {p.date(): int(m) for p, m in zip(df["period"], df["members"])}


def _oracle_trend(unit, periods):
    per = {m["cdcs_code"]: 0 for m in wf.members()}
    for m in wf.members():
        per[m["cdcs_code"]] += 1
    out = {}
    for p in periods:
        n = sum(per[c] for c in wf.visible_cdcs(unit, p) if wf.cdcs_exists(c, p))
        if n:
            out[p] = n
    return out


def test_dashboard_series_use_the_scope_of_each_month(dw):
    """A commune union's official sees, before 07/2025, the CĐCS that are theirs now; a merged province's
    leader sees old provinces 02 + 08 before the merger; every month equals the oracle (nothing outside)."""
    from pipelines.access.scope import UserScope, scope_over_time

    first, last = wf.PERIODS[0], wf.PERIODS[-1]
    x = scope_over_time(official("X08001"), last)
    assert isinstance(x, UserScope)
    got = _trend(x, first, last)
    assert got[dt.date(2025, 3, 1)] == 6  # CS0000002 + CS0000004 (3 members each) under Q0801/K0801 then
    assert got == _oracle_trend("X08001", wf.PERIODS)
    # the old behaviour (one scope for the whole range) showed nothing before July
    assert set(_trend(scope_for(official("X08001"), last), first, last)) <= {p for p in wf.PERIODS if p >= wf.MERGER}

    t = scope_over_time(official("T08"), last)
    got = _trend(t, first, last)
    assert got == _oracle_trend("T08", wf.PERIODS)
    assert got[dt.date(2025, 3, 1)] == 3 * 5  # CS0000001..5 (old provinces 02 and 08), not N05's CS0000007
    # keys: different officials never share a cache entry; equal ones do
    assert x.key != t.key and x.key == scope_over_time(official("X08001"), last).key
    assert x.key != scope_for(official("X08001"), last).key


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=st.sampled_from(UNITS), i=st.integers(0, 11), j=st.integers(0, 11))
def test_property_series_never_leave_the_scope_of_each_month(dw, unit, i, j):
    from pipelines.access.scope import scope_over_time

    first, last = wf.PERIODS[min(i, j)], wf.PERIODS[max(i, j)]
    s = scope_over_time(official(unit), last)
    periods = [p for p in wf.PERIODS if first <= p <= last]
    assert _trend(s, first, last) == _oracle_trend(unit, periods)


def test_recruitment_rows_without_cdcs_by_province_for_federations(dw):
    """Employers with no CĐCS (no top unit) are shown to the federation of their province, nobody else."""
    from pipelines.access.scope import scope_over_time

    cols = {"top_unit_code", "upper_unit_code", "province_new_code", "province_old_code"}
    rows = [  # (top, upper, new province, old province)
        ("T08", "X08001", "08", "08"), (None, None, "08", "02"), (None, None, "08", "08"),
        (None, None, "01", "01"), ("N05", "C0501", "08", "08"), ("T01", "X01001", "01", "01")]
    con = duckdb.connect()
    con.execute("CREATE TABLE r (top_unit_code VARCHAR, upper_unit_code VARCHAR, province_new_code VARCHAR, "
                "province_old_code VARCHAR)")
    con.executemany("INSERT INTO r VALUES (?,?,?,?)", rows)

    def visible(scope, **kw):
        sql, params = scope.predicate("r", columns=cols, **kw)
        return sorted(con.execute(f"SELECT * FROM r WHERE {sql}", params).fetchall(), key=str)

    t08 = scope_for(official("T08"), "2025-09-01")
    assert visible(t08) == [("T08", "X08001", "08", "08")]  # default: unchanged
    assert visible(t08, unlinked_by_province=True) == sorted(
        [("T08", "X08001", "08", "08"), (None, None, "08", "02"), (None, None, "08", "08")], key=str)
    # the federation of old province 02, before the merger: only its own old province's unlinked employers
    assert visible(scope_for(official("T02"), "2025-03-01"), unlinked_by_province=True) == [(None, None, "08", "02")]
    # nothing wider for other levels
    for unit in ("X08001", "N05", "C0501", "CS0000002"):
        s = scope_for(official(unit), "2025-09-01")
        assert visible(s, unlinked_by_province=True) == visible(s)
    # through the query layer (per month) as well
    ut = scope_over_time(official("T08"), "2025-09-01")
    sql, params = ut.range_predicate("r", columns=cols, periods=[dt.date(2025, 9, 1)], period_column="p",
                                     unlinked_by_province=True)
    assert "top_unit_code IS NULL" in sql
