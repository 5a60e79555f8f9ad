"""Shared pieces of the dashboard pages: the auth seam, the filter bar (session state <-> URL), the
"data as of" banner, the breadcrumb and drill-down, KPI cards, tables with XLSX/CSV exports, and Plotly
helpers (Vietnamese labels, restructuring markers, escaping of data-derived text).

Scope comes only from the auth module (`dashboards/auth.py`, written by the access engineer), never from a
widget or the URL. While `dashboards/auth.py` does not exist, a clearly marked DEV fallback shows the whole
country; it is never active once the file exists.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import importlib
import importlib.util
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pipelines.analytics import db
from pipelines.analytics import export as ex
from pipelines.analytics import queries as q
from pipelines.analytics.filters import MERGER, PUBLIC_SECTOR_EXIT, Filters, unit_level
from pipelines.analytics.i18n import (fmt_datetime, fmt_int, fmt_month, fmt_num, fmt_pct, norm_lang,
                                      ref_codes, ref_name, t)
from pipelines.analytics.scoping import national_scope

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "app_pages"
DASHBOARD_PAGES = ["tong_quan", "ban_do", "co_cau", "bien_dong", "dich_vu", "doan_phi", "phat_trien",
                   "nop_bao_cao", "bao_cao_dinh_ky"]
PAGE_ICONS = {"tong_quan": ":material/dashboard:", "ban_do": ":material/map:", "co_cau": ":material/pie_chart:",
              "bien_dong": ":material/swap_vert:", "dich_vu": ":material/volunteer_activism:",
              "doan_phi": ":material/payments:", "phat_trien": ":material/group_add:",
              "nop_bao_cao": ":material/fact_check:", "bao_cao_dinh_ky": ":material/description:",
              "dang_nhap": ":material/login:", "tra_cuu": ":material/person_search:",
              "tai_len": ":material/upload_file:", "sql": ":material/terminal:",
              "quan_tri": ":material/admin_panel_settings:", "bao_cao_email": ":material/mail:"}
SECTIONS = [("nav.section.dashboards", ["tong_quan", "ban_do", "co_cau", "bien_dong", "dich_vu", "doan_phi",
                                        "phat_trien"]),
            ("nav.section.quality", ["nop_bao_cao", "bao_cao_dinh_ky", "bao_cao_email"]),
            ("nav.section.self_service", ["tra_cuu", "tai_len", "sql"]),
            ("nav.section.admin", ["quan_tri"])]
COLOURS = ["#1f4e9c", "#d9372b", "#f2a900", "#2e9d5b", "#7b4fa0", "#e07b39", "#3aa6c4", "#8c8c8c"]


# --- language ------------------------------------------------------------------------------------

def lang() -> str:
    if "lang" not in st.session_state:
        st.session_state["lang"] = norm_lang(st.query_params.get("lang"))
    return st.session_state["lang"]


def language_changed() -> None:
    """On the language switch: rebuild the filter widgets under new keys. A select box keeps the option
    label it showed, and Streamlit matches it against the options' labels in the new language; a period label
    'T04/2025' matches no '04/2025' and came back as the text itself (a TypeError on the next change)."""
    st.session_state["_flt_gen"] = st.session_state.get("_flt_gen", 0) + 1


# --- auth seam -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DevUser:
    """DEV ONLY: the stand-in user while dashboards/auth.py does not exist."""
    username: str = "dev"
    display_name: str = "DEV (chưa có đăng nhập)"
    role: str = "national_leader"
    unit_code: str = "TLD"
    dev_fallback: bool = True


def auth_module():
    """dashboards.auth when the access engineer's file exists, else None (DEV fallback)."""
    if not (APP_DIR / "auth.py").exists():
        return None
    return importlib.import_module("dashboards.auth")


def current_user():
    """The logged-in user (None: not logged in). DEV fallback only when dashboards/auth.py is absent."""
    auth = auth_module()
    if auth is None:
        return DevUser()
    for name in ("current_user", "get_current_user", "get_user"):
        fn = getattr(auth, name, None)
        if callable(fn):
            return fn()
    return None


def scope_for(user, period: dt.date | None):
    """The scope of `user` for a page whose last month is `period`, from the auth/access modules only.

    An official gets a scope that changes over time (`pipelines.access.scope.UserScope`): every month a
    query reads is filtered by the scope in force that month (the tree changes on 1 July 2025)."""
    if isinstance(user, DevUser):
        return national_scope()  # DEV fallback: active only while dashboards/auth.py is absent
    auth = auth_module()
    for name in ("scope_over_time", "current_scope", "scope_for_user", "scope_for"):
        fn = getattr(auth, name, None) if auth else None
        if callable(fn):
            try:
                return fn(user, period) if name != "current_scope" else fn(period)
            except TypeError:
                continue
    from pipelines.access.scope import scope_for as access_scope_for
    return access_scope_for(user, period)


