"""Parameterised queries over the published marts, one group per dashboard page.

Every public function takes `(scope, filters, ...)`, applies the scope's predicate (fail-closed) and the
filters, reads only the de-identified `marts` schema, and is cached per (warehouse version, scope key,
filters, arguments) by `pipelines.analytics.db.cached`. Identifiers in SQL come only from the constants
below, never from user input; every value is a `?` parameter.

Results carry codes, not labels: the page (or the email) turns codes into names with
`pipelines.analytics.i18n`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from pipelines.analytics import db
from pipelines.analytics.db import cached, columns, fetch_df, fetch_one
from pipelines.analytics.filters import Filters, add_months, unit_column, unit_level
from pipelines.analytics.labels import CONFLICT_CODES as CONFLICT_TYPES
from pipelines.analytics.scoping import scope_sql

M = "marts"
CUBE = "mart_membership_cube"
MEMBERSHIP = "fct_membership_monthly"
EVENTS = "fct_member_events"
DUES = "fct_dues_monthly"
SERVICES = "fct_service_deliveries"
ACTIVITIES = "fct_activity_participation"
RECRUIT = "fct_recruitment_potential"
SUBMISSIONS = "fct_submissions"
REFUSED = "dq_refused_rows"
CONFLICTS = "dq_member_conflicts"
# the rows of SERVICES / ACTIVITIES whose member_key occurs more than once there (dbt marts/services): exact
# distinct members of any slice without count(DISTINCT) over the whole fact (see `_distinct_members`)
SERVICES_REPEATED = "fct_service_deliveries_repeated"
ACTIVITIES_REPEATED = "fct_activity_participation_repeated"
STATUTORY = "mart_statutory_report"
UNITS = "dim_union_unit"

FILTER_COLUMNS = {"province": "province_new_code", "industry": "industry_code",
                  "ownership": "ownership_type", "gender": "gender", "age_band": "age_band"}
CHILD_COLUMN = {"confederation": "top_unit_code", "province_federation": "upper_unit_code",
                "sector_union": "upper_unit_code", "upper_level": "cdcs_code", "cdcs": None}
SUPPRESS_K = 10


@dataclasses.dataclass(frozen=True)
class Where:
    sql: str
    params: list
    not_applied: tuple = ()


def months(first: dt.date, last: dt.date) -> list[dt.date]:
    out, p = [], first
    while p <= last:
        out.append(p)
        p = add_months(p, 1)
    return out


def _scope_periods(f: Filters, period) -> list[dt.date] | None:
    """The months a WHERE reads, for scopes that change over time (None: no period restriction)."""
    if period == "range":
        return months(f.period_from, f.period_to)
    if period == "to":
        return [f.period_to]
    if isinstance(period, dt.date):
        return [period]
    if isinstance(period, (list, tuple)):
        return list(period)
    return None


def where(table: str, scope, f: Filters, *, alias: str = "t", period="range", period_col: str = "period",
          skip: tuple = (), scope_periods=None, **scope_options) -> Where:
    """WHERE clause for `marts.<table>` AS alias: scope (fail-closed), period, organisation subtree and the
    dimension filters the table has. Filters the table lacks are reported in `not_applied`; an
    organisation filter the table cannot honour makes the clause FALSE (never silently wider).

    The organisation filter `f.unit` is applied month by month like a scope (`unit_scope`): each month gets
    the unit's subtree in force then, or, before the unit existed, the CĐCS that are its own now.

    The scope is applied month by month (each month of the query gets the scope in force then, across the
    1 July 2025 restructuring) when the scope supports it; `scope_periods` gives those months for queries
    with `period="none"` that still read several months."""
    cols = columns(table)
    if table == RECRUIT:
        scope_options.setdefault("unlinked_by_province", True)
    sp = scope_periods if scope_periods is not None else _scope_periods(f, period)
    s_sql, s_params = scope_sql(scope, alias, cols, periods=sp, period_column=period_col, **scope_options)
    parts, params, na = [s_sql], list(s_params), []
    if period == "range":
        parts.append(f"{alias}.{period_col} BETWEEN ? AND ?")
        params += [f.period_from, f.period_to]
    elif period == "to":
        parts.append(f"{alias}.{period_col} = ?")
        params.append(f.period_to)
    elif isinstance(period, dt.date):
        parts.append(f"{alias}.{period_col} = ?")
        params.append(period)
    elif isinstance(period, (list, tuple)):
        parts.append(f"{alias}.{period_col} IN ({', '.join('?' * len(period))})")
        params += list(period)
    if f.unit and "unit" not in skip:
        u_sql, u_params, u_missing = _unit_sql(table, cols, f, alias, sp, period_col)
        parts.append(u_sql)
        params += u_params
        if u_missing:
            na.append("unit")
    for field, col in FILTER_COLUMNS.items():
        v = getattr(f, field)
        if v is None or field in skip:
            continue
        if col in cols:
            parts.append(f"{alias}.{col} = ?")
            params.append(v)
        else:
            na.append(field)
    return Where(" AND ".join(parts), params, tuple(na))


def unit_scope(f: Filters):
    """The organisation filter `f.unit` as a scope that changes over time: the access layer's own
    `UserScope` of that unit (`pipelines.access.scope`), so a drilled view shows, month by month, exactly what
    an official of the unit sees (None when the access module is absent: plain column equality then).

    The rule across the 1 July 2025 restructuring (docs in dashboards/README.md, "Organisation filter"):
    - a month in which the unit exists: its subtree that month (the federation of a merged province, e.g. T08,
      includes the federations merged into it, T02, while they existed);
    - a month before the unit existed (a commune/ward union before 07/2025): the CĐCS that are under it now
      (at the start of its life), by `cdcs_code`, so its series is comparable over the whole range;
    - a month after the unit ended (a district union after 06/2025): nothing.
    """
    try:
        from pipelines.access.scope import UserScope
    except ImportError:  # early development only
        return None
    return UserScope(unit_code=f.unit, period=f.period_to or dt.date.today().replace(day=1))


def _unit_sql(table: str, cols, f: Filters, alias: str, periods, period_col: str) -> tuple[str, list, bool]:
    """SQL of the organisation filter on one table, month by month (`periods`: the months the query reads).
    Returns (sql, params, missing): `missing` when some month needs a column the table lacks (e.g. a commune
    union before 07/2025 needs `cdcs_code`): that month gets FALSE, never a wider set."""
    us = unit_scope(f)
    if us is None:
        col = unit_column(f.unit)
        return (f"{alias}.{col} = ?", [f.unit], False) if col in cols else ("FALSE", [], True)
    opts = {"unlinked_by_province": True} if table == RECRUIT else {}
    sql, params = scope_sql(us, alias, cols, periods=periods, period_column=period_col, **opts)
    return sql, params, bool(_unit_gaps(us, cols, periods if periods is not None else [us.period]))


def _unit_gaps(us, cols, periods) -> list[dt.date]:
    """The months in which the unit has CĐCS but the table's columns cannot express its subtree."""
    out = []
    for p in periods:
        s = us.at(p)
        if s.kind == "units" and s.predicate("t", cols)[0] == "FALSE":
            out.append(p)
    return out


