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
    from pipelines.ingest import batch, engine
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")  # heard even when another test imported rules with GX on
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


def test_chunk_of_legacy_encodings_and_gender_layouts_equals_file_by_file(tmp_path, monkeypatch):
    """One chunk holding every per-file text decision: a VNI roster (refused), a roster with a single VNI-looking
    cell in 30 rows (kept: below the file's share) and one in 10 rows (refused: at it), a roster typed in TCVN3
    throughout (header too: every cell converted), TCVN3 names among Unicode ones (only those cells converted),
    decomposed (NFD) names, birth dates under Nam/Nữ and x marks under Nam/Nữ with blank-looking cells (a cell
    of spaces is empty once cleaned, so it must not count as a mark). The chunk prepares the text of all of them
    at once; each file must come out exactly as on its own."""
    import datetime as dt
    import unicodedata

    import xlsxwriter

    from pipelines.ingest.textnorm import unicode_to_tcvn3

    src = tmp_path / "src"
    (src / "registry").mkdir(parents=True)
    pl.DataFrame({"unit_code": ["Q0101", "CS0000001"], "level": ["upper_level", "cdcs"],
                  "parent_code": ["T01", "Q0101"], "valid_from": [dt.date(2020, 1, 1)] * 2, "valid_to": [None] * 2},
                 schema_overrides={"valid_to": pl.Date}).write_parquet(src / "registry" / "units.parquet")
    pl.DataFrame({"branch_code": ["Q0101"], "valid_from": [dt.date(2020, 1, 1)], "valid_to": [None]},
                 schema_overrides={"valid_to": pl.Date}).write_parquet(src / "registry" / "branches.parquet")
    hdr = ["STT", "Mã CĐCS", "Họ và tên", "Ngày sinh", "Giới tính", "Dân tộc", "Số CCCD", "Ngày vào CĐ"]

    def person(i, name="Nguyễn Thị Hương", ethnic="Kinh"):
        male = i % 2 == 0
        return [i + 1, "CS0000001", f"{name} {i}", f"05/03/{1980 + i % 20}", "Nam" if male else "Nữ", ethnic,
                f"079{0 if male else 1}{(1980 + i % 20) % 100:02d}{i:06d}", "01/06/2015"]

    def sheet(name, header_rows, rows):
        p = src / name
        wb = xlsxwriter.Workbook(str(p), {"strings_to_numbers": False})
        ws = wb.add_worksheet("DS")
        r = 0
        for h in header_rows:
            ws.write_row(r, 0, h)
            r += 1
        for row in rows:
            for j, v in enumerate(row):
                if isinstance(v, (int, float)):
                    ws.write_number(r, j, v)
                elif v is not None:
                    ws.write_string(r, j, v)
            r += 1
        wb.close()
        return p

    tc = unicode_to_tcvn3
    files = [
        sheet("plain.xlsx", [hdr], [person(i) for i in range(6)]),
        sheet("vni.xlsx", [hdr], [person(i, name="Nguyeãn Thò Höông") for i in range(4)]),
        sheet("vni_one_in_30.xlsx", [hdr], [person(i, name="Nguyeãn" if i == 3 else "Lê Văn An") for i in range(30)]),
        sheet("vni_one_in_10.xlsx", [hdr], [person(i, name="Nguyeãn" if i == 3 else "Le Van An") for i in range(10)]),
        sheet("tcvn3_whole.xlsx", [[tc(h) for h in hdr]],
              [[tc(v) if isinstance(v, str) else v for v in person(i, ethnic="Mường")] for i in range(5)]),
        sheet("tcvn3_some.xlsx", [hdr], [person(i, name=tc("Trần Thị Hằng") if i < 3 else "Đỗ Văn Bình") for i in range(6)]),
        sheet("nfd.xlsx", [hdr], [person(i, name=unicodedata.normalize("NFD", "Phạm Thị Thủy")) for i in range(4)]),
        sheet("birth_by_gender.xlsx",
              [["STT", "Mã CĐCS", "Họ tên", "Ngày sinh", None, "Số CCCD", "Ngày vào công đoàn"],
               [None, None, None, "Nam", "Nữ"]],
              [[1, "CS0000001", "Trần Văn A", "02/03/1990", "   ", "079090000001", "01/01/2015"],
               [2, "CS0000001", "Lê Thị B", "\u00a0", "1991", "079191000002", "01/2016"],
               [3, "CS0000001", "Vũ Văn C", "04/04/1992", "05/05/1993", "079092000003", "01/2016"]]),
        sheet("x_marks.xlsx",
              [["STT", "Mã CĐCS", "Họ tên", "Ngày sinh", "Giới tính", None, "Số CCCD", "Ngày vào CĐ"],
               [None, None, None, None, "Nam", "Nữ"]],
              [[1, "CS0000001", "Trần Văn D", "02/03/1990", "x", "  ", "079090000004", "01/2016"],
               [2, "CS0000001", "Lê Thị E", "03/03/1991", " ", "X", "079191000005", "01/2016"],
               [3, "CS0000001", "Vũ Văn G", "04/03/1992", "x", "x", "079092000006", "01/2016"]]),
    ]
    when = dt.datetime(2025, 4, 5, 10, 0)
    items = [(p, "Q0101", "2025-03", "roster", when + dt.timedelta(minutes=k)) for k, p in enumerate(files)]

    calls = []
    from pipelines.ingest import engine
    real = engine.ingest_file
    _, one = _ingest(src, tmp_path / "one", monkeypatch, chunk=1, items=items)
    monkeypatch.setattr(engine, "ingest_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    _, many = _ingest(src, tmp_path / "many", monkeypatch, chunk=16, items=items)
    assert not calls, f"{len(calls)} file(s) fell back to ingest_file"
    got = {Path(r.original_name).name: (r.status, r.reason_code, r.encoding) for r in many}
    assert got == {Path(r.original_name).name: (r.status, r.reason_code, r.encoding) for r in one}
    assert got["vni.xlsx"][:2] == got["vni_one_in_10.xlsx"][:2] == ("refused", "legacy_encoding")
    assert all(got[n][0] == "accepted" for n in got if n not in ("vni.xlsx", "vni_one_in_10.xlsx")), \
        [(Path(r.original_name).name, r.status, r.message_vi) for r in many if r.status != "accepted"]
    assert "TCVN3" in got["tcvn3_whole.xlsx"][2] and "TCVN3" in got["tcvn3_some.xlsx"][2]
    assert "TCVN3" not in (got["plain.xlsx"][2] or "")
    _same_or_raise(_frames(tmp_path / "one"), _frames(tmp_path / "many"))
    assert _reports(tmp_path / "one") == _reports(tmp_path / "many")
    raw = {Path(r.original_name).name: pl.read_parquet(r.raw_path).sort("source_row") for r in many
           if r.status == "accepted"}
    # the third row of each has both marks ("Nam và Nữ"): refused, in both runs alike
    assert raw["birth_by_gender.xlsx"]["gender"].to_list() == ["M", "F"]
    assert raw["birth_by_gender.xlsx"]["birth_date"].to_list()[:2] == [dt.date(1990, 3, 2), dt.date(1991, 1, 1)]
    assert raw["x_marks.xlsx"]["gender"].to_list() == ["M", "F"]
    assert raw["tcvn3_whole.xlsx"]["full_name"][0] == "Nguyễn Thị Hương 0"
    assert raw["tcvn3_some.xlsx"]["full_name"].to_list()[:4] == ["Trần Thị Hằng 0", "Trần Thị Hằng 1",
                                                                  "Trần Thị Hằng 2", "Đỗ Văn Bình 3"]
    assert raw["nfd.xlsx"]["full_name"][0] == "Phạm Thị Thủy 0"
    assert all("nfd_normalised" in f for f in raw["nfd.xlsx"]["flags"].to_list())
