"""Dashboard pages timed without a browser, through the dashboards engineer's `PAGE_QUERIES[page](scope, filters)`
(the exact functions the Streamlit pages call), at national scope and at one provincial federation's scope
(the access engineer's `scope_for`). Runs inside a child process with DOANVIEN_DATA_DIR set.

Per scope, in one fresh process (imports paid once), per page:
- first paint: the page's first call (new connection, empty result cache; imports already done);
- cold: result cache cleared and a new read-only connection for every call (what a new session pays);
- warm: result cache cleared, one connection kept open (DuckDB's buffers warm);
- filter change: as warm, with a different filter each time (gender, then a province or an age band);
- cached: the query layer's own result cache hit (what a revisit pays).
"""
from __future__ import annotations

import statistics
import time


def _pct(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    s = sorted(vals)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


_PROVINCE: list = []


def province_scope():
    """The scope of a provincial leader of the biggest provincial federation (by cube rows) in the latest period."""
    from pipelines.access.accounts import User
    from pipelines.access.scope import scope_for
    from pipelines.analytics import db

    con_sql = ("SELECT top_unit_code, count(*) FROM marts.mart_membership_cube WHERE top_unit_code LIKE 'T%' "
               "GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
    with db.batch() as con:
        code = con.execute(con_sql).fetchone()[0]
        period = con.execute("SELECT max(period) FROM marts.mart_membership_cube").fetchone()[0]
    user = User(username="bench", display_name="bench", role="province_leader", unit_code=code)
    return scope_for(user, period), code


def time_page(page: str, scope_name: str, repeat: int = 20) -> dict:
    from pipelines.analytics import db
    from pipelines.analytics.filters import Filters
    from pipelines.analytics.pages import PAGE_QUERIES
    from pipelines.analytics.scoping import national_scope

    if scope_name == "national":
        scope, label = national_scope(), "national"
    else:
        if not _PROVINCE:  # resolved once per process
            _PROVINCE.extend(province_scope())
        scope, code = _PROVINCE
        label = f"province {code}"
    fn = PAGE_QUERIES[page]
    f0 = Filters()

    def once(f=f0) -> float:
        t = time.perf_counter()
        fn(scope, f)
        return (time.perf_counter() - t) * 1000

    db.clear_cache()
    first = once()
    # several calls where cheap: about 8 s per series, at least 5 calls, at most `repeat`
    repeat = max(5, min(repeat, int(8000 / max(first, 1.0))))
    cold = []
    for _ in range(repeat):
        db.clear_cache()
        cold.append(once())
    warm, change, cached = [], [], []
    variants = [f0.with_(gender="F"), f0.with_(gender="M"), f0.with_(age_band="30-39"), f0]
    with db.batch():
        for _ in range(repeat):
            db.clear_cache()
            warm.append(once())
        for i in range(repeat):
            db.clear_cache()
            change.append(once(variants[i % len(variants)]))
        once()
        for _ in range(repeat):
            cached.append(once())
    c50, c95 = _pct(cold)
    w50, w95 = _pct(warm)
    f50, f95 = _pct(change)
    k50, _ = _pct(cached)
    return {"page": page, "scope": label, "first_paint_ms": first, "cold_p50_ms": c50, "cold_p95_ms": c95,
            "warm_p50_ms": w50, "warm_p95_ms": w95, "filter_change_p50_ms": f50, "filter_change_p95_ms": f95,
            "cached_p50_ms": k50, "repeat": repeat, "error": None}


def page_names() -> list[str]:
    from pipelines.analytics.pages import PAGE_QUERIES

    return list(PAGE_QUERIES)


def time_pages(scope_name: str, repeat: int = 20) -> list[dict]:
    """Every page at one scope, in one process (imports paid once): each page's first call is its first
    paint (new connection, empty result cache), then its series."""
    rows = []
    for page in page_names():
        try:
            rows.append(time_page(page, scope_name, repeat))
        except Exception as exc:  # noqa: BLE001 - one failing page is reported, the others still run
            rows.append({"page": page, "scope": scope_name, "error": f"{type(exc).__name__}: {exc}"[:500]})
    return rows