def member_table(f: Filters) -> str:
    """The cube when a person-level dimension is filtered (the per-CĐCS fact lacks gender and age),
    else the per-CĐCS fact (it also answers CĐCS-level questions)."""
    return CUBE if (f.gender or f.age_band) else MEMBERSHIP


def _names_join(code_expr: str, among: str) -> str:
    """LEFT JOIN of `u.unit_name` (a unit's latest name) on `code_expr`. `among`: SQL listing every code that
    `code_expr` can take (its source table's column), so only those units are named instead of grouping all of
    dim_union_unit (325,000 rows at national scale, ~40 ms a query; `_named` explains the same for aggregates)."""
    return (f"LEFT JOIN (SELECT unit_code, arg_max(unit_name, valid_from) AS unit_name "
            f"FROM {M}.{UNITS} WHERE unit_code IN ({among}) GROUP BY unit_code) u ON u.unit_code = {code_expr}")


def _named(inner: str, code: str, order: str) -> str:
    """`inner` (a query whose first column is the unit code `code`) with `unit_name` (the unit's latest name, else
    its code) as the second column, ordered by `order`. The names are looked up for the result's codes only:
    naming every unit (`_names_join`: dim_union_unit grouped by unit_code, 325,000 rows at national scale) before
    aggregating cost ~80 ms per query on the services and dues pages."""
    return (f"WITH r AS MATERIALIZED ({inner}), "
            f"u AS (SELECT unit_code, arg_max(unit_name, valid_from) AS unit_name FROM {M}.{UNITS} "
            f"WHERE unit_code IN (SELECT {code} FROM r) GROUP BY unit_code) "
            f"SELECT r.{code}, coalesce(u.unit_name, r.{code}) AS unit_name, r.* EXCLUDE ({code}) "
            f"FROM r LEFT JOIN u ON u.unit_code = r.{code} ORDER BY {order}")


# --- metadata --------------------------------------------------------------------------------------

_latest: dict[str, dt.date | None] = {}


def latest_period() -> dt.date | None:
    """The latest month in the published membership fact (not scope dependent)."""
    v = db.version()
    if v not in _latest:
        row = fetch_one(f"SELECT max(period) FROM {M}.{MEMBERSHIP}")
        _latest[v] = row[0] if row else None
    return _latest[v]


def available_periods() -> list[dt.date]:
    df = fetch_df(f"SELECT DISTINCT period FROM {M}.{MEMBERSHIP} ORDER BY period")
    return [p.date() if hasattr(p, "date") else p for p in df["period"]]


def resolve(f: Filters) -> Filters:
    return f.resolved(latest_period())


@cached
def age_bands(scope, f) -> list[str]:
    if "age_band" not in columns(CUBE):
        return []
    w = where(CUBE, scope, Filters(), period="none")
    df = fetch_df(f"SELECT DISTINCT age_band FROM {M}.{CUBE} t WHERE {w.sql} AND age_band IS NOT NULL "
                  "ORDER BY 1", w.params)
    return df["age_band"].tolist()


@cached
def data_as_of(scope, f) -> dict:
    """Banner: latest period, publication time, and each reporting branch's freshness (within scope)."""
    latest = latest_period()
    info = db.version_info()
    fresh = pd.DataFrame(columns=["branch_code", "unit_name", "last_period", "months_behind"])
    if db.has_table(SUBMISSIONS):
        w = where(SUBMISSIONS, scope, Filters(), period="none")
        fresh = fetch_df(_named(
            f"SELECT t.branch_code, max(t.period) FILTER (WHERE t.status = 'accepted') AS last_period "
            f"FROM {M}.{SUBMISSIONS} t WHERE {w.sql} AND t.branch_code <> 'BHXH' GROUP BY 1",
            "branch_code", "last_period NULLS FIRST, 1"), w.params)
        if latest is not None and len(fresh):
            lp = pd.to_datetime(fresh["last_period"])
            fresh["months_behind"] = ((latest.year - lp.dt.year) * 12 + (latest.month - lp.dt.month)).astype("Int64")
    return {"latest_period": latest, "published_at": info.published_at if info else None,
            "version": info.version if info else None, "freshness": fresh}


# --- organisation tree -----------------------------------------------------------------------------

@cached
def unit_path(scope, f: Filters) -> list[dict]:
    """Breadcrumb from the country down to `f.unit` as of `f.period_to`: [{'code','name','level'}].
    A unit that did not exist yet at `f.period_to` (a commune/ward union before 07/2025) gets its path as of
    its first month, so the drill is kept (its earlier months show the CĐCS that are its own now).
    Empty when the unit is not visible in the scope (the page then drops the unit filter)."""
    if not f.unit:
        return []
    col = unit_column(f.unit)
    w = where(MEMBERSHIP, scope, Filters(), period="none", scope_periods=available_periods())
    row = fetch_one(
        f"SELECT top_unit_code, upper_unit_code, cdcs_code FROM {M}.{MEMBERSHIP} t "
        f"WHERE {w.sql} AND t.{col} = ? "
        f"ORDER BY (t.period <= ?) DESC, CASE WHEN t.period <= ? THEN t.period END DESC, t.period LIMIT 1",
        [*w.params, f.unit, f.period_to, f.period_to])
    if row is None:
        return []
    chain = {"province_federation": row[:1], "sector_union": row[:1], "upper_level": row[:2],
             "cdcs": row[:3]}[unit_level(f.unit)]
    codes = [c for c in chain if c]
    names = fetch_df(f"SELECT unit_code, arg_max(unit_name, valid_from) AS unit_name FROM {M}.{UNITS} "
                     f"WHERE unit_code IN ({', '.join('?' * len(codes))}) GROUP BY 1", codes)
    nm = dict(zip(names["unit_code"], names["unit_name"]))
    return [{"code": c, "name": nm.get(c, c), "level": unit_level(c)} for c in codes]


@cached
def children(scope, f: Filters) -> pd.DataFrame:
    """Members at `period_to` by the units one level below `f.unit` (or below the country)."""
    child = CHILD_COLUMN[unit_level(f.unit)]
    if child is None:
        return pd.DataFrame(columns=["unit_code", "unit_name", "members"])
    table = member_table(f)
    if child not in columns(table):
        table = MEMBERSHIP
    w = where(table, scope, f, period="to")
    return fetch_df(_named(
        f"SELECT t.{child} AS unit_code, sum(t.members)::BIGINT AS members FROM {M}.{table} t "
        f"WHERE {w.sql} AND t.{child} IS NOT NULL GROUP BY 1", "unit_code", "members DESC, unit_code"), w.params)


