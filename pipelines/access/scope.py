"""Scope: which part of the organisation a user may see, as of the period viewed.

DuckDB has no users, grants or row-level security, so scope is enforced by the query layer: every query in
`pipelines/analytics/` and `pipelines/access/` adds `scope.predicate(...)` to its WHERE clause, and every
cached result is keyed by `scope.key`. A hidden widget is never a control.

The organisation tree changes on 1 July 2025 (provinces merge, districts and industrial-zone unions end,
commune/ward unions begin, CĐCS are reparented). Rules, for an official linked to unit U and a period P:

- U valid during P: the subtree of U during P. A provincial federation also sees the federations of the old
  provinces merged into its new province while they existed (the leader of T08 sees T02 and T08 before
  1 July 2025).
- P before U existed (a commune/ward union looking at early 2025): the CĐCS that are U's now (the subtree of U
  at the start of U's life), through `cdcs_code` only.
- P after U ended: nothing (the account must be linked to the successor unit).

Mart columns the predicate uses: `province_new_code`, `top_unit_code`, `upper_unit_code`, `cdcs_code`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable

from pipelines import config

MART_COLUMNS = ("province_new_code", "top_unit_code", "upper_unit_code", "cdcs_code")
_TOP_LEVELS = ("province_federation", "sector_union")
_NATIONAL_ROLES = ("national_leader", "analyst", "admin")


class ScopeError(PermissionError):
    """A request outside the user's scope (message safe to show)."""


def month_start(d: dt.date | str | None) -> dt.date:
    if d is None:
        d = dt.date.today()
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    if isinstance(d, dt.datetime):
        d = d.date()
    return d.replace(day=1)


def month_end(d: dt.date) -> dt.date:
    nxt = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return nxt - dt.timedelta(days=1)


