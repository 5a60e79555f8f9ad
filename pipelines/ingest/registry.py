"""The organisation registry as the ingestion engine checks it: loaded once per process, indexed, cached.

``registry/units.parquet`` holds ~325,000 unit versions at national scale. Filtering and joining the whole
table for every file (two windows per roster) cost ~60 ms per file, i.e. more than reading the file. Here the
table is read once per process (again only when the file changes) and indexed by ``parent_code``: the units of
one branch are the slices of its children and grandchildren, a few hundred rows, filtered on their validity
with numpy. The answer per (branch, window) is memoised as a Polars Series ready for ``is_in``.

``branch_known(branch, period)`` -> bool | None (None: no ``registry/branches.parquet``)
``units_of_branch(branch, start, end=None)`` -> pl.Series of CĐCS codes | None (None: no units registry)
    CĐCS under `branch` (as parent or grandparent) at some time between `start` and `end` (default: the end of
    `start`'s month): the unit version and, for a grandparent, the parent's version overlap the window.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
import polars as pl

from pipelines import config

__all__ = ["branch_known", "units_of_branch", "month_end"]

_CACHE: dict = {}
_NO_END = np.iinfo(np.int32).max


def month_end(d: _dt.date) -> _dt.date:
    nxt = _dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - _dt.timedelta(days=1)


def _days(d: _dt.date) -> int:
    return (d - _dt.date(1970, 1, 1)).days


def _load(name: str, build):
    """(index built by `build` from registry/<name>.parquet, memo dict), rebuilt when the file changes."""
    p = config.data_dir() / "registry" / f"{name}.parquet"
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    key = (str(p), st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(name)
    if hit is None or hit[0] != key:
        hit = (key, build(p), {})
        _CACHE[name] = hit
    return hit[1], hit[2]


def _bounds(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    vf = df.get_column("valid_from").cast(pl.Date).cast(pl.Int32).fill_null(np.iinfo(np.int32).min).to_numpy()
    vt = df.get_column("valid_to").cast(pl.Date).cast(pl.Int32).fill_null(_NO_END).to_numpy()
    return vf, vt


def _build_units(p) -> dict:
    df = pl.read_parquet(p, columns=["unit_code", "level", "parent_code", "valid_from", "valid_to"])
    vf, vt = _bounds(df)
    # row numbers of each parent_code's children (a hash group-by: no sort of 325k strings)
    g = (df.select("parent_code").with_row_index("i").group_by("parent_code")
         .agg(pl.col("i")).drop_nulls("parent_code"))
    lens = g.get_column("i").list.len().to_numpy()
    perm = g.get_column("i").explode().to_numpy().astype(np.int64)
    ends = np.cumsum(lens)
    slices = {code: perm[e - n:e] for code, n, e in zip(g.get_column("parent_code").to_list(), lens.tolist(),
                                                         ends.tolist())}
    return {"code": df.get_column("unit_code"), "cdcs": (df.get_column("level") == "cdcs").fill_null(False).to_numpy(),
            "vf": vf, "vt": vt, "slices": slices}


def _build_branches(p) -> dict:
    df = pl.read_parquet(p, columns=["branch_code", "valid_from", "valid_to"])
    vf, vt = _bounds(df)
    out: dict[str, list[tuple[int, int]]] = {}
    for code, a, b in zip(df.get_column("branch_code").to_list(), vf.tolist(), vt.tolist()):
        out.setdefault(code, []).append((a, b))
    return out


def branch_known(branch: str, period: _dt.date) -> bool | None:
    got = _load("branches", _build_branches)
    if got is None:
        return None
    idx, _ = got
    lo, hi = _days(period), _days(month_end(period))
    return any(a <= hi and b >= lo for a, b in idx.get(branch, ()))


def units_of_branch(branch: str, start: _dt.date, end: _dt.date | None = None) -> pl.Series | None:
    got = _load("units", _build_units)
    if got is None:
        return None
    ix, memo = got
    pe = end or month_end(start)
    key = (branch, start, pe)
    if key in memo:
        return memo[key]
    lo, hi = _days(start), _days(pe)
    code, cdcs, vf, vt, slices = ix["code"], ix["cdcs"], ix["vf"], ix["vt"], ix["slices"]
    found: list[np.ndarray] = []
    rows = slices.get(branch)
    if rows is not None:
        live = rows[(vf[rows] <= hi) & (vt[rows] >= lo)]
        found.append(live[cdcs[live]])
        # live children of the branch (any level) are parents whose live CĐCS count too (grandparent rule)
        for child in dict.fromkeys(code.gather(live).to_list()):
            cr = slices.get(child)
            if cr is not None:
                found.append(cr[(vf[cr] <= hi) & (vt[cr] >= lo) & cdcs[cr]])
    idx = np.concatenate(found) if found else np.array([], dtype=np.int64)
    memo[key] = out = code.gather(idx).unique().sort().alias("unit_code")
    return out
