"""Cơ cấu (structure): members by gender, age band, ethnic group, ownership type and industry, at the last
month of the period; cells under the threshold are suppressed so no one can be singled out."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.filters import unit_column
from pipelines.analytics.i18n import fmt_int, fmt_month, fmt_pct, ref_name, t

DIMS = [("gender", "co_cau.by_gender", "gender", "col.gender"),
        ("age_band", "co_cau.by_age", "age_band", "col.age_band"),
        ("ethnicity", "co_cau.by_ethnicity", "ethnic_group", "col.ethnicity"),
        ("ownership", "co_cau.by_ownership", "ownership", "col.ownership"),
        ("industry", "co_cau.by_industry", "industry", "col.industry")]


def body() -> None:
    ctx = c.page_setup("co_cau")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(f"{fmt_month(f.period_to, lg)} · " + t("suppressed.note", lg, k=q.SUPPRESS_K))
    if f.unit and unit_column(f.unit) == "cdcs_code":
        st.info(t("co_cau.cdcs_note", lg))
    elif q.unit_filter_gaps(scope, f, table=q.CUBE, periods=[f.period_to]):
        st.info(t("co_cau.mapped_note", lg, month=fmt_month(f.period_to, lg)))
    cols = st.columns(2)
    for i, (dim, title, kind, col_label) in enumerate(DIMS):
        df = q.structure(scope, f, dim)
        if dim == "age_band":
            df = df.sort_values("code")
        if kind == "ethnic_group" and len(df) and all(str(x).isdigit() for x in df["code"]):
            kind = "ethnicity"  # a warehouse carrying the 54 codes rather than the grouping
        names = [ref_name(kind, x, lg) if kind else str(x) for x in df["code"]]
        shown = [f"<{q.SUPPRESS_K}" if s else fmt_int(v, lg) for v, s in zip(df["members"], df["suppressed"])]
        with cols[i % 2]:
            st.subheader(t(title, lg))
            if df.empty:
                st.info(t("empty", lg))
                continue
            vals = [0 if s else int(v) for v, s in zip(df["members"], df["suppressed"])]
            shares = [("" if s else fmt_pct(sh, 1, lg)) for sh, s in zip(df["share"], df["suppressed"])]
            fig = go.Figure(go.Bar(
                y=[c.safe_label(n) for n in names][::-1], x=vals[::-1], orientation="h",
                marker_color=c.COLOURS[i % len(c.COLOURS)],
                text=[f"{a} ({b})" if b else a for a, b in zip(shown, shares)][::-1], textposition="auto",
                hovertemplate="%{y}: <b>%{text}</b><extra></extra>"))
            fig.update_xaxes(title_text=t("col.members", lg))
            c.chart(fig, f"cc_{dim}", height=max(220, 30 * len(df) + 90), filename=f"co_cau_{dim}")
            table = df.assign(name=names, members=[None if s else v for v, s in zip(df["members"], df["suppressed"])])
            table = c.as_percent(table[["code", "name", "members", "share"]], ["share"])
            c.table(c.label_columns(table, lg, {"code": "col.unit_code", "name": col_label}), f"co_cau_{dim}", lg,
                    title=t(title, lg))


c.page_guard(body)
