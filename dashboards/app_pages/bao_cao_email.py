"""Báo cáo qua email / Report emails: subscriptions and the delivery log.

Admins manage every subscription (add, cancel, send a period now) and see the whole log; a leader sees
and cancels only their own subscriptions (recipient = their username or their e-mail) and their own
deliveries. The same functions as `doanvien reports ...` (pipelines/reports/).
"""
import pandas as pd
import streamlit as st

from dashboards import auth
from pipelines.reports import periods as P
from pipelines.reports import subscriptions as S

PAGE = "bao_cao_email"
ROLES = ("national_leader", "province_leader", "upper_official", "cdcs_official", "admin")
user = auth.require_user(ROLES, page=PAGE)
tr, md = auth.tr, auth.md
is_admin = user.role == "admin"
with st.sidebar:
    auth.account_menu(user, key="bce_acct")

st.title(tr("Báo cáo qua email", "Report emails"))
st.caption(tr("Bản tin định kỳ gửi tới lãnh đạo: chỉ số liệu tổng hợp trong phạm vi của người nhận, "
              "không có dữ liệu cá nhân; mỗi kỳ gửi tối đa một lần.",
              "Periodic briefs for leaders: aggregates of the recipient's own scope only, no personal data; "
              "at most one message per subscription and period."))

CAD = {c: (tr(P.CADENCE_LABELS["vi"][c].capitalize(), P.CADENCE_LABELS["en"][c].capitalize())) for c in P.CADENCES}

if is_admin:
    subs = S.list_subscriptions(include_cancelled=st.toggle(tr("Hiện cả đăng ký đã huỷ", "Show cancelled"),
                                                            key="bce_all"))
else:
    subs = S.list_subscriptions(recipients=[user.username, user.email or ""])

tab_subs, tab_log = st.tabs([tr("Đăng ký", "Subscriptions"), tr("Nhật ký gửi", "Delivery log")])

with tab_subs:
    if subs:
        df = pd.DataFrame([{
            "ID": s.id, tr("Người nhận", "Recipient"): s.recipient, tr("Đơn vị", "Unit"): s.unit_code,
            tr("Tần suất", "Cadence"): CAD[s.cadence], tr("Ngôn ngữ", "Language"): s.language,
            tr("Hiệu lực", "Active"): s.active, tr("Tạo lúc", "Created"): s.created_at} for s in subs])
        st.dataframe(df, hide_index=True, width="stretch")  # dataframe cells are text, never markup
        active = [s for s in subs if s.active]
        if active:
            with st.form("bce_cancel"):
                pick = st.selectbox(tr("Huỷ đăng ký", "Cancel a subscription"), [s.id for s in active],
                                    format_func=lambda i: next(f"#{s.id} {s.unit_code} {CAD[s.cadence]} → {s.recipient}"
                                                               for s in active if s.id == i))
                if st.form_submit_button(tr("Huỷ", "Cancel")):
                    try:
                        S.cancel(pick, actor=user.username, is_admin=is_admin, actor_email=user.email)
                    except (PermissionError, LookupError) as exc:
                        st.error(md(str(exc)))
                    else:
                        st.success(tr("Đã huỷ.", "Cancelled."))
                        st.rerun()
    else:
        st.info(tr("Chưa có đăng ký nào.", "No subscriptions yet."))

    if is_admin:
        st.subheader(tr("Thêm đăng ký", "Add a subscription"))
        with st.form("bce_add", clear_on_submit=True):
            recipient = st.text_input(tr("Tài khoản hoặc email", "Account username or e-mail"))
            unit = st.text_input(tr("Mã đơn vị (phạm vi báo cáo)", "Unit code (the report's scope)"), value="TLD")
            cadence = st.selectbox(tr("Tần suất", "Cadence"), P.CADENCES, format_func=lambda c: CAD[c])
            language = st.selectbox(tr("Ngôn ngữ", "Language"), ["vi", "en"])
            if st.form_submit_button(tr("Thêm", "Add")):
                try:
                    s = S.subscribe(recipient, unit, cadence, language, created_by=user.username)
                except ValueError as exc:
                    st.error(md(str(exc)))
                else:
                    st.success(md(tr(f"Đã thêm đăng ký #{s.id}.", f"Subscription #{s.id} added.")))
                    st.rerun()

        st.subheader(tr("Gửi ngay", "Send now"))
        with st.form("bce_send"):
            cadence = st.selectbox(tr("Tần suất", "Cadence"), P.CADENCES, format_func=lambda c: CAD[c], key="bce_sc")
            period = st.text_input(tr("Kỳ (để trống: kỳ đến hạn)", "Period (empty: the one due now)"),
                                   placeholder="2025-W23 · 2025-05 · 2025-05-31")
            if st.form_submit_button(tr("Gửi", "Send")):
                from pipelines.reports.delivery import send_reports
                try:
                    with st.spinner(tr("Đang gửi…", "Sending…")):
                        summary = send_reports(cadence, period.strip() or None)
                except ValueError as exc:
                    st.error(md(str(exc)))
                else:
                    st.info(md(summary.line()))

with tab_log:
    ids = None if is_admin else [s.id for s in S.list_subscriptions(recipients=[user.username, user.email or ""],
                                                                      include_cancelled=True)]
    status = st.selectbox(tr("Trạng thái", "Status"), ["", "sent", "failed", "refused", "unknown", "skipped",
                                                        "sending", "pending"], key="bce_status")
    rows = S.deliveries_log(subscription_ids=ids, status=status or None, limit=500)
    if rows:
        log = pd.DataFrame(rows)[["id", "subscription_id", "recipient", "unit_code", "cadence", "period", "status",
                                  "attempts", "transport", "smtp_code", "last_error", "updated_at", "sent_at"]]
        st.dataframe(log, hide_index=True, width="stretch")
    else:
        st.info(tr("Chưa có lần gửi nào.", "Nothing sent yet."))
