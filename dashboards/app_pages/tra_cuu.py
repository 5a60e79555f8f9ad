"""Tra cứu đoàn viên / Member lookup.

A member sees their own record and sends correction requests; an official searches members in their scope
(name without accents, CCCD or member code), opens a record (audited) and resolves correction requests.
All data comes from `pipelines.access.lookup`, which enforces scope; nothing here widens it.
"""
import pandas as pd
import streamlit as st

from dashboards import auth
from pipelines.access import lookup
from pipelines.access.warehouse import NoWarehouse

PAGE = "tra_cuu"
user = auth.require_user(auth.PAGE_ROLES[PAGE], page=PAGE)
tr, md = auth.tr, auth.md
with st.sidebar:
    auth.account_menu(user, key="tc_acct")

FIELD_LABELS = {"full_name": ("Họ tên", "Full name"), "birth_date": ("Ngày sinh", "Birth date"),
                "gender": ("Giới tính", "Gender"), "ethnicity": ("Dân tộc", "Ethnicity"), "cccd": ("Số CCCD", "ID number"),
                "unit": ("Đơn vị", "Unit"), "join_date": ("Ngày vào công đoàn", "Join date"),
                "dues": ("Đoàn phí", "Dues"), "services": ("Hỗ trợ, phúc lợi", "Services"),
                "activities": ("Hoạt động", "Activities"), "other": ("Khác", "Other")}


def _label(f):
    vi, en = FIELD_LABELS.get(f, (f, f))
    return tr(vi, en)


