"""Phát triển đoàn viên (recruitment): employers with the most insured workers who are not members, and
employers where no CĐCS exists yet."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics.i18n import fmt_int, fmt_month, ref_name, t


def _employers(df, lg):
    out = df.assign(province=[ref_name("province", p, lg) for p in df["province_new_code"]],
                    industry=[ref_name("industry", i, lg) for i in df["industry_code"]],
                    ownership=[ref_name("ownership", o, lg) for o in df["ownership_type"]],
                    has_cdcs=[t("yes" if h else "no", lg) for h in df["has_cdcs"]])
    return c.label_columns(out[["employer_code", "employer_name", "province", "industry", "ownership",
                                "insured_workers", "members", "potential", "has_cdcs"]], lg,
                           {"employer_code": "col.unit_code", "employer_name": "col.employer"})


def body() -> None:
    ctx = c.page_setup("phat_trien")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(fmt_month(f.period_to, lg))
    top = q.recruitment_top(scope, f)
    st.subheader(t("phat_trien.top", lg))
    if len(top):
        head = top.head(15).iloc[::-1]
        fig = go.Figure()
        fig.add_bar(y=[c.safe_label(n) for n in head["employer_name"]], x=head["members"], orientation="h",
                    name=t("col.members", lg), marker_color=c.COLOURS[0],
                    customdata=[fmt_int(v, lg) for v in head["members"]],
                    hovertemplate="%{y}: <b>%{customdata}</b><extra>" + t("col.members", lg) + "</extra>")
        fig.add_bar(y=[c.safe_label(n) for n in head["employer_name"]], x=head["potential"], orientation="h",
                    name=t("col.potential", lg), marker_color=c.COLOURS[2],
                    customdata=[fmt_int(v, lg) for v in head["potential"]],
                    hovertemplate="%{y}: <b>%{customdata}</b><extra>" + t("col.potential", lg) + "</extra>")
        fig.update_layout(barmode="stack")
        fig.update_xaxes(title_text=t("col.insured_workers", lg))
        c.chart(fig, "pt_top", height=max(260, 28 * len(head) + 90), filename="phat_trien_top")
    c.table(_employers(top, lg), "phat_trien_top", lg, title=t("phat_trien.top", lg))
    st.subheader(t("phat_trien.no_cdcs", lg))
    c.table(_employers(q.recruitment_top(scope, f, 50, True), lg), "phat_trien_chua_co_cdcs", lg,
            title=t("phat_trien.no_cdcs", lg))
    st.subheader(t("phat_trien.by_province", lg))
    prov = q.recruitment_by_province(scope, f)
    prov = c.as_percent(prov.assign(province=[ref_name("province", p, lg) for p in prov["province_new_code"]]),
                        ["coverage"])
    c.table(c.label_columns(prov[["province_new_code", "province", "employers", "employers_without_cdcs",
                                  "insured_workers", "members", "potential", "coverage"]], lg,
                            {"province_new_code": "col.province_code", "employers": "col.employer",
                             "employers_without_cdcs": "phat_trien.no_cdcs", "coverage": "metric.coverage"}),
            "phat_trien_tinh", lg, title=t("phat_trien.by_province", lg))


c.page_guard(body)
