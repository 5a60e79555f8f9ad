"""The organisation filter (`dv=` in the URL) across the 1 July 2025 restructuring: each month shows the
CĐCS in the chosen unit's subtree as of that month; for a unit that did not exist yet (a commune/ward union
before 07/2025), the CĐCS that are under it now, so its series is comparable over the whole range. The rule
is the access layer's (`pipelines.access.scope`): a drilled view equals what an official of that unit sees.

Fixture (tests/dashboards/warehouse_fixture.py): X08001 is created on 01/07/2025 with CS0000006 (under Q0201
of the old Hà Giang federation T02 before) and CS0000007 (under Q0801 of T08 before)."""
from __future__ import annotations

import datetime as dt

import duckdb

from pipelines.analytics import queries as q
from pipelines.analytics.filters import Filters
from pipelines.analytics.scoping import national_scope

X = "X08001"
X_CDCS = ("CS0000006", "CS0000007")  # its CĐCS since 01/07/2025
EARLY = dt.date(2025, 3, 1)


def _sql(sql, params=()):
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _members_by_month(where_sql: str, params=()) -> dict:
    return {p: int(n) for p, n in _sql(
        f"SELECT period, sum(members) FROM marts.fct_membership_monthly WHERE {where_sql} GROUP BY 1",
        params)}


def _officials():
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_over_time

    def over_time(role, unit):
        return scope_over_time(User(username="x", display_name="x", role=role, unit_code=unit), dt.date(2025, 12, 1))
    return {"national": national_scope(), "T08 leader": over_time("province_leader", "T08"),
            "X08001 official": over_time("upper_official", X)}


def test_commune_union_series_before_it_existed_shows_its_cdcs_of_today(dash_root):
    f = q.resolve(Filters(unit=X, period_from=dt.date(2024, 7, 1), period_to=dt.date(2025, 12, 1)))
    expected = _members_by_month(f"cdcs_code IN {X_CDCS!r}")
    assert min(expected) < dt.date(2025, 7, 1)  # the CĐCS have data before the union existed
    for name, scope in _officials().items():
        trend = q.members_trend(scope, f)
        got = {p.date() if hasattr(p, "date") else p: int(n) for p, n in zip(trend["period"], trend["members"])}
        assert got == expected, name


def test_commune_union_kpis_children_and_path_before_it_existed(dash_root):
    f = q.resolve(Filters(unit=X, period_to=EARLY))
    s = national_scope()
    assert [p["code"] for p in q.unit_path(s, f)] == ["T08", X]  # the drill is kept, not dropped
    members = _members_by_month(f"cdcs_code IN {X_CDCS!r} AND period = ?", [EARLY])[EARLY]
    assert q.overview_kpis(s, f).set_index("kpi").at["members", "value"] == members
    kids = q.children(s, f)
    assert set(kids["unit_code"]) == set(X_CDCS) and kids["members"].sum() == members
    joins = _sql("SELECT count(*) FROM marts.fct_member_events WHERE event_type = 'join' AND cdcs_code IN "
                 f"{X_CDCS!r} AND period BETWEEN ? AND ?", [f.period_from, f.period_to])[0][0]
    assert q.flows_monthly(s, f)["joins"].sum() == joins
    dues = _sql(f"SELECT sum(dues_expected) FROM marts.fct_dues_monthly WHERE cdcs_code IN {X_CDCS!r} "
                "AND period BETWEEN ? AND ?", [f.period_from, f.period_to])[0][0]
    assert q.dues_monthly(s, f)["dues_expected"].sum() == dues


def test_merged_province_federation_before_the_merger_includes_its_predecessor(dash_root):
    """dv=T08 before 07/2025: T02 (Hà Giang, merged into Tuyên Quang) and T08, as the T08 leader sees it."""
    f = q.resolve(Filters(unit="T08", period_from=dt.date(2025, 1, 1), period_to=dt.date(2025, 12, 1)))
    expected = _members_by_month("period < DATE '2025-07-01' AND top_unit_code IN ('T02', 'T08') OR "
                                 "period >= DATE '2025-07-01' AND top_unit_code = 'T08'")
    expected = {p: v for p, v in expected.items() if f.period_from <= p <= f.period_to}
    for name, scope in _officials().items():
        if name == "X08001 official":
            continue
        trend = q.members_trend(scope, f)
        got = {p.date() if hasattr(p, "date") else p: int(n) for p, n in zip(trend["period"], trend["members"])}
        assert got == expected, name


def test_unit_filter_never_widens_the_scope(dash_root):
    """The filter narrows within the official's scope: a commune official filtering on the whole merged
    province still sees only their own CĐCS, month by month."""
    scope = _officials()["X08001 official"]
    f = q.resolve(Filters(unit="T08", period_from=dt.date(2025, 1, 1), period_to=dt.date(2025, 12, 1)))
    trend = q.members_trend(scope, f)
    expected = _members_by_month(f"cdcs_code IN {X_CDCS!r} AND period >= DATE '2025-01-01'")
    got = {p.date() if hasattr(p, "date") else p: int(n) for p, n in zip(trend["period"], trend["members"])}
    assert got == expected


def test_ended_district_union_shows_nothing_after_it_ended(dash_root):
    f = q.resolve(Filters(unit="Q0201", period_from=dt.date(2025, 1, 1), period_to=dt.date(2025, 12, 1)))
    trend = q.members_trend(national_scope(), f)
    assert trend["period"].map(lambda p: p.date() if hasattr(p, "date") else p).max() == dt.date(2025, 6, 1)
    assert [p["code"] for p in q.unit_path(national_scope(), f)] == ["T02", "Q0201"]


# --- through the real router (AppTest) -----------------------------------------------------------------

def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_page_drilled_into_a_commune_union_before_it_existed(app):
    from pipelines.analytics.i18n import fmt_int

    at = app("tong_quan", params={"dv": X, "tu": "2025-01", "den": "2025-03"})
    assert not at.exception and not at.error
    assert at.query_params["dv"] == X  # the drill is kept (it used to be dropped: no row before 07/2025)
    crumbs = [b.label for b in at.button if b.key and b.key.startswith("crumb_tong_quan_")]
    assert len(crumbs) == 3 and crumbs[0] == "Cả nước"
    members = _members_by_month(f"cdcs_code IN {X_CDCS!r} AND period = ?", [EARLY])[EARLY]
    assert _metric(at, "Đoàn viên") == fmt_int(members)
    assert not at.info  # no gap: the per-CĐCS fact carries cdcs_code
    # a gender filter reads the cube, which has no cdcs_code: the page says which months it cannot show
    at.selectbox(key="w0_gender").set_value("F").run()
    assert any("T01/2025–T03/2025" in i.value for i in at.info), [i.value for i in at.info]

    at = app("co_cau", params={"dv": X, "den": "2025-03"})
    assert not at.exception and not at.error
    assert any("T03/2025" in i.value for i in at.info)
    own = next(d.value for d in at.dataframe if "Loại hình đơn vị" in d.value.columns)
    expected = dict(_sql(f"SELECT ownership_type, sum(members) FROM marts.fct_membership_monthly WHERE period = ? "
                         f"AND cdcs_code IN {X_CDCS!r} GROUP BY 1", [EARLY]))
    assert dict(zip(own["Mã đơn vị"], own["Số đoàn viên"])) == expected
