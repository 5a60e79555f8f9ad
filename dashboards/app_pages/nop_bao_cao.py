"""Tình hình nộp báo cáo (submissions): which branches sent which months, late and missing ones, refusal
rates, a quality score per branch, a drill to the refused rows and their reasons (never the values), and the
identity conflicts the warehouse surfaced instead of merging (per type and CĐCS, never a person's details), with
each conflict's review and a form for an official to record one (`pipelines.analytics.stewardship`)."""
from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from dashboards import common as c
from pipelines.analytics import queries as q
from pipelines.analytics import stewardship
from pipelines.analytics.i18n import fmt_date, fmt_month, t
from pipelines.analytics.labels import conflict_label, reason_label, rule_label

STATUS = ["on_time", "late", "refused", "missing"]
STATUS_COLOURS = {"on_time": "#2e9d5b", "late": "#f2a900", "refused": "#d9372b", "missing": "#bdbdbd"}


def body() -> None:
    ctx = c.page_setup("nop_bao_cao")
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    c.breadcrumb(ctx)
    st.caption(f"{fmt_month(f.period_from, lg)} – {fmt_month(f.period_to, lg)} · {t('kind.roster', lg)}")
    matrix = q.submissions_matrix(scope, f)
    st.subheader(t("nop_bao_cao.matrix", lg))
    if matrix.empty:
        st.info(t("empty", lg))
    else:
        branches = sorted(matrix["branch_code"].unique())
        names = dict(zip(matrix["branch_code"], matrix["unit_name"]))
        periods = sorted(matrix["period"].unique())
        idx = {s: i for i, s in enumerate(STATUS)}
        grid = matrix.pivot(index="branch_code", columns="period", values="status").reindex(branches)
        z = [[idx.get(v, None) for v in row] for row in grid.values]
        text = [[t(f"status.{v}", lg) if isinstance(v, str) else "" for v in row] for row in grid.values]
        scale = []
        for i, s in enumerate(STATUS):
            scale += [[i / len(STATUS), STATUS_COLOURS[s]], [(i + 1) / len(STATUS), STATUS_COLOURS[s]]]
        fig = go.Figure(go.Heatmap(
            z=z, x=[fmt_month(p, lg) for p in periods], y=[c.safe_label(f"{names[b]} ({b})") for b in branches],
            text=text, zmin=-0.5, zmax=len(STATUS) - 0.5, colorscale=scale, xgap=2, ygap=2,
            colorbar=dict(tickvals=list(range(len(STATUS))), ticktext=[t(f"status.{s}", lg) for s in STATUS]),
            hovertemplate="%{y}<br>%{x}: <b>%{text}</b><extra></extra>"))
        fig.update_yaxes(autorange="reversed")
        c.chart(fig, "nb_matrix", height=max(260, 30 * len(branches) + 120), filename="nop_bao_cao_ma_tran")
    quality = q.branch_quality(scope, f)
    st.subheader(t("nop_bao_cao.by_branch", lg))
    st.caption(t("nop_bao_cao.score_help", lg))
    show = c.as_percent(quality[["branch_code", "unit_name", "months_expected", "months_sent", "late", "missing",
                                 "rows_read", "rows_refused", "refusal_rate", "quality_score"]], ["refusal_rate"])
    c.table(c.label_columns(show, lg, {"branch_code": "col.unit_code", "unit_name": "col.branch",
                                       "months_expected": "col.months_expected", "months_sent": "col.months_sent",
                                       "late": "col.late", "missing": "col.missing"}),
            "nop_bao_cao_chat_luong", lg, title=t("nop_bao_cao.by_branch", lg))
    rules = q.refusal_by_rule(scope, f)
    left, right = st.columns([2, 3])
    with left:
        st.subheader(t("nop_bao_cao.by_rule", lg))
        fig = go.Figure(go.Bar(x=rules["rows_refused"], y=[c.safe_label(rule_label(r, lg)) for r in rules["rule_code"]],
                               orientation="h", marker_color=c.COLOURS[1], customdata=rules["rule_code"],
                               hovertemplate="%{y} (%{customdata}): <b>%{x}</b><extra></extra>"))
        fig.update_yaxes(autorange="reversed")
        fig.update_xaxes(title_text=t("col.rows_refused", lg))
        c.chart(fig, "nb_rules", height=max(220, 30 * len(rules) + 90), filename="nop_bao_cao_ly_do")
    with right:
        st.subheader(t("nop_bao_cao.refused", lg))
        st.caption(t("nop_bao_cao.no_values", lg))
        branch = pick_unit(quality, "branch_code", t("nop_bao_cao.pick_branch", lg), view="nhanh", key="nb_branch")
        if branch:
            rows = q.refused_rows(scope, f, branch)
            msg = "message_vi" if lg == "vi" else "message_en"
            keep = [x for x in ("period", "kind", "file_id", "source_sheet", "source_row", "column_name", "rule_code", msg)
                    if x in rows.columns]
            show = rows[keep].copy()
            if "rule_code" in show:
                show["rule_code"] = show["rule_code"].map(lambda r: rule_label(r, lg))
            if "period" in show:
                show["period"] = show["period"].map(lambda p: fmt_month(p, lg))
            c.table(c.label_columns(show, lg, {"file_id": "col.file", "source_sheet": "col.sheet",
                                               "source_row": "col.row", "column_name": "col.column",
                                               msg: "col.message"}), f"dong_bi_tu_choi_{branch}", lg,
                    title=t("nop_bao_cao.refused", lg))
    files = q.refused_files(scope, f)
    if len(files):
        st.subheader(t("nop_bao_cao.refused_files", lg))
        show = files.copy()
        show["period"] = show["period"].map(lambda p: fmt_month(p, lg))
        show["kind"] = show["kind"].map(lambda k: t(f"kind.{k}", lg))
        show["status"] = show["status"].map(lambda v: t(f"status.{v}", lg))
        show["reason_code"] = show["reason_code"].map(lambda r: reason_label(r, lg))
        if lg != "vi" and "message_vi" in show:
            show = show.drop(columns=["message_vi"])
        c.table(c.label_columns(show, lg, {"branch_code": "col.unit_code", "unit_name": "col.branch",
                                           "message_vi": "col.message"}), "tep_bi_tu_choi", lg,
                title=t("nop_bao_cao.refused_files", lg))
    conflicts_section(ctx)


