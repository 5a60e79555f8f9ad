"""Dịch vụ & hoạt động (services and activities): reach per programme, beneficiaries, amounts, participation
rates."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_int, fmt_money, fmt_month, ref_name, t


def body() -> None:
    ctx = c.page_setup("dich_vu")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(f"{fmt_month(f.period_from, lg)} – {fmt_month(f.period_to, lg)}")
    progs = q.services_by_program(scope, f)
    names = [ref_name("program", p, lg) for p in progs["code"]]
    left, right = st.columns(2)
    with left:
        st.subheader(t("dich_vu.programs", lg))
        fig = go.Figure(go.Bar(
            y=[c.safe_label(n) for n in names][::-1], x=progs["beneficiaries"][::-1], orientation="h",
            marker_color=c.COLOURS[0], text=[fmt_int(v, lg) for v in progs["beneficiaries"]][::-1],
            customdata=[fmt_money(v, lg) for v in progs["amount"]][::-1],
            hovertemplate="%{y}<br>" + t("col.beneficiaries", lg) + ": <b>%{text}</b><br>"
                          + t("col.amount", lg) + ": %{customdata}<extra></extra>"))
        fig.update_xaxes(title_text=t("col.beneficiaries", lg))
        c.chart(fig, "dv_programs", height=360, filename="dich_vu_chuong_trinh")
    acts = q.activities_by_type(scope, f)
    anames = [ref_name("activity", a, lg) for a in acts["code"]]
    with right:
        st.subheader(t("dich_vu.activities", lg))
        fig = go.Figure(go.Bar(
            y=[c.safe_label(n) for n in anames][::-1], x=acts["participants"][::-1], orientation="h",
            marker_color=c.COLOURS[3], text=[fmt_int(v, lg) for v in acts["participants"]][::-1],
            hovertemplate="%{y}<br>" + t("col.participants", lg) + ": <b>%{text}</b><extra></extra>"))
        fig.update_xaxes(title_text=t("col.participants", lg))
        c.chart(fig, "dv_activities", height=360, filename="dich_vu_hoat_dong")
    monthly = q.services_monthly(scope, f)
    st.subheader(t("dich_vu.trend", lg))
    fig = go.Figure()
    for i, code in enumerate(sorted(monthly["code"].unique())):
        sub = monthly[monthly["code"] == code]
        nm = ref_name("program", code, lg)
        fig.add_bar(x=sub["period"], y=sub["deliveries"], name=nm, marker_color=c.COLOURS[i % len(c.COLOURS)],
                    customdata=[fmt_int(v, lg) for v in sub["deliveries"]],
                    hovertemplate="%{x|%m/%Y}: <b>%{customdata}</b><extra>" + c.safe_label(nm) + "</extra>")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text=t("col.deliveries", lg))
    c.restructuring_markers(c.time_axis(fig, lg), lg, f.period_from, f.period_to)
    c.chart(fig, "dv_trend", height=380, filename="dich_vu_thang")
    t1, t2 = st.columns(2)
    with t1:
        show = c.as_percent(progs.assign(program=names)[["code", "program", "deliveries", "beneficiaries", "amount",
                                                         "reach"]], ["reach"])
        c.table(c.label_columns(show, lg, {"code": "col.unit_code"}), "dich_vu_chuong_trinh", lg,
                title=t("dich_vu.programs", lg))
    with t2:
        show = c.as_percent(acts.assign(activity=anames)[["code", "activity", "participations", "participants",
                                                          "participation_rate"]], ["participation_rate"])
        c.table(c.label_columns(show, lg, {"code": "col.unit_code"}), "dich_vu_hoat_dong", lg,
                title=t("dich_vu.activities", lg))


c.page_guard(body)
