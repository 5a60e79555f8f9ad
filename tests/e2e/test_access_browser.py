"""Real browser (headless Debian Chromium via Playwright): login, a member's own lookup with a <script> name
(no dialog may open), an official's scoped lookup, an upload named with ../, logout. Runs the real router
(`dashboards/streamlit_app.py`) on the access tests' hand-made warehouse."""
from __future__ import annotations

import os
import re
import sys

import pytest

from appserver import CHROMIUM, REPO, accounts_in, serve_app
from appserver import CHROMIUM_ARGS as ARGS

sys.path.insert(0, str(REPO / "tests" / "access"))

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium not installed (make browser-deps)")
    import access_fixture as wf
    root = tmp_path_factory.mktemp("browser") / "data"
    root.mkdir()
    old = os.environ.get("DOANVIEN_DATA_DIR")
    try:
        wf.build(root)
    finally:
        if old is None:
            os.environ.pop("DOANVIEN_DATA_DIR", None)
        else:
            os.environ["DOANVIEN_DATA_DIR"] = old
    with accounts_in(root) as accounts:
        accounts.create_user("member", display_name="Member", role="member", password=wf.PASSWORDS["member"],
                             member_code=[m for m in wf.members() if m["cdcs_code"] == "CS0000002"][0]["member_code"])
        accounts.create_user("canbo.xa", display_name="Cán bộ <b>xã</b>", role="upper_official", unit_code="X08001",
                             password=wf.PASSWORDS["upper_official"])
    # the real engine, Great Expectations included (its default mode), in the Streamlit server process
    with serve_app(root, drop_env=("DOANVIEN_INGEST_GX",)) as url:
        yield url, root


@pytest.fixture
def browser_page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs
        yield page
        b.close()


def _login(page, url, username, password):
    page.goto(url)
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()


def test_member_own_lookup_no_script_runs(server, browser_page):
    import access_fixture as wf
    url, _ = server
    page = browser_page
    page.goto(url + "/sql")  # not logged in: a direct URL gives the login form only
    page.get_by_label("Tên đăng nhập").wait_for(timeout=30000)
    assert "marts" not in page.content()
    _login(page, url, "member", wf.PASSWORDS["member"])
    page.get_by_text("Hồ sơ đoàn viên của tôi").wait_for(timeout=30000)
    page.get_by_text('alert("xss")', exact=False).first.wait_for(timeout=15000)  # the name is shown as text
    page.wait_for_timeout(1000)
    assert page.dialogs == []
    page.goto(url + "/sql")  # a member has no SQL page (and a reload is a new session: the login form)
    page.get_by_label("Tên đăng nhập").wait_for(timeout=30000)
    assert "SELECT" not in page.content()
    assert page.dialogs == []


def test_official_scoped_lookup_and_upload(server, browser_page, tmp_path):
    import access_fixture as wf
    url, root = server
    page = browser_page
    _login(page, url, "canbo.xa", wf.PASSWORDS["upper_official"])
    # a reload starts a new Streamlit session (log in again): navigate with the sidebar links
    page.get_by_role("link", name="Tra cứu đoàn viên").click()
    page.get_by_label("Tìm kiếm").fill("hoang duc em")
    page.get_by_role("button", name="Tìm").click()
    # table cells are drawn on a canvas: read the record picker's options instead
    # exact: the page's caption says "… xem hồ sơ …" too (a substring match found it at once, or found two)
    page.get_by_text("Xem hồ sơ", exact=True).wait_for(timeout=30000)
    # the picker's options (role and markup differ across Streamlit versions: match the option text); the
    # picker may re-render right after the search, swallowing an early click: open it again until it shows
    option = page.get_by_text(re.compile(r"Hoàng Đức Em · DV\d+ · CS0000004")).first
    for attempt in range(4):
        page.wait_for_timeout(1000)
        page.locator("[data-testid=stSelectbox]").last.click()
        try:
            option.wait_for(timeout=10000)
            break
        except Exception:
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
    assert page.get_by_text(re.compile("CS0000007")).count() == 0  # other subtree: not shown
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert page.get_by_role("button", name="Đăng xuất").count() == 1  # the account menu is drawn once
    page.get_by_role("link", name="Tải lên báo cáo").click()
    page.get_by_role("button", name="Gửi và kiểm tra").wait_for(timeout=30000)
    # a roster for the current month (the form's default kind and period): two valid members of X08001's CĐCS
    # and one row with a broken CCCD, so the engine reads, refuses a row and runs Great Expectations
    csv = ("Mã CĐCS,Họ và tên,Ngày sinh,Giới tính,Số CCCD,Ngày vào công đoàn\n"
           "CS0000002,Nguyễn Văn Tải,15/03/1990,Nam,008090123456,01/09/2015\n"
           "CS0000004,Trần Thị Lên,02/11/1995,Nữ,008195654321,10/05/2020\n"
           "CS0000004,Lê Văn Sai,02/11/1995,Nam,12345,10/05/2020\n")
    page.locator("input[type=file]").set_input_files(files=[{"name": "../../evil<img src=x onerror=alert(1)>.csv",
                                                             "mimeType": "text/csv", "buffer": csv.encode()}])
    # Streamlit first asks the server for an upload URL (a websocket round trip), and only then shows the file
    # chip and disables the form's submit button while it sends the bytes: a click in that gap submits the form
    # without the file ("Chọn một tệp.") and no report ever comes. Click once the chip shows the file uploaded.
    page.locator("[data-testid=stFileChip]").wait_for(timeout=60000)
    page.locator("[data-testid=stFileChipIconSpinner]").wait_for(state="detached", timeout=60000)
    page.get_by_role("button", name="Gửi và kiểm tra").click()
    # the first upload of the server process imports GX (~3 s alone, much more on a busy machine)
    page.get_by_text("Tên lưu trên máy chủ").wait_for(timeout=120000)
    assert page.get_by_text("Chọn một tệp").count() == 0
    page.get_by_text(re.compile(r"Đã nhận danh sách đoàn viên kỳ \d\d/\d{4}: 3 dòng, 2 dòng hợp lệ, "
                                r"1 dòng bị từ chối")).wait_for(timeout=10000)
    from playwright.sync_api import expect
    expect(page.locator("[data-testid=stMetricValue]")).to_have_text(["3", "2", "1"], timeout=10000)
    assert page.dialogs == []
    assert not list(root.parent.rglob("evil*")) and not (root.parent / "evil").exists()
    # the engine's own record of this file: accepted, the row rule, and GX run on its rows (not skipped)
    import json
    reps = [json.loads(p.read_text(encoding="utf-8")) for p in (root / "reports").glob("*.json")]
    assert len(reps) == 1, reps
    rep = reps[0]
    assert (rep["status"], rep["kind"], rep["branch_code"]) == ("accepted", "roster", "X08001")
    assert rep["counts_by_rule"] == {"cccd_layout": 1}
    assert rep["gx"]["ran"] is True and rep["gx"]["mode"] == "sample", rep["gx"]
    inbox = list((root / "inbox" / "X08001").rglob("*.csv"))
    assert len(inbox) == 1 and "evil" not in inbox[0].name and inbox[0].parent.name == "roster"
