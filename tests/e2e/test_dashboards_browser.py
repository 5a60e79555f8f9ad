"""The dashboards in a real browser (Debian's headless Chromium driven by Playwright) against the app served
on a free localhost port with a small published warehouse: log in, load every dashboard page, apply a
filter (and see it in the URL), drill from the country to one CĐCS, click a province on the map, download
an export and open it with openpyxl. Screenshots go to tests/e2e/screenshots/ (git-ignored)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from appserver import CHROMIUM, REPO, accounts_in, serve_app
from appserver import CHROMIUM_ARGS as ARGS
from appserver import DASHBOARD_PAGES as PAGES

SHOTS = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "matkhau-trinh-duyet-123"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed (make browser-deps)")]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app served by `streamlit run` on a free port, over a freshly published fixture warehouse."""
    sys.path.insert(0, str(REPO / "tests" / "dashboards"))
    import warehouse_fixture

    root = tmp_path_factory.mktemp("browser") / "data"
    root.mkdir()
    old = os.environ.get("DOANVIEN_DATA_DIR")
    try:
        warehouse_fixture.publish_fixture(root)
    finally:
        if old is None:
            os.environ.pop("DOANVIEN_DATA_DIR", None)
        else:
            os.environ["DOANVIEN_DATA_DIR"] = old
    with accounts_in(root) as accounts:
        accounts.create_user("lanhdao", display_name="Lãnh đạo Tổng Liên đoàn", role="national_leader",
                             password=PASSWORD, replace_existing=True)
    with serve_app(root) as base:
        yield base


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1440, "height": 2200}, accept_downloads=True, locale="vi-VN")
        pg = ctx.new_page()
        dialogs = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.goto(served)
        pg.get_by_label("Tên đăng nhập").fill("lanhdao")
        pg.get_by_label("Mật khẩu").fill(PASSWORD)
        pg.get_by_role("button", name="Đăng nhập").click()
        wait_title(pg, "Tổng quan")
        pg.dialogs = dialogs
        yield pg
        browser.close()


def wait_title(pg, title: str) -> None:
    pg.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    pg.wait_for_timeout(800)


def goto(pg, title: str) -> None:
    pg.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title, exact=True).click()
    wait_title(pg, title)


def select(pg, label: str, option: str, root=None) -> None:
    (root or pg).get_by_role("combobox", name=label).first.click()
    pg.get_by_role("option", name=option).first.click()
    pg.wait_for_timeout(300)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    pg.wait_for_timeout(800)


def test_every_page_loads(page):
    for url_path, title in PAGES:
        goto(page, title)
        assert page.locator("[data-testid='stException']").count() == 0, url_path
        assert page.get_by_text("Đã xảy ra lỗi").count() == 0, url_path
        if url_path not in ("bao_cao_dinh_ky",):
            page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        page.screenshot(path=str(SHOTS / f"{url_path}.png"), full_page=True)
    assert not page.dialogs


def test_filter_is_applied_and_kept_in_the_url(page):
    goto(page, "Tổng quan")
    sidebar = page.locator("[data-testid='stSidebar']")
    select(page, "Tỉnh, thành phố", "01 · Hà Nội", root=sidebar)
    page.wait_for_function("() => location.search.includes('tinh=01')", timeout=30_000)
    goto(page, "Cơ cấu")  # the filter carries to the next page, and stays in its URL
    page.wait_for_function("() => location.search.includes('tinh=01')", timeout=30_000)
    assert page.get_by_role("button", name="Hà Nội").count() >= 1  # the province chip in the breadcrumb
    page.screenshot(path=str(SHOTS / "co_cau_ha_noi.png"), full_page=True)
    page.get_by_role("button", name="Hà Nội").first.click()  # remove the province filter
    page.wait_for_function("() => !location.search.includes('tinh=01')", timeout=30_000)


def test_drill_from_country_to_one_cdcs(page):
    goto(page, "Tổng quan")
    for code in ("T08", "X08001", "CS0000006"):
        select(page, "Chọn đơn vị để xem chi tiết", f"({code})")
        page.get_by_role("button", name="Xem chi tiết").click()
        page.wait_for_function(f"() => location.search.includes('dv={code}')", timeout=30_000)
        wait_title(page, "Tổng quan")
    crumbs = page.locator("[data-testid='stMain'] button").filter(has_text="›")
    assert crumbs.count() >= 3
    assert "Nông sản Hà Giang" in page.locator("[data-testid='stMain']").inner_text()
    page.screenshot(path=str(SHOTS / "drill_cdcs.png"), full_page=True)
    page.get_by_role("button", name="Cả nước").click()
    page.wait_for_function("() => !location.search.includes('dv=')", timeout=30_000)


def test_map_click_drills_into_a_province(page):
    goto(page, "Bản đồ")
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=30_000)
    # click the marker of Tuyên Quang (08): the last scatter trace holds one point per province
    point = page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        const tr = gd._fullData.length - 1, trace = gd._fullData[tr];
        const i = trace.customdata.findIndex(r => r[0] === '08');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return {x: box.left + xa.l2p(trace.x[i]), y: box.top + ya.l2p(trace.y[i])};
    }""")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("() => location.search.includes('tinh=08')", timeout=30_000)
    wait_title(page, "Bản đồ")
    page.screenshot(path=str(SHOTS / "ban_do_tuyen_quang.png"), full_page=True)
    page.get_by_role("button", name="Tuyên Quang").first.click()
    page.wait_for_function("() => !location.search.includes('tinh=')", timeout=30_000)


def _save(dl, tmp_path) -> Path:
    target = tmp_path / dl.suggested_filename
    dl.save_as(target)
    return target


def test_export_downloads_and_opens(page, tmp_path):
    import openpyxl

    goto(page, "Đoàn phí")
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_role("button", name="Tải Excel").first.click()
    path = _save(dl.value, tmp_path)
    assert path.suffix == ".xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    header = [c.value for c in ws[3]]
    assert "Đoàn phí phải thu (đồng)" in header and ws.max_row > 3
    goto(page, "Báo cáo định kỳ")
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_role("button", name="Tải báo cáo (Excel, mẫu chuẩn)").click()
    ws = openpyxl.load_workbook(_save(dl.value, tmp_path)).active
    assert ws["A6"].value == "BÁO CÁO TỔNG HỢP SỐ LIỆU VỀ HOẠT ĐỘNG CÔNG ĐOÀN"
    assert isinstance(ws["D12"].value, (int, float))
    page.screenshot(path=str(SHOTS / "bao_cao_dinh_ky.png"), full_page=True)
