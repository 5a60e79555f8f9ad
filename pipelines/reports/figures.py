"""The numbers of one brief, for one organisation unit's subtree, from the published marts.

Scope: the subscription's unit becomes the access engineer's `Scope` (`pipelines.access.scope`), per
period (the tree changes on 1 July 2025), and every query ANDs its predicate over the mart columns
`province_new_code / top_unit_code / upper_unit_code / cdcs_code`. Nothing outside the scope is read.

Ownership note for the dashboards engineer: the queries in the section "BRIEF QUERIES" below exist only
because `pipelines/analytics/` had no function for these figures when the emails were built. They are
plain functions `(con, scope_ctx, ...) -> DataFrame | dict`; absorb them into the query layer and
`figures.py` will call yours instead (one copy of each query).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import SimpleNamespace

import pandas as pd

SCOPE_COLS = ("province_new_code", "top_unit_code", "upper_unit_code", "cdcs_code")
DROP_THRESHOLD = -0.05       # a child unit whose members fell by more than 5 % in a month
ARREARS_THRESHOLD = 0.80     # collected below 80 % of expected
TREND_MONTHS = 12
TOP_N = 5


def add_months(d: dt.date, n: int) -> dt.date:
    m = d.year * 12 + d.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


def unit_level(code: str) -> str:
    if code == "TLD":
        return "confederation"
    if code.startswith("CS"):
        return "cdcs"
    if code[0] == "T":
        return "province_federation"
    if code[0] == "N":
        return "sector_union"
    return "upper_level"


_ROLE_FOR_LEVEL = {"province_federation": "province_leader", "sector_union": "province_leader",
                   "upper_level": "upper_official", "cdcs": "cdcs_official"}
# the children of a unit, as a mart column
CHILD_COLUMN = {"confederation": "top_unit_code", "province_federation": "upper_unit_code",
                "sector_union": "upper_unit_code", "upper_level": "cdcs_code", "cdcs": "cdcs_code"}


def unit_principal(unit_code: str):
    """A stand-in 'user' holding the unit-bound role of `unit_code`, so the access engineer's public
    `scope_for(user, period)` gives the unit's subtree for any period (TLD: national)."""
    if unit_code == "TLD":
        return SimpleNamespace(username=f"unit:{unit_code}", role="national_leader", unit_code=None, active=True)
    return SimpleNamespace(username=f"unit:{unit_code}", role=_ROLE_FOR_LEVEL[unit_level(unit_code)],
                           unit_code=unit_code, active=True)


def scope_for_unit(unit_code: str, period: dt.date):
    from pipelines.access.scope import scope_for

    return scope_for(unit_principal(unit_code), period)


_NAMES: dict[int, dict[str, str]] = {}


def unit_name(code: str) -> str:
    """The unit's latest registered name (registry read once per registry version)."""
    if code == "TLD":
        return "Tổng Liên đoàn Lao động Việt Nam"
    try:
        from pipelines.access.scope import load_registry
        reg = load_registry()
    except Exception:  # noqa: BLE001 - a name is cosmetic; the code is always right
        return code
    names = _NAMES.get(id(reg))
    if names is None:
        names = {}
        for u in sorted(reg, key=lambda u: u.valid_from):
            names[u.code] = u.name
        _NAMES.clear()
        _NAMES[id(reg)] = names
    return names.get(code) or code


def unit_ancestors(unit_code: str, on: dt.date | None = None) -> list[str]:
    """Codes above `unit_code` in the tree valid on `on` (default today), nearest first."""
    from pipelines.access.scope import load_registry

    on = on or dt.date.today()
    parent = {}
    for u in load_registry():
        if u.valid_from <= on and (u.valid_to is None or u.valid_to >= on):
            parent[u.code] = u.parent
    out, cur = [], parent.get(unit_code)
    while cur and cur not in out:
        out.append(cur)
        cur = parent.get(cur)
    return out


# --------------------------------------------------------------------------- scope plumbing

@dataclass
class ScopeCtx:
    """One unit's scope over a set of months, turned into SQL per table."""
    unit_code: str

    def where(self, alias: str, columns, periods: list[dt.date], period_col: str = "period") -> tuple[str, list]:
        from pipelines.access.scope import range_predicate

        cols = [c for c in SCOPE_COLS if c in columns]
        if period_col not in columns:
            # a table without a period column: the scope as of the last month
            s = scope_for_unit(self.unit_code, max(periods))
            return s.where(alias, cols)
        sql, params = range_predicate(unit_principal(self.unit_code), periods, alias, period_col, cols)
        return f"({sql})", params


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = ?"
        " ORDER BY ordinal_position", [table]).fetchall()]


