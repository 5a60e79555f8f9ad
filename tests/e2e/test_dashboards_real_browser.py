"""The dashboards in a real browser on a warehouse the REAL pipeline built: tiny generated data taken
through `doanvien refresh` (the session fixture `tiny_published`: generate → ingest → dbt build → publish),
served by `streamlit run`, driven by Debian's headless Chromium through Playwright.

Figures read off the screen are compared with the generator's ground truth (`ground_truth/*.parquet`,
placed in the organisation tree with the registry `registry/units.parquet`, independently of dbt and of the
query layer) and, where the truth has no such figure, with independent SQL on the published file:
- the national overview (members, year-to-date joins against the Confederation's target, dues ratio);
- a commune/ward union drilled through its whole series across the 1 July 2025 restructuring (the months
  before it existed show the CĐCS it has today), in Vietnamese and then in English;
- every page loads and draws, the unit selector drills from the country to one CĐCS (its member count equals
  the warehouse), and the dues table downloads as an .xlsx that opens.

`DOANVIEN_E2E_REAL_DATA=<data root with a published warehouse>` reuses one already built (read only).
Screenshots go to tests/e2e/screenshots/ (git-ignored)."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import urllib.parse
from pathlib import Path

import duckdb
import pytest

from pipelines.analytics.i18n import fmt_int, fmt_month, fmt_pct

from appserver import CHROMIUM, accounts_in, serve_app
from appserver import CHROMIUM_ARGS as ARGS
from appserver import DASHBOARD_PAGES as PAGES

SHOTS = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "matkhau-du-lieu-that-123"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed (make browser-deps)")]


# --- the data: the pipeline's warehouse, and the truth beside it ---------------------------------------

@pytest.fixture(scope="module")
def source_root(request) -> Path:
    given = os.environ.get("DOANVIEN_E2E_REAL_DATA")
    return Path(given) if given else request.getfixturevalue("tiny_published")


@pytest.fixture(scope="module")
def real_root(source_root, tmp_path_factory) -> Path:
    """A private copy of the published warehouse and the registry (accounts are written here; the shared
    session data stays clean)."""
    root = tmp_path_factory.mktemp("realdash") / "data"
    root.mkdir()
    for sub in ("warehouse", "registry"):
        shutil.copytree(source_root / sub, root / sub, ignore=shutil.ignore_patterns("build"))
    ptr = root / "warehouse" / "CURRENT"
    rec = json.loads(ptr.read_text())
    for k in ("path", "analyst_path"):
        if rec.get(k):
            rec[k] = rec[k].replace(str(source_root), str(root))
    ptr.write_text(json.dumps(rec))
    return root


@pytest.fixture(scope="module")
def truth(source_root, real_root):
    """Queries over the ground truth and the registry (DuckDB on the Parquet files), and over the published
    warehouse (read only)."""
    gt = duckdb.connect()
    wh = duckdb.connect(json.loads((real_root / "warehouse" / "CURRENT").read_text())["path"], read_only=True)

    class T:
        root = source_root

        @staticmethod
        def gt(sql, params=()):
            sql = sql.replace("{gt}", f"{source_root}/ground_truth").replace("{registry}", f"{source_root}/registry")
            return gt.execute(sql, list(params)).fetchall()

        @staticmethod
        def wh(sql, params=()):
            return wh.execute(sql, list(params)).fetchall()

    yield T
    gt.close()
    wh.close()


# --- the app, served -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(real_root):
    with accounts_in(real_root) as accounts:
        accounts.create_user("lanhdao", display_name="Lãnh đạo Tổng Liên đoàn", role="national_leader",
                             password=PASSWORD, replace_existing=True)
    with serve_app(real_root) as base:
        yield base


@pytest.fixture(scope="module")
def browser(served):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_logged_in(browser, base: str, params: dict | None = None):
    """A new tab on the app with `params` in the URL (a shared link), logged in as the national leader."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 2000}, locale="vi-VN")
    pg = ctx.new_page()
    pg.goto(base + "/" + ("?" + urllib.parse.urlencode(params) if params else ""))
    pg.get_by_label("Tên đăng nhập").fill("lanhdao")
    pg.get_by_label("Mật khẩu").fill(PASSWORD)
    pg.get_by_role("button", name="Đăng nhập").click()
    settle(pg, "Tổng quan")
    return pg


def settle(pg, title: str) -> None:
    pg.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    pg.wait_for_selector("[data-testid='stMetricValue']", timeout=60_000)
    # elements of the previous run stay on screen, marked stale, until the new run replaces them
    pg.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=60_000)
    pg.wait_for_timeout(300)