# --- overview --------------------------------------------------------------------------------------

def _kpi_periods(f: Filters) -> dict[str, dt.date]:
    p = f.period_to
    return {"cur": p, "prev": add_months(p, -1), "year": add_months(p, -12), "prev2": add_months(p, -2),
            "year_prev": add_months(p, -13)}


def _by_period(table: str, scope, f: Filters, expr: str, periods, extra: str = "") -> dict:
    w = where(table, scope, f, period=list(periods))
    df = fetch_df(f"SELECT t.period, {expr} AS v FROM {M}.{table} t WHERE {w.sql} {extra} GROUP BY 1",
                  w.params)
    return {(p.date() if hasattr(p, "date") else p): v for p, v in zip(df["period"], df["v"])}


@cached
def overview_kpis(scope, f: Filters) -> pd.DataFrame:
    """One row per KPI: value at `period_to`, at the previous month and at the same month last year."""
    ps = _kpi_periods(f)
    plist = sorted(set(ps.values()))
    members = _by_period(member_table(f), scope, f, "sum(t.members)", plist)
    ev = {}
    for et in ("join", "leave"):
        ev[et] = _by_period(EVENTS, scope, f, "count(*)", plist, f"AND t.event_type = '{et}'")
    dues_c = _by_period(DUES, scope, f, "sum(t.dues_collected)", plist)
    dues_e = _by_period(DUES, scope, f, "sum(t.dues_expected)", plist)
    rec_m = _by_period(RECRUIT, scope, f, "sum(t.members)", plist)
    rec_w = _by_period(RECRUIT, scope, f, "sum(t.insured_workers)", plist)
    serv = _by_period(SERVICES, scope, f, "count(*)", plist)

    def ratio(a, b, p):
        return (a.get(p) / b.get(p)) if a.get(p) is not None and b.get(p) else None

    def net(p):
        prev = add_months(p, -1)
        return (members.get(p) - members.get(prev)) if members.get(p) is not None and members.get(prev) is not None else None

    rows = []
    for key, getter, kind in [
        ("members", lambda p: members.get(p), "int"),
        ("joins", lambda p: ev["join"].get(p, 0 if members.get(p) is not None else None), "int"),
        ("leaves", lambda p: ev["leave"].get(p, 0 if members.get(p) is not None else None), "int"),
        ("net", net, "int"),
        ("coverage", lambda p: ratio(rec_m, rec_w, p), "pct"),
        ("dues_ratio", lambda p: ratio(dues_c, dues_e, p), "pct"),
        ("services", lambda p: serv.get(p, 0 if members.get(p) is not None else None), "int"),
    ]:
        rows.append({"kpi": key, "kind": kind, "value": getter(ps["cur"]), "prev": getter(ps["prev"]),
                     "year": getter(ps["year"])})
    return pd.DataFrame(rows)


def unit_filter_gaps(scope, f: Filters, table: str | None = None, periods=None) -> list[dt.date]:
    """Months (default: the range) where the organisation filter cannot be applied on `table` (default: the
    table the member figures come from). With a gender or age-band filter they come from the cube, which
    has no `cdcs_code`: a CĐCS, or a commune/ward union before it existed (its CĐCS of today), shows nothing
    there. The page says so instead of showing an unexplained gap."""
    us = unit_scope(f) if f.unit else None
    table = table or member_table(f)
    if us is None or table != CUBE:
        return []
    return _unit_gaps(us, columns(CUBE), periods if periods is not None else months(f.period_from, f.period_to))


# --- targets (data/reference/plans/targets.csv) ----------------------------------------------------------

TARGET_KPIS = (("members", "members"), ("new_members", "joins"))  # (metric of the targets file, KPI row)


def target_unit(scope, f: Filters) -> str | None:
    """The unit whose targets apply to this view: the drilled unit, else the user's own (the whole country
    for a national scope). None when a dimension filter (province, industry, ownership, gender, age band)
    shows only a slice of the unit: a target is set for the whole unit."""
    if any(getattr(f, fld) is not None for fld in FILTER_COLUMNS):
        return None
    if f.unit:
        return f.unit
    if getattr(scope, "is_national", False) or (getattr(scope, "key", None) == "dev:national"):
        return "TLD"
    code = getattr(scope, "unit_code", None)  # pipelines.access.scope.UserScope
    if code:
        return code
    roots = getattr(scope, "root_units", None) or ()
    return next(iter(roots)) if len(roots) == 1 else None


@cached
def joins_year_to_date(scope, f: Filters) -> dict:
    """Joins from January of `period_to`'s year (or the first published month, if later) to `period_to`."""
    first = available_periods()[0]
    start = max(dt.date(f.period_to.year, 1, 1), first)
    if start > f.period_to:
        return {"from": None, "to": f.period_to, "joins": None}
    fy = f.with_(period_from=start)
    w = where(EVENTS, scope, fy)
    row = fetch_one(f"SELECT count(*) FROM {M}.{EVENTS} t WHERE {w.sql} AND t.event_type = 'join'", w.params)
    return {"from": start, "to": f.period_to, "joins": int(row[0] or 0)}


def overview_targets(scope, f: Filters) -> pd.DataFrame:
    """Each overview KPI that has a target for the unit in view and `period_to`'s year (targets.csv):
    kpi, metric, unit_code, year, target, actual, ratio (actual / target), ytd_from, ytd_to.
    `members`: members at `period_to` vs the year-end target; `new_members`: joins since January (or the
    first published month) through `period_to` vs the year's target. Empty when no target applies."""
    from pipelines.analytics import targets

    cols = ["kpi", "metric", "unit_code", "year", "target", "actual", "ratio", "ytd_from", "ytd_to"]
    unit = target_unit(scope, f)
    if unit is None or f.period_to is None:
        return pd.DataFrame(columns=cols)
    year = f.period_to.year
    try:
        wanted = {m: targets.target_for(unit, year, m) for m, _ in TARGET_KPIS}
    except targets.TargetsError:
        import logging
        logging.getLogger(__name__).warning("targets file unreadable", exc_info=True)
        return pd.DataFrame(columns=cols)
    rows = []
    for metric, kpi in TARGET_KPIS:
        tgt = wanted[metric]
        if not tgt:
            continue
        if metric == "members":
            v = overview_kpis(scope, f).set_index("kpi").at["members", "value"]
            actual, frm, to = (None if v is None or pd.isna(v) else int(v)), None, f.period_to
        else:
            ytd = joins_year_to_date(scope, f)
            actual, frm, to = ytd["joins"], ytd["from"], ytd["to"]
        rows.append({"kpi": kpi, "metric": metric, "unit_code": unit, "year": year, "target": tgt,
                     "actual": actual, "ratio": None if actual is None else actual / tgt,
                     "ytd_from": frm, "ytd_to": to})
    return pd.DataFrame(rows, columns=cols)


