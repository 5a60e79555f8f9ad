"""Bản đồ (map): the 34 provinces coloured by a chosen metric; clicking a province drills into it."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.geo import geojson_shared
from pipelines.analytics.i18n import fmt_int, fmt_pct, ref_codes, ref_name, t

METRICS = {"members": ("metric.members", "int", "Blues"), "growth": ("metric.growth", "pct", "RdYlGn"),
           "female_share": ("metric.female_share", "pct", "Purples"),
           "coverage": ("metric.coverage", "pct", "Greens"), "dues_rate": ("metric.dues_rate", "pct", "Oranges")}


def body() -> None:
    ctx = c.page_setup("ban_do")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    metric = c.view_param("chiso", "members", list(METRICS))
    picked = st.segmented_control(t("ban_do.metric", lg), list(METRICS), default=metric, key="map_metric",
                                  format_func=lambda m: t(METRICS[m][0], lg), required=True)
    if picked and picked != metric:
        c.set_view("chiso", picked)
        metric = picked
    label, kind, scale = METRICS[metric]
    data = q.by_province(scope, f)
    allp = pd.DataFrame({"province_new_code": ref_codes("province")})
    df = allp.merge(data, on="province_new_code", how="left")
    df["name"] = [ref_name("province", p, lg) for p in df["province_new_code"]]
    fmt = (lambda v: fmt_int(v, lg)) if kind == "int" else (lambda v: fmt_pct(v, 1, lg))
    df["shown"] = [fmt(v) if pd.notna(v) else t("kpi.na", lg) for v in df[metric]]
    z = pd.to_numeric(df[metric], errors="coerce") * (100 if kind == "pct" else 1)
    geo = geojson_shared()
    st.subheader(t("ban_do.title", lg))
    st.caption(t("ban_do.click", lg))
    fig = go.Figure()
    fig.add_trace(go.Choropleth(  # every province, light grey: the base map (no tiles offline)
        geojson=geo, featureidkey="properties.new_code", locations=df["province_new_code"], z=[0] * len(df),
        colorscale=[[0, "#eeeeee"], [1, "#eeeeee"]], showscale=False, marker_line_color="white",
        marker_line_width=0.6, hoverinfo="skip"))
    has = z.notna()
    sel = f.province
    fig.add_trace(go.Choropleth(
        geojson=geo, featureidkey="properties.new_code", locations=df.loc[has, "province_new_code"],
        z=z[has], colorscale=scale, marker_line_color=["#111111" if p == sel else "white"
                                                      for p in df.loc[has, "province_new_code"]],
        marker_line_width=[2.5 if p == sel else 0.6 for p in df.loc[has, "province_new_code"]],
        customdata=df.loc[has, ["province_new_code", "name", "shown"]].values,
        colorbar=dict(title=dict(text=t(label, lg)), thickness=12),
        hovertemplate="<b>%{customdata[1]}</b> (%{customdata[0]})<br>" + t(label, lg)
                      + ": <b>%{customdata[2]}</b><extra></extra>"))
    fig.update_geos(fitbounds="locations", visible=False, projection_type="mercator")
    event = c.chart(fig, f"map_{metric}_{f.province}_{f.unit}", on_select="rerun", height=640,
                    filename="ban_do")
    codes = df.loc[has, "province_new_code"].tolist()
    c.handle_chart_drill(event, codes, kind="province")
    st.subheader(t("ban_do.table", lg))
    show = data.copy()
    show.insert(1, "province", [ref_name("province", p, lg) for p in show["province_new_code"]])
    show = show[["province_new_code", "province", "members", "members_year", "growth", "female_share",
                 "coverage", "dues_rate"]]
    show = c.as_percent(show, ["growth", "female_share", "coverage", "dues_rate"])
    c.table(c.label_columns(show, lg, {"province_new_code": "col.province_code",
                                       "growth": "metric.growth", "female_share": "metric.female_share",
                                       "coverage": "metric.coverage", "dues_rate": "metric.dues_rate"}),
            "ban_do_tinh", lg, title=t("ban_do.table", lg))


c.page_guard(body)