def allowed_page_ids(user) -> list[str] | None:
    """Page ids this user may open, from the access module (None: it does not say)."""
    auth = auth_module()
    fn = getattr(auth, "allowed_pages", None) if auth else None
    if callable(fn):
        return list(fn(user))
    return None


# --- filters: session state is the truth, the URL mirrors it ---------------------------------------

def _filters_raw() -> Filters:
    if "_flt" not in st.session_state:
        st.session_state["_flt"] = Filters.from_params(st.query_params)
        st.session_state["_flt_gen"] = 0
    return st.session_state["_flt"]


def set_filters(**changes) -> None:
    """Change filters programmatically (drill, reset); widgets are rebuilt from the new values."""
    st.session_state["_flt"] = dataclasses.replace(_filters_raw(), **changes)
    st.session_state["_flt_gen"] = st.session_state.get("_flt_gen", 0) + 1


def drill_to(unit: str | None, **more) -> None:
    set_filters(unit=unit, **more)
    st.rerun()


_VIEW_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _views() -> dict:
    """Page-local view state kept in the URL too (e.g. the map metric, the statutory report's unit)."""
    if "_views" not in st.session_state:
        st.session_state["_views"] = {k[2:]: str(v) for k, v in st.query_params.items()
                                      if k.startswith("v_") and _VIEW_RE.match(str(v))}
    return st.session_state["_views"]


def view_param(name: str, default, allowed=None):
    """A page-local view value (validated against `allowed` when given; untrusted URL input otherwise
    only matches a conservative pattern)."""
    v = _views().get(name)
    if v is None or (allowed is not None and v not in allowed):
        return default
    return v


def set_view(name: str, value) -> None:
    if value is None:
        _views().pop(name, None)
    else:
        _views()[name] = str(value)
    sync_url(_filters_raw())


def sync_url(f: Filters) -> None:
    params = f.to_params()
    params.update({f"v_{k}": v for k, v in _views().items()})
    if lang() != "vi":
        params["lang"] = lang()
    current = {k: st.query_params.get(k) for k in st.query_params}
    if current != params:
        st.query_params.from_dict(params)


def _on_widget(field: str, key: str, allowed):
    allowed = list(allowed)

    def cb():
        v = st.session_state.get(key)
        if v not in allowed:
            return  # only one of the offered values, never a stale label (see language_changed)
        st.session_state["_flt"] = dataclasses.replace(_filters_raw(), **{field: v})
    return cb


def filter_bar(lg: str) -> None:
    """The one filter bar (sidebar), drawn by the router on every dashboard page."""
    f = _filters_raw()
    gen = st.session_state.get("_flt_gen", 0)
    try:
        periods = q.available_periods()
    except db.NoWarehouse:
        return
    if not periods:
        return
    latest = periods[-1]
    fr = f.resolved(latest)
    with st.sidebar:
        st.subheader(t("filter.title", lg))
        c1, c2 = st.columns(2)
        opts = list(reversed(periods))
        with c1:
            k = f"w{gen}_period_from"
            st.selectbox(t("filter.period_from", lg), opts, index=opts.index(fr.period_from) if fr.period_from in opts else len(opts) - 1,
                         format_func=lambda p: fmt_month(p, lg), key=k, on_change=_on_widget("period_from", k, opts))
        with c2:
            k = f"w{gen}_period_to"
            st.selectbox(t("filter.period_to", lg), opts, index=opts.index(fr.period_to) if fr.period_to in opts else 0,
                         format_func=lambda p: fmt_month(p, lg), key=k, on_change=_on_widget("period_to", k, opts))
        dims = [("province", "filter.province", ref_codes("province"), "province"),
                ("industry", "filter.industry", ref_codes("industry"), "industry"),
                ("ownership", "filter.ownership", ref_codes("ownership"), "ownership"),
                ("gender", "filter.gender", ["M", "F"], "gender"),
                ("age_band", "filter.age_band", _age_bands(), "age_band")]
        for field, label, codes, kind in dims:
            k = f"w{gen}_{field}"
            options = [None, *codes]
            cur = getattr(f, field)
            st.selectbox(t(label, lg), options, index=options.index(cur) if cur in options else 0,
                         format_func=(lambda c, kind=kind: t("filter.all", lg) if c is None
                                      else (f"{c} · {ref_name(kind, c, lg)}" if kind in ("province", "industry")
                                            else ref_name(kind, c, lg))),
                         key=k, on_change=_on_widget(field, k, options))
        if st.button(t("filter.reset", lg), key=f"w{gen}_reset", icon=":material/filter_alt_off:"):
            set_filters(**{fld.name: None for fld in dataclasses.fields(Filters)})
            st.rerun()
        st.caption(t("filter.share", lg))


