"""Đăng nhập / Log in; when logged in: the account (change password, log out)."""
import streamlit as st

from dashboards import auth
from pipelines.access import accounts, audit

user = auth.current_user()
if user is None:
    st.title("Đoàn viên số")
    auth.login_form()
    st.stop()

st.title(auth.tr("Tài khoản", "Account"))
st.markdown(f"**{auth.md(user.display_name)}** · {auth.md(user.role_label(auth.lang()))}"
            + (f" · {auth.md(user.unit_code)}" if user.unit_code else ""))
if user.must_change_password:
    st.warning(auth.tr("Hãy đổi mật khẩu tạm.", "Please change your temporary password."))
with st.form("_dv_change_pw"):
    old = st.text_input(auth.tr("Mật khẩu hiện tại", "Current password"), type="password")
    new = st.text_input(auth.tr("Mật khẩu mới (≥ 10 ký tự)", "New password (≥ 10 characters)"), type="password")
    new2 = st.text_input(auth.tr("Nhập lại mật khẩu mới", "Repeat the new password"), type="password")
    if st.form_submit_button(auth.tr("Đổi mật khẩu", "Change password")):
        if new != new2:
            st.error(auth.tr("Hai mật khẩu mới không khớp.", "The new passwords differ."))
        else:
            try:
                accounts.change_password(user.username, old, new)
            except accounts.AccountError as exc:
                st.error(auth.md(str(exc)))
            else:
                audit.record_for(user, "account_change", page="dang_nhap", detail={"op": "change-password"})
                st.success(auth.tr("Đã đổi mật khẩu; hãy đăng nhập lại.", "Password changed; please log in again."))
if st.button(auth.tr("Đăng xuất", "Log out"), key="dn_logout", icon=":material/logout:"):
    auth.logout()
    st.rerun()
