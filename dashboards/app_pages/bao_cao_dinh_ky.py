"""Báo cáo định kỳ (statutory report): the semi-annual report as of 31/5 and 30/11 for any unit in scope,
on screen and as an XLSX in the layout union offices use."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import common as c
from pipelines.analytics import db
from pipelines.analytics import export as ex
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_date, t


def body() -> None:
    ctx = c.page_setup("bao_cao_dinh_ky")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    dates = q.statutory_dates(scope, f)
    if not dates:
        st.info(t("bao_cao.none", lg))
        return
    iso = [d.isoformat() for d in dates]
    d_cur = c.view_param("ngay", iso[0], iso)
    c1, c2 = st.columns([1, 3])
    with c1:
        d_pick = st.selectbox(t("bao_cao.report_date", lg), iso, index=iso.index(d_cur), key="bc_date",
                              format_func=lambda d: fmt_date(d, lg))
    if d_pick != d_cur:
        c.set_view("ngay", d_pick)
    report_date = dates[iso.index(d_pick)]
    units = q.statutory_units(scope, f, report_date)
    if units.empty:
        st.info(t("bao_cao.none", lg))
        return
    codes = units["unit_code"].tolist()
    names = dict(zip(units["unit_code"], units["unit_name"]))
    default = f.unit if f.unit in codes else codes[0]
    u_cur = c.view_param("dv_bc", default, codes)
    with c2:
        u_pick = st.selectbox(t("bao_cao.unit", lg), codes, index=codes.index(u_cur), key="bc_unit",
                              format_func=lambda u: f"{names.get(u, u)} ({u}) · {c.level_name(None if u == 'TLD' else u, lg)}")
    if u_pick != u_cur:
        c.set_view("dv_bc", u_pick)
    report = q.statutory_report(scope, f, u_pick, report_date)
    if report is None:
        st.info(t("bao_cao.none", lg))
        return
    st.markdown(f"**{c.md_escape(t('bao_cao.title', lg))}**")
    st.caption(c.md_escape(f"{report.get('display_name')} · " + t("bao_cao.subtitle", lg, date=fmt_date(report_date, lg))))
    rows = []
    indicators = q.statutory_indicators()
    for i, (col, label, uom, fcol) in enumerate(indicators, start=1):
        v = report.get(col)
        fv = report.get(fcol) if fcol else None
        rows.append({"stt": i, "indicator": t(label, lg), "uom": t(uom, lg),
                     "total": None if v is None or pd.isna(v) else int(v),
                     "female": None if fv is None or pd.isna(fv) else int(fv)})
    df = pd.DataFrame(rows)
    df.columns = [t("col.stt", lg), t("bao_cao.col_indicator", lg), t("bao_cao.col_unit", lg),
                  t("bao_cao.col_total", lg), t("bao_cao.col_female", lg)]
    st.dataframe(df, hide_index=True, width="stretch")
    xlsx = ex.statutory_xlsx(report, indicators, report_date, lg, version=db.version())
    st.download_button(t("bao_cao.export", lg), xlsx, file_name=f"bao_cao_{u_pick}_{report_date:%Y%m%d}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="bc_xlsx",
                       type="primary", icon=":material/download:", on_click="ignore")


c.page_guard(body)
