"""Exports that are safe to open in Excel: formula injection neutralised, numbers left as numbers."""
from __future__ import annotations

import csv
import io

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "{", "＝", "＋", "－", "＠")


def formula_safe(value):
    """Prefix a text cell that a spreadsheet would read as a formula with an apostrophe."""
    if isinstance(value, str) and value and (value.startswith(_FORMULA_START) or value.lstrip().startswith(("=", "+", "@"))):
        return "'" + value
    return value


def to_csv_bytes(columns: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([formula_safe(c) for c in columns])
    for r in rows:
        w.writerow([formula_safe(v) for v in r])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx_bytes(columns: list[str], rows: list[list], sheet: str = "data") -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(sheet[:31])
    for j, c in enumerate(columns):
        ws.write_string(0, j, str(formula_safe(c)))
    for i, r in enumerate(rows, start=1):
        for j, v in enumerate(r):
            if v is None:
                continue
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, (int, float)) and abs(v) < 1e15:
                ws.write_number(i, j, v)
            else:
                ws.write_string(i, j, str(formula_safe(v if isinstance(v, str) else str(v))))
    wb.close()
    return buf.getvalue()
