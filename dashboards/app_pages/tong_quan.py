"""Tổng quan (overview): KPI cards with change vs the previous month and the same month last year (and vs the
year's target where one is set in data/reference/plans/targets.csv), trends, and the units one level down (click a
bar to drill)."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_int, fmt_month, t

KPIS = [("members", "kpi.members", False), ("joins", "kpi.joins", False), ("leaves", "kpi.leaves", True),
        ("net", "kpi.net", False), ("coverage", "kpi.coverage", False), ("dues_ratio", "kpi.dues_ratio", False),
        ("services", "kpi.services", False)]


def body() -> None:
    ctx = c.page_setup("tong_quan")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(f"{fmt_month(f.period_to, lg)} · ↑↓ {t('kpi.vs_prev', lg)}")
    gaps = q.unit_filter_gaps(scope, f)
    if gaps:
        st.info(t("unit.cube_gaps", lg, months=c.month_ranges(gaps, lg)))
    kpis = q.overview_kpis(scope, f).set_index("kpi")
    targets = {r["kpi"]: r for r in q.overview_targets(scope, f).to_dict("records")}
    cols = st.columns(4)
    for i, (key, label, inverse) in enumerate(KPIS):
        r = kpis.loc[key]
        note = c.target_note(targets[key], lg) if key in targets else None
        with cols[i % 4]:
            c.kpi_card(t(label, lg), r["value"], r["prev"], r["year"], r["kind"], lg, inverse=inverse, note=note)

    left, right = st.columns(2)
    trend = q.members_trend(scope, f)
    with left:
        st.subheader(t("tong_quan.trend", lg))
        fig = go.Figure(go.Scatter(
            x=trend["period"], y=trend["members"], mode="lines+markers", name=t("col.members", lg),
            line=dict(color=c.COLOURS[0], width=3),
            customdata=[fmt_int(v, lg) for v in trend["members"]],
            hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b> " + t("col.members", lg).lower() + "<extra></extra>"))
        fig.update_yaxes(title_text=t("col.members", lg), rangemode="tozero")
        c.restructuring_markers(c.time_axis(fig, lg), lg, f.period_from, f.period_to)
        c.chart(fig, "tq_trend", filename="tong_quan_xu_huong")
    flows = q.flows_monthly(scope, f)
    with right:
        st.subheader(t("tong_quan.flows", lg))
        fig = go.Figure()
        for col, colour, sign in (("joins", c.COLOURS[3], 1), ("leaves", c.COLOURS[1], -1)):
            fig.add_bar(x=flows["period"], y=sign * flows[col], name=t(f"col.{col}", lg), marker_color=colour,
                        customdata=[fmt_int(v, lg) for v in flows[col]],
                        hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b><extra>" + t(f"col.{col}", lg) + "</extra>")
        fig.update_layout(barmode="relative")
        fig.update_yaxes(title_text=t("col.count", lg))
        c.restructuring_markers(c.time_axis(fig, lg), lg, f.period_from, f.period_to)
        c.chart(fig, "tq_flows", filename="tong_quan_bien_dong")

    kids = q.children(scope, f)
    if len(kids):
        st.subheader(t("tong_quan.children", lg))
        top = kids.head(25).iloc[::-1]
        fig = go.Figure(go.Bar(
            x=top["members"], y=[c.safe_label(n) for n in top["unit_name"]], orientation="h",
            marker_color=c.COLOURS[0], customdata=top[["unit_code"]].values,
            text=[fmt_int(v, lg) for v in top["members"]], textposition="auto",
            hovertemplate="%{y}<br>" + t("col.members", lg) + ": <b>%{text}</b><extra></extra>"))
        fig.update_xaxes(title_text=t("col.members", lg))
        event = c.chart(fig, f"tq_children_{f.unit}_{f.province}", on_select="rerun",
                        height=max(260, 28 * len(top) + 80), filename="tong_quan_don_vi")
        c.handle_chart_drill(event, top["unit_code"].tolist())
        c.drill_picker(ctx, kids)
        show = kids.assign(level=[c.level_name(u, lg) for u in kids["unit_code"]])
        c.table(c.label_columns(show[["unit_code", "unit_name", "level", "members"]], lg,
                                {"unit_name": "col.unit"}), "tong_quan_don_vi", lg,
                title=t("tong_quan.children", lg))


c.page_guard(body)