def show_record(rec: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.markdown(f"**{tr('Họ tên', 'Name')}:** {md(rec.get('full_name'))}")
    c1.markdown(f"**{tr('Mã đoàn viên', 'Member code')}:** {md(rec.get('member_code') or '–')}")
    c2.markdown(f"**CCCD:** {md(rec.get('cccd') or '–')}")
    c2.markdown(f"**{tr('Ngày/năm sinh', 'Birth')}:** {md(rec.get('birth_date') or '–')}")
    c3.markdown(f"**{tr('Công đoàn cơ sở', 'Grassroots union')}:** {md(rec.get('cdcs_name') or '')} "
                f"({md(rec.get('cdcs_code') or '–')})")
    c3.markdown(f"**{tr('Ngày vào công đoàn', 'Joined')}:** {md(rec.get('join_date') or '–')}")
    h = rec.get("history", {})
    tabs = st.tabs([tr("Quá trình", "History"), tr("Đoàn phí", "Dues"), tr("Hỗ trợ, phúc lợi", "Services"),
                    tr("Hoạt động", "Activities")])
    for tab, key in zip(tabs, ("events", "dues", "services", "activities")):
        with tab:
            rows = h.get(key) or []
            if rows:
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            else:
                st.caption(tr("Chưa có dữ liệu.", "No data."))


def member_view() -> None:
    st.title(tr("Hồ sơ đoàn viên của tôi", "My member record"))
    try:
        rec = lookup.own_record(user, page=PAGE)
    except lookup.LookupError_ as exc:
        st.info(md(str(exc)))
        return
    show_record(rec)
    st.subheader(tr("Yêu cầu đính chính", "Correction request"))
    with st.form("tc_corr", clear_on_submit=True):
        field = st.selectbox(tr("Mục cần đính chính", "What is wrong"), lookup.CORRECTION_FIELDS, format_func=_label)
        msg = st.text_area(tr("Nội dung", "Details"), max_chars=2000)
        if st.form_submit_button(tr("Gửi yêu cầu", "Send")):
            try:
                rid = lookup.submit_correction(user, field, msg, page=PAGE)
            except lookup.LookupError_ as exc:
                st.error(md(str(exc)))
            else:
                st.success(tr(f"Đã gửi yêu cầu số {rid}.", f"Request {rid} sent."))
    mine = lookup.list_corrections(user)
    if mine:
        st.dataframe(pd.DataFrame(mine)[["id", "field", "message", "status", "created_at", "resolution"]],
                     hide_index=True, width="stretch")


def official_view() -> None:
    st.title(tr("Tra cứu đoàn viên", "Member lookup"))
    st.caption(tr("Tìm theo họ tên (không cần dấu; cả họ tên, chỉ tên, hoặc họ và tên như \"Nguyễn An\": "
                  "mỗi từ gõ vào phải là một từ trong họ tên, riêng từ cuối chỉ cần là phần đầu của một từ, "
                  "như \"Nguyễn Văn Hù\" tìm được \"Nguyễn Văn Hùng\" và \"Nguyễn Văn Huy\"), số CCCD hoặc "
                  "mã đoàn viên, trong phạm vi đơn vị của bạn. Mỗi lần xem hồ sơ đều được ghi nhật ký.",
                  "Search by name (accents optional; the full name, the given name, or family and given name "
                  "such as \"Nguyễn An\": every word typed must be a word of the name, except the last, which "
                  "only needs to begin a word, so \"Nguyễn Văn Hù\" finds \"Nguyễn Văn Hùng\" and \"Nguyễn Văn "
                  "Huy\"), ID number or member code, within your units. Every record you open is logged."))
    with st.form("tc_search"):
        q = st.text_input(tr("Tìm kiếm", "Search"), max_chars=100, key="tc_q")
        go = st.form_submit_button(tr("Tìm", "Search"), icon=":material/search:")
    if go:
        try:
            st.session_state["tc_hits"] = [h.__dict__ for h in lookup.search_members(user, q, page=PAGE)]
        except lookup.LookupError_ as exc:
            st.session_state["tc_hits"] = []
            st.warning(md(str(exc)))
    hits = st.session_state.get("tc_hits") or []
    if go and not hits:
        st.info(tr("Không tìm thấy trong phạm vi của bạn.", "Nothing found in your scope."))
    if hits:
        df = pd.DataFrame(hits)
        show = df[["full_name", "member_code", "cccd", "birth", "cdcs_code"]].rename(columns={
            "full_name": tr("Họ tên", "Name"), "member_code": tr("Mã ĐV", "Member code"), "cccd": "CCCD",
            "birth": tr("Sinh", "Born"), "cdcs_code": tr("CĐCS", "Grassroots union")})
        st.dataframe(show, hide_index=True, width="stretch")
        labels = {h["member_key"]: f"{h['full_name']} · {h.get('member_code') or ''} · {h.get('cdcs_code') or ''}"
                  for h in hits}
        pick = st.selectbox(tr("Xem hồ sơ", "Open record"), [None, *labels], key="tc_pick",
                            format_func=lambda k: "—" if k is None else labels[k])
        if pick:
            try:
                show_record(lookup.member_detail(user, pick, page=PAGE))
            except lookup.LookupError_ as exc:
                st.error(md(str(exc)))
    st.divider()
    st.subheader(tr("Yêu cầu đính chính của đoàn viên", "Members' correction requests"))
    reqs = lookup.list_corrections(user, status="open")
    if not reqs:
        st.caption(tr("Không có yêu cầu đang chờ.", "No open requests."))
        return
    st.dataframe(pd.DataFrame(reqs)[["id", "cdcs_code", "field", "message", "created_at"]], hide_index=True,
                 width="stretch")
    with st.form("tc_resolve"):
        rid = st.selectbox(tr("Yêu cầu", "Request"), [r["id"] for r in reqs])
        resolution = st.text_input(tr("Kết quả xử lý", "Resolution"), max_chars=2000)
        status = st.radio(tr("Trạng thái", "Status"), ["resolved", "rejected"], horizontal=True,
                          format_func=lambda s: tr("Đã xử lý", "Resolved") if s == "resolved" else tr("Từ chối", "Rejected"))
        if st.form_submit_button(tr("Cập nhật", "Update")):
            try:
                lookup.resolve_correction(user, int(rid), resolution, status=status, page=PAGE)
            except PermissionError as exc:
                st.error(md(str(exc)))
            else:
                st.success(tr("Đã cập nhật.", "Updated."))
                st.rerun()


def body():
    if user.role == "member":
        member_view()
    else:
        official_view()


auth.run_guarded(body)
