"""Every dashboard page through the real router (AppTest), logged in through the access module: it runs
without exceptions and the figures it shows equal the warehouse for a fixed filter (expected numbers from
independent SQL on the published file, not from the query layer)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelines.analytics.i18n import fmt_int

REPO = Path(__file__).resolve().parents[2]
FIXED = {"tu": "2025-01", "den": "2025-06", "tinh": "01"}
P_FROM, P_TO = dt.date(2025, 1, 1), dt.date(2025, 6, 1)


def sql(query, params=()):
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def scalar(query, params=()):
    return sql(query, params)[0][0]


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame(at, *columns) -> pd.DataFrame:
    """The first dataframe shown that has all `columns`."""
    for d in at.dataframe:
        if all(c in d.value.columns for c in columns):
            return d.value
    raise AssertionError(f"no table with columns {columns!r}: {[list(d.value.columns) for d in at.dataframe]}")


def metric(at, label):
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r}")


def test_tong_quan(app):
    at = app("tong_quan", params=FIXED)
    ok(at)
    members = scalar("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? AND province_new_code = '01'", [P_TO])
    joins = scalar("SELECT count(*) FROM marts.fct_member_events WHERE period = ? AND province_new_code = '01' "
                   "AND event_type = 'join'", [P_TO])
    leaves = scalar("SELECT count(*) FROM marts.fct_member_events WHERE period = ? AND province_new_code = '01' "
                    "AND event_type = 'leave'", [P_TO])
    assert metric(at, "Đoàn viên") == fmt_int(members)
    assert metric(at, "Kết nạp mới") == fmt_int(joins)
    assert metric(at, "Giảm") == fmt_int(leaves)
    kids = frame(at, "Mã đơn vị", "Số đoàn viên")
    assert kids["Số đoàn viên"].sum() == members
    assert set(kids["Mã đơn vị"]) == {r[0] for r in sql(
        "SELECT DISTINCT top_unit_code FROM marts.fct_membership_monthly WHERE period = ? AND province_new_code = '01'", [P_TO])}
    assert dict(at.query_params) == {"tu": ["2025-01"], "den": ["2025-06"], "tinh": ["01"]} or \
        {k: at.query_params[k] for k in at.query_params} == FIXED


def test_ban_do(app):
    at = app("ban_do", params=FIXED)
    ok(at)
    t = frame(at, "Mã tỉnh")
    expected = dict(sql("SELECT province_new_code, sum(members) FROM marts.fct_membership_monthly WHERE period = ? "
                        "GROUP BY 1", [P_TO]))
    assert dict(zip(t["Mã tỉnh"], t["Số đoàn viên"])) == expected  # the map always shows every province


def test_co_cau_with_suppression(app):
    at = app("co_cau", params=FIXED)
    ok(at)
    g = frame(at, "Giới tính")
    expected = dict(sql("SELECT gender, sum(members) FROM marts.mart_membership_cube WHERE period = ? AND "
                        "province_new_code = '01' GROUP BY 1", [P_TO]))
    assert dict(zip(g["Giới tính"], g["Số đoàn viên"])) == {"Nam": expected["M"], "Nữ": expected["F"]}
    ind = frame(at, "Mã đơn vị", "Ngành kinh tế")
    counts = dict(sql("SELECT industry_code, sum(members) FROM marts.mart_membership_cube WHERE period = ? AND "
                      "province_new_code = '01' GROUP BY 1", [P_TO]))
    small = [k for k, v in counts.items() if v < 10]
    assert small, "the fixture has a small industry cell"
    shown = dict(zip(ind["Mã đơn vị"], ind["Số đoàn viên"]))
    for k in small:
        assert pd.isna(shown[k])
    assert sum(pd.isna(v) for v in shown.values()) >= 2  # a complementary cell too
    for k, v in counts.items():
        if not pd.isna(shown[k]):
            assert shown[k] == v and v >= 10


def test_bien_dong(app):
    at = app("bien_dong", params=FIXED)
    ok(at)
    t = frame(at, "Đầu kỳ")
    row = t[t["Mã tỉnh"] == "01"].iloc[0]
    assert row["Kết nạp"] == scalar("SELECT count(*) FROM marts.fct_member_events WHERE period BETWEEN ? AND ? "
                                    "AND province_new_code = '01' AND event_type = 'join'", [P_FROM, P_TO])
    assert row["Giảm"] == scalar("SELECT count(*) FROM marts.fct_member_events WHERE period BETWEEN ? AND ? "
                                 "AND province_new_code = '01' AND event_type = 'leave'", [P_FROM, P_TO])
    assert row["Cuối kỳ"] == scalar("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? "
                                    "AND province_new_code = '01'", [P_TO])
    assert row["Đầu kỳ"] == scalar("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? "
                                   "AND province_new_code = '01'", [dt.date(2024, 12, 1)])
    reasons = frame(at, "Lý do")
    assert "Khu vực công dừng sinh hoạt (01/06/2025)" in set(reasons["Lý do"])  # the 1 June 2025 exit


def test_dich_vu(app):
    at = app("dich_vu", params=FIXED)
    ok(at)
    t = frame(at, "Lượt hỗ trợ")
    assert t["Lượt hỗ trợ"].sum() == scalar("SELECT count(*) FROM marts.fct_service_deliveries WHERE period BETWEEN ? "
                                            "AND ? AND province_new_code = '01'", [P_FROM, P_TO])
    assert t["Số tiền (đồng)"].sum() == scalar("SELECT sum(amount) FROM marts.fct_service_deliveries WHERE period "
                                               "BETWEEN ? AND ? AND province_new_code = '01'", [P_FROM, P_TO])
    a = frame(at, "Lượt tham gia")
    assert a["Lượt tham gia"].sum() == scalar("SELECT count(*) FROM marts.fct_activity_participation WHERE period "
                                              "BETWEEN ? AND ? AND province_new_code = '01'", [P_FROM, P_TO])


def test_doan_phi(app):
    at = app("doan_phi", params=FIXED)
    ok(at)
    t = frame(at, "Còn nợ (đồng)")
    exp, col = sql("SELECT sum(dues_expected), sum(dues_collected) FROM marts.fct_dues_monthly WHERE period "
                   "BETWEEN ? AND ? AND province_new_code = '01'", [P_FROM, P_TO])[0]
    assert t["Đoàn phí phải thu (đồng)"].sum() == exp and t["Đoàn phí đã thu (đồng)"].sum() == col


def test_phat_trien(app):
    at = app("phat_trien", params=FIXED)
    ok(at)
    t = frame(at, "Chưa là đoàn viên")
    top = sql("SELECT employer_code, potential FROM marts.fct_recruitment_potential WHERE period = ? AND "
              "province_new_code = '01' ORDER BY potential DESC, employer_code LIMIT 3", [P_TO])
    assert list(zip(t["Mã đơn vị"], t["Chưa là đoàn viên"]))[:3] == top


def test_nop_bao_cao_and_refused_rows_drill(app):
    at = app("nop_bao_cao", params=FIXED)
    ok(at)
    q = frame(at, "Điểm chất lượng")
    expected = dict(sql("SELECT branch_code, coalesce(sum(rows_refused), 0) FROM marts.fct_submissions WHERE period "
                        "BETWEEN ? AND ? AND province_new_code = '01' GROUP BY 1", [P_FROM, P_TO]))
    assert dict(zip(q["Mã đơn vị"], q["Số dòng bị từ chối"])) == expected
    assert q["Điểm chất lượng"].between(0, 100).all()
    at.selectbox(key="nb_branch").set_value("K0101").run()
    ok(at)
    rows = frame(at, "Quy tắc")
    n = scalar("SELECT count(*) FROM marts.dq_refused_rows WHERE branch_code = 'K0101' AND period BETWEEN ? AND ?",
               [P_FROM, P_TO])
    assert len(rows) == n > 0
    assert "value" not in " ".join(rows.columns).lower() and "Giá trị" not in rows.columns
    assert at.query_params["v_nhanh"] == "K0101"
    # rule codes are shown as labels (CONTRACTS §4 codes never reach the reader raw)
    from pipelines.analytics.labels import rule_label
    codes = [r[0] for r in sql("SELECT DISTINCT rule_code FROM marts.dq_refused_rows WHERE branch_code = 'K0101' "
                               "AND period BETWEEN ? AND ?", [P_FROM, P_TO])]
    assert set(rows["Quy tắc"]) == {rule_label(c, "vi") for c in codes}
    assert not set(rows["Quy tắc"]) & set(codes)


def test_submissions_labels_and_refused_files(app):
    """Every rule and file-reason code of CONTRACTS §4 / expectations/*.json has both labels; the page lists
    refused files with the labelled reason."""
    import json

    from pipelines.analytics.labels import LABELS, REASON_CODES, RULE_CODES, reason_label, rule_label

    expectation_rules = set()
    for f in (REPO / "expectations").glob("*.json"):
        expectation_rules |= {e["meta"]["rule"] for e in json.loads(f.read_text())["expectations"]}
    assert expectation_rules <= set(RULE_CODES)
    for prefix, codes in (("rule", RULE_CODES), ("reason", REASON_CODES)):
        for code in codes:
            assert LABELS[f"{prefix}.{code}"]["vi"] and LABELS[f"{prefix}.{code}"]["en"]
    assert rule_label("not_a_rule") == "not_a_rule" and reason_label(None) == ""
    at = app("nop_bao_cao", params={"tu": "2025-07", "den": "2025-12", "tinh": "08"})
    ok(at)
    files = frame(at, "Lý do từ chối tệp")
    n = scalar("SELECT count(*) FROM marts.fct_submissions WHERE status IN ('refused', 'duplicate') AND period "
               "BETWEEN ? AND ? AND province_new_code = '08'", [dt.date(2025, 7, 1), dt.date(2025, 12, 1)])
    assert len(files) == n > 0
    assert set(files["Lý do từ chối tệp"]) <= {reason_label(c, "vi") for c in REASON_CODES}


def test_identity_conflicts_per_type_unit_and_drill(app):
    """The submissions page lists the identity conflicts of dq_member_conflicts in scope: per type (labelled,
    every type, 0 included), per CĐCS, and one CĐCS's list; never a member key. A provincial leader sees their
    province's only."""
    from pipelines.analytics.labels import CONFLICT_CODES, conflict_label

    at = app("nop_bao_cao", params=FIXED)
    ok(at)
    by_type = frame(at, "Loại xung đột", "Số CĐCS liên quan")
    expected = dict(sql("SELECT conflict_type, count(*) FROM marts.dq_member_conflicts WHERE period BETWEEN ? AND ? "
                        "AND province_new_code = '01' GROUP BY 1", [P_FROM, P_TO]))
    assert len(expected) == len(CONFLICT_CODES) and sum(expected.values()) > 0
    assert dict(zip(by_type["Loại xung đột"], by_type["Số xung đột"])) == {
        conflict_label(c, "vi"): expected.get(c, 0) for c in CONFLICT_CODES}
    units = frame(at, "Mã đơn vị", "Số xung đột", conflict_label("active_in_two_units", "vi"))
    per_unit = dict(sql("SELECT cdcs_code, count(*) FROM marts.dq_member_conflicts WHERE period BETWEEN ? AND ? "
                        "AND province_new_code = '01' GROUP BY 1", [P_FROM, P_TO]))
    assert dict(zip(units["Mã đơn vị"], units["Số xung đột"])) == per_unit
    assert list(units["Số xung đột"]) == sorted(units["Số xung đột"], reverse=True)
    cdcs = units["Mã đơn vị"].iloc[0]
    at.selectbox(key="nb_conflict_cdcs").set_value(cdcs).run()
    ok(at)
    rows = frame(at, "Loại xung đột", "CĐCS đang tính đoàn viên")
    n = sql("SELECT count(*), count(*) FILTER (WHERE conflict_type = 'active_in_two_units') FROM marts.dq_member_conflicts "
            "WHERE cdcs_code = ? AND period BETWEEN ? AND ? AND province_new_code = '01'", [cdcs, P_FROM, P_TO])[0]
    assert len(rows) == n[0] > 0
    assert rows["CĐCS đang tính đoàn viên"].notna().sum() == n[1]
    assert at.query_params["v_cdcs_xd"] == cdcs
    keys = {r[0] for r in sql("SELECT member_key FROM marts.dq_member_conflicts")}
    for d in at.dataframe:  # no table of the page shows a member key
        assert not keys & {str(v) for v in d.value.to_numpy().ravel()}
    # a provincial leader (T08) sees their federation's conflicts only: T08 and, before the merger, T02 (Hà
    # Giang, merged into it on 01/07/2025), not those of the CĐCS of a central sector union in the province
    at = app("nop_bao_cao", username="tinh08", params={"tu": "2025-01", "den": "2025-06"})
    ok(at)
    by_type = frame(at, "Loại xung đột", "Số CĐCS liên quan")
    n08, n_sector = sql("SELECT count(*) FILTER (WHERE top_unit_code IN ('T08', 'T02')), "
                        "count(*) FILTER (WHERE top_unit_code LIKE 'N%') FROM marts.dq_member_conflicts "
                        "WHERE period BETWEEN ? AND ? AND province_new_code = '08'", [P_FROM, P_TO])[0]
    assert by_type["Số xung đột"].sum() == n08 > 0 and n_sector > 0

def test_a_steward_records_a_conflict_review(app):
    """An official picks one of a CĐCS's conflicts, records what checking the roster showed: the list shows it
    (outcome, who, when), the app database keeps it, the audit log has the conflict and the decision but not the
    note. A provincial leader cannot review a conflict outside their scope (the same answer as an unknown one,
    nothing written) and an analyst cannot review at all."""
    import types

    from dashboards.common import scope_for
    from pipelines.access import accounts, audit
    from pipelines.access.appdb import accounts_db
    from pipelines.analytics import queries as q
    from pipelines.analytics import stewardship
    from pipelines.analytics.filters import Filters

    at = app("nop_bao_cao", params=FIXED)
    cdcs = frame(at, "Mã đơn vị", "Số xung đột")["Mã đơn vị"].iloc[-1]
    at.selectbox(key="nb_conflict_cdcs").set_value(cdcs).run()
    ok(at)
    before = frame(at, "Loại xung đột", "Kết quả rà soát")
    assert set(before["Kết quả rà soát"]) == {"Chưa rà soát"}
    ids = [r[0] for r in sql("SELECT conflict_id FROM marts.dq_member_conflicts WHERE cdcs_code = ? AND period "
                             "BETWEEN ? AND ? AND province_new_code = '01' ORDER BY period, conflict_type, "
                             "other_cdcs_code", [cdcs, P_FROM, P_TO])]
    assert len(at.selectbox(key="nb_review_conflict").options) == len(ids) > 0
    target = ids[-1]
    at.selectbox(key="nb_review_conflict").set_value(target)
    at.radio(key="nb_review_decision").set_value("different_people")
    at.text_input(key="nb_review_note").input("Hai người khác nhau, đã báo CĐCS")
    at.get("form_submit_button")[0].click().run()
    ok(at)
    after = frame(at, "Loại xung đột", "Kết quả rà soát")
    assert list(after["Kết quả rà soát"]) == ["Chưa rà soát"] * (len(ids) - 1) + ["Khác người: đề nghị CĐCS sửa danh sách"]
    assert list(after["Người rà soát"])[-1] == "lanhdao"
    assert list(after["Ngày rà soát"])[-1] == dt.date.today().strftime("%d/%m/%Y")
    assert list(after["Ghi chú rà soát"])[-1] == "Hai người khác nhau, đã báo CĐCS"
    with accounts_db() as db:
        got = [tuple(r) for r in db.execute("SELECT conflict_id, cdcs_code, decision, note, reviewed_by "
                                            "FROM conflict_reviews WHERE conflict_id = ?", [target]).fetchall()]
    assert got == [(target, cdcs, "different_people", "Hai người khác nhau, đã báo CĐCS", "lanhdao")]
    ev = audit.events(action="conflict_review")[0]
    assert target in ev["detail"] and "different_people" in ev["detail"] and "Hai người" not in ev["detail"]
    # a provincial leader of another province: not found, nothing written; an analyst: not an official
    f = q.resolve(Filters.from_params({"tu": "2025-01", "den": "2025-06"}))
    tinh08 = accounts.get_user("tinh08")
    with pytest.raises(stewardship.ReviewError) as err:
        stewardship.record_review(tinh08, scope_for(tinh08, f.period_to), f, target, "same_person")
    assert err.value.key == "review.error_not_found"
    with pytest.raises(stewardship.ReviewError) as err:
        stewardship.record_review(types.SimpleNamespace(username="pt", role="analyst"), None, f, target, "same_person")
    assert err.value.key == "review.error_role"
    # a note holding an ID number or a date is refused (the form says not to write them), nothing written
    lanhdao = accounts.get_user("lanhdao")
    for bad in ("CCCD 001085012345 trùng", "CMND 012 345 678", "sinh ngày 05/03/1985"):
        with pytest.raises(stewardship.ReviewError) as err:
            stewardship.record_review(lanhdao, scope_for(lanhdao, f.period_to), f, target, "same_person", bad)
        assert err.value.key == "review.error_note_personal"
    assert stewardship.reviews([target])[target]["decision"] == "different_people"
    # an analyst opening the same list sees the outcome but neither the note nor the form
    accounts.create_user("phantich", display_name="Chuyên viên phân tích", role="analyst", password="x" * 12,
                         replace_existing=True)
    at = app("nop_bao_cao", username="phantich", params={**FIXED, "v_cdcs_xd": cdcs})
    ok(at)
    seen = frame(at, "Loại xung đột", "Kết quả rà soát")
    assert "Khác người: đề nghị CĐCS sửa danh sách" in set(seen["Kết quả rà soát"])
    assert "Ghi chú rà soát" not in seen.columns and not at.get("form_submit_button")


def test_bao_cao_dinh_ky(app):
    at = app("bao_cao_dinh_ky", params={"dv": "T01"})
    ok(at)
    t = frame(at, "Tổng số")
    members, female = sql("SELECT members, women FROM marts.mart_statutory_report WHERE unit_code = 'T01' "
                          "AND report_date = DATE '2025-11-30'")[0]
    assert t["Tổng số"].iloc[0] == members and t["Trong đó nữ"].iloc[0] == female
    assert any(b.proto.label.startswith("Tải báo cáo") for b in at.get("download_button"))


def test_filter_change_updates_figures_and_url(app):
    at = app("tong_quan", params=FIXED)
    at.selectbox(key="w0_gender").set_value("F").run()
    ok(at)
    women = scalar("SELECT sum(members) FROM marts.mart_membership_cube WHERE period = ? AND province_new_code = '01' "
                   "AND gender = 'F'", [P_TO])
    assert metric(at, "Đoàn viên") == fmt_int(women)
    assert at.query_params["gt"] == "F"


def test_drill_from_country_to_one_cdcs(app):
    at = app("tong_quan")
    ok(at)
    for code in ("T08", "X08001", "CS0000006"):
        pick = [s for s in at.selectbox if s.key and s.key.startswith("drill_tong_quan_")][0]
        pick.set_value(code).run()
        at.button(key="drill_go_tong_quan").click().run()
        ok(at)
        assert at.query_params["dv"] == code
    labels = [b.label for b in at.button if b.key and b.key.startswith("crumb_tong_quan_")]
    assert labels[0] == "Cả nước" and len(labels) == 4  # country › T08 › X08001 › the CĐCS
    members = scalar("SELECT members FROM marts.fct_membership_monthly WHERE cdcs_code = 'CS0000006' "
                     "ORDER BY period DESC LIMIT 1")
    assert metric(at, "Đoàn viên") == fmt_int(members)
    at.button(key="crumb_tong_quan_0").click().run()  # back to the whole country
    assert "dv" not in at.query_params


def test_province_leader_cannot_widen_scope_by_url(app):
    at = app("tong_quan", username="tinh08", params={"dv": "X01001", "tinh": "01"})
    ok(at)
    assert "dv" not in at.query_params  # the forged unit is dropped, never honoured
    assert metric(at, "Đoàn viên") == "0" or metric(at, "Đoàn viên") == "–"
    at = app("tong_quan", username="tinh08")
    ok(at)
    expected = scalar("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = DATE '2025-12-01' "
                      "AND top_unit_code = 'T08'")
    assert metric(at, "Đoàn viên") == fmt_int(expected)
    kids = frame(at, "Mã đơn vị", "Số đoàn viên")
    assert set(kids["Mã đơn vị"]) == {"T08"}


def test_english_switch(app):
    at = app("co_cau", params={"lang": "en"})
    ok(at)
    assert at.title[0].value == "Structure"
    assert "Women" in set(frame(at, "Gender")["Gender"])


@pytest.mark.parametrize("page", ["tong_quan", "ban_do", "co_cau", "bien_dong", "dich_vu", "doan_phi",
                                  "phat_trien", "nop_bao_cao", "bao_cao_dinh_ky"])
def test_every_page_runs_for_a_province_leader(app, page):
    at = app(page, username="tinh08")
    ok(at)
    assert at.title[0].value