def _pick(cols, *candidates) -> str | None:
    for c in candidates:
        if c in cols:
            return c
    return None


def _month_col(con, table: str, cols) -> str | None:
    return _pick(cols, "period", "month", "period_month")


def latest_period(con) -> dt.date | None:
    r = con.execute("SELECT max(period) FROM marts.fct_membership_monthly").fetchone()
    v = r[0] if r else None
    if v is None:
        return None
    return v if isinstance(v, dt.date) and not isinstance(v, dt.datetime) else pd.Timestamp(v).date()


# --------------------------------------------------------------------------- BRIEF QUERIES
# (to be absorbed by pipelines/analytics/: see the module docstring)

def q_membership_series(con, sc: ScopeCtx, months: list[dt.date]) -> pd.DataFrame:
    """Per month: members at month end, joins, leaves, transfers in/out, for the scope."""
    cols = _columns(con, "fct_membership_monthly")
    mem = _pick(cols, "members", "members_count", "members_end", "member_count", "members_expected")
    joins = _pick(cols, "joins", "joined", "new_members")
    leaves = _pick(cols, "leaves", "left", "leavers")
    tin = _pick(cols, "transfers_in", "transfer_in")
    tout = _pick(cols, "transfers_out", "transfer_out")
    w, p = sc.where("f", cols, months)
    sel = ", ".join(f"coalesce(sum(f.{c}), 0) AS {n}" if c else f"NULL AS {n}"
                    for c, n in ((mem, "members"), (joins, "joins"), (leaves, "leaves"),
                                 (tin, "transfers_in"), (tout, "transfers_out")))
    df = con.execute(
        f"SELECT f.period, {sel} FROM marts.fct_membership_monthly f WHERE {w} AND f.period IN"
        f" ({', '.join('?' * len(months))}) GROUP BY f.period ORDER BY f.period", [*p, *months]).df()
    if not (joins and leaves) and _has(con, "fct_member_events"):
        ev = q_events_by_month(con, sc, months)
        df = df.drop(columns=["joins", "leaves", "transfers_in", "transfers_out"]).merge(ev, on="period", how="left")
    df["period"] = pd.to_datetime(df["period"]).dt.date
    return df


def q_events_by_month(con, sc: ScopeCtx, months: list[dt.date]) -> pd.DataFrame:
    cols = _columns(con, "fct_member_events")
    w, p = sc.where("e", cols, months)
    return con.execute(
        f"SELECT e.period, count(*) FILTER (WHERE e.event_type = 'join') AS joins,"
        f" count(*) FILTER (WHERE e.event_type = 'leave') AS leaves,"
        f" count(*) FILTER (WHERE e.event_type = 'transfer_in') AS transfers_in,"
        f" count(*) FILTER (WHERE e.event_type = 'transfer_out') AS transfers_out"
        f" FROM marts.fct_member_events e WHERE {w} AND e.period IN ({', '.join('?' * len(months))})"
        f" GROUP BY e.period", [*p, *months]).df()


def _has(con, table: str) -> bool:
    return bool(_columns(con, table))


def q_members_by_child(con, sc: ScopeCtx, child_col: str, months: list[dt.date]) -> pd.DataFrame:
    """Members per child unit for the given months (wide: one column per month, `m0` = latest)."""
    cols = _columns(con, "fct_membership_monthly")
    mem = _pick(cols, "members", "members_count", "members_end", "member_count", "members_expected")
    w, p = sc.where("f", cols, months)
    df = con.execute(
        f"SELECT f.{child_col} AS unit_code, f.period, sum(f.{mem}) AS members FROM marts.fct_membership_monthly f"
        f" WHERE {w} AND f.period IN ({', '.join('?' * len(months))}) AND f.{child_col} IS NOT NULL"
        f" GROUP BY 1, 2", [*p, *months]).df()
    df["period"] = pd.to_datetime(df["period"]).dt.date
    return df


