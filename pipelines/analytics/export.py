"""Exports: every table to XLSX and CSV, formula-safe; the statutory report to XLSX in the layout union
offices use (national heading, title rows, merged headers, signature block).

Formula safety (OWASP "CSV injection"): a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return (also after leading spaces, and `{=` array formulas) is prefixed with `'`, so no
spreadsheet evaluates it. Numbers stay numbers. XLSX text cells are written with `write_string`, never as
formulas.
"""
from __future__ import annotations

import datetime as dt
import io
import math

import pandas as pd

from pipelines.analytics.i18n import fmt_date, t

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "{", "|", "%")


def safe_text(value) -> object:
    """Neutralise a text that a spreadsheet would treat as a formula; other values unchanged."""
    if not isinstance(value, str) or not value:
        return value
    stripped = value.lstrip(" \u00a0")
    if value[0] in ("\t", "\r", "\n") or (stripped and stripped[0] in _TRIGGERS[:4]) or stripped.startswith("{="):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [safe_text(str(c)) for c in out.columns]
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(safe_text)
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 with BOM (Excel opens Vietnamese text correctly), comma-separated, formula-safe."""
    return safe_frame(df).to_csv(index=False).encode("utf-8-sig")


def _cell(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    return v


def to_xlsx_bytes(df: pd.DataFrame, sheet: str = "Data", title: str | None = None,
                  note: str | None = None) -> bytes:
    """One sheet: optional title and note rows, a bold header, typed cells (numbers, dates), text
    written with write_string (never interpreted as a formula)."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(_sheet_name(sheet))
    bold = wb.add_format({"bold": True, "bg_color": "#DCE6F1", "border": 1, "text_wrap": True, "valign": "top"})
    title_f = wb.add_format({"bold": True, "font_size": 13})
    date_f = wb.add_format({"num_format": "dd/mm/yyyy"})
    int_f = wb.add_format({"num_format": "#,##0"})
    num_f = wb.add_format({"num_format": "#,##0.00"})
    r = 0
    if title:
        ws.write_string(r, 0, safe_text(title), title_f)
        r += 1
    if note:
        ws.write_string(r, 0, safe_text(note))
        r += 1
    if title or note:
        r += 1
    for c, name in enumerate(df.columns):
        ws.write_string(r, c, safe_text(str(name)), bold)
        ws.set_column(c, c, max(10, min(45, len(str(name)) + 4)))
    for i, row in enumerate(df.itertuples(index=False), start=r + 1):
        for c, v in enumerate(row):
            v = _cell(v)
            if v is None:
                ws.write_blank(i, c, None)
            elif isinstance(v, bool):
                ws.write_boolean(i, c, v)
            elif isinstance(v, int):
                ws.write_number(i, c, v, int_f)
            elif isinstance(v, float):
                ws.write_number(i, c, v, num_f)
            elif isinstance(v, (dt.datetime, pd.Timestamp)):
                ws.write_datetime(i, c, pd.Timestamp(v).to_pydatetime().replace(tzinfo=None), date_f)
            elif isinstance(v, dt.date):
                ws.write_datetime(i, c, dt.datetime(v.year, v.month, v.day), date_f)
            else:
                ws.write_string(i, c, safe_text(str(v)))
    ws.freeze_panes(r + 1, 0)
    wb.close()
    return buf.getvalue()


def _sheet_name(name: str) -> str:
    bad = '[]:*?/\\'
    clean = "".join("_" if ch in bad else ch for ch in name).strip("'") or "Data"
    return clean[:31]


