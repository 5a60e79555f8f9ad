"""The brief's XLSX attachment: one sheet per table, formula-safe text, numbers kept as numbers.

Written with xlsxwriter with formula/URL/number guessing switched off, and every text cell passed through
the access engineer's `formula_safe` (a leading `=`, `+`, `-`, `@`, ... gets an apostrophe), so a unit
name such as `=HYPERLINK(...)` stays text in Excel. Only aggregates: no person-level column ever reaches it.
"""
from __future__ import annotations

import datetime as dt
import io
import math

import pandas as pd

try:
    from pipelines.access.export import formula_safe
except ImportError:  # pragma: no cover - the access module is part of the project
    def formula_safe(value):
        if isinstance(value, str) and value and value[0] in "=+-@\t\r|{＝＋－＠":
            return "'" + value
        return value

SHEET_MAX = 31


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(c for c in name if c not in "[]:*?/\\")[:SHEET_MAX] or "Sheet"
    out, i = base, 2
    while out.lower() in used:
        out = f"{base[:SHEET_MAX - 3]}_{i}"
        i += 1
    used.add(out.lower())
    return out


def to_xlsx(sheets: dict[str, pd.DataFrame], *, title: str = "", notes: list[str] = ()) -> bytes:
    """`sheets`: sheet title -> table (column headers already translated)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                   "strings_to_numbers": False})
    wb.set_properties({"title": title[:200], "author": "Đoàn viên số", "comments": "aggregates only"})
    head = wb.add_format({"bold": True, "bg_color": "#e8eef6", "border": 1, "text_wrap": True, "valign": "top"})
    intf = wb.add_format({"num_format": "#,##0"})
    fltf = wb.add_format({"num_format": "#,##0.0"})
    pctf = wb.add_format({"num_format": "0.0%"})
    datef = wb.add_format({"num_format": "dd/mm/yyyy"})
    used: set[str] = set()
    if title or notes:
        ws = wb.add_worksheet(_sheet_name("Thông tin", used))
        ws.set_column(0, 0, 100)
        for i, line in enumerate([title, *notes]):
            ws.write_string(i, 0, str(formula_safe(str(line))))
    for name, df in sheets.items():
        ws = wb.add_worksheet(_sheet_name(name, used))
        cols = [str(c) for c in df.columns]
        for j, c in enumerate(cols):
            ws.write_string(0, j, str(formula_safe(c)), head)
            ws.set_column(j, j, max(12, min(45, len(c) + 4)))
        for i, row in enumerate(df.itertuples(index=False), start=1):
            for j, v in enumerate(row):
                col = cols[j]
                if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
                    continue
                if isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                elif isinstance(v, (int,)) or (hasattr(v, "dtype") and "int" in str(getattr(v, "dtype", ""))):
                    ws.write_number(i, j, int(v), intf)
                elif isinstance(v, float):
                    ws.write_number(i, j, float(v), pctf if col.strip().endswith("%") else fltf)
                elif isinstance(v, (dt.date, dt.datetime, pd.Timestamp)):
                    d = v.date() if isinstance(v, (dt.datetime, pd.Timestamp)) else v
                    ws.write_datetime(i, j, dt.datetime(d.year, d.month, d.day), datef)
                else:
                    ws.write_string(i, j, str(formula_safe(str(v))))
        ws.freeze_panes(1, 0)
        if len(df):
            ws.autofilter(0, 0, len(df), max(len(cols) - 1, 0))
    wb.close()
    return buf.getvalue()