def _age_bands() -> list[str]:
    try:
        return q.age_bands(national_scope(), None)
    except Exception:  # noqa: BLE001 - the list is cosmetic; the filter value is validated anyway
        return []


# --- page context --------------------------------------------------------------------------------

@dataclasses.dataclass
class PageContext:
    page: str
    lang: str
    user: object
    scope: object
    f: Filters
    as_of: dict
    path: list


def page_setup(page: str) -> PageContext:
    """Title, scope (from auth only), resolved filters, banner and breadcrumb; stops the page when there is
    no user or no warehouse."""
    lg = lang()
    st.title(t(f"page.{page}", lg))
    user = current_user()
    if user is None:
        st.info(t("page.dang_nhap", lg))
        st.stop()
    if getattr(user, "dev_fallback", False):
        st.warning(t("dev.fallback", lg), icon=":material/construction:")
    try:
        f = q.resolve(_filters_raw())
    except db.NoWarehouse:
        st.error(t("error.no_warehouse", lg))
        st.stop()
    scope = scope_for(user, f.period_to)
    path = q.unit_path(scope, f) if f.unit else []
    if f.unit and not path:  # not visible in this scope (or unknown): never widen, just drop it
        set_filters(unit=None)
        f = dataclasses.replace(f, unit=None)
    sync_url(_filters_raw())
    as_of = q.data_as_of(scope, f)
    banner(as_of, lg)
    ctx = PageContext(page, lg, user, scope, f, as_of, path)
    return ctx


def banner(as_of: dict, lg: str) -> None:
    published = as_of.get("published_at")
    try:
        pub = fmt_datetime(dt.datetime.fromisoformat(published).astimezone()) if published else "–"
    except ValueError:
        pub = str(published)
    fresh = as_of.get("freshness")
    latest = as_of.get("latest_period")
    text = t("banner.as_of", lg, period=fmt_month(latest, lg), published=pub)
    if fresh is not None and len(fresh):
        n_ok = int((fresh["months_behind"].fillna(99) <= 0).sum()) if "months_behind" in fresh else 0
        text += " · " + t("banner.branches_current", lg, n=n_ok, total=len(fresh), period=fmt_month(latest, lg))
    with st.container(border=True):
        st.caption(":material/schedule: " + md_escape(text))
        if fresh is not None and len(fresh):
            with st.expander(t("banner.freshness", lg)):
                show = fresh.rename(columns={"branch_code": t("col.unit_code", lg), "unit_name": t("col.branch", lg),
                                             "last_period": t("col.last_period", lg),
                                             "months_behind": t("col.months_behind", lg)})
                col = t("col.last_period", lg)
                show[col] = show[col].map(lambda p: fmt_month(p, lg) if pd.notna(p) else "–")
                st.dataframe(show, hide_index=True, width="stretch")


def breadcrumb(ctx: PageContext) -> None:
    """Country → province/sector → upper-level union → CĐCS; each crumb a button that goes back up."""
    lg = ctx.lang
    crumbs = [(None, t("drill.country", lg))]
    if ctx.f.province:
        crumbs[0] = (None, t("drill.country", lg))
    crumbs += [(p["code"], p["name"]) for p in ctx.path]
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        for i, (code, name) in enumerate(crumbs):
            last = i == len(crumbs) - 1
            label = ("› " if i else "") + md_escape(name)
            if st.button(label, key=f"crumb_{ctx.page}_{i}", type="tertiary" if not last else "secondary",
                         disabled=last, help=code or None):
                drill_to(code)
        if ctx.f.province:
            if st.button(f"✕ {md_escape(ref_name('province', ctx.f.province, lg))}", key=f"crumb_{ctx.page}_prov",
                         type="secondary", help=t("filter.province", lg), icon=":material/location_on:"):
                set_filters(province=None)
                st.rerun()