def statutory_xlsx(report: dict, indicators: list, report_date: dt.date, lang: str = "vi",
                   version: str | None = None) -> bytes:
    """The semi-annual statutory report of one unit (Mẫu 2-HĐCĐ style): the issuing body and the national
    heading side by side, the title and cut-off date, a table with merged two-row headers
    (STT | Chỉ tiêu | Đơn vị tính | Số liệu: Tổng số, Trong đó nữ), and the signature block."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(_sheet_name(t("page.bao_cao_dinh_ky", lang)))
    ws.set_paper(9)  # A4
    ws.set_portrait()
    ws.fit_to_pages(1, 0)
    ws.set_column(0, 0, 6)
    ws.set_column(1, 1, 50)
    ws.set_column(2, 2, 14)
    ws.set_column(3, 4, 18)
    base = {"font_name": "Times New Roman", "font_size": 12}
    f = lambda **kw: wb.add_format({**base, **kw})  # noqa: E731
    center_b = f(bold=True, align="center", valign="vcenter", text_wrap=True)
    center = f(align="center", valign="vcenter", text_wrap=True)
    center_i = f(italic=True, align="center", valign="vcenter")
    title = f(bold=True, align="center", valign="vcenter", font_size=14, text_wrap=True)
    head = f(bold=True, align="center", valign="vcenter", border=1, text_wrap=True, bg_color="#F2F2F2")
    cell = f(border=1, valign="vcenter", text_wrap=True)
    cell_c = f(border=1, align="center", valign="vcenter")
    num = f(border=1, num_format="#,##0", valign="vcenter")
    right_i = f(italic=True, align="right")

    unit_name = str(report.get("display_name") or report.get("unit_name") or report.get("unit_code"))
    ws.merge_range(0, 0, 0, 1, t("bao_cao.org_upper", lang), center)
    ws.merge_range(1, 0, 1, 1, safe_text(unit_name.upper()), center_b)
    ws.merge_range(0, 2, 0, 4, t("bao_cao.nation", lang), center_b)
    ws.merge_range(1, 2, 1, 4, t("bao_cao.motto", lang), center_b)
    ws.write_string(2, 4, t("bao_cao.form", lang), right_i)
    ws.merge_range(3, 2, 3, 4, t("bao_cao.place_date", lang, year=report_date.year), center_i)
    ws.set_row(5, 36)
    ws.merge_range(5, 0, 5, 4, t("bao_cao.title", lang), title)
    ws.merge_range(6, 0, 6, 4, t("bao_cao.subtitle", lang, date=fmt_date(report_date, lang)), center_i)
    # two-row merged header
    r0 = 8
    ws.merge_range(r0, 0, r0 + 1, 0, t("col.stt", lang), head)
    ws.merge_range(r0, 1, r0 + 1, 1, t("bao_cao.col_indicator", lang), head)
    ws.merge_range(r0, 2, r0 + 1, 2, t("bao_cao.col_unit", lang), head)
    ws.merge_range(r0, 3, r0, 4, t("bao_cao.col_figures", lang), head)
    ws.write_string(r0 + 1, 3, t("bao_cao.col_total", lang), head)
    ws.write_string(r0 + 1, 4, t("bao_cao.col_female", lang), head)
    for c, letter in enumerate(["A", "B", "C", "1", "2"]):
        ws.write_string(r0 + 2, c, letter, center_i)
    r = r0 + 3
    for i, (col, label_key, uom_key, female_col) in enumerate(indicators, start=1):
        ws.write_number(r, 0, i, cell_c)
        ws.write_string(r, 1, t(label_key, lang), cell)
        ws.write_string(r, 2, t(uom_key, lang), cell_c)
        v = _cell(report.get(col))
        ws.write_number(r, 3, float(v), num) if isinstance(v, (int, float)) else ws.write_blank(r, 3, None, num)
        fv = _cell(report.get(female_col)) if female_col else None
        ws.write_number(r, 4, float(fv), num) if isinstance(fv, (int, float)) else ws.write_blank(r, 4, None, num)
        r += 1
    # signature block
    r += 2
    ws.write_string(r, 1, t("bao_cao.preparer", lang), center_b)
    ws.merge_range(r, 2, r, 4, t("bao_cao.head", lang), center_b)
    ws.write_string(r + 1, 1, t("bao_cao.sign", lang), center_i)
    ws.merge_range(r + 1, 2, r + 1, 4, t("bao_cao.sign_stamp", lang), center_i)
    if version:
        ws.write_string(r + 7, 0, t("export.generated", lang, date=fmt_date(dt.date.today(), lang),
                                    version=version), f(italic=True, font_size=9))
    wb.close()
    return buf.getvalue()
