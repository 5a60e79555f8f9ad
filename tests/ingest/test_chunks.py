"""A batch normalises and validates its files together in chunks (`engine.ingest_many`: one Polars plan per step
for several files, split back by a file number). The outcome must be exactly `ingest_file` called file by file:
the same ledger, the same raw rows (each with its own file's lineage), the same quarantine rows and messages,
the same JSON reports (timings aside) — and no file may fall back to the one-by-one path on ordinary data."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("pipelines.generate.engine")


def _frames(root: Path) -> dict:
    out = {}
    for p in (sorted((root / "raw" / "files").glob("*.parquet")) + sorted((root / "raw").glob("*/file_month=*/*.parquet"))
              + sorted((root / "quarantine").glob("*.parquet"))):
        df = pl.read_parquet(p)
        if p.parent.name == "files":
            df = df.drop("ingested_at")
        out[str(p.relative_to(root))] = df
    return out


def _reports(root: Path) -> dict:
    out = {}
    for p in sorted((root / "reports").glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        d.pop("timings", None)
        for k in ("json_report", "raw_path", "quarantine_path", "xlsx_report"):  # paths under each data root
            d[k] = Path(d[k]).name if d.get(k) else d.get(k)
        if isinstance(d.get("gx"), dict):
            d["gx"].pop("seconds", None)
        out[p.name] = d
    return out


def _gx(r) -> dict:
    return {k: v for k, v in (r.gx or {}).items() if k != "seconds"}


def _ingest(src: Path, root: Path, monkeypatch, chunk: int, items=None):
    from pipelines.ingest import batch, engine, rules
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    monkeypatch.setattr(rules, "GX_MODE", "off")  # read at import: another test may have imported it with GX on
    (root / "registry").mkdir(parents=True)
    for p in (src / "registry").glob("*"):
        (root / "registry" / p.name).symlink_to(p)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    monkeypatch.setattr(engine, "CHUNK_FILES", chunk)
    if items is None:
        items = batch.as_items(engine.pending_inbox_files(src / "inbox"))
    reps = batch.run_lane(list(enumerate(items)), pooled=False)
    return items, [r for _, r, _ in reps]


def _same_or_raise(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].schema == b[k].schema, k
        assert a[k].equals(b[k]), k


@pytest.mark.parametrize("seed", [42, 7])
def test_chunked_batch_equals_file_by_file(tmp_path, monkeypatch, seed):
    from pipelines.generate.engine import generate
    from pipelines.ingest import engine

    src = tmp_path / "gen"
    generate("tiny", src, seed=seed, log=lambda *a, **k: None)
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    items, one = _ingest(src, tmp_path / "one", monkeypatch, chunk=1)
    assert len(items) > 50

    calls = []
    real = engine.ingest_file
    monkeypatch.setattr(engine, "ingest_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    _, many = _ingest(src, tmp_path / "many", monkeypatch, chunk=16, items=items)
    assert not calls, f"{len(calls)} file(s) fell back to ingest_file"
    assert [(r.file_id, r.status, r.reason_code, r.rows_read, r.rows_accepted, r.rows_refused, r.counts_by_rule,
             r.flags, r.encoding, r.message_vi, r.warnings, _gx(r)) for r in one] == \
           [(r.file_id, r.status, r.reason_code, r.rows_read, r.rows_accepted, r.rows_refused, r.counts_by_rule,
             r.flags, r.encoding, r.message_vi, r.warnings, _gx(r)) for r in many]
    assert {r.status for r in one} >= {"accepted", "refused"}
    assert sum(r.rows_refused for r in one if r.status == "accepted") > 0
    _same_or_raise(_frames(tmp_path / "one"), _frames(tmp_path / "many"))
    if seed == 42:  # chunks cut by size too (a few files each): the same outcome
        monkeypatch.setattr(engine, "CHUNK_BYTES", 20_000)
        _ingest(src, tmp_path / "small", monkeypatch, chunk=16, items=items)
        assert not calls
        _same_or_raise(_frames(tmp_path / "one"), _frames(tmp_path / "small"))
    ra, rb = _reports(tmp_path / "one"), _reports(tmp_path / "many")
    assert ra == rb, list(_diff(ra, rb).items())[:2]
    # every raw row carries its own file's id, and each file's rows are all there, once
    for r in many:
        if r.status == "accepted":
            raw = pl.read_parquet(r.raw_path)
            assert raw.get_column("file_id").unique().to_list() == [r.file_id]
            assert raw.height == r.rows_accepted and raw.get_column("source_row").is_unique().all()


def test_chunk_keeps_each_files_rows_apart(tmp_path, monkeypatch):
    """The same roster twice in one chunk with other bytes (a trailing blank line added: another file version
    with the same rows): each file keeps exactly its own rows, file id and row numbers; nothing is lost,
    duplicated or swapped; a third file repeating the first one's bytes comes out a duplicate, as in sequence."""
    import datetime as dt

    from pipelines.generate.engine import generate
    from pipelines.ingest import engine

    src = tmp_path / "gen"
    generate("tiny", src, seed=42, log=lambda *a, **k: None)
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    rosters = [f for f in engine.pending_inbox_files(src / "inbox") if f.kind == "roster"
               and f.path.suffix == ".csv"]
    f = max(rosters, key=lambda f: f.path.stat().st_size)
    text = f.path.read_bytes()
    other = tmp_path / "copy.csv"
    other.write_bytes(text.replace(b"\n", b"\n", 1) + b"\n")  # other bytes, same rows (a trailing blank line)
    same = tmp_path / "again.csv"
    same.write_bytes(text)
    when = f.received_at
    items = [(f.path, f.branch_code, f.period, "roster", when),
             (other, f.branch_code, f.period, "roster", when + dt.timedelta(minutes=1)),
             (same, f.branch_code, f.period, "roster", when + dt.timedelta(minutes=2))]
    _, one = _ingest(src, tmp_path / "one", monkeypatch, chunk=1, items=items)
    _, many = _ingest(src, tmp_path / "many", monkeypatch, chunk=8, items=items)
    assert [r.status for r in many] == ["accepted", "accepted", "duplicate"] == [r.status for r in one]
    a, b = (pl.read_parquet(r.raw_path) for r in many[:2])
    assert a.height == b.height == many[0].rows_accepted > 0
    assert a.get_column("file_id").unique().to_list() == [many[0].file_id]
    assert b.get_column("file_id").unique().to_list() == [many[1].file_id]
    assert a.drop("file_id", "received_at").equals(b.drop("file_id", "received_at"))
    _same_or_raise(_frames(tmp_path / "one"), _frames(tmp_path / "many"))


def _diff(a, b):
    return {k: [(f, a[k].get(f), b[k].get(f)) for f in a[k] if a[k].get(f) != b[k].get(f)] for k in a if a[k] != b[k]}
