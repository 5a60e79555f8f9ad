"""The real access pages under Streamlit's AppTest: not logged in, every role against every access page,
the login form (and lockout), and data containing HTML/script rendered as text."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import access_fixture as wf
from pipelines.access import accounts, audit

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "dashboards" / "app_pages"
ACCESS_PAGES = ["tra_cuu", "tai_len", "sql", "quan_tri"]


def page(name: str, user=None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    if user is not None:
        at.session_state["_dv_session_token"] = accounts.create_session(user)
    return at.run()


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("name", ACCESS_PAGES + ["dang_nhap"])
def test_not_logged_in_sees_only_the_login_form(dw, name):
    at = page(name)
    assert not at.exception
    labels = [t.label for t in at.text_input]
    assert "Tên đăng nhập" in labels and "Mật khẩu" in labels
    assert not at.dataframe and "CS000" not in texts(at)


@pytest.mark.parametrize("role", ["national_leader", "province_leader", "upper_official", "cdcs_official",
                                  "analyst", "member", "admin"])
def test_every_role_against_every_access_page(users, role):
    from dashboards import auth
    for name in ACCESS_PAGES:
        at = page(name, users[role])
        assert not at.exception, (role, name, at.exception)
        allowed = role in auth.PAGE_ROLES[name]
        refused = any("không có quyền" in str(e.value) for e in at.error)
        assert refused != allowed, (role, name, texts(at))
        if refused:
            ev = audit.events(actor=users[role].username, action="denied")
            assert ev and ev[0]["page"] == name
            assert not at.dataframe  # nothing leaked


def test_router_pages_by_role(users):
    from dashboards import auth
    assert auth.allowed_pages(None) == ["dang_nhap"]
    assert auth.allowed_pages(users["member"]) == ["tra_cuu"]
    assert "sql" in auth.allowed_pages(users["analyst"]) and "tra_cuu" not in auth.allowed_pages(users["analyst"])
    assert "sql" not in auth.allowed_pages(users["national_leader"])
    assert "quan_tri" in auth.allowed_pages(users["admin"])


def test_login_form_logs_in_and_locks_out(users):
    at = AppTest.from_file(str(PAGES / "dang_nhap.py"), default_timeout=60).run()
    at.text_input(key="_dv_login_user").input("member")
    at.text_input(key="_dv_login_pw").input("wrong-password")
    at.button[0].click() if not at.get("form_submit_button") else None
    at.run()
    for _ in range(accounts.MAX_FAILURES + 1):
        at.text_input(key="_dv_login_user").input("member")
        at.text_input(key="_dv_login_pw").input("wrong-password")
        at.get("form_submit_button")[0].click()
        at.run()
    assert any("khoá" in str(e.value) for e in at.error)
    assert audit.events(action="login_locked")
    at2 = AppTest.from_file(str(PAGES / "dang_nhap.py"), default_timeout=60).run()
    at2.text_input(key="_dv_login_user").input("admin")
    at2.text_input(key="_dv_login_pw").input(wf.PASSWORDS["admin"])
    at2.get("form_submit_button")[0].click()
    at2.run()
    tok = at2.session_state["_dv_session_token"]
    assert accounts.session_user(tok).role == "admin"
    assert audit.events(action="login")[0]["actor"] == "admin"


def test_script_in_names_is_rendered_as_text(users):
    at = page("tra_cuu", users["member"])  # this member's name and unit name contain <script>/<img onerror>
    assert not at.exception
    body = texts(at)
    assert "alert" in body  # the text is shown ...
    import re
    assert re.search(r"(?<!\\)<", body) is None  # ... every '<' escaped for Markdown: text, never markup
    assert not at.get("html")
    at = page("tra_cuu", users["upper_official"])
    at.text_input(key="tc_q").input("ngo")
    at.get("form_submit_button")[0].click()
    at.run()
    assert not at.exception and at.dataframe
    df = at.dataframe[0].value
    assert any("<script>" in str(v) for v in df.iloc[:, 0])  # in a dataframe cell: plain text


def test_official_opens_a_record_and_it_is_audited(users):
    at = page("tra_cuu", users["upper_official"])
    at.text_input(key="tc_q").input("hoang duc em")
    at.get("form_submit_button")[0].click()
    at.run()
    key = at.selectbox(key="tc_pick").options[1]
    at.selectbox(key="tc_pick").select_index(1).run()
    assert not at.exception
    ev = audit.events(action="view_member")
    assert ev and ev[0]["actor"] == users["upper_official"].username


def test_sql_page_runs_and_refuses(users):
    at = page("sql", users["analyst"])
    assert not at.exception
    at.text_area(key="sql_text").input("SELECT count(*) AS n FROM marts.fct_membership_monthly")
    at.button(key="sql_run").click().run()
    assert not at.exception and at.dataframe
    at.text_area(key="sql_text").input("SELECT * FROM read_csv('/etc/passwd')")
    at.button(key="sql_run").click().run()
    assert any("không được phép" in str(e.value) for e in at.error)
    assert "root:" not in texts(at)


def test_admin_page_audit_view(users):
    at = page("quan_tri", users["admin"])
    assert not at.exception
    assert audit.events(action="audit_view")


def test_upload_page_says_why_an_error_workbook_cannot_be_made(users, monkeypatch):
    """The history's "prepare the error workbook" button: a file whose original is gone from the archive gets
    that reason on the page (not a vague either/or)."""
    import datetime as _dt

    from pipelines import config
    from pipelines.access import uploads

    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    up = users["upper_official"]
    csv = ("Mã CĐCS,Họ và tên,Ngày sinh,Giới tính,Số CCCD,Ngày vào công đoàn\n"
           "CS0000002,Nguyễn Văn Tải,15/03/1990,Nam,008090123456,01/09/2015\n")
    res = uploads.handle_upload(up, branch_code="X08001", period=_dt.date.today().replace(day=1), kind="roster",
                                original_name="ds.csv", data=csv.encode())
    assert res.status == "accepted", res.message_vi
    Path(res.xlsx_report).unlink()
    for arc in config.archive_dir().rglob(f"{res.report['sha256']}.*"):
        arc.unlink()
    # (Vietnamese only here: AppTest formats the form's selectboxes outside the script run, in the default
    # language; the English message is tested on uploads.history_workbook_or_reason)
    at = page("tai_len", up)
    assert not at.exception
    at.button(key="up_hist_prepare").click().run()
    assert not at.exception
    shown = [str(e.value) for e in at.error]
    assert any("Tệp gốc không còn trong kho lưu trữ" in e and "gửi lại" in e for e in shown), texts(at)
    assert not any("hoặc danh sách" in e for e in shown)  # the reason, not an either/or


def test_upload_result_shows_rules_and_notes_by_their_labels(users):
    """The result of an upload lists the broken rules and the notes on accepted rows (e.g. a value of the old-CMND
    column that was not used) by their Vietnamese labels, never by their codes."""
    from pipelines.analytics.labels import flag_label, rule_label

    at = AppTest.from_file(str(PAGES / "tai_len.py"), default_timeout=60)
    at.session_state["_dv_session_token"] = accounts.create_session(users["upper_official"])
    at.session_state["up_last"] = {
        "status": "accepted", "message_vi": "Đã nhận tệp.", "stored_name": "ds.csv", "xlsx_report": None,
        "report": {"rows_read": 4, "rows_accepted": 3, "rows_refused": 1, "counts_by_rule": {"cccd_layout": 1},
                   "flags": {"cmnd_ignored": 1, "cccd_restored": 2}}}
    at.run()
    assert not at.exception
    shown = {tuple(r) for d in at.dataframe for r in d.value.itertuples(index=False)}
    assert {(rule_label("cccd_layout"), 1), (flag_label("cmnd_ignored"), 1), (flag_label("cccd_restored"), 2)} <= shown
    assert not {r[0] for r in shown} & {"cccd_layout", "cmnd_ignored", "cccd_restored"}
    assert flag_label("cmnd_ignored") != "cmnd_ignored"  # a label exists
