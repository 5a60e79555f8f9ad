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
        assert ledger.compact() == {"folded": 3, "merged": 0, "set_aside": [], "restored": [], "notice": None}
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
        assert {k: v for k, v in ledger.compact(max_segments=1).items() if k in ("folded", "merged")} == {
            "folded": 1, "merged": 2}
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
        assert quarantine.compact() == {"folded": n, "merged": 0, "set_aside": [], "notice": None} and n == 1
        # n == 1: the version with no refused row wrote no quarantine file
    assert quarantine.loose_files() == [] and len(quarantine.segment_files()) == 1
    assert quarantine.rows_for(r1.file_id).to_dicts() == before.to_dicts()  # read from the segment
    assert quarantine.rows_for(r2.file_id) is None  # no refused row: nothing kept
    (root / "reports" / f"{r1.file_id}.xlsx").unlink(missing_ok=True)
    assert engine.branch_workbook(r1.file_id) is not None  # made on request from the segment's rows


def test_unreadable_loose_files_are_set_aside_and_the_ledger_rows_rebuilt(root, tmp_path):
    """A loose ledger or quarantine file that cannot be read (truncated by a disk fault, overwritten by hand) no
    longer fails every build: the compaction moves it out of the readers' way and says so in Vietnamese; a ledger
    row comes back from the version's JSON report, so nothing the warehouse counts is lost."""
    from pipelines.ingest import engine, ledger, quarantine
    from pipelines.warehouse import build

    bad = [member(i) for i in range(4)] + [member(9, **{"Số CMND/CCCD": "12345"})]
    r1 = ingest(write_xlsx(tmp_path / "a.xlsx", bad))
    r2 = ingest(write_xlsx(tmp_path / "b.xlsx", [member(i) for i in range(3)]), period="2025-04")
    before = _ledger_state()
    for path in (ledger.loose_path(r1.file_id), root / "quarantine" / f"{r1.file_id}.parquet"):
        path.write_bytes(path.read_bytes()[: 40])  # truncated
    # until the next build sets it aside, the readers (upload history, duplicate checks) skip it instead of failing
    assert [r["file_id"] for r in _ledger_state()] == [r2.file_id]
    (root / "reports" / f"{r1.file_id}.xlsx").unlink(missing_ok=True)
    assert quarantine.rows_for(r1.file_id) is None  # unreadable: no rows, no exception
    with engine.ledger_lock():
        out = ledger.compact()
        q = quarantine.compact()
    assert out["restored"] == [r1.file_id] and out["folded"] == 2
    assert [p.split("/")[-1] for p in out["set_aside"]] == [f"{r1.file_id}.parquet.unreadable"]
    assert "không đọc được" in out["notice"] and "khôi phục" in out["notice"]
    after = _ledger_state()
    assert [{k: v for k, v in r.items() if k != "ingested_at"} for r in after] == \
        [{k: v for k, v in r.items() if k != "ingested_at"} for r in before]  # every row, the same values
    assert ledger.row(r2.file_id)["status"] == r2.status
    assert q["set_aside"] and r1.file_id in q["notice"] and "Vùng cách ly" in q["notice"]
    assert quarantine.rows_for(r1.file_id) is None  # its refused rows are what is missing, as the notice says
    # no branch workbook that would tell the branch all its rows passed: none, until the original is re-ingested;
    # the reason says it is the refused rows, not the original, that are missing
    assert engine.branch_workbook(r1.file_id) is None
    assert engine.branch_workbook_or_reason(r1.file_id) == (None, "refused_rows_unreadable", 1)
    why = engine.branch_workbook_message("refused_rows_unreadable", n=1)
    assert "Tệp gốc vẫn còn" in why and "1 dòng bị từ chối" in why and "gửi lại tệp" in why
    assert engine.branch_workbook_or_reason("0" * 16) == (None, "unknown", None)
    assert (root / "quarantine" / "unreadable" / f"{r1.file_id}.parquet.unreadable").exists()  # kept, not deleted
    # the next build's plan carries the notices (the refresh summary and the publish metadata print them)
    ledger.loose_path(r2.file_id).write_bytes(b"PAR1 not a parquet file")
    (root / "reports" / f"{r2.file_id}.json").unlink()  # no report to rebuild it from
    plan = build.prepare_build("notice-test", full_refresh=True)
    try:
        assert len(plan.notices) == 1 and "1 dòng không khôi phục được" in plan.notices[0]
        assert r2.file_id in plan.notices[0] and "nạp lại tệp gốc" in plan.notices[0]  # says what to do
        assert build.BuildPlan.load("notice-test").notices == plan.notices
        from pipelines.warehouse.orchestrate import RefreshOutcome

        shown = RefreshOutcome(success=True, run_id="r", version="v", notices=plan.notices).summary()
        assert f"lưu ý / notice: {plan.notices[0]}" in shown
    finally:
        build.discard_build("notice-test")


def test_unreadable_segments_are_set_aside_and_the_ledger_rows_rebuilt(root, tmp_path):
    """A ledger or quarantine *segment* that cannot be read (a disk fault after compaction) no longer fails every
    build either: the next compaction sets it aside and rebuilds the ledger rows it held from the JSON reports
    left without a ledger row; the refused rows it held are named as missing until the originals are re-ingested."""
    from pipelines.ingest import engine, ledger, quarantine

    bad = [member(i) for i in range(4)] + [member(9, **{"Số CMND/CCCD": "12345"})]
    r1 = ingest(write_xlsx(tmp_path / "a.xlsx", bad))
    r2 = ingest(write_xlsx(tmp_path / "b.xlsx", [member(i) for i in range(3)]), period="2025-04")
    with engine.ledger_lock():
        ledger.compact()
        quarantine.compact()
    r3 = ingest(write_xlsx(tmp_path / "c.xlsx", [member(i) for i in range(2)]), period="2025-05")
    before = _ledger_state()
    assert len(before) == 3 and len(ledger.segment_files()) == 1 and len(quarantine.segment_files()) == 1
    seg, qseg = ledger.segment_files()[0], quarantine.segment_files()[0]
    for path in (seg, qseg):
        path.write_bytes(path.read_bytes()[:60])  # truncated
    (root / "reports" / f"{r1.file_id}.xlsx").unlink(missing_ok=True)
    assert quarantine.rows_for(r1.file_id) is None and engine.branch_workbook(r1.file_id) is None  # no exception
    with engine.ledger_lock():
        out = ledger.compact()
        q = quarantine.compact()
    assert sorted(out["restored"]) == sorted([r1.file_id, r2.file_id]) and out["folded"] == 1
    assert [p.split("/")[-1] for p in out["set_aside"]] == [f"{seg.name}.unreadable"]
    assert "tệp phân đoạn không đọc được" in out["notice"] and "2 dòng đã khôi phục" in out["notice"]
    after = _ledger_state()
    assert [{k: v for k, v in r.items() if k != "ingested_at"} for r in after] == \
        [{k: v for k, v in r.items() if k != "ingested_at"} for r in before]  # every row, the same values
    assert ledger.row(r1.file_id)["rows_refused"] == 1 and ledger.row(r3.file_id)["status"] == r3.status
    assert q["set_aside"] and qseg.name in q["notice"] and "nạp lại tệp gốc" in q["notice"]
    assert quarantine.rows_for(r1.file_id) is None  # what the notice says is missing
    assert (root / "raw" / "files" / "unreadable" / f"{seg.name}.unreadable").exists()  # kept for inspection
    with engine.ledger_lock():  # the next compaction finds nothing wrong
        assert ledger.compact()["notice"] is None and quarantine.compact()["notice"] is None
