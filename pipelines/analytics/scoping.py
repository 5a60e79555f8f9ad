"""The seam between the query layer and the access engineer's `pipelines.access.scope.Scope`.

Every query function takes a `scope` and applies `scope_sql(scope, alias, columns)`: a SQL predicate
with `?` parameters over the mart columns `province_new_code`, `top_unit_code`, `upper_unit_code`,
`cdcs_code`. The protocol expected of a Scope object:

    scope.key                        -> a hashable, stable identifier (cache key; never shared across scopes)
    scope.predicate(alias, columns)  -> (sql, params); `columns` is the set of columns of the table at
                                        hand; a scope that needs a column the table lacks must deny (FALSE)
    Scope.national()                 -> the unrestricted scope

When `pipelines.access.scope` is absent (early development), `national_scope()` returns a DEV stand-in;
the dashboards only use it when `dashboards/auth.py` is absent too (see dashboards/common.py).
"""
from __future__ import annotations

import dataclasses
import inspect

SCOPE_COLUMNS = ("province_new_code", "top_unit_code", "upper_unit_code", "cdcs_code")


@dataclasses.dataclass(frozen=True)
class DevScope:
    """Stand-in used only while `pipelines.access.scope` does not exist. `column`/`code` restrict to
    one subtree (e.g. ('top_unit_code', 'T01')); both None = whole country."""
    column: str | None = None
    code: str | None = None

    @classmethod
    def national(cls) -> "DevScope":
        return cls()

    @property
    def key(self) -> str:
        return f"dev:{self.column}={self.code}" if self.column else "dev:national"

    def predicate(self, alias: str | None = None, columns=None) -> tuple[str, list]:
        if self.column is None:
            return "TRUE", []
        if self.column not in SCOPE_COLUMNS:
            return "FALSE", []
        if columns is not None and self.column not in columns:
            return "FALSE", []
        prefix = f"{alias}." if alias else ""
        return f"{prefix}{self.column} = ?", [self.code]


def _access_scope_class():
    try:
        from pipelines.access import scope as access_scope  # the access engineer's module
    except ImportError:
        return None
    return getattr(access_scope, "Scope", None)


def national_scope():
    """The unrestricted scope: the real `Scope.national()` when it exists, else the DEV stand-in."""
    cls = _access_scope_class()
    if cls is not None and hasattr(cls, "national"):
        return cls.national()
    return DevScope.national()


def scope_key(scope) -> str:
    if scope is None:
        raise ValueError("a scope is required (use national_scope() for the whole country)")
    k = getattr(scope, "key", None)
    if callable(k):
        k = k()
    if k is None:
        raise ValueError(f"scope {scope!r} has no key")
    return f"{type(scope).__module__}.{type(scope).__name__}:{k}"


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def scope_sql(scope, alias: str | None, columns, periods=None, period_column: str = "period",
              **options) -> tuple[str, list]:
    """The scope's predicate for one table (by alias), given that table's columns. Fails closed.

    `periods`: the months the query reads (rows in `period_column`). A scope that changes over time
    (`pipelines.access.scope.UserScope`, with `range_predicate`) then filters each month by the scope in
    force that month (the 1 July 2025 restructuring); a fixed scope applies one predicate to every month.
    `options` (e.g. `unlinked_by_province=True`) are passed to scopes that accept them, ignored otherwise.
    """
    if scope is None:
        raise ValueError("a scope is required")
    rp = getattr(scope, "range_predicate", None)
    if periods is not None and callable(rp):
        periods = list(periods)
        if not periods:
            return "(FALSE)", []
        opts = {k: v for k, v in options.items() if _accepts(rp, k)}
        sql, args = rp(alias or "", columns=frozenset(columns), periods=periods, period_column=period_column,
                       **opts)
        return f"({sql})", list(args)
    fn = scope.predicate
    if _accepts(fn, "columns"):
        opts = {k: v for k, v in options.items() if _accepts(fn, k)}
        sql, args = fn(alias, columns=frozenset(columns), **opts)
    else:
        sql, args = fn(alias)
        # a predicate over a column this table lacks would be a SQL error: deny instead
        missing = [c for c in SCOPE_COLUMNS if c in sql and c not in columns]
        if missing:
            return "FALSE", []
    return f"({sql})", list(args)