@dataclass(frozen=True)
class Scope:
    """A user's visible part of the organisation for one period.

    kind: `national` (everything), `units` (a subtree), `member` (only their own record, through
    `pipelines.access.lookup`), `none` (nothing).
    """
    kind: str
    period: dt.date | None = None
    root_units: frozenset[str] = frozenset()
    cdcs_codes: frozenset[str] = frozenset()
    upper_codes: frozenset[str] = frozenset()
    top_codes: frozenset[str] = frozenset()
    province_codes: frozenset[str] = frozenset()
    province_old_codes: frozenset[str] = frozenset()  # territory of a federation of an old (merged-away) province
    exact_column: str | None = None   # the coarsest mart column that expresses this scope exactly
    member_key: str | None = None
    label: str = field(default="", compare=False)

    # ---- constructors
    @classmethod
    def national(cls, period: dt.date | None = None) -> "Scope":
        return cls(kind="national", period=period, label="Toàn quốc / national")

    @classmethod
    def none(cls, period: dt.date | None = None) -> "Scope":
        return cls(kind="none", period=period, label="—")

    @classmethod
    def member(cls, member_key: str | None, period: dt.date | None = None) -> "Scope":
        return cls(kind="member", period=period, member_key=member_key, label="Đoàn viên / member")

    # ---- properties
    @property
    def is_national(self) -> bool:
        return self.kind == "national"

    @cached_property
    def key(self) -> str:
        """A stable key for caches: equal scopes, equal keys; never shared across different scopes (computed
        once per Scope: it is immutable, and `scope_for` hands out the same cached object)."""
        payload = json.dumps({
            "k": self.kind, "p": self.period.isoformat() if self.period else None,
            "c": sorted(self.cdcs_codes), "u": sorted(self.upper_codes), "t": sorted(self.top_codes),
            "v": sorted(self.province_codes), "o": sorted(self.province_old_codes), "x": self.exact_column,
            "m": self.member_key,
        }, sort_keys=True)
        return f"{self.kind}:" + hashlib.sha256(payload.encode()).hexdigest()[:24]

    def allows_cdcs(self, cdcs_code: str | None) -> bool:
        if self.kind == "national":
            return True
        return self.kind == "units" and cdcs_code is not None and cdcs_code in self.cdcs_codes

    def allows_unit(self, unit_code: str | None) -> bool:
        """Is this unit (any level) inside the scope?"""
        if self.kind == "national":
            return True
        if self.kind != "units" or not unit_code:
            return False
        return (unit_code in self.cdcs_codes or unit_code in self.upper_codes or unit_code in self.top_codes
                or unit_code in self.root_units)

    def allows_province(self, province_new_code: str | None) -> bool:
        if self.kind == "national":
            return True
        return self.kind == "units" and province_new_code in self.province_codes

    # ---- SQL
    def predicate(self, alias: str = "", columns: Iterable[str] | None = None, *,
                  unlinked_by_province: bool = False) -> tuple[str, list]:
        """A SQL boolean expression with `?` parameters restricting rows to this scope.

        `alias`: table alias (`"f"` gives `f.cdcs_code`). `columns`: the scope columns the table has (default:
        all four of MART_COLUMNS). The coarsest column that expresses the scope exactly is used; a table
        without a suitable column gets `FALSE` (nothing), never everything.

        `unlinked_by_province`: for rows that belong to no union unit (`top_unit_code` NULL, e.g. employers
        with no CĐCS in `fct_recruitment_potential`), a provincial federation also gets those of its territory
        (`province_new_code`, or `province_old_code` for the federation of an old merged-away province).
        Nothing else is widened: rows linked to another unit stay out; other levels are unchanged.
        """
        if self.kind == "national":
            return "TRUE", []
        if self.kind != "units":
            return "FALSE", []
        cols = set(MART_COLUMNS if columns is None else columns)
        a = f"{alias}." if alias else ""
        sets = {"cdcs_code": self.cdcs_codes, "upper_unit_code": self.upper_codes,
                "top_unit_code": self.top_codes, "province_new_code": self.province_codes}
        choice = None
        if self.exact_column and self.exact_column in cols and sets[self.exact_column]:
            choice = self.exact_column
        elif "cdcs_code" in cols and self.cdcs_codes:
            choice = "cdcs_code"
        elif self.exact_column == "top_unit_code" and "province_new_code" in cols and self.province_codes:
            # a provincial federation on a table with only provinces (e.g. employers): the whole province
            choice = "province_new_code"
        if choice is None:
            return "FALSE", []
        values = sorted(sets[choice])
        sql = f"{a}{choice} IN ({', '.join('?' * len(values))})"
        if unlinked_by_province and choice == "top_unit_code":
            terr_col, terr = (("province_new_code", self.province_codes) if self.province_codes
                              else ("province_old_code", self.province_old_codes))
            if terr and terr_col in cols:
                tv = sorted(terr)
                return (f"({sql} OR ({a}top_unit_code IS NULL AND {a}{terr_col} IN ({', '.join('?' * len(tv))})))",
                        [*values, *tv])
        return sql, values

    def where(self, alias: str = "", columns: Iterable[str] | None = None) -> tuple[str, list]:
        """`predicate` wrapped in parentheses, ready to AND into a WHERE clause."""
        sql, params = self.predicate(alias, columns)
        return f"({sql})", params

    def filter_rows(self, rows: list[dict]) -> list[dict]:
        """Keep the rows (dicts with mart columns) inside the scope: the same rule as `predicate`, in Python."""
        if self.kind == "national":
            return list(rows)
        if self.kind != "units":
            return []
        out = []
        for r in rows:
            cols = [c for c in MART_COLUMNS if c in r]
            sql, params = self.predicate(columns=cols)
            if sql == "FALSE":
                continue
            col = sql.split(" IN ")[0]
            if r.get(col) in params:
                out.append(r)
        return out


# ---------------------------------------------------------------- the registry

@dataclass(frozen=True)
class _UnitVersion:
    code: str
    name: str
    level: str
    parent: str | None
    province_new: str | None
    province_old: str | None
    valid_from: dt.date
    valid_to: dt.date | None


def _as_date(v) -> dt.date | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


def registry_units_path() -> Path:
    return config.data_dir() / "registry" / "units.parquet"