def q_dues(con, sc: ScopeCtx, month: dt.date, child_col: str) -> tuple[dict, pd.DataFrame]:
    """Dues expected/collected for the month: totals and per child unit."""
    if not _has(con, "fct_dues_monthly"):
        return {"expected": None, "collected": None}, pd.DataFrame(columns=["unit_code", "expected", "collected"])
    cols = _columns(con, "fct_dues_monthly")
    exp = _pick(cols, "dues_expected", "expected")
    col = _pick(cols, "dues_collected", "collected")
    w, p = sc.where("d", cols, [month])
    by = con.execute(
        f"SELECT d.{child_col} AS unit_code, sum(d.{exp}) AS expected, sum(d.{col}) AS collected"
        f" FROM marts.fct_dues_monthly d WHERE {w} AND d.period = ? GROUP BY 1 ORDER BY expected DESC",
        [*p, month]).df()
    tot = {"expected": float(by["expected"].sum()) if len(by) else None,
           "collected": float(by["collected"].sum()) if len(by) else None}
    return tot, by


def q_services(con, sc: ScopeCtx, months: list[dt.date]) -> pd.DataFrame:
    """Service deliveries (count, amount) per month."""
    if not _has(con, "fct_service_deliveries"):
        return pd.DataFrame(columns=["period", "deliveries", "amount"])
    cols = _columns(con, "fct_service_deliveries")
    amount = _pick(cols, "amount", "amount_vnd")
    if "period" in cols:
        w, p = sc.where("s", cols, months)
        per = "s.period"
    else:
        # no period column: the month of the delivery date (unqualified names: one table only)
        from pipelines.access.scope import range_predicate
        per = "date_trunc('month', s.service_date)::DATE"
        sql, p = range_predicate(unit_principal(sc.unit_code), months, "", "date_trunc('month', service_date)::DATE",
                                 [c for c in SCOPE_COLS if c in cols])
        w = f"({sql})"
    df = con.execute(
        f"SELECT {per} AS period, count(*) AS deliveries, coalesce(sum(s.{amount}), 0) AS amount"
        f" FROM marts.fct_service_deliveries s WHERE {w} AND {per} IN ({', '.join('?' * len(months))})"
        f" GROUP BY 1", [*p, *months]).df()
    df["period"] = pd.to_datetime(df["period"]).dt.date
    return df


def q_branch_submissions(con, sc: ScopeCtx, month: dt.date) -> pd.DataFrame:
    """Upper-level unions (branches) in the scope and whether their roster for `month` was accepted."""
    cols = _columns(con, "fct_membership_monthly")
    w, p = sc.where("f", cols, [month])
    branches = con.execute(
        f"SELECT DISTINCT f.upper_unit_code AS branch_code FROM marts.fct_membership_monthly f"
        f" WHERE {w} AND f.period = ? AND f.upper_unit_code IS NOT NULL", [*p, month]).df()
    if not _has(con, "fct_submissions") or branches.empty:
        branches["submitted"] = None
        return branches
    scols = _columns(con, "fct_submissions")
    status = _pick(scols, "status", "file_status")
    accepted = f"AND s.{status} = 'accepted'" if status else ""
    sent = con.execute(
        f"SELECT DISTINCT s.branch_code FROM marts.fct_submissions s WHERE s.period = ? AND s.kind = 'roster'"
        f" {accepted}", [month]).df()
    branches["submitted"] = branches["branch_code"].isin(set(sent["branch_code"]))
    return branches.sort_values("branch_code").reset_index(drop=True)


def q_refused_rows(con, branch_codes: list[str], month: dt.date) -> pd.DataFrame:
    """Refused rows of the month's files, per branch and rule (counts only, never the values)."""
    if not branch_codes or not _has(con, "dq_refused_rows"):
        return pd.DataFrame(columns=["branch_code", "rule", "rows"])
    cols = _columns(con, "dq_refused_rows")
    rule = _pick(cols, "rule", "rule_code", "reason_code")
    if "branch_code" not in cols or "period" not in cols:
        return pd.DataFrame(columns=["branch_code", "rule", "rows"])
    return con.execute(
        f"SELECT r.branch_code, r.{rule} AS rule, count(*) AS rows FROM marts.dq_refused_rows r"
        f" WHERE r.period = ? AND r.branch_code IN ({', '.join('?' * len(branch_codes))})"
        f" GROUP BY 1, 2 ORDER BY rows DESC", [month, *branch_codes]).df()