@cached
def members_trend(scope, f: Filters) -> pd.DataFrame:
    table = member_table(f)
    w = where(table, scope, f)
    return fetch_df(f"SELECT t.period, sum(t.members)::BIGINT AS members FROM {M}.{table} t WHERE {w.sql} "
                    "GROUP BY 1 ORDER BY 1", w.params)


# --- map -------------------------------------------------------------------------------------------

@cached
def by_province(scope, f: Filters) -> pd.DataFrame:
    """Per new province (34) at `period_to`: members, growth vs last year, women's share, coverage,
    dues collection rate."""
    fp = f.with_(province=None)  # the map always shows every province in scope
    p, y = f.period_to, add_months(f.period_to, -12)
    table = member_table(fp)
    w = where(table, scope, fp, period=[p, y])
    mem = fetch_df(
        f"SELECT t.province_new_code, sum(t.members) FILTER (WHERE t.period = ?) AS members, "
        f"sum(t.members) FILTER (WHERE t.period = ?) AS members_year "
        f"FROM {M}.{table} t WHERE {w.sql} GROUP BY 1", [p, y, *w.params])
    out = mem
    if "gender" in columns(CUBE) and not fp.gender:
        wc = where(CUBE, scope, fp, period="to")
        fem = fetch_df(f"SELECT t.province_new_code, sum(t.members) FILTER (WHERE t.gender = 'F') AS women, "
                       f"sum(t.members) AS cube_members FROM {M}.{CUBE} t WHERE {wc.sql} GROUP BY 1", wc.params)
        out = out.merge(fem, on="province_new_code", how="left")
    else:
        out["women"], out["cube_members"] = None, None
    wr = where(RECRUIT, scope, fp, period="to")
    rec = fetch_df(f"SELECT t.province_new_code, sum(t.members) AS rec_members, "
                   f"sum(t.insured_workers) AS insured_workers FROM {M}.{RECRUIT} t WHERE {wr.sql} GROUP BY 1",
                   wr.params)
    wd = where(DUES, scope, fp, period="to")
    dues = fetch_df(f"SELECT t.province_new_code, sum(t.dues_collected) AS dues_collected, "
                    f"sum(t.dues_expected) AS dues_expected FROM {M}.{DUES} t WHERE {wd.sql} GROUP BY 1", wd.params)
    out = out.merge(rec, on="province_new_code", how="left").merge(dues, on="province_new_code", how="left")
    num = lambda c: pd.to_numeric(out[c], errors="coerce").astype(float)  # noqa: E731
    out["growth"] = (num("members") / num("members_year").where(num("members_year") > 0) - 1)
    out["female_share"] = num("women") / num("cube_members").where(num("cube_members") > 0)
    out["coverage"] = num("rec_members") / num("insured_workers").where(num("insured_workers") > 0)
    out["dues_rate"] = num("dues_collected") / num("dues_expected").where(num("dues_expected") > 0)
    out = out[out["province_new_code"].notna()].sort_values("province_new_code").reset_index(drop=True)
    return out[["province_new_code", "members", "members_year", "growth", "female_share", "coverage",
                "insured_workers", "dues_rate"]]


# --- structure -------------------------------------------------------------------------------------

STRUCTURE_DIMS = {"gender": "gender", "age_band": "age_band", "ethnicity": "ethnic_group",
                  "ownership": "ownership_type", "industry": "industry_code"}


def suppress(df: pd.DataFrame, count_col: str = "members", k: int = SUPPRESS_K) -> pd.DataFrame:
    """Small-cell suppression: a count under `k` (and above 0) is hidden (None, `suppressed` = True). If only
    one cell of the table is hidden, the next smallest is hidden too, so the total cannot reveal it."""
    out = df.copy()
    vals = pd.to_numeric(out[count_col], errors="coerce")
    mask = (vals > 0) & (vals < k)
    if int(mask.sum()) == 1 and len(out) > 1:
        rest = vals[~mask & (vals > 0)]
        if len(rest):
            mask.loc[rest.idxmin()] = True
    out["suppressed"] = mask
    out[count_col] = vals.astype("Float64").where(~mask, other=pd.NA).astype("Int64")
    if "share" in out.columns:
        out["share"] = out["share"].where(~mask)
    return out


@cached
def structure(scope, f: Filters, dim: str) -> pd.DataFrame:
    """Members at `period_to` by one dimension, small cells suppressed. Read from the cube (the per-CĐCS
    fact has ownership and industry only); a CĐCS-level view falls back to the fact for those two."""
    col = STRUCTURE_DIMS[dim]
    if col == "ethnic_group" and col not in columns(CUBE) and "ethnicity_code" in columns(CUBE):
        col = "ethnicity_code"
    table = CUBE
    if f.unit and "unit" in where(CUBE, scope, f, period="to").not_applied:
        # the cube has no cdcs_code: a CĐCS, or a commune union before it existed (its CĐCS of today)
        if col in columns(MEMBERSHIP) and not (f.gender or f.age_band):
            table = MEMBERSHIP
        else:
            return pd.DataFrame(columns=["code", "members", "share", "suppressed"])
    w = where(table, scope, f, period="to")
    df = fetch_df(f"SELECT t.{col} AS code, sum(t.members)::BIGINT AS members FROM {M}.{table} t "
                  f"WHERE {w.sql} GROUP BY 1 ORDER BY members DESC, code", w.params)
    total = df["members"].sum()
    df["share"] = df["members"] / total if total else None
    return suppress(df, "members", SUPPRESS_K)


# --- flows -----------------------------------------------------------------------------------------

@cached
def flows_monthly(scope, f: Filters) -> pd.DataFrame:
    w = where(EVENTS, scope, f)
    df = fetch_df(f"SELECT t.period, count(*) FILTER (WHERE t.event_type = 'join') AS joins, "
                  f"count(*) FILTER (WHERE t.event_type = 'leave') AS leaves, "
                  f"count(*) FILTER (WHERE t.event_type = 'transfer_in') AS transfers_in, "
                  f"count(*) FILTER (WHERE t.event_type = 'transfer_out') AS transfers_out "
                  f"FROM {M}.{EVENTS} t WHERE {w.sql} GROUP BY 1 ORDER BY 1", w.params)
    return df


@cached
def leaves_by_reason(scope, f: Filters) -> pd.DataFrame:
    w = where(EVENTS, scope, f)
    return fetch_df(f"SELECT t.leave_reason_code AS code, count(*) AS leaves FROM {M}.{EVENTS} t "
                    f"WHERE {w.sql} AND t.event_type = 'leave' GROUP BY 1 ORDER BY leaves DESC, code", w.params)


