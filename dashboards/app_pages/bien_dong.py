"""Biến động (flows): joins, leaves by reason and transfers by month, the 2025 restructuring marked on every
time axis, and stock and flow per province on today's 34 provinces across the merger."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_int, fmt_month, ref_name, t


def body() -> None:
    ctx = c.page_setup("bien_dong")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(f"{fmt_month(f.period_from, lg)} – {fmt_month(f.period_to, lg)} · {t('note.provinces_34', lg)}")
    m = q.flows_monthly(scope, f)
    st.subheader(t("bien_dong.flows", lg))
    fig = go.Figure()
    for col, colour, sign in (("joins", c.COLOURS[3], 1), ("transfers_in", c.COLOURS[6], 1),
                              ("leaves", c.COLOURS[1], -1), ("transfers_out", c.COLOURS[5], -1)):
        fig.add_bar(x=m["period"], y=sign * m[col], name=t(f"col.{col}", lg), marker_color=colour,
                    customdata=[fmt_int(v, lg) for v in m[col]],
                    hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b><extra>" + t(f"col.{col}", lg) + "</extra>")
    fig.update_layout(barmode="relative")
    fig.update_yaxes(title_text=t("col.count", lg))
    c.restructuring_markers(c.time_axis(fig, lg), lg, f.period_from, f.period_to)
    c.chart(fig, "bd_flows", height=420, filename="bien_dong_thang")

    left, right = st.columns([2, 3])
    reasons = q.leaves_by_reason(scope, f)
    with left:
        st.subheader(t("bien_dong.reasons", lg))
        names = [ref_name("leave_reason", r, lg) for r in reasons["code"]]
        fig = go.Figure(go.Pie(labels=[c.safe_label(n) for n in names], values=reasons["leaves"], hole=0.45,
                               text=[fmt_int(v, lg) for v in reasons["leaves"]], textinfo="percent",
                               hovertemplate="%{label}: <b>%{text}</b> (%{percent})<extra></extra>",
                               marker=dict(colors=c.COLOURS)))
        c.chart(fig, "bd_reasons", height=380, filename="bien_dong_ly_do")
        c.table(c.label_columns(reasons.assign(reason=names)[["code", "reason", "leaves"]], lg,
                                {"code": "col.unit_code"}), "bien_dong_ly_do", lg, title=t("bien_dong.reasons", lg))
    prov = q.flows_by_province(scope, f)
    with right:
        st.subheader(t("bien_dong.by_province", lg))
        show = prov.copy()
        show.insert(1, "province", [ref_name("province", p, lg) for p in show["province_new_code"]])
        show["net"] = show["closing"] - show["opening"]
        c.table(c.label_columns(show, lg, {"province_new_code": "col.province_code"}), "bien_dong_tinh", lg,
                title=t("bien_dong.by_province", lg))


c.page_guard(body)