@lru_cache(maxsize=8)
def _load_registry_cached(path: str, mtime_ns: int) -> tuple[_UnitVersion, ...]:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["unit_code", "unit_name", "level", "parent_code", "province_new_code",
                                     "province_old_code", "valid_from", "valid_to"])
    out = []
    for r in t.to_pylist():
        out.append(_UnitVersion(
            code=r["unit_code"], name=r["unit_name"] or "", level=r["level"], parent=r["parent_code"],
            province_new=r["province_new_code"], province_old=r["province_old_code"],
            valid_from=_as_date(r["valid_from"]) or dt.date(1900, 1, 1), valid_to=_as_date(r["valid_to"])))
    return tuple(out)


_WAREHOUSE_REGISTRY: dict[str, tuple[_UnitVersion, ...]] = {}


def _load_registry_from_warehouse() -> tuple[_UnitVersion, ...]:
    """`marts.dim_union_unit` (column `unit_level`, CONTRACTS §6), read once per published version."""
    from pipelines.access import warehouse

    v = warehouse.version()
    if v is not None and v in _WAREHOUSE_REGISTRY:
        return _WAREHOUSE_REGISTRY[v]
    with warehouse.connect_full() as con:
        rows = con.execute(
            "SELECT unit_code, unit_name, unit_level, parent_code, province_new_code, province_old_code, "
            "valid_from, valid_to FROM marts.dim_union_unit").fetchall()
    out = tuple(_UnitVersion(r[0], r[1] or "", r[2], r[3], r[4], r[5], _as_date(r[6]) or dt.date(1900, 1, 1),
                             _as_date(r[7])) for r in rows)
    if v is not None:
        _WAREHOUSE_REGISTRY.clear()
        _WAREHOUSE_REGISTRY[v] = out
    return out


def load_registry() -> tuple[_UnitVersion, ...]:
    """Every unit version (the registry `units.parquet`, CONTRACTS §2; else `marts.dim_union_unit`)."""
    p = registry_units_path()
    if p.exists():
        return _load_registry_cached(os.fspath(p), p.stat().st_mtime_ns)
    return _load_registry_from_warehouse()


def _overlaps(u: _UnitVersion, start: dt.date, end: dt.date) -> bool:
    return u.valid_from <= end and (u.valid_to is None or u.valid_to >= start)


def _versions_during(reg: tuple[_UnitVersion, ...], start: dt.date, end: dt.date) -> dict[str, _UnitVersion]:
    """The version of each unit that counts for the month [start, end]: for a CĐCS, the version in force at
    the month's end or, after it closed, its last version (as the marts do: int_cdcs_scope_months); for the
    other levels, a version overlapping the month (a unit that has ended has no children any more)."""
    out: dict[str, _UnitVersion] = {}
    for u in reg:
        if u.level == "cdcs":
            if u.valid_from <= end and (u.code not in out or out[u.code].valid_from < u.valid_from):
                out[u.code] = u
        elif _overlaps(u, start, end):
            if u.code not in out or out[u.code].valid_from < u.valid_from:
                out[u.code] = u
    return out


@lru_cache(maxsize=256)
def _children_during(registry_id: int, start: dt.date, end: dt.date) -> tuple[dict, dict]:
    reg = _REGISTRY_BY_ID[registry_id]
    versions = _versions_during(reg, start, end)
    children: dict[str, list[_UnitVersion]] = {}
    for u in versions.values():
        if u.parent:
            children.setdefault(u.parent, []).append(u)
    return versions, children


_REGISTRY_BY_ID: dict[int, tuple[_UnitVersion, ...]] = {}


def _reg_id(reg: tuple[_UnitVersion, ...]) -> int:
    i = id(reg)
    if i not in _REGISTRY_BY_ID:
        if len(_REGISTRY_BY_ID) > 8:
            _REGISTRY_BY_ID.clear()
            _children_during.cache_clear()
            _by_code.cache_clear()
            _scope_for_unit_cached.cache_clear()
        _REGISTRY_BY_ID[i] = reg
    return i


def subtree(roots: Iterable[str], start: dt.date, end: dt.date,
            reg: tuple[_UnitVersion, ...] | None = None) -> dict[str, set[str]]:
    """Units under `roots` (inclusive) during [start, end], by level: {level: {codes}}."""
    reg = reg if reg is not None else load_registry()
    versions, children = _children_during(_reg_id(reg), start, end)
    levels: dict[str, set[str]] = {}
    seen: set[str] = set()
    stack = [r for r in roots if r in versions]
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        levels.setdefault(versions[code].level, set()).add(code)
        for c in children.get(code, ()):
            stack.append(c.code)
    return levels