@cached
def flows_by_province(scope, f: Filters) -> pd.DataFrame:
    """Stock and flow per new province over the range: opening (end of the month before `period_from`),
    joins, leaves, transfers, closing (end of `period_to`). Pre-merger rows are already on the 34."""
    table = member_table(f)
    opening_p = add_months(f.period_from, -1)
    w = where(table, scope, f, period=[opening_p, f.period_to])
    stock = fetch_df(f"SELECT t.province_new_code, sum(t.members) FILTER (WHERE t.period = ?) AS opening, "
                     f"sum(t.members) FILTER (WHERE t.period = ?) AS closing FROM {M}.{table} t "
                     f"WHERE {w.sql} GROUP BY 1", [opening_p, f.period_to, *w.params])
    we = where(EVENTS, scope, f)
    ev = fetch_df(f"SELECT t.province_new_code, count(*) FILTER (WHERE t.event_type = 'join') AS joins, "
                  f"count(*) FILTER (WHERE t.event_type = 'leave') AS leaves, "
                  f"count(*) FILTER (WHERE t.event_type = 'transfer_in') AS transfers_in, "
                  f"count(*) FILTER (WHERE t.event_type = 'transfer_out') AS transfers_out "
                  f"FROM {M}.{EVENTS} t WHERE {we.sql} GROUP BY 1", we.params)
    out = stock.merge(ev, on="province_new_code", how="outer")
    for c in ("opening", "closing", "joins", "leaves", "transfers_in", "transfers_out"):
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0).astype("int64")
    return out.sort_values("province_new_code").reset_index(drop=True)[
        ["province_new_code", "opening", "joins", "leaves", "transfers_in", "transfers_out", "closing"]]


# --- services and activities -----------------------------------------------------------------------

@cached  # both services_by_program and activities_by_type need it on one page: one query, not two
def _members_at_to(scope, f: Filters) -> int:
    table = member_table(f)
    w = where(table, scope, f, period="to")
    row = fetch_one(f"SELECT sum(t.members) FROM {M}.{table} t WHERE {w.sql}", w.params)
    return int(row[0] or 0)


def _distinct_members(table: str, repeated: str, scope, f: Filters, w: Where, group: str, count_col: str,
                      distinct_col: str, extra: dict[str, str] | None = None,
                      keyed: str = "count(t.member_key)") -> tuple[str, list]:
    """SQL (and params) of `SELECT <group> AS code, count(*) AS <count_col>, count(DISTINCT member_key) AS
    <distinct_col>, <extra expr> AS <extra name>… FROM table t WHERE w GROUP BY 1`, the distinct count made exact
    and cheap with the table of repeated rows (`repeated`: the fact's rows whose member_key occurs more than once in
    it, every column equal). A member with one row in the fact is distinct from every other row, so in any slice:
    distinct members = rows with a member_key − repeated rows + distinct member_key of the repeated rows, and the
    distinct count runs over a few % of the rows (121,000 of 1.6 million participations at national scale, where
    count(DISTINCT) over every row cost ~300 ms).
    `keyed`: the fact's rows with a member_key (`count(*)` where the contract makes member_key not null: reading
    the key column of every row is what a cold page pays most for).
    Falls back to count(DISTINCT) over the fact when the repeated table is missing (a warehouse published before
    it) or when the scope and filters would not give it the very same predicate as the fact."""
    extra = extra or {}
    extra_sql = "".join(f", {expr} AS {name}" for name, expr in extra.items())
    wr = where(repeated, scope, f) if db.has_table(repeated) else None
    if wr is None or (wr.sql, wr.params, wr.not_applied) != (w.sql, w.params, w.not_applied):
        return (f"SELECT t.{group} AS code, count(*) AS {count_col}, count(DISTINCT t.member_key) AS {distinct_col}"
                f"{extra_sql} FROM {M}.{table} t WHERE {w.sql} GROUP BY 1", w.params)
    extra_out = "".join(f", a.{name}" for name in extra)
    return (f"WITH a AS (SELECT t.{group} AS code, count(*) AS n, {keyed} AS keyed{extra_sql} "
            f"FROM {M}.{table} t WHERE {w.sql} GROUP BY 1), "
            f"r AS (SELECT t.{group} AS code, count(*) AS n, count(DISTINCT t.member_key) AS d "
            f"FROM {M}.{repeated} t WHERE {wr.sql} GROUP BY 1) "
            f"SELECT a.code, a.n AS {count_col}, a.keyed - coalesce(r.n, 0) + coalesce(r.d, 0) AS {distinct_col}"
            f"{extra_out} FROM a LEFT JOIN r ON r.code = a.code", [*w.params, *wr.params])


@cached
def services_by_program(scope, f: Filters) -> pd.DataFrame:
    w = where(SERVICES, scope, f)
    sql, params = _distinct_members(SERVICES, SERVICES_REPEATED, scope, f, w, "program_code", "deliveries",
                                    "beneficiaries", {"amount": "sum(t.amount)::BIGINT"})
    df = fetch_df(f"SELECT * FROM ({sql}) s ORDER BY deliveries DESC, code", params)
    members = _members_at_to(scope, f)
    df["reach"] = df["beneficiaries"] / members if members else None
    return df


@cached
def services_monthly(scope, f: Filters) -> pd.DataFrame:
    w = where(SERVICES, scope, f)
    return fetch_df(f"SELECT t.period, t.program_code AS code, count(*) AS deliveries, "
                    f"sum(t.amount)::BIGINT AS amount FROM {M}.{SERVICES} t WHERE {w.sql} "
                    "GROUP BY 1, 2 ORDER BY 1, 2", w.params)


@cached
def activities_by_type(scope, f: Filters) -> pd.DataFrame:
    w = where(ACTIVITIES, scope, f)
    # member_key is never null in fct_activity_participation (not_null test, an error: such a build is not published)
    sql, params = _distinct_members(ACTIVITIES, ACTIVITIES_REPEATED, scope, f, w, "activity_type", "participations",
                                    "participants", keyed="count(*)")
    df = fetch_df(f"SELECT * FROM ({sql}) s ORDER BY participations DESC, code", params)
    members = _members_at_to(scope, f)
    df["participation_rate"] = df["participants"] / members if members else None
    return df


# --- dues ------------------------------------------------------------------------------------------

@cached
def dues_monthly(scope, f: Filters) -> pd.DataFrame:
    w = where(DUES, scope, f)
    df = fetch_df(f"SELECT t.period, sum(t.dues_expected)::BIGINT AS dues_expected, "
                  f"sum(t.dues_collected)::BIGINT AS dues_collected FROM {M}.{DUES} t WHERE {w.sql} "
                  "GROUP BY 1 ORDER BY 1", w.params)
    df["arrears"] = (df["dues_expected"] - df["dues_collected"]).clip(lower=0)
    df["collection_rate"] = df["dues_collected"] / df["dues_expected"].where(df["dues_expected"] > 0)
    return df


