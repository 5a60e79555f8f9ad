"""inbox_sensor: one run request per new file version, none when re-evaluated (cursor), stable run keys
(sha256) so a file version never runs twice (PL-10), on a real inbox with files."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import dagster as dg

from pipelines.defs.ingest import inbox_sensor


def put(inbox: Path, rel: str, content: bytes) -> Path:
    p = inbox / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


def evaluate(cursor):
    ctx = dg.build_sensor_context(cursor=cursor)
    res = inbox_sensor(ctx)
    if isinstance(res, dg.SkipReason):
        return [], cursor
    return list(res.run_requests or []), res.cursor


def test_one_run_per_file_version_and_cursor(data_root):
    inbox = data_root / "inbox"
    a = put(inbox, "Q0101/2025-03/roster/danh sach T3.xlsx", b"roster march")
    put(inbox, "Q0101/2025-03/dues/doan phi.csv", b"dues march")
    put(inbox, "Q0202/2025-04/roster/ds.csv", b"roster april, another branch")
    put(inbox, "Q0202/not-a-month/roster/x.csv", b"ignored by the sensor (engine reports it)")

    reqs, cursor = evaluate(None)
    assert len(reqs) == 3
    assert sorted(r.partition_key for r in reqs) == ["2025-03", "2025-03", "2025-04"]
    keys = {r.run_key for r in reqs}
    assert len(keys) == 3
    sha = hashlib.sha256(b"roster march").hexdigest()
    assert f"Q0101/2025-03/roster/{sha}" in keys
    by_key = {r.run_key: r for r in reqs}
    cfg = by_key[f"Q0101/2025-03/roster/{sha}"].run_config
    files = cfg["ops"]["raw_files"]["config"]["files"] if isinstance(cfg, dict) else \
        cfg.ops["raw_files"].files
    assert files == ["Q0101/2025-03/roster/danh sach T3.xlsx"]

    # re-evaluation with the cursor: nothing new
    again, cursor2 = evaluate(cursor)
    assert again == [] and cursor2 == cursor

    # a new file, and a corrected version of an existing one: one request each
    time.sleep(0.02)
    put(inbox, "Q0101/2025-04/roster/ds T4.csv", b"roster april")
    a.write_bytes(b"roster march, corrected")
    reqs3, cursor3 = evaluate(cursor)
    assert len(reqs3) == 2
    assert {r.run_key for r in reqs3}.isdisjoint(keys)
    assert evaluate(cursor3)[0] == []

    # touching a file without changing it re-lists it, but with the same run key: Dagster launches
    # at most one run per run key, so the file version is still processed once
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    reqs4, _ = evaluate(cursor3)
    assert [r.run_key for r in reqs4] == [f"Q0101/2025-03/roster/{hashlib.sha256(b'roster march, corrected').hexdigest()}"]
    assert reqs4[0].run_key in {r.run_key for r in reqs3}


def test_lost_cursor_gives_the_same_run_keys(data_root):
    inbox = data_root / "inbox"
    for i in range(5):
        put(inbox, f"X01{i:03d}/2025-07/roster/f{i}.csv", f"file {i}".encode())
    first, _ = evaluate(None)
    second, _ = evaluate(None)
    assert len(first) == 5
    assert [r.run_key for r in first] == [r.run_key for r in second]


def test_empty_inbox_skips(data_root):
    ctx = dg.build_sensor_context(cursor=None)
    assert isinstance(inbox_sensor(ctx), dg.SkipReason)