def metric(pg, label: str) -> str:
    box = pg.locator("[data-testid='stMetric']").filter(
        has=pg.locator("[data-testid='stMetricLabel']", has_text=label)).first
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()


def captions(pg) -> list[str]:
    return [c.strip() for c in pg.locator("[data-testid='stMain'] [data-testid='stCaptionContainer']").all_inner_texts()]


def trend(pg) -> dict[dt.date, int]:
    """The members-over-time chart (the first Plotly figure of Tổng quan), as drawn: month -> members."""
    pg.wait_for_selector(".js-plotly-plot", timeout=30_000)
    # _fullData: the trace as Plotly drew it (data arrays decoded from Plotly's base64 typed-array transport)
    data = pg.evaluate("() => { const d = document.querySelector('.js-plotly-plot')._fullData[0];"
                       " return {x: Array.from(d.x, String), y: Array.from(d.y, Number)}; }")
    return {dt.date.fromisoformat(str(x)[:10]): int(y) for x, y in zip(data["x"], data["y"])}


# --- the tests -------------------------------------------------------------------------------------------

def _latest(truth) -> dt.date:
    return truth.gt("SELECT max(period) FROM '{gt}/membership_monthly.parquet'")[0][0]


def test_national_overview_matches_the_ground_truth(browser, served, truth):
    latest = _latest(truth)
    members = truth.gt("SELECT sum(members_expected) FROM '{gt}/membership_monthly.parquet' WHERE period = ?",
                       [latest])[0][0]
    first = truth.gt("SELECT min(period) FROM '{gt}/membership_monthly.parquet'")[0][0]
    ytd_from = max(first, dt.date(latest.year, 1, 1))
    joins_month, joins_ytd = truth.gt(
        "SELECT count(*) FILTER (WHERE period_expected = ?), count(*) FROM '{gt}/member_events.parquet' "
        "WHERE event_type = 'join' AND period_expected BETWEEN ? AND ?", [latest, ytd_from, latest])[0]
    # dues: reported figures only are in the truth; the ratio is checked with independent SQL on the warehouse
    collected, expected = truth.wh("SELECT sum(dues_collected), sum(dues_expected) FROM marts.fct_dues_monthly "
                                   "WHERE period = ?", [latest])[0]
    from pipelines.analytics import targets
    target = targets.load()[(latest.year, "TLD", "new_members")]

    pg = open_logged_in(browser, served)
    try:
        assert metric(pg, "Đoàn viên") == fmt_int(members) and members > 0
        assert metric(pg, "Kết nạp mới") == fmt_int(joins_month)
        assert metric(pg, "Đoàn phí thu / phải thu") == fmt_pct(collected / expected)
        period = f"{fmt_month(ytd_from)}–{fmt_month(latest)}"
        assert (f"Lũy kế {period}: {fmt_int(joins_ytd)}, đạt {fmt_pct(joins_ytd / target)} chỉ tiêu kết nạp năm "
                f"{latest.year} ({fmt_int(target)})") in captions(pg), captions(pg)
        pg.screenshot(path=str(SHOTS / "real_tong_quan.png"), full_page=True)
    finally:
        pg.context.close()


