"""What each dashboard page queries for its first paint, as one callable per page.

`PAGE_QUERIES[page](scope, filters)` returns a dict of results; the Streamlit page calls exactly these
functions, so the benchmark (`bench/`) can time a page without a browser:

    from pipelines.analytics.pages import PAGE_QUERIES
    from pipelines.analytics.scoping import national_scope
    from pipelines.analytics.filters import Filters
    from pipelines.analytics import db
    db.clear_cache()                      # time a cold page; omit to time the cached path
    PAGE_QUERIES["tong_quan"](national_scope(), Filters())
"""
from __future__ import annotations

from pipelines.analytics import queries as q
from pipelines.analytics.db import batch
from pipelines.analytics.filters import Filters


def _resolved(f: Filters | None) -> Filters:
    return q.resolve(f or Filters())


def tong_quan(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "kpis": q.overview_kpis(scope, f), "targets": q.overview_targets(scope, f),
                "gaps": q.unit_filter_gaps(scope, f), "trend": q.members_trend(scope, f),
                "flows": q.flows_monthly(scope, f), "children": q.children(scope, f)}


def ban_do(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "provinces": q.by_province(scope, f)}


def co_cau(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        out = {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f)}
        for dim in q.STRUCTURE_DIMS:
            out[dim] = q.structure(scope, f, dim)
        return out


def bien_dong(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "monthly": q.flows_monthly(scope, f), "reasons": q.leaves_by_reason(scope, f),
                "provinces": q.flows_by_province(scope, f)}


def dich_vu(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "programs": q.services_by_program(scope, f), "monthly": q.services_monthly(scope, f),
                "activities": q.activities_by_type(scope, f)}


def doan_phi(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "monthly": q.dues_monthly(scope, f), "units": q.dues_by_unit(scope, f),
                "zero": q.dues_zero_units(scope, f)}


def phat_trien(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "top": q.recruitment_top(scope, f), "no_cdcs": q.recruitment_top(scope, f, 50, True),
                "provinces": q.recruitment_by_province(scope, f)}


def nop_bao_cao(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        return {"filters": f, "as_of": q.data_as_of(scope, f), "path": q.unit_path(scope, f),
                "matrix": q.submissions_matrix(scope, f), "quality": q.branch_quality(scope, f),
                "rules": q.refusal_by_rule(scope, f), "conflicts": q.member_conflicts_by_type(scope, f),
                "conflict_units": q.member_conflicts_by_unit(scope, f)}


def bao_cao_dinh_ky(scope, f: Filters | None = None) -> dict:
    with batch():
        f = _resolved(f)
        dates = q.statutory_dates(scope, f)
        out = {"filters": f, "as_of": q.data_as_of(scope, f), "dates": dates, "units": None, "report": None}
        if dates:
            units = q.statutory_units(scope, f, dates[0])
            out["units"] = units
            if len(units):
                out["report"] = q.statutory_report(scope, f, units["unit_code"].iloc[0], dates[0])
        return out


PAGE_QUERIES = {
    "tong_quan": tong_quan, "ban_do": ban_do, "co_cau": co_cau, "bien_dong": bien_dong,
    "dich_vu": dich_vu, "doan_phi": doan_phi, "phat_trien": phat_trien, "nop_bao_cao": nop_bao_cao,
    "bao_cao_dinh_ky": bao_cao_dinh_ky,
}
