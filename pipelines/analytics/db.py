"""Reading the published marts: short-lived read-only connections through `pipelines.warehouse.serving`,
and a results cache keyed by (query, warehouse version, scope key, filters, arguments).

No Streamlit here. The cache lives in the process; a new published version gives new keys, so nothing
stale is ever served, and results are never shared across scopes (the scope key is part of every key).
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import threading
import time

import pandas as pd

from pipelines.analytics.scoping import scope_key
from pipelines.warehouse import serving

SCHEMA = "marts"
_CACHE_MAX = 512
_cache: "collections.OrderedDict[tuple, object]" = collections.OrderedDict()
_lock = threading.Lock()
_con: contextvars.ContextVar = contextvars.ContextVar("analytics_con", default=None)
_columns_cache: dict[tuple[str, str | None], frozenset] = {}  # (version, table); (version, None): all read


class NoWarehouse(RuntimeError):
    """Nothing has been published yet."""


def version() -> str:
    v = serving.current_version()
    if v is None:
        raise NoWarehouse("no warehouse published")
    return v.version


def version_info():
    return serving.current_version()


@contextlib.contextmanager
def batch():
    """Reuse one read-only connection for every query inside the block (a page render)."""
    if _con.get() is not None:
        yield _con.get()
        return
    try:
        cm = serving.connect()
        con = cm.__enter__()
    except serving.WarehouseNotPublished as exc:
        raise NoWarehouse(str(exc)) from exc
    token = _con.set(con)
    try:
        yield con
    finally:
        _con.reset(token)
        cm.__exit__(None, None, None)


def fetch_df(sql: str, params: list | tuple = ()) -> pd.DataFrame:
    with batch() as con:
        return con.execute(sql, list(params)).df()


def fetch_one(sql: str, params: list | tuple = ()):
    with batch() as con:
        return con.execute(sql, list(params)).fetchone()


def columns(table: str) -> frozenset:
    """The columns of `marts.<table>` in the current version (empty when the table does not exist).
    The first call for a version reads the columns of every table of the schema in one query (a page asks for
    five or six tables: one catalogue query each was ~2 ms warm, more on a new connection)."""
    v = version()
    key = (v, table)
    cols = _columns_cache.get(key)
    if cols is None:
        if (v, None) not in _columns_cache:
            rows = fetch_df("SELECT table_name, list(column_name) AS cols FROM information_schema.columns "
                            "WHERE table_schema = ? GROUP BY 1", [SCHEMA])
            for name, names in zip(rows["table_name"], rows["cols"]):
                _columns_cache[(v, name)] = frozenset(names)
            _columns_cache[(v, None)] = frozenset()
        cols = _columns_cache.setdefault(key, frozenset())
    return cols


def has_table(table: str) -> bool:
    return bool(columns(table))


def cached(fn):
    """Cache a query function `fn(scope, filters, *args)` per (name, version, scope key, filters, args).

    DataFrames are copied on the way out so a caller can never alter the cached value.
    """
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(scope, filters, *args, **kwargs):
        key = (name, version(), scope_key(scope), filters.key() if filters is not None else None,
               args, tuple(sorted(kwargs.items())))
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _copy(_cache[key])
        with batch():
            value = fn(scope, filters, *args, **kwargs)
        with _lock:
            _cache[key] = value
            while len(_cache) > _CACHE_MAX:
                _cache.popitem(last=False)
        return _copy(value)

    wrapper.uncached = fn
    return wrapper


def _copy(value):
    if isinstance(value, pd.DataFrame):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()
    _columns_cache.clear()


def cache_keys() -> list[tuple]:
    with _lock:
        return list(_cache)


def timed(fn, *args, **kwargs) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
