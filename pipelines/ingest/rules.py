"""The expectation suites in `expectations/<kind>.json` (GX 1.x suite format) are the one declaration of
the row rules. This module

- compiles each expectation to a Polars expression (the fast path that gives every row its verdict), and
- runs Great Expectations itself (ephemeral context, pandas) on the rows — a bounded sample for large
  files — recording only counts (no values, no indexes: personal data never enters GX results).

The order of the expectations is the priority: a refused row is reported under the first rule it breaks.
"""
from __future__ import annotations

import json
import os
import threading
import time
from functools import lru_cache

import polars as pl

from pipelines.config import EXPECTATIONS_DIR

# A single upload runs GX on a bounded sample of its own rows (the row verdicts come from the compiled suite;
# GX is the recorded cross-check). GX's cost is per expectation, hardly per row, and importing it takes ~3 s:
# `prewarm_gx` starts that import in a background thread once per process; the upload page calls it when it
# renders. (The uploads that "hung" under Streamlit were a test clicking before the browser had sent the
# file, not this import: see the commit history of tests/e2e/test_access_browser.py.)
GX_SAMPLE_ROWS = int(os.environ.get("DOANVIEN_GX_SAMPLE_ROWS", 500))
GX_MODE = os.environ.get("DOANVIEN_INGEST_GX", "sample")  # sample | full | off: the default of gx_mode()
_PREWARM: list = []


def gx_mode() -> str:
    """DOANVIEN_INGEST_GX (sample | full | off), read when asked, not when this module was imported: a process that
    imported it before the variable was set (the app's upload page, a test run) still hears it."""
    return os.environ.get("DOANVIEN_INGEST_GX", GX_MODE)


_IMPORT_LOCK = threading.Lock()


def import_gx():
    """Import great_expectations, never from two threads at once (the upload page's background prewarm, a
    batch's main thread, a GX run): two threads importing GX's package at the same time can leave one of them
    with a partially initialised module, and every later import in the process failing. A failed import is
    cleared from sys.modules and tried once more. Returns the module (raises when GX cannot be imported)."""
    import sys
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    with _IMPORT_LOCK:
        for attempt in (1, 2):
            try:
                import great_expectations as gx
                from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # noqa: F401
                return gx
            except Exception:
                if attempt == 2:
                    raise
                for name in [m for m in sys.modules if m == "great_expectations" or m.startswith("great_expectations.")]:
                    del sys.modules[name]


def prewarm_gx() -> None:
    """Import great_expectations in a background thread, once per process, unless GX is off. `run_gx`'s own
    import then waits for it (the import lock) instead of starting from zero."""
    if _PREWARM or gx_mode() == "off":
        return
    import sys
    if "great_expectations" in sys.modules:
        _PREWARM.append(None)
        return

    def _imp() -> None:
        try:
            import_gx()
        except Exception:  # noqa: BLE001 - run_gx reports an import failure itself
            pass
    th = threading.Thread(target=_imp, name="gx-prewarm", daemon=True)
    _PREWARM.append(th)
    th.start()


@lru_cache(maxsize=None)
def load_suite(kind: str) -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{kind}.json").read_text(encoding="utf-8"))


def _param(v, params: dict):
    if isinstance(v, dict) and "$PARAMETER" in v:
        return params[v["$PARAMETER"]]
    return v


def _col(df_cols: set[str], name: str) -> pl.Expr:
    return pl.col(name) if name in df_cols else pl.lit(None)


def compile_expectation(exp: dict, cols: set[str], params: dict) -> pl.Expr:
    """Polars expression that is True where a row breaks the expectation (nulls ignored like GX)."""
    t, kw = exp["type"], exp["kwargs"]
    if t == "expect_column_values_to_be_null":
        return _col(cols, kw["column"]).is_not_null()
    if t == "expect_column_values_to_not_be_null":
        return _col(cols, kw["column"]).is_null()
    if t == "expect_column_values_to_match_regex":
        c = _col(cols, kw["column"])
        return c.is_not_null() & ~c.cast(pl.String).str.contains(kw["regex"])
    if t == "expect_column_values_to_not_match_regex":
        c = _col(cols, kw["column"])
        return c.is_not_null() & c.cast(pl.String).str.contains(kw["regex"])
    if t == "expect_column_values_to_be_in_set":
        c = _col(cols, kw["column"])
        return c.is_not_null() & ~c.is_in(kw["value_set"])
    if t == "expect_column_values_to_be_between":
        c = _col(cols, kw["column"])
        bad = pl.lit(False)
        lo, hi = _param(kw.get("min_value"), params), _param(kw.get("max_value"), params)
        if lo is not None:
            bad = bad | ((c <= lo) if kw.get("strict_min") else (c < lo))
        if hi is not None:
            bad = bad | ((c >= hi) if kw.get("strict_max") else (c > hi))
        return c.is_not_null() & bad
    if t == "expect_column_pair_values_to_be_equal":
        a, b = _col(cols, kw["column_A"]), _col(cols, kw["column_B"])
        return a.is_not_null() & b.is_not_null() & (a != b)
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _col(cols, kw["column_A"]), _col(cols, kw["column_B"])
        ok = (a >= b) if kw.get("or_equal") else (a > b)
        return a.is_not_null() & b.is_not_null() & ~ok
    raise ValueError(f"expectation type not compiled: {t}")


