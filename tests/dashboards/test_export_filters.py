"""Exports are formula-safe (CSV and XLSX), the statutory XLSX has the office layout, small cells are
suppressed (with a complementary cell), and URL filters are validated, never trusted."""
from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pandas as pd
import pytest

from pipelines.analytics import export as ex
from pipelines.analytics import queries as q
from pipelines.analytics.filters import Filters, unit_column, unit_level

DANGEROUS = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", "  =HYPERLINK(\"http://x\")", "{=A1}",
             "=cmd|' /C calc'!A0"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_safe_text_neutralises(text):
    out = ex.safe_text(text)
    assert out.startswith("'") and out[1:] == text


def test_safe_text_keeps_ordinary_values():
    for v in ("Hà Nội", "CS0000001", "12,3 %", 42, 3.5, None, ""):
        assert ex.safe_text(v) == v


def _frame():
    return pd.DataFrame({"Tên đơn vị": DANGEROUS + ["Công đoàn"], "Số": list(range(len(DANGEROUS) + 1)),
                         "=Cột": ["a"] * (len(DANGEROUS) + 1)})


def test_csv_is_formula_safe_utf8_bom():
    raw = ex.to_csv_bytes(_frame())
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    assert back.columns[2] == "'=Cột"
    for cell in back.iloc[:, 0]:
        assert not str(cell).lstrip(" ").startswith(("=", "+", "-", "@", "{=")), cell
    assert "Công đoàn" in set(back.iloc[:, 0])


def test_xlsx_is_formula_safe_and_typed():
    raw = ex.to_xlsx_bytes(_frame(), sheet="Bảng/1", title="=Tiêu đề")
    wb = openpyxl.load_workbook(io.BytesIO(raw))
    ws = wb.active
    assert ws.title == "Bảng_1"
    assert ws["A1"].value == "'=Tiêu đề"
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
            if isinstance(cell.value, str):
                assert not cell.value.lstrip(" ").startswith(("=", "+", "@", "{=", "\t", "\r")), cell.value
    header = [c.value for c in ws[3]]
    assert header == ["Tên đơn vị", "Số", "'=Cột"]
    assert ws["B4"].value == 0 and ws["B4"].data_type == "n"


def test_statutory_xlsx_layout():
    report = {"unit_code": "T01", "display_name": "=LĐLĐ <b>Hà Nội</b>", "members": 1234, "women": 600,
              "workers": 2000, "workers_female": 900, "cdcs_count": 10, "dues_collected": 5_000_000}
    raw = ex.statutory_xlsx(report, q.STATUTORY_INDICATORS, dt.date(2025, 5, 31), "vi", version="v1")
    ws = openpyxl.load_workbook(io.BytesIO(raw)).active
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:B1", "C1:E1", "A6:E6", "A9:A10", "B9:B10", "C9:C10", "D9:E9"} <= merged
    assert ws["C1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert ws["A2"].value.startswith("'=")  # a unit name is text, never a formula
    assert ws["A6"].value == "BÁO CÁO TỔNG HỢP SỐ LIỆU VỀ HOẠT ĐỘNG CÔNG ĐOÀN"
    assert "31/05/2025" in ws["A7"].value
    assert ws["D9"].value == "Số liệu" and ws["D10"].value == "Tổng số" and ws["E10"].value == "Trong đó nữ"
    assert ws["B12"].value == "Tổng số đoàn viên" and ws["D12"].value == 1234 and ws["E12"].value == 600
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert "NGƯỜI LẬP BIỂU" in texts and "TM. BAN THƯỜNG VỤ" in texts


def test_suppression_hides_small_cells_and_a_complement():
    df = pd.DataFrame({"code": ["a", "b", "c", "d"], "members": [120, 45, 7, 30]})
    out = q.suppress(df, "members", 10)
    assert out["suppressed"].tolist() == [False, False, True, True]  # 7 and the next smallest (30)
    assert out["members"].isna().tolist() == [False, False, True, True]
    df2 = pd.DataFrame({"code": ["a", "b", "c"], "members": [120, 3, 5]})
    assert q.suppress(df2, "members", 10)["suppressed"].tolist() == [False, True, True]
    df3 = pd.DataFrame({"code": ["a", "b"], "members": [120, 0]})
    assert q.suppress(df3, "members", 10)["suppressed"].tolist() == [False, False]


def test_filters_from_untrusted_params():
    f = Filters.from_params({"tu": "2025-01", "den": "2025-06", "dv": "X01001", "tinh": "01", "nganh": "C",
                             "loai": "fdi", "gt": "F", "tuoi": "30_39"})
    assert f == Filters(dt.date(2025, 1, 1), dt.date(2025, 6, 1), "X01001", "01", "C", "fdi", "F", "30_39")
    assert Filters.from_params(f.to_params()) == f
    bad = Filters.from_params({"tu": "2025-13", "den": "'; DROP TABLE x", "dv": "T01' OR 1=1", "tinh": "99",
                               "nganh": "<script>", "loai": "x", "gt": "X", "tuoi": "1=1"})
    assert bad == Filters()
    assert Filters.from_params({"dv": ["T01", "T08"]}).unit == "T08"
    r = Filters(period_to=dt.date(2030, 1, 1)).resolved(dt.date(2025, 12, 1))
    assert r.period_to == dt.date(2025, 12, 1) and r.period_from == dt.date(2025, 1, 1)


def test_unit_levels():
    assert unit_level(None) == "confederation" and unit_column(None) is None
    assert unit_column("T01") == "top_unit_code" and unit_column("N02") == "top_unit_code"
    assert unit_column("Q0101") == "upper_unit_code" and unit_column("X01001") == "upper_unit_code"
    assert unit_column("C0201") == "upper_unit_code" and unit_column("CS0000001") == "cdcs_code"