@cached
def dues_by_unit(scope, f: Filters) -> pd.DataFrame:
    """Over the range, per unit one level below the current one: expected, collected, arrears, rate."""
    child = CHILD_COLUMN[unit_level(f.unit)] or "cdcs_code"
    w = where(DUES, scope, f)
    df = fetch_df(_named(
        f"SELECT t.{child} AS unit_code, sum(t.dues_expected)::BIGINT AS dues_expected, "
        f"sum(t.dues_collected)::BIGINT AS dues_collected FROM {M}.{DUES} t WHERE {w.sql} AND t.{child} IS NOT NULL "
        "GROUP BY 1", "unit_code", "dues_expected DESC, unit_code"), w.params)
    df["arrears"] = (df["dues_expected"] - df["dues_collected"]).clip(lower=0)
    df["collection_rate"] = df["dues_collected"] / df["dues_expected"].where(df["dues_expected"] > 0)
    return df


@cached
def dues_zero_units(scope, f: Filters) -> pd.DataFrame:
    """CĐCS that collected nothing over the whole range although dues were expected."""
    w = where(DUES, scope, f)
    return fetch_df(_named(
        f"SELECT t.cdcs_code AS unit_code, t.province_new_code, count(*) AS zero_months, "
        f"sum(t.dues_expected)::BIGINT AS dues_expected FROM {M}.{DUES} t WHERE {w.sql} GROUP BY 1, 2 "
        "HAVING sum(t.dues_collected) = 0 AND sum(t.dues_expected) > 0", "unit_code", "dues_expected DESC, unit_code"),
        w.params)


