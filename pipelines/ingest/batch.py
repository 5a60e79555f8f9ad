"""Many files at once: the same `engine.ingest_file`, spread over worker processes.

``ingest_batch(items, workers=None) -> list[IngestReport]`` (same order as ``items``)
    ``items``: ``(path, branch_code, period, kind, received_at[, sha256])`` tuples in arrival order (the sha256,
    when known, spares hashing the file again to form the lanes). The CLI
    (``doanvien ingest --inbox``), the Dagster ``raw_files`` asset and the benchmark all call this.

Why processes: a branch file costs ~80 ms of mostly fixed work (Polars planning of small frames, layout
detection, three staged writes); one Python process runs one file at a time, so a national month (~8,700
files) is bound by one core. Two workers on this 2-core machine roughly halve the wall time, as DuckDB's own
reader uses both cores.

Order and determinism: the files of one branch form a *lane* and go, in arrival order, to one worker, so a
branch's correction always lands after the file it corrects and the ledger's outcome (supersede, duplicate,
alternative file id) is exactly the sequential one. The few files whose bytes also appear under another
branch (the same content sent twice by two branches) join one lane together. The ledger lock and the
duplicate re-check under it (engine) keep concurrent lanes safe anyway. Whole lanes are packed into bundles
(`bundles`, about ``engine.CHUNK_FILES`` files) and each bundle goes to a worker.

Chunks: a worker ingests its bundle through ``engine.ingest_many``: every file is read, laid out and checked
on its own, then the files of one kind in a chunk are normalised and validated together (one Polars plan per
step for the chunk instead of ~145 small queries per file; the text preparation too, its encoding decisions
still made file by file), split back by file, written and committed in order, each exactly as ``ingest_file``
would (tests/ingest/test_chunks.py). ``DOANVIEN_INGEST_CHUNK_FILES=1``
goes back to ``ingest_file`` per file.

Branch workbooks: a batch defers each file's `.xlsx` (its own rows with the error column) to
``engine.branch_workbook(file_id)``, which makes it from the archived original on first request; a single
upload (the upload page) still gets it at once.

Great Expectations: each worker pools its files' samples (``engine.gx_pooled`` semantics) and hands them
back; the parent runs GX once per kind over the pooled sample, in item order, and records the run in every
file's JSON report, exactly as a sequential batch does.

Workers: ``DOANVIEN_INGEST_WORKERS`` (default: the CPUs, at most 2); batches under ``MIN_PARALLEL_FILES`` run
in-process (starting a worker costs ~1 s of imports). Workers start with ``spawn`` (no fork of a threaded
Dagster or Streamlit process) and ``POLARS_MAX_THREADS=1`` (each worker is one core's worth; Polars' own
thread pool only adds dispatch cost on these small frames).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from pipelines.ingest.hashing import sha256_file

__all__ = ["ingest_batch", "default_workers", "lanes", "bundles"]

MIN_PARALLEL_FILES = int(os.environ.get("DOANVIEN_INGEST_MIN_PARALLEL", 24))

Item = tuple  # (path, branch_code, period, kind, received_at[, sha256])


def default_workers() -> int:
    env = os.environ.get("DOANVIEN_INGEST_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def _sha(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def lanes(items: Sequence[Item], shas: Sequence[str | None] | None = None) -> list[list[int]]:
    """Indices of `items` grouped into lanes: one per branch, merged where the same bytes appear under
    several branches; each lane in item (arrival) order; lanes largest first (by bytes) for balance."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    keys = [f"b:{(it[1] or '').strip().upper()}" for it in items]
    if shas is not None:
        for k, s in zip(keys, shas):
            if s:
                union(k, f"s:{s}")
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(find(k), []).append(i)

    def weight(lane: list[int]) -> int:
        tot = 0
        for i in lane:
            try:
                tot += Path(items[i][0]).stat().st_size
            except OSError:
                pass
        return tot

    out = [sorted(g) for g in groups.values()]
    out.sort(key=lambda g: (-weight(g), g[0]))
    return out


