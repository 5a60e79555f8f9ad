"""Đoàn viên số: the Streamlit router (`streamlit run dashboards/streamlit_app.py`).

It only decides which pages this user may see (`st.navigation`), draws the language switch and, on
dashboard pages, the one filter bar; every page lives in `dashboards/app_pages/` and its logic in
`pipelines/analytics` and `dashboards/common.py`. Access pages (dang_nhap, tra_cuu, tai_len, sql, quan_tri)
and the email page (bao_cao_email) are included when their files exist; which of them a user sees comes
from the access module (`dashboards/auth.py: allowed_pages(user)`).
"""
from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # `streamlit run dashboards/streamlit_app.py` from anywhere
    sys.path.insert(0, str(_REPO))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Đoàn viên số", page_icon=":material/groups:", layout="wide",
                   initial_sidebar_state="expanded")

from dashboards import common as c  # noqa: E402
from pipelines.analytics.i18n import t  # noqa: E402

OTHER_PAGES = ["dang_nhap", "tra_cuu", "tai_len", "sql", "quan_tri", "bao_cao_email"]


def _page(pid: str, lg: str, default: bool = False) -> st.Page:
    return st.Page(c.PAGES_DIR / f"{pid}.py", title=t(f"page.{pid}", lg), icon=c.PAGE_ICONS.get(pid),
                   url_path=pid, default=default)


def _exists(pid: str) -> bool:
    return (c.PAGES_DIR / f"{pid}.py").exists()


def main() -> None:
    lg = c.lang()
    user = c.current_user()
    if user is None:  # not logged in: the login page only
        if _exists("dang_nhap"):
            st.navigation([_page("dang_nhap", lg, default=True)], position="hidden").run()
        else:
            st.error(t("page.dang_nhap", lg))
        return
    allowed = c.allowed_page_ids(user)
    sections: dict[str, list[st.Page]] = {}
    ids_by_title: dict[str, str] = {}
    first = True
    for label, ids in c.SECTIONS:
        pages = []
        for pid in ids:
            if pid == "dang_nhap" or not _exists(pid):
                continue
            if allowed is not None and pid not in allowed:
                continue
            if allowed is None and pid in OTHER_PAGES and c.auth_module() is None:
                continue  # DEV fallback: never expose access/email pages without the auth module
            pages.append(_page(pid, lg, default=first))
            ids_by_title[t(f"page.{pid}", lg)] = pid
            first = False
        if pages:
            sections[t(label, lg)] = pages
    if not sections:
        st.warning(t("error.generic", lg))
        return
    pg = st.navigation(sections, expanded=True)
    with st.sidebar:
        st.segmented_control(t("lang.label", lg), ["vi", "en"], key="lang", required=True,
                             format_func=lambda x: "Tiếng Việt" if x == "vi" else "English",
                             on_change=c.language_changed)
        auth = c.auth_module()
        if auth is not None and hasattr(auth, "account_menu"):
            auth.account_menu(user)
        elif getattr(user, "display_name", None):
            st.caption(c.md_escape(t("user.signed_in", lg, name=user.display_name)))
    if ids_by_title.get(pg.title) in c.DASHBOARD_PAGES:
        c.filter_bar(lg)
    pg.run()


main()
