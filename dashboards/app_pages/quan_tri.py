"""Quản trị / Administration: accounts and the audit log (view, verify, export)."""
import datetime as dt

import pandas as pd
import streamlit as st

from dashboards import auth
from pipelines.access import accounts, audit

PAGE = "quan_tri"
user = auth.require_user(auth.PAGE_ROLES[PAGE], page=PAGE)
tr, md = auth.tr, auth.md
with st.sidebar:
    auth.account_menu(user, key="qt_acct")


def accounts_tab():
    us = accounts.list_users()
    st.dataframe(pd.DataFrame([{k: v for k, v in u.__dict__.items()} for u in us]), hide_index=True, width="stretch")
    c1, c2 = st.columns(2)
    with c1, st.form("qt_add", clear_on_submit=True):
        st.markdown(tr("**Thêm tài khoản**", "**Add an account**"))
        username = st.text_input(tr("Tên đăng nhập", "Username"))
        name = st.text_input(tr("Họ tên", "Display name"))
        role = st.selectbox(tr("Vai trò", "Role"), accounts.ROLES,
                            format_func=lambda r: accounts.ROLE_LABELS[r][0 if auth.lang() == "vi" else 1])
        unit = st.text_input(tr("Mã đơn vị (cán bộ)", "Unit code (officials)"))
        mcode = st.text_input(tr("Mã đoàn viên (đoàn viên)", "Member code (members)"))
        email = st.text_input(tr("Email (đăng nhập OIDC)", "E-mail (OIDC login)"))
        if st.form_submit_button(tr("Thêm", "Add")):
            pw = accounts.generate_password()
            try:
                accounts.create_user(username, display_name=name or username, role=role, password=pw,
                                     unit_code=unit or None, member_code=mcode or None, email=email or None,
                                     must_change_password=True)
            except accounts.AccountError as exc:
                st.error(md(str(exc)))
            else:
                audit.record_for(user, "account_change", page=PAGE, detail={"op": "add", "username": username,
                                                                            "role": role, "unit_code": unit})
                st.success(tr("Đã tạo. Mật khẩu tạm: ", "Created. Temporary password: ") + f"`{pw}`")
    with c2, st.form("qt_manage"):
        st.markdown(tr("**Quản lý tài khoản**", "**Manage an account**"))
        names = [u.username for u in us]
        who = st.selectbox(tr("Tài khoản", "Account"), names) if names else None
        op = st.radio(tr("Thao tác", "Action"), ["reset", "disable", "enable"],
                      format_func=lambda o: {"reset": tr("Đặt lại mật khẩu", "Reset password"),
                                             "disable": tr("Khoá", "Disable"), "enable": tr("Mở khoá", "Enable")}[o])
        if st.form_submit_button(tr("Thực hiện", "Apply")) and who:
            if op == "reset":
                pw = accounts.generate_password()
                accounts.set_password(who, pw, must_change=True)
                st.success(tr("Mật khẩu tạm: ", "Temporary password: ") + f"`{pw}`")
            elif who == user.username:
                st.error(tr("Không tự khoá tài khoản của mình.", "You cannot disable yourself."))
                return
            else:
                accounts.set_active(who, op == "enable")
                st.success(tr("Đã cập nhật.", "Updated."))
            audit.record_for(user, "account_change", page=PAGE, detail={"op": op, "username": who})


def audit_tab():
    c1, c2, c3, c4 = st.columns(4)
    actor = c1.text_input(tr("Người thực hiện", "Actor"), key="qt_actor", max_chars=100)
    action = c2.selectbox(tr("Hành động", "Action"), [None, *audit.ACTIONS], key="qt_action",
                          format_func=lambda a: tr("Tất cả", "All") if a is None else a)
    member_key = c3.text_input(tr("Mã khoá đoàn viên", "Member key"), key="qt_member", max_chars=64)
    since = c4.date_input(tr("Từ ngày", "Since"), value=dt.date.today() - dt.timedelta(days=30), key="qt_since")
    rows = audit.events(actor=actor or None, action=action, member_key=member_key or None,
                        since=since.isoformat() if since else None, limit=5000)
    audit.record_for(user, "audit_view", page=PAGE, rows=len(rows),
                     detail={"actor": actor, "action": action, "member_key": member_key})
    ok, broken = audit.verify_chain()
    (st.success if ok else st.error)(tr("Chuỗi băm nhật ký: nguyên vẹn" if ok else f"Chuỗi băm hỏng tại bản ghi {broken}",
                                        "Log hash chain: intact" if ok else f"Hash chain broken at record {broken}"))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

    def _exported():
        audit.record_for(user, "audit_export", page=PAGE, rows=len(rows))
    st.download_button(tr("Xuất CSV", "Export CSV"), audit.export_csv(rows),
                       file_name=f"nhat_ky_{dt.date.today():%Y%m%d}.csv", mime="text/csv", key="qt_export",
                       on_click=_exported, icon=":material/download:")


def body():
    st.title(tr("Quản trị", "Administration"))
    t1, t2 = st.tabs([tr("Tài khoản", "Accounts"), tr("Nhật ký truy cập", "Audit log")])
    with t1:
        accounts_tab()
    with t2:
        audit_tab()


auth.run_guarded(body)
