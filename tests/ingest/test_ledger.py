"""The ingest ledger compacted into segments (`pipelines.ingest.ledger`): no row lost or doubled, and every
reader (duplicate checks, the branch workbook, the upload history, the warehouse's changed months) sees the
same ledger before and after `compact()`."""
from __future__ import annotations

import datetime as dt
import shutil

import polars as pl

from tests.ingest.test_ingest import RECEIVED, ingest, member, root, write_xlsx  # noqa: F401  (root: fixture)


def _ledger_state():
    from pipelines.ingest import ledger

    return ledger.read_all().sort("file_id").to_dicts()


def test_compaction_keeps_every_row_and_every_lookup(root, tmp_path):
    from pipelines.ingest import engine, ledger
    from pipelines.warehouse.build import changed_periods_since

    p1 = write_xlsx(tmp_path / "a.xlsx", [member(i) for i in range(5)])
    r1 = ingest(p1)
    r2 = ingest(write_xlsx(tmp_path / "b.xlsx", [member(i) for i in range(7)], title=False),
                period="2025-04", received_at=RECEIVED + dt.timedelta(days=30))
    r3 = ingest(write_xlsx(tmp_path / "c.xlsx", []), received_at=RECEIVED + dt.timedelta(days=31))  # refused
    assert (r1.status, r2.status, r3.status) == ("accepted", "accepted", "refused")
    before = _ledger_state()
    assert len(before) == 3 and len(ledger.loose_files()) == 3
    months_before = changed_periods_since("2000-01-01T00:00:00+00:00")
    with engine.ledger_lock():
        assert ledger.compact() == {"folded": 3, "merged": 0}
    assert ledger.loose_files() == [] and len(ledger.segment_files()) == 1
    assert _ledger_state() == before
    assert changed_periods_since("2000-01-01T00:00:00+00:00") == months_before == ["2025-03", "2025-04"]
    # point lookups read the segment: the same bytes again are a duplicate, not a new version
    assert ledger.row(r1.file_id)["status"] == "accepted" and ledger.has(r3.file_id)
    dup = ingest(p1, received_at=RECEIVED + dt.timedelta(days=40))
    assert dup.status == "duplicate" and dup.file_id != r1.file_id
    assert engine.find_version(r1.sha256, "Q0101", "2025-03", "roster")[0]["file_id"] == r1.file_id
    assert engine.branch_workbook(r1.file_id) is not None  # made from the segment's ledger row
    assert engine.branch_workbook(r3.file_id) is None  # refused: no workbook
    # the next compaction adds a segment; more than max_segments merge into one, nothing lost
    with engine.ledger_lock():
        assert ledger.compact(max_segments=1) == {"folded": 1, "merged": 2}
    assert len(ledger.segment_files()) == 1 and ledger.loose_files() == []
    after = _ledger_state()
    assert len(after) == 4 and [r for r in after if r["file_id"] != dup.file_id] == before


def test_a_compaction_interrupted_before_deleting_loses_and_doubles_nothing(root, tmp_path):
    from pipelines.ingest import ledger

    r1 = ingest(write_xlsx(tmp_path / "a.xlsx", [member(i) for i in range(5)]))
    before = _ledger_state()
    keep = tmp_path / "loose"
    keep.mkdir()
    for f in ledger.loose_files():
        shutil.copy2(f, keep / f.name)
    ledger.compact()
    for f in keep.iterdir():  # the crash: the segment is written, the loose rows still there
        shutil.copy2(f, ledger.ledger_dir() / f.name)
    assert _ledger_state() == before  # one row per file_id
    raw = pl.read_parquet(ledger.paths())
    assert raw.height == 2 and raw["file_id"].n_unique() == 1
    ledger.compact()  # folded again: two identical segments, still one row
    assert _ledger_state() == before and ledger.row(r1.file_id)["file_id"] == r1.file_id


def test_inbox_files_are_hashed_once_until_they_change(root, tmp_path, monkeypatch):
    import os

    from pipelines.ingest import engine

    d = root / "inbox" / "Q0101" / "2025-03" / "roster"
    d.mkdir(parents=True)
    a = write_xlsx(d / "a.xlsx", [member(i) for i in range(3)])
    b = write_xlsx(d / "b.xlsx", [member(i) for i in range(4)])
    os.utime(a, (1_743_840_000, 1_743_840_000))
    os.utime(b, (1_743_840_100, 1_743_840_100))
    hashed = []
    real = engine.sha256_file
    monkeypatch.setattr(engine, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    first = engine.pending_inbox_files()
    assert [f.path.name for f in first] == ["a.xlsx", "b.xlsx"] and sorted(hashed) == ["a.xlsx", "b.xlsx"]
    ingest(a)
    hashed.clear()
    assert [f.path.name for f in engine.pending_inbox_files()] == ["b.xlsx"] and hashed == []  # remembered
    # a file written again (new bytes, new mtime) is hashed again and is a new version
    write_xlsx(b, [member(i) for i in range(5)])
    again = engine.pending_inbox_files()
    assert hashed == ["b.xlsx"] and again[0].sha256 == real(b) != first[1].sha256
    # an unreadable cache is only a cache: everything is hashed again, same answer
    (root / "raw" / engine.INBOX_HASHES).write_bytes(b"not parquet")
    hashed.clear()
    assert [f.sha256 for f in engine.pending_inbox_files()] == [again[0].sha256] and sorted(hashed) == ["a.xlsx", "b.xlsx"]


def test_quarantine_compaction_keeps_every_refused_row(root, tmp_path):
    from pipelines.ingest import engine, quarantine

    bad = [member(i) for i in range(4)] + [member(9, **{"Số CMND/CCCD": "12345"})]  # one refused row
    r1 = ingest(write_xlsx(tmp_path / "a.xlsx", bad))
    r2 = ingest(write_xlsx(tmp_path / "b.xlsx", [member(i) for i in range(3)]), period="2025-04")
    assert (r1.rows_refused, r2.rows_refused) == (1, 0)
    before = quarantine.rows_for(r1.file_id)
    assert before.height == 1 and before["rule"][0] == "cccd_layout"
    n = len(quarantine.loose_files())
    with engine.ledger_lock():
        assert quarantine.compact() == {"folded": n, "merged": 0} and n >= 1
    assert quarantine.loose_files() == [] and len(quarantine.segment_files()) == 1
    assert quarantine.rows_for(r1.file_id).to_dicts() == before.to_dicts()  # read from the segment
    assert quarantine.rows_for(r2.file_id) is None  # no refused row: nothing kept
    (root / "reports" / f"{r1.file_id}.xlsx").unlink(missing_ok=True)
    assert engine.branch_workbook(r1.file_id) is not None  # made on request from the segment's rows