def drill_picker(ctx: PageContext, children: pd.DataFrame) -> None:
    """A select box of the units one level down, to drill into."""
    lg = ctx.lang
    if children is None or children.empty:
        return
    codes = children["unit_code"].tolist()
    names = dict(zip(children["unit_code"], children["unit_name"]))
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    with c1:
        pick = st.selectbox(t("drill.pick", lg), [None, *codes], index=0, key=f"drill_{ctx.page}_{ctx.f.unit}",
                            format_func=lambda c: "—" if c is None else f"{names.get(c, c)} ({c})")
    with c2:
        if st.button(t("drill.open", lg), key=f"drill_go_{ctx.page}", disabled=pick is None,
                     icon=":material/south_east:"):
            drill_to(pick)


def handle_chart_drill(event, codes: list[str], kind: str = "unit", curve: int | None = None) -> None:
    """Drill when a bar/province of a chart was clicked (`on_select='rerun'`). `codes`: the code of each
    point, in trace order (points carry customdata, or a point index as fallback)."""
    try:
        points = event.selection.points if event else []
    except AttributeError:
        points = []
    if not points:
        return
    if curve is not None:
        points = [p for p in points if p.get("curve_number", curve) == curve]
        if not points:
            return
    p = points[0]
    code = None
    cd = p.get("customdata")
    if isinstance(cd, (list, tuple)) and cd:
        code = cd[0]
    elif isinstance(cd, str):
        code = cd
    if code is None and p.get("location") is not None:
        code = p.get("location")
    if code is None:
        idx = p.get("point_index", p.get("point_number"))
        if isinstance(idx, int) and 0 <= idx < len(codes):
            code = codes[idx]
    if code not in codes:
        return
    if kind == "province":
        set_filters(province=code)
        st.rerun()
    drill_to(code)


# --- formatting helpers --------------------------------------------------------------------------

_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>~:])")


def md_escape(text) -> str:
    """Escape Markdown (Streamlit renders labels and captions as Markdown): data text stays text."""
    return _MD.sub(r"\\\1", str(text))


def safe_label(text) -> str:
    """Data-derived text for Plotly (titles, ticks, hover): HTML-escaped and never a LaTeX string."""
    s = html.escape(str(text), quote=True)
    return "\u200b" + s if s.startswith("$") else s


def kpi_card(label: str, value, prev, year, kind: str, lg: str, inverse: bool = False,
             note: str | None = None) -> None:
    def diff(a, b):
        if a is None or b is None or pd.isna(a) or pd.isna(b):
            return None
        if kind == "pct":
            return fmt_num((a - b) * 100, 1, lg) + (" đ.p." if lg == "vi" else " pp")
        d = a - b
        rel = f" ({fmt_pct(d / b, 1, lg, signed=True)})" if b else ""
        return ("+" if d > 0 else "") + fmt_int(d, lg) + rel

    shown = fmt_pct(value, 1, lg) if kind == "pct" else fmt_int(value, lg)
    d_prev, d_year = diff(value, prev), diff(value, year)
    with st.container(border=True):
        st.metric(label, shown, delta=d_prev, delta_color="inverse" if inverse else "normal",
                  help=f"{t('kpi.vs_prev', lg)}: {d_prev or t('kpi.na', lg)}")
        st.caption(f"{t('kpi.vs_year', lg)}: **{md_escape(d_year or t('kpi.na', lg))}**")
        if note:
            st.caption(note)


def target_note(row, lg: str) -> str:
    """The caption of a KPI's progress against its annual target (a row of `queries.overview_targets`):
    Markdown, data values escaped, the percentage in bold."""
    pct = f"**{md_escape(fmt_pct(row['ratio'], 1, lg))}**"
    target = md_escape(fmt_int(row["target"], lg))
    year = int(row["year"])
    if row["metric"] == "new_members":
        frm, to = row["ytd_from"], row["ytd_to"]
        period = "–" if frm is None else month_ranges([frm, to], lg, span=True)
        return t("kpi.target_joins", lg, period=md_escape(period), actual=md_escape(fmt_int(row["actual"], lg)),
                 pct=pct, year=year, target=target)
    return t("kpi.target_members", lg, pct=pct, year=year, target=target)


