"""Bản đồ (map): the 34 provinces coloured by a chosen metric; clicking a province drills into it."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from plotly.colors import sample_colorscale

from pipelines.analytics.geo import province_shapes
from pipelines.analytics.i18n import fmt_int, fmt_pct, ref_codes, ref_name, t

METRICS = {"members": ("metric.members", "int", "Blues"), "growth": ("metric.growth", "pct", "RdYlGn"),
           "female_share": ("metric.female_share", "pct", "Purples"),
           "coverage": ("metric.coverage", "pct", "Greens"), "dues_rate": ("metric.dues_rate", "pct", "Oranges")}


def map_figure(df: pd.DataFrame, z: pd.Series, label: str, scale: str, selected: str | None,
               lg: str) -> go.Figure:
    """The 34 provinces as filled SVG shapes from the local GeoJSON (no tiles, no network: Plotly's `geo`
    subplot would fetch its world outline from a CDN), coloured by `z`, one clickable marker per province."""
    shapes = province_shapes()
    zmin, zmax = (float(z.min()), float(z.max())) if z.notna().any() else (0.0, 1.0)
    span = (zmax - zmin) or 1.0
    # the ramp starts at 15 %: the lowest value is still visibly coloured (not mistaken for "no data")
    stops = [0.15 + 0.085 * i for i in range(11)]
    scale = [[i / 10, col] for i, col in enumerate(sample_colorscale(scale, stops))]
    fig = go.Figure()
    for code, zv, shown, name in zip(df["province_new_code"], z, df["shown"], df["name"]):
        sh = shapes[code]
        colour = "#e6e6e6" if pd.isna(zv) else sample_colorscale(scale, [(float(zv) - zmin) / span])[0]
        fig.add_trace(go.Scatter(
            x=sh["lon"], y=sh["lat"], mode="lines", fill="toself", fillcolor=colour,
            line=dict(color="#111111" if code == selected else "white", width=2.5 if code == selected else 0.7),
            hoveron="fills", hoverinfo="text", text=f"{c.safe_label(name)} ({code}): {shown}", showlegend=False))
    cx = [shapes[p]["centroid"][0] for p in df["province_new_code"]]
    cy = [shapes[p]["centroid"][1] for p in df["province_new_code"]]
    fig.add_trace(go.Scatter(  # the colour bar only
        x=[cx[0], cx[0]], y=[cy[0], cy[0]], mode="markers", hoverinfo="skip", showlegend=False,
        marker=dict(size=0.1, opacity=0, color=[zmin, zmax], colorscale=scale, cmin=zmin, cmax=zmax, showscale=True,
                    colorbar=dict(title=dict(text=t(label, lg)), thickness=12))))
    fig.add_trace(go.Scatter(  # one clickable point per province (the drill-down)
        x=cx, y=cy, mode="markers", showlegend=False,
        marker=dict(size=[10 if pd.notna(v) else 6 for v in z],
                    color=["#1f2937" if pd.notna(v) else "#b0b0b0" for v in z], line=dict(color="white", width=1)),
        customdata=df[["province_new_code", "name", "shown"]].values,
        hovertemplate="<b>%{customdata[1]}</b> (%{customdata[0]})<br>" + t(label, lg)
                      + ": <b>%{customdata[2]}</b><extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1.04)
    fig.update_layout(plot_bgcolor="white", dragmode="pan", clickmode="event+select")
    return fig


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
    df["name"] = [c.safe_label(n) for n in df["name"]]
    z = pd.to_numeric(df[metric], errors="coerce").astype(float) * (100 if kind == "pct" else 1)
    st.subheader(t("ban_do.title", lg))
    st.caption(t("ban_do.click", lg))
    fig = map_figure(df, z, label, scale, f.province, lg)
    event = c.chart(fig, f"map_{metric}_{f.province}_{f.unit}", on_select="rerun", height=720, filename="ban_do")
    c.handle_chart_drill(event, df["province_new_code"].tolist(), kind="province", curve=len(fig.data) - 1)
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
