"""Đoàn phí (dues): collected vs expected under the rule in force, arrears, units that pay nothing."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_int, fmt_money, fmt_month, fmt_pct, ref_name, t


def body() -> None:
    ctx = c.page_setup("doan_phi")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    rule = q.dues_rule_in_force(f.period_to)
    if rule:
        st.info(t("doan_phi.rule", lg, rate=fmt_pct(rule["rate"], 1, lg), cap=fmt_int(rule["cap"], lg)),
                icon=":material/gavel:")
    m = q.dues_monthly(scope, f)
    st.subheader(t("doan_phi.trend", lg))
    fig = go.Figure()
    for col, colour, dash in (("dues_expected", c.COLOURS[7], "dash"), ("dues_collected", c.COLOURS[0], "solid")):
        fig.add_scatter(x=m["period"], y=m[col], name=t(f"col.{col}", lg), mode="lines+markers",
                        line=dict(color=colour, dash=dash, width=3), customdata=[fmt_money(v, lg) for v in m[col]],
                        hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b><extra>" + t(f"col.{col}", lg) + "</extra>")
    fig.add_bar(x=m["period"], y=m["arrears"], name=t("col.arrears", lg), marker_color=c.COLOURS[1], opacity=0.5,
                customdata=[fmt_money(v, lg) for v in m["arrears"]],
                hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b><extra>" + t("col.arrears", lg) + "</extra>")
    fig.update_yaxes(title_text=t("uom.vnd", lg), rangemode="tozero")
    c.restructuring_markers(c.time_axis(fig, lg), lg, f.period_from, f.period_to)
    c.chart(fig, "dp_trend", height=400, filename="doan_phi_thang")
    units = q.dues_by_unit(scope, f)
    st.subheader(t("doan_phi.by_unit", lg) + f" · {fmt_month(f.period_from, lg)} – {fmt_month(f.period_to, lg)}")
    if len(units):
        top = units.head(25).iloc[::-1]
        fig = go.Figure(go.Bar(
            y=[c.safe_label(n) for n in top["unit_name"]], x=top["collection_rate"] * 100, orientation="h",
            customdata=top[["unit_code"]].values, marker_color=c.COLOURS[2],
            text=[fmt_pct(v, 1, lg) for v in top["collection_rate"]], textposition="auto",
            hovertemplate="%{y}<br>" + t("col.collection_rate", lg) + ": <b>%{text}</b><extra></extra>"))
        fig.update_xaxes(title_text=t("col.collection_rate", lg), range=[0, 105])
        event = c.chart(fig, f"dp_units_{f.unit}_{f.province}", on_select="rerun",
                        height=max(240, 28 * len(top) + 80), filename="doan_phi_don_vi")
        c.handle_chart_drill(event, top["unit_code"].tolist())
    show = c.as_percent(units, ["collection_rate"])
    c.table(c.label_columns(show, lg, {"unit_name": "col.unit"}), "doan_phi_don_vi", lg, title=t("doan_phi.by_unit", lg))
    st.subheader(t("doan_phi.zero", lg))
    zero = q.dues_zero_units(scope, f)
    if zero.empty:
        st.success(t("empty", lg))
    else:
        zero = zero.assign(province=[ref_name("province", p, lg) for p in zero["province_new_code"]])
        c.table(c.label_columns(zero[["unit_code", "unit_name", "province", "zero_months", "dues_expected"]], lg,
                                {"unit_name": "col.unit"}), "doan_phi_khong_nop", lg, title=t("doan_phi.zero", lg))


c.page_guard(body)
