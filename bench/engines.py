"""Thin adapters from the harness to the project's engines. Each runs inside a fresh child process
(`bench.proc.run_callable`) with DOANVIEN_DATA_DIR pointing at a private data root, and returns counts so
that the harness can report rows per second. Nothing here re-implements an engine: if an engine is
missing, the import fails and the step is reported as "not available".
"""
from __future__ import annotations

import time
from pathlib import Path


def _get(obj, name, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _tally(results) -> dict:
    """Sum rows_read/accepted/refused and count statuses over ingestion results (dicts or objects)."""
    if results is None:
        results = []
    if not isinstance(results, (list, tuple)):
        results = [results]
    out = {"files": 0, "rows_read": 0, "rows_accepted": 0, "rows_refused": 0, "status": {}}
    for r in results:
        out["files"] += 1
        for k in ("rows_read", "rows_accepted", "rows_refused"):
            v = _get(r, k)
            if v is None and _get(r, "ledger") is not None:
                v = _get(_get(r, "ledger"), k)
            out[k] += int(v or 0)
        st = str(_get(r, "status", "?"))
        out["status"][st] = out["status"].get(st, 0) + 1
        for k, v in (_get(r, "timings") or {}).items():  # the engine's own breakdown, summed over files
            if isinstance(v, (int, float)):
                out.setdefault("timings_s", {})[k] = out.setdefault("timings_s", {}).get(k, 0) + v
    return out


def ingest_files(files: list[str]) -> dict:
    """`pipelines.ingest.batch.ingest_batch` on the files (`ingest_file` per file in worker processes: read, normalise, validate, write raw zone,
    quarantine, ledger, reports), declared branch/period/kind from the inbox path, in arrival order
    (modification time), as `ingest_inbox` does, but without hashing the whole inbox first."""
    import datetime as dt

    from pipelines.ingest import engine
    from pipelines.ingest.batch import default_workers, ingest_batch

    paths = sorted((Path(f) for f in files), key=lambda p: (p.stat().st_mtime, str(p)))
    items = [(p, *engine.declared_from_path(p), dt.datetime.fromtimestamp(p.stat().st_mtime)) for p in paths]
    reports = ingest_batch([(p, b or "", per or "", k or "", r) for p, b, per, k, r in items])
    out = _tally(reports)
    out["gx_pooled"] = True
    out["workers"] = default_workers()
    return out


def ingest_inbox() -> dict:
    """`pipelines.ingest.engine.ingest_inbox()`: every new file version in the data root's inbox."""
    from pipelines.ingest.engine import ingest_inbox as run

    return _tally(run())


def build(full_refresh: bool) -> dict:
    """`pipelines.warehouse.build.build_and_publish(full_refresh=...)` on the data root's raw zone."""
    from pipelines.warehouse.build import build_and_publish

    from pipelines.warehouse.build import LAST_NODE_TIMINGS

    from pipelines.warehouse.serving import warehouse_path

    res = build_and_publish(full_refresh=full_refresh)
    return {"result": str(res)[:500], "version_path": str(warehouse_path()),
            "slowest_nodes": [[n, round(s, 2)] for n, s in LAST_NODE_TIMINGS[:15]]}


def refresh_month(full_refresh: bool = False) -> dict:
    """The monthly refresh as one process: ingest the inbox's new files, then build and publish."""
    from pipelines.ingest.engine import ingest_inbox as run
    from pipelines.warehouse.build import build_and_publish, discard_prefetch, prefetch_base_copy

    t0 = time.perf_counter()
    if not full_refresh:  # as the monthly refresh job does (orchestrate.run_monthly_refresh)
        prefetch_base_copy()
    try:
        tally = _tally(run())
        t1 = time.perf_counter()
        res = build_and_publish(full_refresh=full_refresh)
        t2 = time.perf_counter()
    finally:
        discard_prefetch()
    from pipelines.warehouse.build import LAST_NODE_TIMINGS
    from pipelines.warehouse.serving import warehouse_path

    return {**tally, "ingest_s": t1 - t0, "build_s": t2 - t1, "result": str(res)[:500],
            "version_path": str(warehouse_path()),
            "slowest_nodes": [[n, round(s, 2)] for n, s in LAST_NODE_TIMINGS[:15]]}


def verify(root: str, refresh_path: str | None, full_path: str | None) -> dict:
    """The refresh's and the full rebuild's warehouse against the generator's ground truth (mismatching rows per
    comparison), and the two against each other (rows only in one, per table): pipelines.generate.verify."""
    from pipelines.generate.verify import analyst_differences, truth_mismatches, version_differences

    out: dict = {}
    for name, path in (("refresh", refresh_path), ("full_rebuild", full_path)):
        if path:
            t = time.perf_counter()
            found = truth_mismatches(path, root)
            out[f"truth_{name}"] = {k: len(v) for k, v in found.items()}
            out[f"truth_{name}_first"] = {k: [str(x) for x in v[:3]] for k, v in found.items() if v}
            out[f"truth_{name}_s"] = time.perf_counter() - t
    if refresh_path and full_path:
        t = time.perf_counter()
        out["refresh_vs_full"] = {k: list(v) for k, v in version_differences(refresh_path, full_path).items()}
        out["refresh_vs_full_s"] = time.perf_counter() - t
        t = time.perf_counter()
        found = analyst_differences(refresh_path, full_path)
        if found is not None:
            out["analyst_refresh_vs_full"] = {k: list(v) for k, v in found.items()}
            out["analyst_refresh_vs_full_s"] = time.perf_counter() - t
    return out


# --------------------------------------------------------------------------- lookups

def _pct(vals: list[float]) -> dict:
    import statistics

    if not vals:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    s = sorted(vals)
    return {"p50_ms": statistics.median(s), "p95_ms": s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))],
            "max_ms": s[-1]}


