"""Beneficiaries and participants (Dịch vụ & hoạt động) through the tables of repeated rows
(`fct_service_deliveries_repeated`, `fct_activity_participation_repeated`, dbt marts/services) equal a plain
count(DISTINCT member_key) over the fact, for every scope, drill and filter; and on the warehouse the pipeline
builds, those tables hold exactly the fact's rows whose member_key occurs more than once.

Why they exist: count(DISTINCT member_key) over the 1.6 million participations took the services page over its
300 ms target at national scale (bench/results, section 5)."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from pipelines.analytics import db
from pipelines.analytics import queries as q
from pipelines.analytics.filters import Filters
from pipelines.analytics.scoping import national_scope

P = dt.date(2025, 12, 1)
FACTS = {  # query function: (fact, repeated table, group column, count column, distinct column)
    "services_by_program": (q.SERVICES, q.SERVICES_REPEATED, "program_code", "deliveries", "beneficiaries"),
    "activities_by_type": (q.ACTIVITIES, q.ACTIVITIES_REPEATED, "activity_type", "participations", "participants"),
}


def _scope(role, unit, period=P):
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_for
    return scope_for(User(username="x", display_name="x", role=role, unit_code=unit), period)


def _plain(fn: str, scope, f: Filters) -> pd.DataFrame:
    """The figure as the page computed it before: count(DISTINCT member_key) over every row of the fact."""
    table, _, group, count_col, distinct_col = FACTS[fn]
    w = q.where(table, scope, f)
    return db.fetch_df(f"SELECT t.{group} AS code, count(*) AS {count_col}, "
                       f"count(DISTINCT t.member_key) AS {distinct_col} FROM {q.M}.{table} t WHERE {w.sql} "
                       f"GROUP BY 1 ORDER BY {count_col} DESC, code", w.params)


def _check(fn: str, scope, f: Filters) -> int:
    f = q.resolve(f)
    got = getattr(q, fn).uncached(scope, f)
    _, _, _, count_col, distinct_col = FACTS[fn]
    want = _plain(fn, scope, f)
    pd.testing.assert_frame_equal(got[want.columns.tolist()].reset_index(drop=True), want, check_exact=True,
                                  check_dtype=False)
    assert (got[distinct_col] <= got[count_col]).all()
    return int(want[distinct_col].sum())


def _uses_repeated(monkeypatch, fn: str, scope, f: Filters) -> bool:
    """Whether the query read the repeated table (the fast path) rather than count(DISTINCT) over the fact."""
    seen = []
    real = q.fetch_df
    monkeypatch.setattr(q, "fetch_df", lambda sql, params=(): seen.append(sql) or real(sql, params))
    getattr(q, fn).uncached(scope, q.resolve(f))
    monkeypatch.setattr(q, "fetch_df", real)
    return any(FACTS[fn][1] in s for s in seen)


FILTERS = [
    Filters(),
    Filters(period_from=dt.date(2024, 7, 1), period_to=P),          # across the 2025 restructuring
    Filters(period_from=P, period_to=P),
    Filters(unit="T08", period_from=dt.date(2025, 1, 1)),           # merged province: T02 + T08 before 07/2025
    Filters(unit="X08001", period_from=dt.date(2025, 1, 1)),        # commune union before it existed
    Filters(unit="Q0101", period_from=dt.date(2025, 1, 1)),         # district union that ended 30/06/2025
    Filters(unit="CS0000001"),
    Filters(province="01"),
    Filters(ownership="fdi", industry="C"),
    Filters(gender="F"),                                            # not a column of these facts: not applied
]


@pytest.mark.parametrize("fn", list(FACTS))
def test_distinct_members_equal_count_distinct_for_every_scope_and_filter(dash_root, monkeypatch, fn):
    scopes = [national_scope(), _scope("province_leader", "T08"), _scope("province_leader", "T01"),
              _scope("upper_official", "X01001"), _scope("cdcs_official", "CS0000003")]
    total = 0
    for scope in scopes:
        for f in FILTERS:
            total += _check(fn, scope, f)
    assert total > 0
    assert _uses_repeated(monkeypatch, fn, national_scope(), Filters())
    assert _uses_repeated(monkeypatch, fn, _scope("province_leader", "T08"), Filters(unit="X08001"))


@pytest.mark.parametrize("fn", list(FACTS))
def test_without_the_repeated_table_the_query_counts_distinct_over_the_fact(dash_root, monkeypatch, fn):
    """A warehouse published before the repeated tables existed: same figures, by count(DISTINCT)."""
    repeated = FACTS[fn][1]
    real = db.has_table
    monkeypatch.setattr(db, "has_table", lambda t: False if t == repeated else real(t))
    assert not _uses_repeated(monkeypatch, fn, national_scope(), Filters())
    for f in FILTERS[:5]:
        _check(fn, national_scope(), f)


def test_repeated_tables_of_the_pipeline_warehouse_are_the_facts_repeated_rows(tiny_published, monkeypatch):
    """On the warehouse `doanvien refresh` built (dbt), each repeated table is exactly the fact's rows whose
    member_key occurs more than once (every column equal), and the services page shows count(DISTINCT)."""
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tiny_published))
    db.clear_cache()
    from pipelines.warehouse import serving

    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        for fact, repeated in ((q.SERVICES, q.SERVICES_REPEATED), (q.ACTIVITIES, q.ACTIVITIES_REPEATED)):
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = ? "
                "ORDER BY ordinal_position", [fact]).fetchall()]
            rep_cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = ? "
                "ORDER BY ordinal_position", [repeated]).fetchall()]
            assert rep_cols == cols, repeated
            want = (f"SELECT * FROM marts.{fact} WHERE member_key IN "
                    f"(SELECT member_key FROM marts.{fact} GROUP BY 1 HAVING count(*) > 1)")
            n_want = con.execute(f"SELECT count(*) FROM ({want})").fetchone()[0]
            assert n_want > 0, f"{fact}: the tiny data should have members with several rows"
            assert con.execute(f"SELECT count(*) FROM marts.{repeated}").fetchone()[0] == n_want
            diff = con.execute(f"SELECT count(*) FROM (({want}) EXCEPT ALL (SELECT * FROM marts.{repeated})) "
                               f"UNION ALL SELECT count(*) FROM ((SELECT * FROM marts.{repeated}) EXCEPT ALL ({want}))"
                               ).fetchall()
            assert diff == [(0,), (0,)], repeated
            assert con.execute(f"SELECT count(*) FROM marts.{repeated} WHERE member_key IS NULL").fetchone()[0] == 0
        first, latest = con.execute("SELECT min(period), max(period) FROM marts.fct_membership_monthly").fetchone()
        top = con.execute("SELECT top_unit_code FROM marts.fct_activity_participation WHERE top_unit_code LIKE 'T%' "
                          "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()
    with db.batch():
        for scope in (national_scope(), _scope("province_leader", top, latest)):
            for f in (Filters(), Filters(period_from=first), Filters(unit=top)):
                for fn in FACTS:
                    _check(fn, scope, f)
                    assert _uses_repeated(monkeypatch, fn, scope, f)
    db.clear_cache()