def bundles(groups: list[list[int]], workers: int) -> list[list[int]]:
    """Whole lanes packed into bundles of about `engine.CHUNK_FILES` files (fewer when the batch is small, so
    that every worker gets several bundles): a worker normalises a bundle's files together in chunks, which a
    lane of one or two files (a national month has ~4 files per branch) would not allow. A lane is never
    split; lanes keep their order inside a bundle, and lanes do not depend on each other."""
    from pipelines.ingest import engine
    total = sum(len(g) for g in groups)
    size = max(1, min(engine.CHUNK_FILES, -(-total // (2 * max(1, workers)))))
    out: list[list[int]] = []
    cur: list[int] = []
    for g in groups:
        cur.extend(g)
        if len(cur) >= size:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _import_gx() -> None:
    from pipelines.ingest.rules import import_gx
    try:
        import_gx()  # the one locked import (a background prewarm may be importing GX right now)
    except Exception:  # noqa: BLE001  (the pooled run reports its own failure)
        pass


@contextlib.contextmanager
def _plain_main():
    """While workers start, `__main__` is an empty module: `spawn` re-runs the parent's main script in each
    worker, and the parent's `__main__` may be anything (a Streamlit page run by AppTest, a notebook, a
    Dagster entry point). The workers need nothing from it: `run_lane` is importable."""
    import sys
    import types
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _init_worker(env: dict) -> None:
    os.environ.update(env)


def _error_report(item: Item, exc: BaseException, sha: str | None = None):
    from pipelines.ingest.engine import IngestReport, sanitise_name
    path, branch, period, kind = Path(item[0]), item[1], item[2], item[3]
    return IngestReport(file_id=(sha or "0" * 16)[:16], sha256=sha or "", status="error",
                        reason_code=type(exc).__name__,
                        message_vi="Lỗi hệ thống khi xử lý tệp; tệp sẽ được xử lý lại.",
                        branch_code=(branch or "").strip().upper(), period=period or "", kind=kind or "",
                        original_name=sanitise_name(path.name), warnings=[f"{type(exc).__name__}: {exc}"[:300]])


def run_lane(lane: list[tuple[int, Item]], pooled: bool) -> list[tuple[int, Any, list]]:
    """Ingest one lane (or a bundle of lanes) in order in this process: [(index, report, [(kind, sample,
    today_ymd), …])]."""
    from pipelines.ingest import engine
    out: list[tuple[int, Any, list]] = []
    pool: dict | None = {} if pooled else None
    prev, prev_defer = engine._GX_POOL, engine.DEFER_WORKBOOK
    engine._GX_POOL, engine.DEFER_WORKBOOK = pool, True
    try:
        # the files are normalised and validated in chunks (`engine.ingest_many`), each committed in lane order
        got = engine.ingest_many([item for _, item in lane]) if engine.CHUNK_FILES > 1 else [None] * len(lane)
        for (idx, item), rep in zip(lane, got):
            if rep is None:
                path, branch, period, kind, received = item[:5]
                try:
                    rep = engine.ingest_file(Path(path), branch_code=branch or "", period=period or "",
                                             declared_kind=kind or "", received_at=received)
                except Exception as exc:  # noqa: BLE001
                    rep = exc
            if isinstance(rep, BaseException):  # one bad file never stops the others; no ledger row: retried
                rep = _error_report(item, rep, item[5] if len(item) > 5 else None)
            out.append((idx, rep, []))
    finally:
        engine._GX_POOL, engine.DEFER_WORKBOOK = prev, prev_defer
    if pool:
        where = {id(rep): k for k, (_, rep, _) in enumerate(out)}
        for kind, entries in pool.items():
            for rep, smp, today in entries:
                out[where[id(rep)]][2].append((kind, smp, today))
    return out


def ingest_batch(items: Sequence[Item], workers: int | None = None) -> list:
    """Ingest `items` ((path, branch, period, kind, received_at), arrival order); reports in the same order.
    A file that crashes the engine gets a report with status ``error`` (and no ledger row: retried later)."""
    from pipelines.ingest import engine
    items = [tuple(it) for it in items]
    if not items:
        return []
    workers = workers or default_workers()
    with engine.gx_pooled():
        pool_here = engine._GX_POOL  # None when GX pooling is off for this batch (nested caller owns it)
        pooled = pool_here is not None and engine.GX_POOL_ROWS > 0 and engine.rules_gx_mode() == "sample"
        if workers <= 1 or len(items) < MIN_PARALLEL_FILES:
            results = run_lane(list(enumerate(items)), pooled)
        else:
            shas = [it[5] if len(it) > 5 and it[5] else _sha(Path(it[0])) for it in items]
            groups = bundles(lanes(items, shas), workers)
            env = {"POLARS_MAX_THREADS": os.environ.get("DOANVIEN_INGEST_WORKER_THREADS", "1")}
            results = []
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=ctx,
                                     initializer=_init_worker, initargs=(env,)) as ex:
                with _plain_main():  # the workers start during the first submits
                    futs = [(g, ex.submit(run_lane, [(i, items[i]) for i in g], pooled)) for g in groups]
                if pooled:
                    _import_gx()  # here, in the main thread, while the workers run (GX runs here at the end)
                for g, fut in futs:
                    try:
                        results.extend(fut.result())
                    except Exception as exc:  # a worker died: its lane's files are retried next time
                        results.extend((i, _error_report(items[i], exc, shas[i]), []) for i in g)
        results.sort(key=lambda r: r[0])
        if pooled and pool_here is not None:
            # the workers' samples join this batch's pool in item order; GX runs when gx_pooled exits
            for _, rep, samples in results:
                for kind, smp, today in samples:
                    pool_here.setdefault(kind, []).append((rep, smp, today))
    return [rep for _, rep, _ in results]


def as_items(files) -> list[Item]:
    """`engine.InboxFile`s → items, with the sha256 `pending_inbox_files` already computed (the lanes need it;
    the file is not hashed twice before the workers start)."""
    return [(f.path, f.branch_code or "", f.period or "", f.kind or "", f.received_at, f.sha256) for f in files]