def lookup_direct(n: int = 1000, seed: int = 1, budget_s: float = 45.0) -> dict:
    """Member lookup straight on `restricted.member_pii` of the published warehouse (used while
    `pipelines.access.lookup` is not there): prepared equality queries on CCCD, member code and full name,
    1) on one read-only connection (warm), 2) a new short-lived connection per lookup, as readers do."""
    import random

    from pipelines.warehouse.serving import connect

    with connect() as con:
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'restricted' AND table_name = 'member_pii'").fetchall()}
        if not cols:
            raise LookupError("restricted.member_pii is not in the published warehouse")
        keys = {k: c for k, c in (("cccd", "cccd"), ("member_code", "member_code"), ("name", "full_name")) if c in cols}
        total = con.execute("SELECT count(*) FROM restricted.member_pii").fetchone()[0]
        sample = con.execute(f"SELECT {', '.join(keys.values())} FROM restricted.member_pii "
                             f"USING SAMPLE {int(n)} ROWS (reservoir, {int(seed)})").fetchall()
    rng = random.Random(seed)
    sample = [sample[rng.randrange(len(sample))] for _ in range(n)] if sample else []
    out = {"via": "direct SQL on restricted.member_pii (pipelines.access.lookup not used)", "rows": total,
           "n": len(sample), "by": {}}
    for i, (kind, col) in enumerate(keys.items()):
        sql = f"SELECT * FROM restricted.member_pii WHERE {col} = ?"
        warm, cold, hits = [], [], 0
        with connect() as con:
            con.execute(sql, [sample[0][i]]).fetchall()
            for row in sample:
                t = time.perf_counter()
                hits += bool(con.execute(sql, [row[i]]).fetchall())
                warm.append((time.perf_counter() - t) * 1000)
        for row in sample[: max(1, len(sample) // 5)]:
            t = time.perf_counter()
            with connect() as con:
                con.execute(sql, [row[i]]).fetchall()
            cold.append((time.perf_counter() - t) * 1000)
        out["by"][kind] = {**_pct(warm), "hits": hits, "new_connection": _pct(cold), "n_new_connection": len(cold)}
    return out


def lookup_access(n: int = 1000, seed: int = 1, budget_s: float = 45.0) -> dict:
    """Member lookup through the access engineer's `pipelines.access.lookup.search_members` as a national
    leader (scope resolution, restricted-schema query and audit record included, a new read-only connection
    per call, as the app does): n random members by CCCD, member code and full name."""
    import random

    from pipelines.access.accounts import User
    from pipelines.access.lookup import search_members
    from pipelines.warehouse.serving import connect

    with connect() as con:
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'restricted' AND table_name = 'member_pii'").fetchall()}
        keys = {k: c for k, c in (("cccd", "cccd"), ("member_code", "member_code"), ("name", "full_name")) if c in cols}
        total = con.execute("SELECT count(*) FROM restricted.member_pii").fetchone()[0]
        sample = con.execute(f"SELECT {', '.join(keys.values())} FROM restricted.member_pii "
                             f"WHERE cccd IS NOT NULL USING SAMPLE {int(n)} ROWS (reservoir, {int(seed)})").fetchall()
    rng = random.Random(seed)
    sample = [sample[rng.randrange(len(sample))] for _ in range(n)] if sample else []
    user = User(username="bench", display_name="bench", role="national_leader")
    out = {"via": "pipelines.access.lookup.search_members (national leader; scope, audit and masking per call; the process keeps one connection per published version)",
           "rows": total, "n": len(sample), "by": {}}
    for i, kind in enumerate(keys):
        times, hits = [], 0
        search_members(user, str(sample[0][i]))
        deadline = time.perf_counter() + budget_s
        for row in sample:
            t = time.perf_counter()
            hits += bool(search_members(user, str(row[i])))
            times.append((time.perf_counter() - t) * 1000)
            if t > deadline:  # stop at the time budget; the report says how many ran
                break
        out["by"][kind] = {**_pct(times), "hits": hits, "n": len(times)}
    return out


# --------------------------------------------------------------------------- warm upload

def upload_warm(n: int = 10_000, repeat: int = 3) -> dict:
    """What the upload page waits for once it is open: in this process the engine is imported and GX prewarmed
    (`rules.prewarm_gx()`, as the page does when it renders, waited for here), and one small file has been
    ingested; then an `n`-row roster, as CSV and as XLSX (the same rows: `pipelines.ingest.perf.make_csv`'s
    synthetic roster, ~1 % defective rows), goes through `ingest_file` (the single-upload door: read, normalise,
    validate, GX on its sample, raw/quarantine/ledger, JSON report and the branch workbook), `repeat` times each
    into a fresh data root with a small registry. Times are the call's wall and CPU; median and all runs."""
    import datetime as dt
    import os
    import statistics
    import tempfile

    from pipelines.ingest import engine, perf, rules

    rules.prewarm_gx()
    if rules._PREWARM and rules._PREWARM[0] is not None:
        rules._PREWARM[0].join()
    base = Path(tempfile.mkdtemp(prefix="upload-warm-", dir=os.environ.get("DOANVIEN_DATA_DIR")))
    src = base / "src"
    src.mkdir()
    perf.make_csv(src / "warm.csv", 200, seed=99)
    perf.make_csv(src / f"roster_{n}.csv", n, seed=n)
    _csv_to_xlsx(src / f"roster_{n}.csv", src / f"roster_{n}.xlsx")
    received = dt.datetime(2025, 4, 5)

    def one(path: Path, tag: str) -> tuple[float, float, object]:
        root = base / tag
        perf.setup_root(root)
        os.environ["DOANVIEN_DATA_DIR"] = str(root)
        t, c = time.perf_counter(), time.process_time()
        rep = engine.ingest_file(path, branch_code="Q0101", period="2025-03", declared_kind="roster",
                                 received_at=received)
        return time.perf_counter() - t, time.process_time() - c, rep

    one(src / "warm.csv", "warm")
    out = {"rows": n, "gx_mode": engine.rules_gx_mode(), "gx_prewarmed": True}
    for fmt in ("csv", "xlsx"):
        runs = [one(src / f"roster_{n}.{fmt}", f"{fmt}-{i}") for i in range(max(1, repeat))]
        rep = runs[-1][2]
        out[fmt] = {"wall_s": statistics.median(r[0] for r in runs), "cpu_s": statistics.median(r[1] for r in runs),
                    "runs_wall_s": [round(r[0], 4) for r in runs], "status": rep.status, "rows_read": rep.rows_read,
                    "rows_accepted": rep.rows_accepted, "rows_refused": rep.rows_refused,
                    "gx_ran": bool((rep.gx or {}).get("ran")), "xlsx_report": bool(rep.xlsx_report),
                    "timings": rep.timings}
    return out


def _csv_to_xlsx(src: Path, dst: Path) -> None:
    """The synthetic roster CSV's lines as the cells of one sheet (text cells, title rows included)."""
    import csv

    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Danh sách")
    with open(src, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            ws.append(row)
    wb.save(dst)