@lru_cache(maxsize=16)
def _by_code(registry_id: int) -> dict[str, list[_UnitVersion]]:
    out: dict[str, list[_UnitVersion]] = {}
    for u in _REGISTRY_BY_ID[registry_id]:
        out.setdefault(u.code, []).append(u)
    for vs in out.values():
        vs.sort(key=lambda u: u.valid_from)
    return out


def unit_versions(code: str, reg=None) -> list[_UnitVersion]:
    reg = reg if reg is not None else load_registry()
    return list(_by_code(_reg_id(reg)).get(code, ()))


def unit_name(code: str, reg=None) -> str:
    vs = unit_versions(code, reg)
    return vs[-1].name if vs else code


def _scope_for_unit(unit_code: str, period: dt.date) -> Scope:
    reg = load_registry()
    return _scope_for_unit_cached(unit_code, period, _reg_id(reg))


@lru_cache(maxsize=4096)
def _scope_for_unit_cached(unit_code: str, period: dt.date, registry_id: int) -> Scope:
    reg = _REGISTRY_BY_ID[registry_id]
    versions = unit_versions(unit_code, reg)
    if not versions:
        return Scope.none(period)
    start, end = period, month_end(period)
    current = [v for v in versions if _overlaps(v, start, end)]
    label = versions[-1].name
    if current:
        u = current[-1]
        roots = {unit_code}
        host = u.level == "province_federation" and u.province_new and u.province_old == u.province_new
        if host:
            # the federations of the old provinces merged into this (host) new province, while they existed;
            # the federation of a merged-away old province sees only its own old province
            for other in reg:
                if (other.level == "province_federation" and other.province_new == u.province_new
                        and _overlaps(other, start, end)):
                    roots.add(other.code)
        levels = subtree(roots, start, end, reg)
        cdcs = frozenset(levels.get("cdcs", ()))
        uppers = frozenset(levels.get("upper_level", ()))
        tops = frozenset(c for lvl in _TOP_LEVELS for c in levels.get(lvl, ()))
        if u.level in _TOP_LEVELS:
            exact = "top_unit_code"
        elif u.level == "upper_level":
            exact = "upper_unit_code"
        elif u.level == "cdcs":
            exact = "cdcs_code"
        else:  # the Confederation itself
            return Scope.national(period)
        provinces = frozenset({u.province_new}) if host else frozenset()
        old_provinces = (frozenset({u.province_old}) if u.level == "province_federation" and not host
                         and u.province_old else frozenset())
        return Scope(kind="units", period=period, root_units=frozenset(roots), cdcs_codes=cdcs,
                     upper_codes=uppers, top_codes=tops, province_codes=provinces,
                     province_old_codes=old_provinces, exact_column=exact, label=label)
    first = versions[0]
    if period < first.valid_from:
        # before the unit existed: the CĐCS that are its own now, by CĐCS code only
        d0 = first.valid_from
        levels = subtree({unit_code}, d0, d0, reg)
        return Scope(kind="units", period=period, root_units=frozenset({unit_code}),
                     cdcs_codes=frozenset(levels.get("cdcs", ())), exact_column="cdcs_code", label=label)
    return Scope.none(period)  # the unit has ended: nothing


def scope_for(user, period: dt.date | str | None = None) -> Scope:
    """The scope of `user` (a `pipelines.access.accounts.User`) as of `period` (default: this month)."""
    p = month_start(period)
    if user is None or not getattr(user, "active", True):
        return Scope.none(p)
    role = getattr(user, "role", None)
    if role in _NATIONAL_ROLES:
        return Scope.national(p)
    if role == "member":
        return Scope.member(getattr(user, "member_key", None), p)
    if role in ("province_leader", "upper_official", "cdcs_official"):
        if not user.unit_code:
            return Scope.none(p)
        if user.unit_code == "TLD":
            return Scope.national(p)
        return _scope_for_unit(user.unit_code, p)
    return Scope.none(p)