def dues_rule_in_force(day: dt.date) -> dict | None:
    """The dues rule of `data/reference/dues_rules.csv` in force on `day` (rate, cap)."""
    import csv

    from pipelines.config import REFERENCE_DIR
    with open(REFERENCE_DIR / "dues_rules.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            frm = dt.date.fromisoformat(row["valid_from"])
            to = dt.date.fromisoformat(row["valid_to"]) if row["valid_to"] else None
            if frm <= day and (to is None or day <= to):
                rate = float(row["rate"])
                cap = round(float(row["base_salary"]) * float(row["cap_multiplier"]))
                return {"rate": rate, "cap": cap, "valid_from": frm, "valid_to": to}
    return None


# --- recruitment -----------------------------------------------------------------------------------

@cached
def recruitment_top(scope, f: Filters, limit: int = 50, without_cdcs: bool = False) -> pd.DataFrame:
    w = where(RECRUIT, scope, f, period="to")
    extra = "AND NOT t.has_cdcs" if without_cdcs else ""
    return fetch_df(f"SELECT t.employer_code, t.employer_name, t.province_new_code, t.industry_code, "
                    f"t.ownership_type, t.insured_workers, t.members, t.potential, t.has_cdcs "
                    f"FROM {M}.{RECRUIT} t WHERE {w.sql} {extra} "
                    f"ORDER BY t.potential DESC, t.employer_code LIMIT ?", [*w.params, int(limit)])


@cached
def recruitment_by_province(scope, f: Filters) -> pd.DataFrame:
    w = where(RECRUIT, scope, f, period="to")
    df = fetch_df(f"SELECT t.province_new_code, count(*) AS employers, "
                  f"count(*) FILTER (WHERE NOT t.has_cdcs) AS employers_without_cdcs, "
                  f"sum(t.insured_workers)::BIGINT AS insured_workers, sum(t.members)::BIGINT AS members, "
                  f"sum(t.potential)::BIGINT AS potential FROM {M}.{RECRUIT} t WHERE {w.sql} "
                  "GROUP BY 1 ORDER BY potential DESC", w.params)
    df["coverage"] = df["members"] / df["insured_workers"].where(df["insured_workers"] > 0)
    return df


# --- submissions -----------------------------------------------------------------------------------

# the codes `_names_join` names on the submissions page (branches, the other CĐCS of an identity conflict) and
# the statutory report page
_SUBMITTING_BRANCHES = f"SELECT branch_code FROM {M}.{SUBMISSIONS}"
_CONFLICT_OTHER_UNITS = f"SELECT other_cdcs_code FROM {M}.{CONFLICTS}"
_STATUTORY_UNITS = f"SELECT unit_code FROM {M}.{STATUTORY}"


def _expected_branch_months(scope, f: Filters) -> tuple[str, list]:
    """SQL (and params) of the (branch_code, period) pairs expected in the range: every branch seen in
    the submissions in scope, for the months its unit was valid."""
    w = where(SUBMISSIONS, scope, f, period="none", skip=("industry", "ownership", "gender", "age_band"),
              scope_periods=months(f.period_from, f.period_to))
    sql = (f"SELECT b.branch_code, m.period FROM (SELECT DISTINCT t.branch_code FROM {M}.{SUBMISSIONS} t "
           f"WHERE {w.sql} AND t.branch_code <> 'BHXH') b "
           f"CROSS JOIN (SELECT CAST(range AS DATE) AS period FROM range(?::DATE, ?::DATE + INTERVAL 1 MONTH, "
           f"INTERVAL 1 MONTH)) m "
           f"LEFT JOIN (SELECT unit_code, min(valid_from) AS vf, "
           f"CASE WHEN bool_or(valid_to IS NULL) THEN NULL ELSE max(valid_to) END AS vt "
           f"FROM {M}.{UNITS} WHERE unit_code IN ({_SUBMITTING_BRANCHES}) GROUP BY 1) u "
           f"ON u.unit_code = b.branch_code "
           f"WHERE (u.vf IS NULL OR u.vf <= m.period + INTERVAL 1 MONTH - INTERVAL 1 DAY) "
           f"AND (u.vt IS NULL OR u.vt >= m.period) "
           f"AND m.period BETWEEN (SELECT min(period) FROM {M}.{SUBMISSIONS}) AND (SELECT max(period) FROM {M}.{SUBMISSIONS})")
    return sql, [*w.params, f.period_from, f.period_to]


@cached
def submissions_matrix(scope, f: Filters, kind: str = "roster") -> pd.DataFrame:
    """Per expected (branch, month) the status of the file in force: on_time, late, refused or missing."""
    exp_sql, exp_params = _expected_branch_months(scope, f)
    w = where(SUBMISSIONS, scope, f, skip=("industry", "ownership", "gender", "age_band"))
    return fetch_df(
        f"WITH e AS ({exp_sql}), s AS (SELECT t.branch_code, t.period, "
        f"bool_or(t.status = 'accepted') AS accepted, "
        f"bool_or(t.status = 'accepted' AND NOT t.is_late) AS on_time, count(*) AS files "
        f"FROM {M}.{SUBMISSIONS} t WHERE {w.sql} AND t.kind = ? AND t.status <> 'not_submitted' GROUP BY 1, 2) "
        f"SELECT e.branch_code, coalesce(u.unit_name, e.branch_code) AS unit_name, e.period, "
        f"CASE WHEN s.branch_code IS NULL THEN 'missing' WHEN s.on_time THEN 'on_time' "
        f"WHEN s.accepted THEN 'late' ELSE 'refused' END AS status, coalesce(s.files, 0) AS files "
        f"FROM e LEFT JOIN s USING (branch_code, period) {_names_join('e.branch_code', _SUBMITTING_BRANCHES)} "
        f"ORDER BY e.branch_code, e.period",
        [*exp_params, *w.params, kind])


@cached
def branch_quality(scope, f: Filters) -> pd.DataFrame:
    """Per branch over the range (all kinds): months expected/sent/on time, rows read/refused, a score.
    Score = 100 × (0.4 × sent share + 0.3 × on-time share + 0.3 × accepted-row share)."""
    exp_sql, exp_params = _expected_branch_months(scope, f)
    w = where(SUBMISSIONS, scope, f, skip=("industry", "ownership", "gender", "age_band"))
    df = fetch_df(
        f"WITH e AS ({exp_sql}), s AS (SELECT t.branch_code, t.period, bool_or(t.status = 'accepted') AS sent, "
        f"bool_or(t.status = 'accepted' AND NOT t.is_late) AS on_time, count(*) AS files, "
        f"count(*) FILTER (WHERE t.status = 'refused') AS files_refused, "
        f"sum(t.rows_read) AS rows_read, sum(t.rows_refused) AS rows_refused "
        f"FROM {M}.{SUBMISSIONS} t WHERE {w.sql} AND t.kind = 'roster' AND t.status <> 'not_submitted' "
        f"GROUP BY 1, 2), "
        f"r AS (SELECT t.branch_code, sum(t.rows_read) AS rows_read, sum(t.rows_refused) AS rows_refused, "
        f"count(*) AS files, count(*) FILTER (WHERE t.status = 'refused') AS files_refused "
        f"FROM {M}.{SUBMISSIONS} t WHERE {w.sql} AND t.status <> 'not_submitted' GROUP BY 1) "
        f"SELECT e.branch_code, coalesce(u.unit_name, e.branch_code) AS unit_name, "
        f"count(*) AS months_expected, count(*) FILTER (WHERE s.sent) AS months_sent, "
        f"count(*) FILTER (WHERE s.on_time) AS months_on_time, "
        f"any_value(r.files) AS files, any_value(r.files_refused) AS files_refused, "
        f"coalesce(any_value(r.rows_read), 0)::BIGINT AS rows_read, "
        f"coalesce(any_value(r.rows_refused), 0)::BIGINT AS rows_refused "
        f"FROM e LEFT JOIN s USING (branch_code, period) LEFT JOIN r ON r.branch_code = e.branch_code "
        f"{_names_join('e.branch_code', _SUBMITTING_BRANCHES)} GROUP BY ALL ORDER BY e.branch_code",
        [*exp_params, *w.params, *w.params])
    exp = df["months_expected"].where(df["months_expected"] > 0)
    df["missing"] = df["months_expected"] - df["months_sent"]
    df["late"] = df["months_sent"] - df["months_on_time"]
    df["refusal_rate"] = (df["rows_refused"] / df["rows_read"].where(df["rows_read"] > 0)).fillna(0.0)
    sent_share = (df["months_sent"] / exp).fillna(0.0)
    on_time_share = (df["months_on_time"] / df["months_sent"].where(df["months_sent"] > 0)).fillna(0.0)
    df["quality_score"] = (100 * (0.4 * sent_share + 0.3 * on_time_share + 0.3 * (1 - df["refusal_rate"]))).round(1)
    return df.sort_values(["quality_score", "branch_code"]).reset_index(drop=True)


@cached
def refusal_by_rule(scope, f: Filters, branch: str | None = None) -> pd.DataFrame:
    w = where(REFUSED, scope, f, skip=("industry", "ownership", "gender", "age_band", "province"))
    extra, params = ("AND t.branch_code = ?", [branch]) if branch else ("", [])
    return fetch_df(f"SELECT t.rule_code, count(*) AS rows_refused FROM {M}.{REFUSED} t WHERE {w.sql} {extra} "
                    "GROUP BY 1 ORDER BY rows_refused DESC, rule_code", [*w.params, *params])


@cached
def refused_files(scope, f: Filters, limit: int = 500) -> pd.DataFrame:
    """Files refused as a whole (or recognised as duplicates) over the range: branch, month, kind, the
    reason code (label it with `labels.reason_label`) and the ingestion's message."""
    cols = columns(SUBMISSIONS)
    if "reason_code" not in cols:
        return pd.DataFrame(columns=["branch_code", "unit_name", "period", "kind", "status", "reason_code"])
    w = where(SUBMISSIONS, scope, f, skip=("industry", "ownership", "gender", "age_band"))
    extra = ", t.message_vi" if "message_vi" in cols else ""
    return fetch_df(f"SELECT t.branch_code, coalesce(u.unit_name, t.branch_code) AS unit_name, t.period, t.kind, "
                    f"t.status, t.reason_code{extra} FROM {M}.{SUBMISSIONS} t "
                    f"{_names_join('t.branch_code', _SUBMITTING_BRANCHES)} "
                    f"WHERE {w.sql} AND t.status IN ('refused', 'duplicate') "
                    f"ORDER BY t.period DESC, t.branch_code, t.kind LIMIT ?", [*w.params, int(limit)])


REFUSED_COLUMNS = ("branch_code", "period", "kind", "file_id", "source_sheet", "source_row", "rule_code",
                   "column_name", "message_vi", "message_en")


@cached
def refused_rows(scope, f: Filters, branch: str, limit: int = 500) -> pd.DataFrame:
    """The refused rows of one branch over the range: where they are and which rule they broke, never the
    refused value itself (it may be personal data)."""
    cols = columns(REFUSED)
    sel = ", ".join(f"t.{c}" for c in REFUSED_COLUMNS if c in cols)
    w = where(REFUSED, scope, f, skip=("industry", "ownership", "gender", "age_band", "province"))
    return fetch_df(f"SELECT {sel} FROM {M}.{REFUSED} t WHERE {w.sql} AND t.branch_code = ? "
                    "ORDER BY t.period, t.file_id, t.source_row LIMIT ?", [*w.params, branch, int(limit)])



# --- identity conflicts (for a data steward) ----------------------------------------------------------

_CONFLICT_SKIP = ("industry", "ownership", "gender", "age_band")


@cached
def member_conflicts_by_type(scope, f: Filters) -> pd.DataFrame:
    """Identity conflicts in scope over the range (`dq_member_conflicts`, never merged silently) per type, with
    the CĐCS they concern; every type of `CONFLICT_TYPES` is listed, 0 when it has none."""
    w = where(CONFLICTS, scope, f, skip=_CONFLICT_SKIP)
    got = fetch_df(f"SELECT t.conflict_type, count(*) AS conflicts, count(DISTINCT t.cdcs_code) AS units "
                   f"FROM {M}.{CONFLICTS} t WHERE {w.sql} GROUP BY 1", w.params)
    counts = {r.conflict_type: (int(r.conflicts), int(r.units)) for r in got.itertuples()}
    types = [*CONFLICT_TYPES, *sorted(set(counts) - set(CONFLICT_TYPES))]
    return pd.DataFrame({"conflict_type": types, "conflicts": [counts.get(c, (0, 0))[0] for c in types],
                         "units": [counts.get(c, (0, 0))[1] for c in types]})


@cached
def member_conflicts_by_unit(scope, f: Filters, limit: int = 500) -> pd.DataFrame:
    """Per CĐCS in scope (the unit whose roster wrote the conflicting record: for two units, the one where the
    person is not counted) over the range: its conflicts of each type and in all, most first."""
    w = where(CONFLICTS, scope, f, skip=_CONFLICT_SKIP)
    per_type = ", ".join(f"count(*) FILTER (WHERE t.conflict_type = '{c}') AS {c}" for c in CONFLICT_TYPES)
    inner = (f"SELECT t.cdcs_code, count(*) AS conflicts, {per_type}, min(t.period) AS first_period, "
             f"max(t.period) AS last_period FROM {M}.{CONFLICTS} t WHERE {w.sql} AND t.cdcs_code IS NOT NULL "
             f"GROUP BY 1 ORDER BY conflicts DESC, cdcs_code LIMIT ?")
    return fetch_df(_named(inner, "cdcs_code", "conflicts DESC, cdcs_code"), [*w.params, int(limit)])


@cached
def member_conflicts(scope, f: Filters, cdcs: str, limit: int = 500) -> pd.DataFrame:
    """The conflicts of one CĐCS over the range: month, type, the other CĐCS (two units: where the person is
    counted) and how many records or units are involved; never the person's key or details (a data steward
    opens the branch's roster of that month, or the audited member lookup)."""
    w = where(CONFLICTS, scope, f, skip=_CONFLICT_SKIP)
    return fetch_df(
        f"SELECT t.conflict_id, t.period, t.conflict_type, t.cdcs_code, t.other_cdcs_code, "
        f"coalesce(u.unit_name, t.other_cdcs_code) AS other_unit_name, t.variant_count "
        f"FROM {M}.{CONFLICTS} t {_names_join('t.other_cdcs_code', _CONFLICT_OTHER_UNITS)} "
        f"WHERE {w.sql} AND t.cdcs_code = ? ORDER BY t.period, t.conflict_type, t.other_cdcs_code LIMIT ?",
        [*w.params, cdcs, int(limit)])


def conflict_in_scope(scope, f: Filters, conflict_id: str) -> str | None:
    """The CĐCS of conflict `conflict_id` when it is in `scope` over the range of `f`, else None (not cached: it
    guards a write)."""
    w = where(CONFLICTS, scope, f, skip=_CONFLICT_SKIP)
    row = fetch_one(f"SELECT t.cdcs_code FROM {M}.{CONFLICTS} t WHERE {w.sql} AND t.conflict_id = ? LIMIT 1",
                    [*w.params, str(conflict_id)])
    return row[0] if row else None

# --- statutory report ------------------------------------------------------------------------------

STATUTORY_INDICATORS = [  # (column of mart_statutory_report, label key, unit-of-measure key, women's column)
    ("members", "ind.members", "uom.person", "women"),
    ("ethnic_minority_members", "ind.members_ethnic_minority", "uom.person", None),
    ("new_members", "ind.joins", "uom.person", None),
    ("leavers", "ind.leaves", "uom.person", None),
    ("transfers_in", "ind.transfers_in", "uom.person", None),
    ("transfers_out", "ind.transfers_out", "uom.person", None),
    ("cdcs_count", "ind.cdcs", "uom.unit", None),
    ("new_cdcs", "ind.new_cdcs", "uom.unit", None),
]


def statutory_indicators() -> list:
    """The indicators whose column exists in the published mart (the report's rows, in order)."""
    cols = columns(STATUTORY)
    return [i for i in STATUTORY_INDICATORS if i[0] in cols]


def _report_period(report_date: dt.date) -> dt.date:
    return report_date.replace(day=1)


def _statutory_where(scope, report_dates) -> Where:
    """Scope of the statutory mart: each report as of its own month (`report_period`)."""
    if "report_period" not in columns(STATUTORY):  # no month column: the scope as of the page's month
        return where(STATUTORY, scope, Filters(), period="none")
    return where(STATUTORY, scope, Filters(), period="none", period_col="report_period",
                 scope_periods=[_report_period(d) for d in report_dates])


@cached
def statutory_dates(scope, f) -> list[dt.date]:
    every = fetch_df(f"SELECT DISTINCT report_date FROM {M}.{STATUTORY}")["report_date"]
    w = _statutory_where(scope, [d.date() if hasattr(d, "date") else d for d in every])
    df = fetch_df(f"SELECT DISTINCT t.report_date FROM {M}.{STATUTORY} t WHERE {w.sql} ORDER BY 1 DESC", w.params)
    return [d.date() if hasattr(d, "date") else d for d in df["report_date"]]


@cached
def statutory_units(scope, f, report_date: dt.date) -> pd.DataFrame:
    w = _statutory_where(scope, [report_date])
    return fetch_df(f"SELECT t.unit_code, coalesce(u.unit_name, t.unit_name, t.unit_code) AS unit_name "
                    f"FROM {M}.{STATUTORY} t {_names_join('t.unit_code', _STATUTORY_UNITS)} "
                    f"WHERE {w.sql} AND t.report_date = ? ORDER BY CASE WHEN t.unit_code = 'TLD' THEN 0 "
                    f"WHEN t.unit_code LIKE 'T%' THEN 1 WHEN t.unit_code LIKE 'N%' THEN 2 "
                    f"WHEN t.unit_code LIKE 'CS%' THEN 4 ELSE 3 END, t.unit_code", [*w.params, report_date])


@cached
def statutory_report(scope, f, unit_code: str, report_date: dt.date) -> dict | None:
    """The statutory report of one unit as of one report date (31/5 or 30/11), or None (not in scope)."""
    w = _statutory_where(scope, [report_date])
    df = fetch_df(f"SELECT t.*, coalesce(u.unit_name, t.unit_name, t.unit_code) AS display_name "
                  f"FROM {M}.{STATUTORY} t {_names_join('t.unit_code', _STATUTORY_UNITS)} "
                  f"WHERE {w.sql} AND t.unit_code = ? AND t.report_date = ?", [*w.params, unit_code, report_date])
    if df.empty:
        return None
    return df.iloc[0].to_dict()
