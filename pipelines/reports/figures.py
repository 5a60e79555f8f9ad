"""The numbers of one brief, for one organisation unit's subtree, from the published marts.

Scope: the subscription's unit becomes the access engineer's `Scope` (`pipelines.access.scope`), per
period (the tree changes on 1 July 2025), and every query ANDs its predicate over the mart columns
`province_new_code / top_unit_code / upper_unit_code / cdcs_code`. Nothing outside the scope is read.

Every figure comes from the dashboards engineer's query layer (`pipelines.analytics.queries`: the
same scoped, cached functions the pages use), so an email and a dashboard can never disagree and no
query exists twice. The brief only combines their results (changes, thresholds, top/bottom).
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


def latest_period() -> dt.date | None:
    from pipelines.analytics import queries as q

    v = q.latest_period()
    return pd.Timestamp(v).date() if v is not None else None


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
    dues_zero: pd.DataFrame = field(default_factory=pd.DataFrame)  # CĐCS collecting nothing: unit_code, unit_name
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
        """Child units that collected less than ARREARS_THRESHOLD of the expected dues this month."""
        d = self.dues_by_child
        return d[(d["expected"] > 0) & (d["rate"].astype(float) < ARREARS_THRESHOLD)].sort_values("rate")

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


_PERSONAL = ("cccd", "cmnd", "birth", "salary", "full_name", "member_key", "member_code", "bhxh", "phone", "email")


def _is_personal(col: str) -> bool:
    return any(p in col.lower() for p in _PERSONAL)


class OutOfTree(LookupError):
    """The subscribed unit does not exist in the reported month (ended, or not founded yet)."""
    skip = True


def _d(v) -> dt.date:
    return v if isinstance(v, dt.date) and not isinstance(v, dt.datetime) else pd.Timestamp(v).date()


def _num(v):
    return None if v is None or pd.isna(v) else float(v)


def compute(unit_code: str, month: dt.date, *, report_date: dt.date | None = None,
            version: str | None = None, published_at: str | None = None) -> Figures:
    """The brief's figures for `unit_code`'s subtree (as of `month`), from `pipelines.analytics.queries`."""
    from pipelines.analytics import queries as q
    from pipelines.analytics.db import batch
    from pipelines.analytics.filters import Filters

    level = unit_level(unit_code)
    scope = scope_for_unit(unit_code, month)
    if getattr(scope, "kind", None) == "none":
        raise OutOfTree(f"unit {unit_code} does not exist in {month:%m/%Y}")
    # series over several months use the unit's scope month by month (as the dashboards do): a commune/ward
    # union created on 01/07/2025 shows, before that, the CĐCS it has today; a merged federation its predecessors
    from pipelines.access.scope import scope_over_time
    scope_t = scope_over_time(unit_principal(unit_code), month)
    prev = add_months(month, -1)
    unit = None if unit_code == "TLD" else unit_code
    f_month = Filters(period_from=month, period_to=month, unit=unit)
    f_trend = Filters(period_from=add_months(month, -(TREND_MONTHS - 1)), period_to=month, unit=unit)
    with batch():
        kpis = q.overview_kpis(scope, f_month).set_index("kpi")
        trend = q.members_trend(scope_t, f_trend)
        flows = q.flows_monthly(scope_t, f_trend)
        dues_m = q.dues_monthly(scope_t, Filters(period_from=prev, period_to=month, unit=unit))
        serv = q.services_monthly(scope_t, Filters(period_from=add_months(month, -12), period_to=month, unit=unit))
        kids = q.children(scope, f_month) if level != "cdcs" else None
        kids_prev = q.children(scope, Filters(period_from=prev, period_to=prev, unit=unit)) if level != "cdcs" else None
        dues_by = q.dues_by_unit(scope, f_month) if level != "cdcs" else None
        zero = q.dues_zero_units(scope, f_month)
        subs = q.submissions_matrix(scope, f_month, "roster") if level != "cdcs" else None
        refused = q.refusal_by_rule(scope, f_month)
        statutory = pd.DataFrame()
        if report_date is not None:
            st = q.statutory_report(scope, Filters(), unit_code, report_date)
            if st:
                statutory = pd.DataFrame([{k: v for k, v in st.items()
                                           if k in ("unit_code", "display_name")
                                           or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and not _is_personal(k))}])
                statutory = statutory.rename(columns={"display_name": "unit_name"})

    def kpi(key, col):
        return _num(kpis.at[key, col]) if key in kpis.index else None

    dm = {(_d(p)): r for p, r in zip(dues_m["period"], dues_m.to_dict("records"))}
    sv = serv.groupby(serv["period"].map(_d)).agg(deliveries=("deliveries", "sum"), amount=("amount", "sum")) \
        if len(serv) else pd.DataFrame(columns=["deliveries", "amount"])

    def dues(p, col):
        return _num(dm[p][col]) if p in dm else None

    def sv_at(p, col):
        return _num(sv.at[p, col]) if p in sv.index else None

    year_ago = add_months(month, -12)
    metrics = {
        "members": Metric("members", kpi("members", "value"), kpi("members", "prev"), kpi("members", "year")),
        "joins": Metric("joins", kpi("joins", "value"), kpi("joins", "prev"), kpi("joins", "year")),
        "leaves": Metric("leaves", kpi("leaves", "value"), kpi("leaves", "prev"), kpi("leaves", "year")),
        "net_growth": Metric("net_growth", kpi("net", "value"), kpi("net", "prev"), kpi("net", "year")),
        "dues_rate": Metric("dues_rate", kpi("dues_ratio", "value"), kpi("dues_ratio", "prev"),
                            kpi("dues_ratio", "year"), kind="ratio"),
        "dues_collected": Metric("dues_collected", dues(month, "dues_collected"), dues(prev, "dues_collected"),
                                 kind="money"),
        "dues_expected": Metric("dues_expected", dues(month, "dues_expected"), dues(prev, "dues_expected"),
                                kind="money"),
        "services": Metric("services", kpi("services", "value"), kpi("services", "prev"), kpi("services", "year")),
        "services_amount": Metric("services_amount", sv_at(month, "amount"), sv_at(prev, "amount"),
                                  sv_at(year_ago, "amount"), kind="money"),
    }

    series = trend.assign(period=pd.Series([_d(x) for x in trend["period"]], index=trend.index, dtype=object))
    fl = flows.assign(period=pd.Series([_d(x) for x in flows["period"]], index=flows.index, dtype=object))[
        ["period", "joins", "leaves"]]
    series = series.merge(fl, on="period", how="left")
    series[["joins", "leaves"]] = series[["joins", "leaves"]].fillna(0)
    series["net"] = series["members"].diff()

    if kids is not None:
        c = kids[["unit_code", "unit_name", "members"]].merge(
            kids_prev[["unit_code", "members"]].rename(columns={"members": "members_prev"}), on="unit_code", how="outer")
        c["unit_name"] = c["unit_name"].fillna(c["unit_code"].map(unit_name))
        c[["members", "members_prev"]] = c[["members", "members_prev"]].fillna(0)
        c["change"] = c["members"] - c["members_prev"]
        c["change_pct"] = [(x / p) if p else float("nan") for x, p in zip(c["change"], c["members_prev"])]
        children = c
    else:
        children = pd.DataFrame(columns=["unit_code", "unit_name", "members", "members_prev", "change", "change_pct"])

    if dues_by is not None:
        dues_child = dues_by.rename(columns={"dues_expected": "expected", "dues_collected": "collected",
                                             "collection_rate": "rate"})[["unit_code", "unit_name", "expected",
                                                                          "collected", "rate"]]
    else:
        dues_child = pd.DataFrame(columns=["unit_code", "unit_name", "expected", "collected", "rate"])

    if subs is not None and len(subs):
        branches = subs.rename(columns={"unit_name": "branch_name"})
        branches["submitted"] = branches["status"].isin(["on_time", "late"])
    else:
        branches = pd.DataFrame({"branch_code": pd.Series(dtype=str), "branch_name": pd.Series(dtype=str),
                                 "status": pd.Series(dtype=str), "submitted": pd.Series(dtype=object)})
    ref = refused.rename(columns={"rows_refused": "rows", "rule_code": "rule"}) if len(refused) else \
        pd.DataFrame(columns=["rule", "rows"])

    return Figures(unit_code=unit_code, unit_name=unit_name(unit_code), month=month, metrics=metrics,
                   series=series.reset_index(drop=True), children=children.reset_index(drop=True),
                   dues_by_child=dues_child.reset_index(drop=True), branches=branches.reset_index(drop=True),
                   refused=ref.reset_index(drop=True), statutory=statutory,
                   dues_zero=zero.reset_index(drop=True), child_level=CHILD_COLUMN[level],
                   version=version, published_at=published_at)


def _ratio(a, b):
    if a is None or b is None or pd.isna(a) or pd.isna(b) or b == 0:
        return float("nan")
    return float(a) / float(b)
