"""The batch door (`engine.ingest_batch`, worker processes, one lane per branch) gives exactly the result of
ingesting the same files one after the other in one process: the same ledger (file ids, statuses, row
counts, supersede/duplicate outcomes), the same raw rows and the same quarantine."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("pipelines.generate.engine")


def _state(root: Path) -> dict:
    led = pl.concat([pl.read_parquet(f) for f in sorted((root / "raw" / "files").glob("*.parquet"))],
                    how="diagonal_relaxed")
    led = led.select("file_id", "sha256", "branch_code", "period", "kind", "status", "reason_code", "rows_read",
                     "rows_accepted", "rows_refused").sort("file_id")
    raw = {str(p.relative_to(root)): pl.read_parquet(p).drop("received_at").hash_rows().sort().to_list()
           for p in sorted((root / "raw").glob("*/file_month=*/*.parquet"))}
    assert raw, "no raw rows file (layout raw/<kind>/file_month=YYYY-MM/)"
    q = {p.name: pl.read_parquet(p).hash_rows().sort().to_list() for p in sorted((root / "quarantine").glob("*.parquet"))}
    return {"ledger": led.to_dicts(), "raw": raw, "quarantine": q}


def test_parallel_batch_equals_sequential(tmp_path, monkeypatch):
    from pipelines.generate.engine import generate

    src = tmp_path / "gen"
    generate("tiny", src, seed=7, log=lambda *a, **k: None)
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    monkeypatch.setenv("DOANVIEN_INGEST_MIN_PARALLEL", "2")
    states, reports = {}, {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        shutil.copytree(src, root, copy_function=shutil.copy2)  # same mtimes: same received_at
        monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
        from pipelines.ingest import batch, engine
        monkeypatch.setattr(batch, "MIN_PARALLEL_FILES", 2)
        items = batch.as_items(engine.pending_inbox_files())
        assert len(items) > 20
        reps = engine.ingest_batch(items, workers=workers)
        assert len(reps) == len(items)
        assert not [r for r in reps if r.status == "error"]
        reports[workers] = [(r.file_id, r.status, r.rows_read, r.rows_accepted, r.rows_refused) for r in reps]
        states[workers] = _state(root)
    assert reports[1] == reports[2]
    assert states[1]["ledger"] == states[2]["ledger"]
    assert states[1]["raw"] == states[2]["raw"]
    assert states[1]["quarantine"] == states[2]["quarantine"]
    # a batch defers the branch workbooks (made on request: see the next test)
    assert not list((tmp_path / "w2" / "reports").glob("*.xlsx"))


def test_lanes_keep_a_branch_together_and_in_order(tmp_path):
    from pipelines.ingest.batch import lanes

    f = []
    for i, b in enumerate(["A", "B", "A", "C", "B", "A"]):
        p = tmp_path / f"{i}.csv"
        p.write_bytes(b"x" * (i + 1))
        f.append((p, b, "2025-03", "roster", None))
    got = lanes(f, shas=["s0", "s1", "s2", "s3", "s4", "s3"])  # file 5 (A) repeats file 3's bytes (C)
    assert sorted(map(tuple, got)) == [(0, 2, 3, 5), (1, 4)]
    assert all(g == sorted(g) for g in got)


def _cells(path: Path) -> dict:
    import openpyxl
    wb = openpyxl.load_workbook(path, read_only=True)
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def test_batch_defers_the_branch_workbook_and_makes_the_same_one_on_request(tmp_path, monkeypatch):
    """A batch writes no workbook; `branch_workbook(file_id)` makes it from the archive, cell for cell the
    workbook a single upload of the same file gets at once."""
    from pipelines.generate.engine import generate

    src = tmp_path / "gen"
    generate("tiny", src, seed=42, log=lambda *a, **k: None)
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    from pipelines.ingest import engine
    files = [f for f in engine.pending_inbox_files(src / "inbox") if f.kind == "roster"]
    roots = {}
    for mode in ("single", "batch"):
        root = tmp_path / mode
        (root / "registry").mkdir(parents=True)
        for p in (src / "registry").glob("*"):
            (root / "registry" / p.name).symlink_to(p)
        monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
        if mode == "single":
            reps = [engine.ingest_file(f.path, branch_code=f.branch_code, period=f.period, declared_kind=f.kind,
                                       received_at=f.received_at) for f in files]
        else:
            reps = engine.ingest_batch([(f.path, f.branch_code, f.period, f.kind, f.received_at) for f in files],
                                       workers=1)
        roots[mode] = (root, {r.file_id: r for r in reps if r.status == "accepted"})
    (single_root, single), (batch_root, batch) = roots["single"], roots["batch"]
    assert single.keys() == batch.keys() and single
    assert not list((batch_root / "reports").glob("*.xlsx"))
    assert all(r.xlsx_on_demand and r.xlsx_report is None for r in batch.values())
    with_refused = [fid for fid, r in single.items() if r.rows_refused]
    assert with_refused, "tiny data has roster files with refused rows"
    for fid in sorted(single)[:6] + with_refused[:3]:
        made = engine.branch_workbook(fid)
        assert made == batch_root / "reports" / f"{fid}.xlsx" and made.exists()
        assert _cells(made) == _cells(Path(single[fid].xlsx_report))
    assert engine.branch_workbook("0" * 16) is None
    assert engine.branch_workbook("../../etc/passwd") is None


def test_workers_do_not_rerun_the_callers_main_script(tmp_path, monkeypatch):
    """`spawn` re-runs the parent's `__main__` file in every worker; under AppTest or Streamlit that is a page
    script that cannot run there. The workers must start anyway (they need nothing from it)."""
    import sys
    import types

    from pipelines.generate.engine import generate

    root = tmp_path / "data"
    generate("tiny", root, seed=3, log=lambda *a, **k: None)
    script = tmp_path / "page.py"
    script.write_text("raise SystemExit('a page script must not run in an ingestion worker')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    from pipelines.ingest import batch, engine
    monkeypatch.setattr(batch, "MIN_PARALLEL_FILES", 2)
    reps = engine.ingest_batch(batch.as_items(engine.pending_inbox_files())[:30], workers=2)
    assert reps and not [r for r in reps if r.status == "error"], [r.warnings for r in reps if r.status == "error"][:3]
    assert sys.modules["__main__"] is fake
