"""Scope: subtrees as of the period viewed (the 1 July 2025 restructuring), the SQL predicate, and a
property test: random officials × random periods × random mart tables return only their subtree."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import warehouse_fixture as wf
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
