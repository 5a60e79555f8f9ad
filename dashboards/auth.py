"""Login, the current user, logout, which pages a role sees, and escaping helpers for the Streamlit app.

Used by the router (`dashboards/streamlit_app.py` via `dashboards/common.py`): `current_user()`,
`allowed_pages(user)`, `scope_for(user, period)`; and by every access page: `require_user(roles)`.

- Local accounts (`pipelines.access.accounts`): the session keeps only an opaque token in
  `st.session_state`; the account (role, unit, active) is re-read from the account store on every rerun,
  so logout, a disabled account or a changed role takes effect at the next click.
- OpenID Connect (optional): when `.streamlit/secrets.toml` has an `[auth]` section, the login page offers
  `st.login()`; the identity provider's e-mail is mapped to a local account (`users.email`), which gives the
  role and unit. An unknown e-mail gets no access. See docs/ACCESS.md.
- Every data- or user-supplied string shown through Markdown goes through `md()`; HTML through `esc()`.
"""
from __future__ import annotations

import html
import re

import streamlit as st

from pipelines.access import accounts, audit
from pipelines.access.accounts import AccountLocked, LoginFailed, User

TOKEN_KEY = "_dv_session_token"

DASHBOARD_PAGES = ("tong_quan", "ban_do", "co_cau", "bien_dong", "dich_vu", "doan_phi", "phat_trien")
QUALITY_PAGES = ("nop_bao_cao", "bao_cao_dinh_ky")
_OFFICIALS = ("national_leader", "province_leader", "upper_official", "cdcs_official")

# role -> pages the router registers (a page not registered cannot be opened, even by URL)
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "national_leader": DASHBOARD_PAGES + QUALITY_PAGES + ("bao_cao_email", "tra_cuu"),
    "province_leader": DASHBOARD_PAGES + QUALITY_PAGES + ("bao_cao_email", "tra_cuu", "tai_len"),
    "upper_official": DASHBOARD_PAGES + QUALITY_PAGES + ("bao_cao_email", "tra_cuu", "tai_len"),
    "cdcs_official": DASHBOARD_PAGES + ("bao_cao_email", "tra_cuu"),
    "analyst": DASHBOARD_PAGES + QUALITY_PAGES + ("sql",),
    "member": ("tra_cuu",),
    "admin": DASHBOARD_PAGES + QUALITY_PAGES + ("bao_cao_email", "quan_tri"),
}
# the roles each access page accepts (checked again inside the page: defence in depth)
PAGE_ROLES = {
    "tra_cuu": _OFFICIALS + ("member",),
    "tai_len": ("province_leader", "upper_official"),
    "sql": ("analyst",),
    "quan_tri": ("admin",),
}


# ---------------------------------------------------------------- escaping and language

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>~:&])")


def esc(text) -> str:
    """HTML-escape (for any place HTML is produced)."""
    return html.escape("" if text is None else str(text), quote=True)


def md(text) -> str:
    """Escape for Streamlit Markdown (labels, captions, st.markdown): data text stays text, never markup,
    links or LaTeX."""
    return _MD_SPECIAL.sub(r"\\\1", "" if text is None else str(text))


def lang() -> str:
    v = st.session_state.get("lang")
    if v not in ("vi", "en"):
        q = st.query_params.get("lang")
        v = q if q in ("vi", "en") else "vi"
        st.session_state["lang"] = v
    return v


def tr(vi: str, en: str) -> str:
    return en if lang() == "en" else vi


# ---------------------------------------------------------------- OIDC seam (patched in tests)

def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file
        return False


def _oidc_identity() -> dict | None:
    """{'email', 'email_verified'} when the browser holds a Streamlit OIDC identity, else None."""
    if not oidc_configured():
        return None
    try:
        u = st.user
        if not u.get("is_logged_in"):
            return None
        return {"email": u.get("email"), "email_verified": u.get("email_verified", True)}
    except Exception:  # noqa: BLE001
        return None


def _oidc_provider() -> str | None:
    try:
        conf = st.secrets["auth"]
        if "client_id" in conf:
            return None
        for k, v in conf.items():
            if isinstance(v, dict) or hasattr(v, "keys"):
                return k
    except Exception:  # noqa: BLE001
        pass
    return None


