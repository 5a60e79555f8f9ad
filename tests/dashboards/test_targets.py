"""Targets (data/reference/plans/targets.csv) on Tổng quan: the committed file is valid, the query layer computes
each KPI's share of its target for the unit and year in view, and the page shows it (vi and en)."""
from __future__ import annotations

import csv
import datetime as dt

import duckdb
import pytest

from pipelines.analytics import queries as q
from pipelines.analytics import targets
from pipelines.analytics.filters import Filters
from pipelines.analytics.i18n import fmt_int, fmt_pct
from pipelines.analytics.scoping import national_scope
from pipelines.config import REFERENCE_DIR

P = dt.date(2025, 12, 1)
FIXTURE_TARGETS = [("2025", "TLD", "members", "1000"), ("2025", "TLD", "new_members", "150"),
                   ("2025", "T08", "members", "300"), ("2025", "T08", "new_members", "40"),
                   ("2026", "TLD", "members", "1100")]


def _sql(sql, params=()):
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def fixture_targets(tmp_path, monkeypatch):
    p = tmp_path / "targets.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([targets.COLUMNS, *FIXTURE_TARGETS])
    monkeypatch.setattr(targets, "TARGETS_FILE", p)
    return p


def test_committed_targets_file_is_valid_and_consistent():
    got = targets.load()
    assert targets.path() == REFERENCE_DIR / "plans" / "targets.csv" and got
    with open(REFERENCE_DIR / "provinces_2025.csv", encoding="utf-8") as fh:
        federations = {"T" + r["new_code"] for r in csv.DictReader(fh)}
    assert len(federations) == 34
    years = {y for y, _, _ in got}
    assert {2025, 2026} <= years
    for y in years:
        units = {u for yy, u, _ in got if yy == y}
        assert units == {"TLD"} | federations, y  # the Confederation and the 34 provincial federations
        for u in units:
            assert (y, u, "members") in got and (y, u, "new_members") in got
        for m in targets.METRICS:  # the federations' targets fit inside the Confederation's
            assert sum(v for (yy, u, mm), v in got.items() if yy == y and mm == m and u != "TLD") <= got[(y, "TLD", m)]
        assert 0.05 < got[(y, "TLD", "new_members")] / got[(y, "TLD", "members")] < 0.15


@pytest.mark.parametrize("body, message", [
    ("year,unit_code,metric,target\n2025,TLD,members,10\n2025,TLD,members,11\n", "duplicate"),
    ("year,unit_code,metric,target\n2025,TLD,dues,10\n", "metric"),
    ("year,unit_code,metric,target\n2025,Hà Nội,members,10\n", "unit code"),
    ("year,unit_code,metric,target\n2025,TLD,members,-3\n", "positive"),
    ("year,unit,metric,target\n2025,TLD,members,10\n", "columns"),
])
def test_malformed_targets_file_is_refused(tmp_path, monkeypatch, body, message):
    p = tmp_path / "targets.csv"
    p.write_text(body, encoding="utf-8")
    monkeypatch.setattr(targets, "TARGETS_FILE", p)
    with pytest.raises(targets.TargetsError, match=message):
        targets.load()


def test_share_of_target_for_the_unit_and_year_in_view(dash_root, fixture_targets):
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_over_time

    f = q.resolve(Filters())
    members = _sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ?", [P])
    joins = _sql("SELECT count(*) FROM marts.fct_member_events WHERE event_type = 'join' AND period BETWEEN ? AND ?",
                 [dt.date(2025, 1, 1), P])
    got = q.overview_targets(national_scope(), f).set_index("kpi")
    assert got.at["members", "unit_code"] == "TLD" and got.at["members", "target"] == 1000
    assert got.at["members", "actual"] == members and got.at["members", "ratio"] == pytest.approx(members / 1000)
    assert got.at["joins", "actual"] == joins and got.at["joins", "ratio"] == pytest.approx(joins / 150)
    assert got.at["joins", "ytd_from"] == dt.date(2025, 1, 1) and got.at["joins", "ytd_to"] == P

    # the merged province's federation: drilled by a national leader, or its own leader (no filter)
    t08_members = _sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? AND top_unit_code = 'T08'",
                       [P])
    t08_joins = _sql("SELECT count(*) FROM marts.fct_member_events WHERE event_type = 'join' AND ("
                     "period BETWEEN DATE '2025-01-01' AND DATE '2025-06-01' AND top_unit_code IN ('T02', 'T08') OR "
                     "period BETWEEN DATE '2025-07-01' AND ? AND top_unit_code = 'T08')", [P])
    leader = scope_over_time(User(username="x", display_name="x", role="province_leader", unit_code="T08"), P)
    for scope, flt in ((national_scope(), f.with_(unit="T08")), (leader, f)):
        got = q.overview_targets(scope, flt).set_index("kpi")
        assert got.at["members", "unit_code"] == "T08"
        assert got.at["members", "ratio"] == pytest.approx(t08_members / 300)
        assert got.at["joins", "ratio"] == pytest.approx(t08_joins / 40)  # the year's joins, T02's included

    assert q.overview_targets(national_scope(), f.with_(unit="X08001")).empty      # no target set for it
    assert q.overview_targets(national_scope(), f.with_(gender="F")).empty         # a slice of the unit
    assert q.overview_targets(national_scope(), f.with_(province="01")).empty
    early = q.resolve(Filters(period_to=dt.date(2024, 12, 1)))
    assert q.overview_targets(national_scope(), early).empty                       # no 2024 targets


def _captions(at) -> list[str]:
    return [c.value.replace("\\", "") for c in at.caption]


def test_overview_page_shows_share_of_target_vi_and_en(app, fixture_targets):
    members = _sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ?", [P])
    joins = _sql("SELECT count(*) FROM marts.fct_member_events WHERE event_type = 'join' AND period BETWEEN ? AND ?",
                 [dt.date(2025, 1, 1), P])
    at = app("tong_quan")
    assert not at.exception and not at.error
    caps = _captions(at)
    assert f"Đạt **{fmt_pct(members / 1000)}** chỉ tiêu năm 2025 (1.000 đoàn viên)" in caps, caps
    assert (f"Lũy kế T01/2025–T12/2025: {fmt_int(joins)}, đạt **{fmt_pct(joins / 150)}** chỉ tiêu kết nạp năm 2025 "
            "(150)") in caps, caps
    at = app("tong_quan", params={"lang": "en"})
    assert not at.exception and not at.error
    caps = _captions(at)
    assert f"**{fmt_pct(members / 1000, 1, 'en')}** of the 2025 target (1,000 members)" in caps, caps
    # a slice of the country (one province) is not compared with the Confederation's target
    at = app("tong_quan", params={"tinh": "01"})
    assert not any("chỉ tiêu" in c for c in _captions(at))