def verdicts(df: pl.DataFrame, kind: str, params: dict, by: str | None = None):
    """Adds `rule_idx` (index of the first broken expectation, null when the row passes); also returns how
    many rows break each expectation: a tuple, or with `by` (a batch's ``__fid``) {key: tuple} per group.
    A parameter may be an expression (a batch gives each row its own file's ``today_ymd`` column)."""
    suite = load_suite(kind)
    cols = set(df.columns)
    fails = [compile_expectation(e, cols, params).fill_null(False) for e in suite["expectations"]]
    idx = pl.coalesce([pl.when(f).then(pl.lit(i, dtype=pl.Int32)) for i, f in enumerate(fails)])
    counts = [f.sum().alias(f"n{i}") for i, f in enumerate(fails)]
    out = df.with_columns(idx.alias("rule_idx"))
    if by is not None:
        return out, {r[0]: tuple(r[1:]) for r in df.group_by(by).agg(counts).iter_rows()}
    return out, df.select(counts).row(0) if df.height else tuple(0 for _ in fails)


def gx_columns(kind: str) -> list[str]:
    cols: list[str] = []
    for e in load_suite(kind)["expectations"]:
        for k in ("column", "column_A", "column_B"):
            if k in e["kwargs"] and e["kwargs"][k] not in cols:
                cols.append(e["kwargs"][k])
    return cols


def run_gx(df: pl.DataFrame, kind: str, params: dict, mode: str | None = None) -> dict:
    """Run the suite with GX on the helper/typed columns (or a sample). Counts only, never values."""
    mode = mode or gx_mode()
    total = df.height
    summary: dict = {"engine": "great_expectations", "mode": mode, "rows_total": total}
    if mode == "off" or total == 0:
        summary.update({"ran": False, "reason": "disabled" if mode == "off" else "no rows"})
        return summary
    t0 = time.perf_counter()
    try:
        gx = import_gx()  # waits for a background import in progress (one lock)
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    except Exception as exc:  # pragma: no cover
        summary.update({"ran": False, "reason": f"great_expectations not importable: {type(exc).__name__}"})
        return summary
    cols = [c for c in gx_columns(kind) if c in df.columns]
    sample = df.select(cols)
    if mode == "sample" and total > GX_SAMPLE_ROWS:
        sample = sample.sample(n=GX_SAMPLE_ROWS, seed=0, shuffle=False)
        summary["sample"] = {"method": "uniform random rows without replacement, seed 0", "rows": GX_SAMPLE_ROWS}
    else:
        summary["sample"] = {"method": "all rows", "rows": total}
    pdf = sample.to_pandas()
    suite_doc = load_suite(kind)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # pragma: no cover - cosmetic only
        pass
    suite = gx.ExpectationSuite(name=suite_doc["name"])
    for e in suite_doc["expectations"]:
        kwargs = {k: _param(v, params) for k, v in e["kwargs"].items()}
        suite.add_expectation_configuration(ExpectationConfiguration(type=e["type"], kwargs=kwargs,
                                                                     meta={"rule": e["meta"]["rule"]}))
    suite = ctx.suites.add(suite)
    ds = ctx.data_sources.add_pandas(name="ingest")
    asset = ds.add_dataframe_asset(name="rows")
    bd = asset.add_batch_definition_whole_dataframe("all")
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"ingest_{kind}", data=bd, suite=suite))
    # No values and no row indexes in results: BOOLEAN_ONLY-like counts via SUMMARY with empty lists.
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 0,
                     "include_unexpected_rows": False, "return_unexpected_index_query": False}
    res = vd.run(batch_parameters={"dataframe": pdf}, result_format=result_format)
    exps = []
    for r in res.results:
        cfg = r.expectation_config
        rr = r.result or {}
        exps.append({"type": cfg.type, "rule": (cfg.meta or {}).get("rule"),
                     "column": cfg.kwargs.get("column") or f"{cfg.kwargs.get('column_A')}|{cfg.kwargs.get('column_B')}",
                     "success": bool(r.success),
                     "element_count": rr.get("element_count"), "unexpected_count": rr.get("unexpected_count"),
                     "missing_count": rr.get("missing_count")})
    summary.update({"ran": True, "success": bool(res.success), "expectations": exps,
                    "seconds": round(time.perf_counter() - t0, 3)})
    return summary