def pick_unit(df, code_col: str, label: str, *, view: str, key: str) -> str | None:
    """A selectbox of the units of `df` (`code_col`, `unit_name`), "—" first; the choice is kept in the URL as the
    page view `view` (so a shared link opens the same drill)."""
    codes = df[code_col].tolist()
    names = dict(zip(df[code_col], df["unit_name"]))
    current = c.view_param(view, None, codes)
    picked = st.selectbox(label, [None, *codes], index=([None, *codes].index(current) if current else 0), key=key,
                          format_func=lambda b: "—" if b is None else f"{names.get(b, b)} ({b})")
    if picked != current:
        c.set_view(view, picked)
    return picked


def conflicts_section(ctx) -> None:
    """Identity conflicts in scope over the range (`dq_member_conflicts`): per type, per CĐCS, and one CĐCS's
    list (month, type, the other CĐCS): what a data steward checks against the branch's roster."""
    lg, scope, f = ctx.lang, ctx.scope, ctx.f
    st.subheader(t("nop_bao_cao.conflicts", lg))
    st.caption(t("nop_bao_cao.conflicts_help", lg))
    by_type = q.member_conflicts_by_type(scope, f)
    if int(by_type["conflicts"].sum()) == 0:
        st.info(t("nop_bao_cao.no_conflicts", lg))
        return
    show = by_type.assign(conflict_type=by_type["conflict_type"].map(lambda x: conflict_label(x, lg)))
    c.table(c.label_columns(show, lg, {"units": "col.conflict_units"}), "xung_dot_theo_loai", lg,
            title=t("nop_bao_cao.conflicts", lg))
    units = q.member_conflicts_by_unit(scope, f)
    st.subheader(t("nop_bao_cao.conflicts_by_unit", lg))
    types = [x for x in by_type["conflict_type"] if x in units.columns]
    show = units[["cdcs_code", "unit_name", "conflicts", *types, "first_period", "last_period"]].copy()
    for col in ("first_period", "last_period"):
        show[col] = show[col].map(lambda p: fmt_month(p, lg))
    labelled = c.label_columns(show.drop(columns=types), lg, {
        "cdcs_code": "col.unit_code", "unit_name": "col.unit", "first_period": "col.conflict_first",
        "last_period": "col.conflict_last"})
    for i, x in enumerate(types):  # one column per type, after the total
        labelled.insert(3 + i, conflict_label(x, lg), show[x].to_numpy())
    c.table(labelled, "xung_dot_theo_cdcs", lg, title=t("nop_bao_cao.conflicts_by_unit", lg))
    names = dict(zip(units["cdcs_code"], units["unit_name"]))
    cdcs = pick_unit(units, "cdcs_code", t("nop_bao_cao.pick_cdcs", lg), view="cdcs_xd", key="nb_conflict_cdcs")
    if cdcs:
        rows = q.member_conflicts(scope, f, cdcs)
        done = stewardship.reviews(rows["conflict_id"])
        review = [done.get(k, {}) for k in rows["conflict_id"]]
        show = rows.drop(columns=["cdcs_code", "conflict_id"]).assign(
            period=rows["period"].map(lambda p: fmt_month(p, lg)),
            conflict_type=rows["conflict_type"].map(lambda x: conflict_label(x, lg)),
            review=[t(f"review.{r.get('decision', 'none')}", lg) for r in review],
            reviewed_by=[r.get("reviewed_by") or "" for r in review],
            reviewed_at=[fmt_date(dt.datetime.fromisoformat(r["reviewed_at"]).astimezone().date(), lg)
                         if r.get("reviewed_at") else "" for r in review])
        if stewardship.can_review(ctx.user):  # the stewards' free text: officials only, never analysts
            show["review_note"] = [r.get("note") or "" for r in review]
        c.table(c.label_columns(show, lg, {"other_cdcs_code": "col.other_cdcs", "other_unit_name": "col.other_cdcs_name",
                                           "review": "col.review", "reviewed_by": "col.reviewed_by",
                                           "reviewed_at": "col.reviewed_at", "review_note": "col.review_note"}),
                f"xung_dot_{cdcs}", lg, title=f"{t('nop_bao_cao.conflicts', lg)} · {names.get(cdcs, cdcs)}")
        if stewardship.can_review(ctx.user) and len(rows):
            review_form(ctx, rows, cdcs)