# ---------------------------------------------------------------- the current user

def current_user() -> User | None:
    """The logged-in user, re-read from the account store; None when not logged in."""
    token = st.session_state.get(TOKEN_KEY)
    user = accounts.session_user(token) if token else None
    if user is None and token:
        st.session_state.pop(TOKEN_KEY, None)  # expired, revoked or disabled
    if user is None:
        ident = _oidc_identity()
        if ident and ident.get("email"):
            mapped = accounts.user_for_oidc(ident["email"], ident.get("email_verified"))
            if mapped is not None:
                st.session_state[TOKEN_KEY] = accounts.create_session(mapped, via="oidc")
                audit.record_for(mapped, "oidc_login", page="dang_nhap")
                user = mapped
            elif not st.session_state.get("_dv_oidc_unmapped_logged"):
                st.session_state["_dv_oidc_unmapped_logged"] = True
                audit.record("oidc:" + str(ident["email"])[:100], "oidc_unmapped", page="dang_nhap",
                             outcome="denied")
    return user


def allowed_pages(user: User | None) -> list[str]:
    """Page ids (files in dashboards/app_pages) the router may register for this user."""
    if user is None:
        return ["dang_nhap"]
    return list(ROLE_PAGES.get(user.role, ()))


pages_for = allowed_pages


def scope_for(user: User, period=None):
    from pipelines.access.scope import scope_for as _scope_for
    return _scope_for(user, period)


def scope_over_time(user: User, period=None):
    """For pages over several months: each month gets the user's scope in force then."""
    from pipelines.access.scope import scope_over_time as _over_time
    return _over_time(user, period)


def require_user(roles: tuple[str, ...] | list[str] | None = None, page: str | None = None) -> User:
    """The current user, or stop the page (login prompt when not logged in; a refusal, audited, when the
    role may not open this page)."""
    user = current_user()
    if user is None:
        st.warning(tr("Vui lòng đăng nhập.", "Please log in."), icon=":material/lock:")
        login_form()
        st.stop()
    if roles is not None and user.role not in roles:
        audit.record_for(user, "denied", page=page, outcome="denied", detail={"what": "page"})
        st.error(tr("Bạn không có quyền mở trang này.", "You may not open this page."), icon=":material/block:")
        st.stop()
    return user


def logout() -> None:
    token = st.session_state.pop(TOKEN_KEY, None)
    user = accounts.session_user(token) if token else None
    accounts.logout(token)
    if user is not None:
        audit.record_for(user, "logout")
    for k in list(st.session_state.keys()):
        if str(k).startswith(("_dv_", "tc_", "sql_", "qt_", "up_")):
            st.session_state.pop(k, None)
    if oidc_configured() and _oidc_identity():
        st.logout()


def account_menu(user: User, key: str = "acct") -> None:
    """Who is logged in, the role, and a logout button (for the sidebar). Drawn once: the router draws it
    (key "acct") before running a page, so a page's own call (run standalone, e.g. in AppTest) is skipped."""
    if key != "acct" and st.session_state.get("_dv_router_menu"):
        return
    if key == "acct":
        st.session_state["_dv_router_menu"] = True
    st.caption(f"{md(user.display_name)} · {md(user.role_label(lang()))}"
               + (f" · {md(user.unit_code)}" if user.unit_code else ""))
    if st.button(tr("Đăng xuất", "Log out"), key=f"{key}_logout", icon=":material/logout:"):
        logout()
        st.rerun()


# ---------------------------------------------------------------- login form