def q_statutory(con, sc: ScopeCtx, report_date: dt.date) -> pd.DataFrame:
    """The semi-annual statutory report rows of the units in scope (numeric columns only)."""
    if not _has(con, "mart_statutory_report"):
        return pd.DataFrame()
    cols = _columns(con, "mart_statutory_report")
    dcol = _pick(cols, "report_date", "as_of_date")
    s = scope_for_unit(sc.unit_code, report_date.replace(day=1))
    w, p = s.where("r", [c for c in SCOPE_COLS if c in cols])
    df = con.execute(f"SELECT * FROM marts.mart_statutory_report r WHERE {w} AND r.{dcol} = ?",
                     [*p, report_date]).df()
    keep = [c for c in df.columns if c in ("unit_code", "unit_name", "level")
            or (pd.api.types.is_numeric_dtype(df[c]) and not _is_personal(c))]
    return df[keep]


_PERSONAL = ("cccd", "cmnd", "birth", "salary", "full_name", "member_key", "member_code", "bhxh", "phone", "email")


def _is_personal(col: str) -> bool:
    return any(p in col.lower() for p in _PERSONAL)


# --------------------------------------------------------------------------- the brief's numbers

@dataclass
class Metric:
    key: str
    value: float | None
    prev: float | None = None       # previous month
    year_ago: float | None = None   # same month last year
    kind: str = "count"             # count | money | ratio

    @property
    def change(self) -> float | None:
        if self.value is None or self.prev is None or pd.isna(self.value) or pd.isna(self.prev):
            return None
        return self.value - self.prev