def range_predicate(user, periods: Iterable[dt.date | str], alias: str = "", period_column: str = "period",
                    columns: Iterable[str] | None = None, **kw) -> tuple[str, list]:
    """A predicate for a query spanning several periods: each period gets the scope in force then.
    `(period IN (?…) AND <scope of those periods>) OR ...`, periods with the same predicate grouped."""
    return _range_predicate(lambda p: scope_for(user, p), periods, alias, period_column, columns, **kw)


def _range_predicate(scope_at, periods, alias, period_column, columns, **kw) -> tuple[str, list]:
    a = f"{alias}." if alias else ""
    groups: dict[tuple[str, tuple], list[dt.date]] = {}
    for p in sorted({month_start(x) for x in periods}):
        sql, params = scope_at(p).predicate(alias, columns, **kw)
        groups.setdefault((sql, tuple(params)), []).append(p)
    if not groups:
        return "FALSE", []
    parts, out = [], []
    for (sql, params), ps in groups.items():
        if sql == "FALSE":
            continue
        parts.append(f"({a}{period_column} IN ({', '.join('?' * len(ps))}) AND {sql})")
        out.extend(ps)
        out.extend(params)
    if not parts:
        return "FALSE", []
    if len(parts) == 1:
        return parts[0], out
    return "(" + " OR ".join(parts) + ")", out


@dataclass(frozen=True)
class UserScope:
    """An official's scope over time, for pages that show several months: every period gets the scope in
    force then (`range_predicate`); `predicate` alone is the scope as of `period` (the page's last month).

    Same protocol as `Scope` for the query layer (`key`, `predicate(alias, columns)`), plus
    `range_predicate(alias, columns, periods, period_column)` and `at(period)`. The key names the unit and
    the default period, so caches never share results across different officials' scopes.
    """
    unit_code: str
    period: dt.date
    kind: str = "units"
    label: str = field(default="", compare=False)

    def at(self, period: dt.date | str | None = None) -> Scope:
        return _scope_for_unit(self.unit_code, month_start(period or self.period))

    @property
    def is_national(self) -> bool:
        return False

    @property
    def key(self) -> str:
        payload = f"{self.unit_code}|{self.period.isoformat()}"
        return "over_time:" + hashlib.sha256(payload.encode()).hexdigest()[:24]

    def predicate(self, alias: str = "", columns: Iterable[str] | None = None, **kw) -> tuple[str, list]:
        return self.at(self.period).predicate(alias, columns, **kw)

    def where(self, alias: str = "", columns: Iterable[str] | None = None) -> tuple[str, list]:
        sql, params = self.predicate(alias, columns)
        return f"({sql})", params

    def range_predicate(self, alias: str = "", columns: Iterable[str] | None = None, periods=(),
                        period_column: str = "period", **kw) -> tuple[str, list]:
        return _range_predicate(self.at, periods, alias, period_column, columns, **kw)

    def allows_unit(self, unit_code: str | None, period=None) -> bool:
        return self.at(period).allows_unit(unit_code)

    def allows_cdcs(self, cdcs_code: str | None, period=None) -> bool:
        return self.at(period).allows_cdcs(cdcs_code)

    def allows_province(self, province_new_code: str | None, period=None) -> bool:
        return self.at(period).allows_province(province_new_code)


def scope_over_time(user, period: dt.date | str | None = None):
    """The scope to use for pages spanning several months: a `UserScope` for officials linked to a unit
    (each month filtered by the scope in force then), else the plain `Scope` (national, member, none)."""
    p = month_start(period)
    s = scope_for(user, p)
    role = getattr(user, "role", None)
    unit = getattr(user, "unit_code", None)
    if (user is not None and getattr(user, "active", True) and role in ("province_leader", "upper_official",
                                                                        "cdcs_official")
            and unit and unit != "TLD" and unit_versions(unit)):
        return UserScope(unit_code=unit, period=p, label=s.label or unit)
    return s


def require_unit(user, unit_code: str, period=None) -> Scope:
    """Raise ScopeError unless `unit_code` is inside the user's scope for the period; returns the scope."""
    s = scope_for(user, period)
    if not s.allows_unit(unit_code):
        raise ScopeError("Ngoài phạm vi được xem / outside your scope")
    return s