def login_form() -> None:
    """The login form (Vietnamese by default, English switch); OIDC button when configured."""
    lg = lang()
    c1, c2 = st.columns([3, 1])
    with c2:
        new = st.radio("Ngôn ngữ / Language", ["vi", "en"], index=0 if lg == "vi" else 1, horizontal=True,
                       format_func=lambda x: "Tiếng Việt" if x == "vi" else "English", key="_dv_login_lang")
        if new != lg:
            st.session_state["lang"] = new
            st.rerun()
    with c1:
        st.subheader(tr("Đăng nhập Đoàn viên số", "Sign in to Đoàn viên số"))
    ident = _oidc_identity()
    if ident and ident.get("email") and accounts.user_for_oidc(ident["email"], ident.get("email_verified")) is None:
        st.error(tr("Tài khoản tổ chức này chưa được cấp quyền. Liên hệ quản trị viên.",
                    "This organisation account has no access yet. Contact the administrator."))
        if st.button(tr("Đăng xuất tài khoản tổ chức", "Sign out of the organisation account"), key="_dv_oidc_out"):
            st.logout()
    with st.form("_dv_login_form", clear_on_submit=False):
        username = st.text_input(tr("Tên đăng nhập", "Username"), key="_dv_login_user", max_chars=64)
        password = st.text_input(tr("Mật khẩu", "Password"), type="password", key="_dv_login_pw", max_chars=256)
        submitted = st.form_submit_button(tr("Đăng nhập", "Log in"), type="primary", icon=":material/login:")
    if submitted:
        try:
            user, token = accounts.login(username, password)
        except AccountLocked as exc:
            audit.record(accounts.normalise_username(username)[:64] or "?", "login_locked", page="dang_nhap",
                         outcome="denied")
            st.error(str(exc).split(" / ")[0 if lang() == "vi" else -1])
        except LoginFailed as exc:
            audit.record(accounts.normalise_username(username)[:64] or "?", "login_failed", page="dang_nhap",
                         outcome="denied")
            st.error(str(exc).split(" / ")[0 if lang() == "vi" else -1])
        else:
            st.session_state[TOKEN_KEY] = token
            if user.lang in ("vi", "en") and "lang" not in st.query_params:
                st.session_state["lang"] = user.lang if user.lang != "vi" else lang()
            audit.record_for(user, "login", page="dang_nhap")
            st.rerun()
    if oidc_configured():
        st.divider()
        if st.button(tr("Đăng nhập bằng tài khoản tổ chức (OpenID Connect)",
                        "Sign in with the organisation account (OpenID Connect)"), key="_dv_oidc_login",
                     icon=":material/badge:"):
            provider = _oidc_provider()
            st.login(provider) if provider else st.login()


# ---------------------------------------------------------------- start-up configuration check (ST-10)

def config_problems(config_path=None) -> list[str]:
    """Problems in the Streamlit configuration that must stop a production start: XSRF protection off,
    static serving on, or an OIDC cookie_secret shorter than 32 characters."""
    from pathlib import Path
    import tomllib

    problems = []
    root = Path(__file__).resolve().parent.parent
    cfg = Path(config_path) if config_path else root / ".streamlit" / "config.toml"
    try:
        data = tomllib.loads(cfg.read_text(encoding="utf-8")) if cfg.exists() else {}
    except (OSError, ValueError):
        data = {}
    server = data.get("server", {})
    if server.get("enableXsrfProtection") is False:
        problems.append("server.enableXsrfProtection = false")
    if server.get("enableStaticServing") is True:
        problems.append("server.enableStaticServing = true")
    if oidc_configured():
        try:
            secret = str(st.secrets["auth"].get("cookie_secret", ""))
        except Exception:  # noqa: BLE001
            secret = ""
        if len(secret) < 32:
            problems.append("[auth] cookie_secret missing or shorter than 32 characters")
    return problems


def run_guarded(fn) -> None:
    """Run a page body: a failure shows a generic message, never a stack trace with data."""
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

    from pipelines.access.warehouse import NoWarehouse
    try:
        fn()
    except ScriptControlException:  # st.stop() / st.rerun()
        raise
    except NoWarehouse:
        st.error(tr("Chưa có kho dữ liệu được công bố (chạy `doanvien refresh`).",
                    "No warehouse published yet (run `doanvien refresh`)."))
    except PermissionError:
        st.error(tr("Ngoài phạm vi được xem.", "Outside your scope."))
    except Exception:  # noqa: BLE001
        import logging
        logging.getLogger("dashboards.access").exception("page failed")
        st.error(tr("Đã có lỗi; vui lòng thử lại hoặc báo quản trị viên.",
                    "Something went wrong; try again or tell the administrator."))