def review_form(ctx, rows, cdcs: str) -> None:
    """Record a data steward's review of one of this CĐCS's conflicts (`pipelines.analytics.stewardship`)."""
    lg = ctx.lang
    labels = {r.conflict_id: f"{fmt_month(r.period, lg)} · {conflict_label(r.conflict_type, lg)}"
                             + (f" · {r.other_unit_name}" if r.other_cdcs_code else "")
              for r in rows.itertuples()}
    if st.session_state.pop("nb_review_saved", False):
        st.success(t("review.saved", lg))
    with st.form(f"review_{cdcs}", clear_on_submit=True):
        st.markdown(f"**{t('review.form', lg)}**")
        st.caption(t("review.help", lg))
        picked = st.selectbox(t("review.pick", lg), list(labels), format_func=labels.get, key="nb_review_conflict")
        decision = st.radio(t("review.decision", lg), stewardship.DECISIONS, key="nb_review_decision",
                            format_func=lambda d: t(f"review.{d}", lg))
        note = st.text_input(t("review.note", lg), max_chars=stewardship.NOTE_MAX, key="nb_review_note")
        if st.form_submit_button(t("review.submit", lg)):
            try:
                stewardship.record_review(ctx.user, ctx.scope, ctx.f, picked, decision, note)
            except stewardship.ReviewError as err:
                st.error(t(err.key, lg))
            else:
                st.session_state["nb_review_saved"] = True
                st.rerun()  # the list above shows the new review


c.page_guard(body)