@dataclass
class Figures:
    unit_code: str
    unit_name: str
    month: dt.date                   # the data month
    metrics: dict[str, Metric]
    series: pd.DataFrame             # period, members, joins, leaves, net
    children: pd.DataFrame           # unit_code, unit_name, members, members_prev, change, change_pct
    dues_by_child: pd.DataFrame      # unit_code, unit_name, expected, collected, rate
    branches: pd.DataFrame           # branch_code, branch_name, submitted
    refused: pd.DataFrame            # branch_code, rule, rows
    statutory: pd.DataFrame = field(default_factory=pd.DataFrame)
    dues_by_cdcs: pd.DataFrame = field(default_factory=pd.DataFrame)  # unit_code, unit_name, expected, collected, rate
    child_level: str = ""
    version: str | None = None
    published_at: str | None = None

    # attention lists
    @property
    def missing_branches(self) -> pd.DataFrame:
        b = self.branches
        return b[b["submitted"] == False] if "submitted" in b else b.iloc[0:0]  # noqa: E712

    @property
    def sharp_drops(self) -> pd.DataFrame:
        c = self.children
        return c[(c["change_pct"] <= DROP_THRESHOLD) & (c["members_prev"] > 0)].sort_values("change_pct")

    @property
    def arrears(self) -> pd.DataFrame:
        """CĐCS of the scope that collected less than ARREARS_THRESHOLD of the expected dues."""
        d = self.dues_by_cdcs
        return d[(d["expected"] > 0) & (d["rate"] < ARREARS_THRESHOLD)].sort_values("rate")

    def _ranked(self) -> pd.DataFrame:
        c = self.children[self.children["members_prev"] > 0]
        return c.sort_values(["change_pct", "members"], ascending=[False, False])

    @property
    def top(self) -> pd.DataFrame:
        r = self._ranked()
        return r.head(min(TOP_N, len(r) // 2 or len(r)))

    @property
    def bottom(self) -> pd.DataFrame:
        r = self._ranked()
        n = min(TOP_N, len(r) - len(self.top))
        return r.tail(n).iloc[::-1] if n > 0 else r.iloc[0:0]


def compute(con, unit_code: str, month: dt.date, *, report_date: dt.date | None = None,
            version: str | None = None, published_at: str | None = None) -> Figures:
    sc = ScopeCtx(unit_code)
    level = unit_level(unit_code)
    child_col = CHILD_COLUMN[level]
    months = [add_months(month, -i) for i in range(TREND_MONTHS - 1, -1, -1)]
    prev, year_ago = add_months(month, -1), add_months(month, -12)

    series = q_membership_series(con, sc, sorted(set(months) | {year_ago}))
    s = series.set_index("period")

    def at(col, d):
        return float(s.at[d, col]) if d in s.index and pd.notna(s.at[d, col]) else None

    net = {d: (at("members", d) - at("members", add_months(d, -1)))
           if at("members", d) is not None and at("members", add_months(d, -1)) is not None else None
           for d in [month, prev, year_ago]}
    services = q_services(con, sc, sorted({month, prev, year_ago})).set_index("period")

    def sv(col, d):
        return float(services.at[d, col]) if d in services.index else 0.0

    dues_tot, dues_by = q_dues(con, sc, month, child_col)
    dues_prev, _ = q_dues(con, sc, prev, child_col)
    metrics = {
        "members": Metric("members", at("members", month), at("members", prev), at("members", year_ago)),
        "joins": Metric("joins", at("joins", month), at("joins", prev), at("joins", year_ago)),
        "leaves": Metric("leaves", at("leaves", month), at("leaves", prev), at("leaves", year_ago)),
        "net_growth": Metric("net_growth", net[month], net[prev], net[year_ago]),
        "dues_collected": Metric("dues_collected", dues_tot["collected"], dues_prev["collected"], kind="money"),
        "dues_expected": Metric("dues_expected", dues_tot["expected"], dues_prev["expected"], kind="money"),
        "dues_rate": Metric("dues_rate",
                            _ratio(dues_tot["collected"], dues_tot["expected"]),
                            _ratio(dues_prev["collected"], dues_prev["expected"]), kind="ratio"),
        "services": Metric("services", sv("deliveries", month), sv("deliveries", prev), sv("deliveries", year_ago)),
        "services_amount": Metric("services_amount", sv("amount", month), sv("amount", prev), kind="money"),
    }

    trend = series[series["period"].isin(months)].copy()
    trend["net"] = trend["members"].diff()

    by_child = q_members_by_child(con, sc, child_col, [month, prev])
    wide = by_child.pivot_table(index="unit_code", columns="period", values="members", aggfunc="sum").reset_index()
    wide["members"] = wide[month] if month in wide else 0
    wide["members_prev"] = wide[prev] if prev in wide else 0
    children = wide[["unit_code", "members", "members_prev"]].fillna(0)
    children["change"] = children["members"] - children["members_prev"]
    children["change_pct"] = [(c / p) if p else float("nan") for c, p in zip(children["change"], children["members_prev"])]
    children["unit_name"] = [unit_name(c) for c in children["unit_code"]]
    if level == "cdcs":
        children = children.iloc[0:0]

    dues_by["rate"] = [(_ratio(c, e)) for c, e in zip(dues_by["collected"], dues_by["expected"])]
    dues_by["unit_name"] = [unit_name(c) for c in dues_by["unit_code"]]
    if child_col == "cdcs_code":
        dues_cdcs = dues_by.copy()
    else:
        _, dues_cdcs = q_dues(con, sc, month, "cdcs_code")
        dues_cdcs["rate"] = [(_ratio(c, e)) for c, e in zip(dues_cdcs["collected"], dues_cdcs["expected"])]
        low = dues_cdcs["rate"] < ARREARS_THRESHOLD
        dues_cdcs["unit_name"] = [unit_name(c) if lo else c for c, lo in zip(dues_cdcs["unit_code"], low)]

    if level == "cdcs":  # a CĐCS's branch is above its scope: not reported to it
        branches = pd.DataFrame({"branch_code": pd.Series(dtype=str), "submitted": pd.Series(dtype=object)})
    else:
        branches = q_branch_submissions(con, sc, month)
    branches["branch_name"] = [unit_name(c) for c in branches["branch_code"]]
    refused = q_refused_rows(con, branches["branch_code"].tolist(), month)
    statutory = q_statutory(con, sc, report_date) if report_date else pd.DataFrame()

    return Figures(unit_code=unit_code, unit_name=unit_name(unit_code), month=month, metrics=metrics,
                   series=trend.reset_index(drop=True), children=children.reset_index(drop=True),
                   dues_by_child=dues_by.reset_index(drop=True), branches=branches, refused=refused,
                   statutory=statutory, dues_by_cdcs=dues_cdcs, child_level=child_col, version=version, published_at=published_at)


def _ratio(a, b):
    if a is None or b is None or pd.isna(a) or pd.isna(b) or b == 0:
        return float("nan")
    return float(a) / float(b)