def label_columns(df: pd.DataFrame, lg: str, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Rename columns to labels (col.<name> unless mapped)."""
    mapping = mapping or {}
    return df.rename(columns={c: t(mapping.get(c, f"col.{c}"), lg) for c in df.columns})


def table(df: pd.DataFrame, name: str, lg: str, *, title: str | None = None, column_config=None,
          height="auto") -> None:
    """A table and its two exports (XLSX and CSV, formula-safe), with localised headers."""
    st.dataframe(df, hide_index=True, width="stretch", column_config=column_config, height=height)
    stamp = dt.date.today().strftime("%Y%m%d")
    c1, c2, _ = st.columns([1, 1, 4])
    with c1:
        st.download_button(t("export.xlsx", lg), ex.to_xlsx_bytes(df, sheet=name[:31], title=title),
                           file_name=f"{name}_{stamp}.xlsx", key=f"xlsx_{name}", icon=":material/download:",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           on_click="ignore")
    with c2:
        st.download_button(t("export.csv", lg), ex.to_csv_bytes(df), file_name=f"{name}_{stamp}.csv",
                           key=f"csv_{name}", mime="text/csv", icon=":material/download:", on_click="ignore")


def chart(fig: go.Figure, key: str, *, on_select: str = "ignore", height: int = 380, filename: str | None = None):
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), separators=",." if lang() == "vi" else ".,",
                      hoverlabel=dict(namelength=-1), legend=dict(orientation="h", y=-0.15))
    config = {"displaylogo": False, "locale": "vi" if lang() == "vi" else "en",
              "toImageButtonOptions": {"format": "png", "filename": filename or key, "scale": 2}}
    kwargs = {"on_select": on_select, "selection_mode": "points"} if on_select != "ignore" else {}
    return st.plotly_chart(fig, key=key, config=config, **kwargs)


def restructuring_markers(fig: go.Figure, lg: str, x_min=None, x_max=None) -> go.Figure:
    """Mark 01/06/2025 (public-sector exit) and 01/07/2025 (merger) on a time axis."""
    for day, key, colour, ypos in ((PUBLIC_SECTOR_EXIT, "event.public_exit", "#d9372b", 1.0),
                                   (MERGER, "event.merger", "#7b4fa0", 0.9)):
        if x_min is not None and x_max is not None and not (x_min <= day <= x_max):
            continue
        x = day.isoformat()
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color=colour, dash="dash", width=1.5))
        fig.add_annotation(x=x, y=ypos, yref="paper", text=t(key, lg), showarrow=False, xanchor="left",
                           font=dict(size=11, color=colour), bgcolor="rgba(255,255,255,0.7)")
    return fig


def time_axis(fig: go.Figure, lg: str) -> go.Figure:
    fig.update_xaxes(tickformat="%m/%Y", hoverformat="%m/%Y", title_text=t("col.period", lg))
    return fig


def page_guard(fn):
    """Run a page body; a failure shows a generic message, never a stack trace with data."""
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
    try:
        fn()
    except ScriptControlException:  # st.stop() / st.rerun()
        raise
    except db.NoWarehouse:
        st.error(t("error.no_warehouse", lang()))
    except Exception:  # noqa: BLE001
        import logging
        logging.getLogger("dashboards").exception("page failed")
        st.error(t("error.generic", lang()))


def period_list(f: Filters) -> list[dt.date]:
    from pipelines.analytics.filters import add_months
    out, p = [], f.period_from
    while p <= f.period_to:
        out.append(p)
        p = add_months(p, 1)
    return out


def month_ranges(periods, lg: str, span: bool = False) -> str:
    """Months as runs: [01..06/2025, 09/2025] -> 'T01/2025–T06/2025, T09/2025' (`span=True`: the first and
    the last month as one range)."""
    from pipelines.analytics.filters import add_months
    periods = sorted(periods)
    if span and periods:
        a, b = periods[0], periods[-1]
        return fmt_month(a, lg) if a == b else f"{fmt_month(a, lg)}–{fmt_month(b, lg)}"
    runs: list[list] = []
    for p in periods:
        if runs and add_months(runs[-1][1], 1) == p:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ", ".join(fmt_month(a, lg) if a == b else f"{fmt_month(a, lg)}–{fmt_month(b, lg)}" for a, b in runs)


def level_name(code: str | None, lg: str) -> str:
    return t(f"level.{unit_level(code)}", lg)


def fmt_int_col(s: pd.Series, lg: str) -> pd.Series:
    return s.map(lambda v: fmt_int(v, lg))


def as_percent(df: pd.DataFrame, cols) -> pd.DataFrame:
    """Fractions -> percentages rounded to one decimal, for tables and exports (labels say "(%)")."""
    out = df.copy()
    for col in cols:
        if col in out:
            out[col] = (pd.to_numeric(out[col], errors="coerce") * 100).round(1)
    return out