def test_commune_union_series_across_the_restructuring(browser, served, truth):
    """A shared link drilled into the commune/ward union with the most CĐCS, over every month: before
    01/07/2025 (when it did not exist) each month shows the CĐCS that are under it today."""
    unit, = truth.gt("SELECT parent_code FROM '{registry}/units.parquet' WHERE level = 'cdcs' AND "
                     "parent_code LIKE 'X%' GROUP BY 1 ORDER BY count(DISTINCT unit_code) DESC, 1 LIMIT 1")[0]
    created = truth.gt("SELECT min(valid_from) FROM '{registry}/units.parquet' WHERE unit_code = ?", [unit])[0][0]
    series = dict(truth.gt(
        "SELECT m.period, sum(m.members_expected)::BIGINT FROM '{gt}/membership_monthly.parquet' m "
        "WHERE m.cdcs_code IN (SELECT unit_code FROM '{registry}/units.parquet' WHERE level = 'cdcs' "
        "AND parent_code = ? AND valid_to IS NULL) GROUP BY 1", [unit]))
    months = sorted(series)
    assert months[0] < created <= months[-1], "the tiny data spans the union's creation"
    assert all(series[p] > 0 for p in months)
    early = max(p for p in months if p < created)

    pg = open_logged_in(browser, served, {"dv": unit, "tu": months[0].strftime("%Y-%m"),
                                          "den": months[-1].strftime("%Y-%m")})
    try:
        assert f"dv={unit}" in pg.url
        assert trend(pg) == series  # every month, those before the union existed included
        assert metric(pg, "Đoàn viên") == fmt_int(series[months[-1]])
        name = truth.wh("SELECT arg_max(unit_name, valid_from) FROM marts.dim_union_unit WHERE unit_code = ?",
                        [unit])[0][0]
        assert name in pg.locator("[data-testid='stMain']").inner_text()  # the breadcrumb
        pg.screenshot(path=str(SHOTS / "real_xa_phuong.png"), full_page=True)

        # English, then the last month before the union existed: its CĐCS of today, English number format
        pg.locator("[data-testid='stSidebar']").get_by_text("English", exact=True).click()
        settle(pg, "Overview")
        pg.locator("[data-testid='stSidebar']").get_by_role("combobox", name="To", exact=True).click()
        pg.get_by_role("option", name=fmt_month(early, "en"), exact=True).click()
        pg.wait_for_function(f"() => location.search.includes('den={early:%Y-%m}')", timeout=30_000)
        settle(pg, "Overview")
        assert f"dv={unit}" in pg.url
        assert metric(pg, "Members") == fmt_int(series[early], "en")
        assert max(trend(pg)) == early
        pg.screenshot(path=str(SHOTS / "real_xa_phuong_en.png"), full_page=True)
    finally:
        pg.context.close()



def _nav(pg, title: str) -> None:
    pg.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title, exact=True).click()
    pg.wait_for_selector(f"h1:has-text('{title}')", timeout=60_000)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    pg.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=60_000)
    pg.wait_for_timeout(500)


def test_every_page_drill_and_export_on_pipeline_data(browser, served, truth, tmp_path):
    """On the warehouse the pipeline built: every page loads without an error and draws its charts; the unit
    selector drills from the country to one CĐCS (breadcrumb and URL follow); the dues table downloads as an
    .xlsx that opens with the same total as the warehouse."""
    import openpyxl

    pg = open_logged_in(browser, served)
    try:
        for url_path, title in PAGES:
            _nav(pg, title)
            assert pg.locator("[data-testid='stException']").count() == 0, url_path
            assert pg.get_by_text("Đã xảy ra lỗi").count() == 0, url_path
            if url_path != "bao_cao_dinh_ky":
                pg.wait_for_selector(".js-plotly-plot", timeout=30_000)
            pg.screenshot(path=str(SHOTS / f"real_{url_path}.png"), full_page=True)

        latest = truth.wh("SELECT max(period) FROM marts.fct_membership_monthly")[0][0]
        top, upper, cdcs = truth.wh(
            "SELECT top_unit_code, upper_unit_code, cdcs_code FROM marts.fct_membership_monthly "
            "WHERE period = ? AND members > 0 AND upper_unit_code IS NOT NULL ORDER BY members DESC, cdcs_code "
            "LIMIT 1", [latest])[0]
        _nav(pg, "Tổng quan")
        for code in (top, upper, cdcs):
            pg.get_by_role("combobox", name="Chọn đơn vị để xem chi tiết").first.click()
            pg.get_by_role("option", name=f"({code})").first.click()
            pg.wait_for_timeout(300)
            pg.get_by_role("button", name="Xem chi tiết").click()
            pg.wait_for_function(f"() => location.search.includes('dv={code}')", timeout=30_000)
            settle(pg, "Tổng quan")
        crumbs = pg.locator("[data-testid='stMain'] button").filter(has_text="›")
        assert crumbs.count() >= 3
        members = truth.wh("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ? AND cdcs_code = ?",
                           [latest, cdcs])[0][0]
        assert metric(pg, "Đoàn viên") == fmt_int(members)
        pg.screenshot(path=str(SHOTS / "real_drill_cdcs.png"), full_page=True)
        pg.get_by_role("button", name="Cả nước").click()
        pg.wait_for_function("() => !location.search.includes('dv=')", timeout=30_000)

        _nav(pg, "Đoàn phí")
        with pg.expect_download(timeout=30_000) as dl:
            pg.get_by_role("button", name="Tải Excel").first.click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        ws = openpyxl.load_workbook(path).active
        header = [c.value for c in ws[3]]
        assert "Đoàn phí phải thu (đồng)" in header and ws.max_row > 3
    finally:
        pg.context.close()
