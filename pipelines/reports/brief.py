"""The brief: one MIME message per recipient, for one organisation unit and one period.

Layout (what mail clients, including phones, render reliably): a single centred 600 px table, inline CSS
only, no scripts, no web fonts, no external images. Structure:

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                      the same content as text
    │   └── multipart/related
    │       ├── text/html                   <img src="cid:...">
    │       └── image/png × 3               members trend, joins vs leaves, dues by unit
    └── application/vnd.openxmlformats-officedocument.spreadsheetml.sheet   the tables

Only aggregates of the recipient's scope are shown (see `figures.py`); every dynamic text is HTML-escaped;
header values never contain control characters (EmailMessage refuses CR/LF in headers as well).
"""
from __future__ import annotations

import datetime as dt
import html
import os
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, format_datetime

import pandas as pd

from pipelines.analytics.labels import rule_label
from pipelines.analytics.i18n import fmt_int, fmt_money, fmt_month, fmt_pct, fmt_signed_int
from pipelines.reports import charts, figures as F
from pipelines.reports.periods import CADENCE_LABELS, TIMEZONE, Period, week_monday
from pipelines.reports.workbook import to_xlsx

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")

L = {
    "vi": {
        "brand": "Đoàn viên số", "report": "Báo cáo", "data_as_of": "Số liệu tháng {m}; kho dữ liệu công bố {d}",
        "headline": "Số liệu chính", "vs_prev": "so với tháng trước", "vs_year": "cùng kỳ năm trước",
        "members": "Đoàn viên", "joins": "Kết nạp mới", "leaves": "Ra khỏi tổ chức", "net_growth": "Tăng ròng",
        "dues_rate": "Đoàn phí đã thu / phải thu", "services": "Lượt hỗ trợ, dịch vụ",
        "attention": "Cần chú ý", "nothing": "Không có vấn đề cần chú ý trong kỳ này.",
        "missing": "{n} công đoàn cấp trên chưa nộp danh sách đoàn viên tháng {m}: {names}",
        "drops": "{n} đơn vị giảm mạnh số đoàn viên (trên 5 % trong tháng): {names}",
        "arrears": "{n} đơn vị thu đoàn phí dưới 80 % số phải thu: {names}",
        "zero": "{n} công đoàn cơ sở chưa nộp đoàn phí trong tháng: {names}",
        "refused": "{n} dòng dữ liệu bị từ chối trong các tệp tháng {m} (lý do chính: {rules})",
        "top": "Đơn vị dẫn đầu về tăng trưởng", "bottom": "Đơn vị thấp nhất về tăng trưởng",
        "unit": "Đơn vị", "change": "Thay đổi", "change_pct": "Thay đổi %", "members_prev": "Đoàn viên tháng trước",
        "expected": "Phải thu", "collected": "Đã thu", "rate": "Tỷ lệ thu %",
        "chart_members": "Số đoàn viên cuối tháng", "chart_flows": "Kết nạp và ra khỏi tổ chức theo tháng",
        "chart_dues": "Đoàn phí tháng {m}: đã thu và phải thu",
        "statutory": "Báo cáo định kỳ 6 tháng (đến ngày {d})",
        "attachment": "Bảng số liệu chi tiết trong tệp Excel đính kèm.",
        "footer": ("Thư tự động của hệ thống Đoàn viên số, chỉ gồm số liệu tổng hợp trong phạm vi {unit}; "
                   "không chứa dữ liệu cá nhân. Để ngừng nhận, huỷ đăng ký trong trang «Báo cáo qua email» "
                   "hoặc liên hệ quản trị viên."),
        "merger": "Sáp nhập 1/7/2025",
        "sheet_headline": "Số liệu chính", "sheet_trend": "Diễn biến", "sheet_units": "Đơn vị",
        "sheet_dues": "Đoàn phí", "sheet_branches": "Nộp báo cáo", "sheet_refused": "Dòng bị từ chối",
        "sheet_statutory": "Báo cáo 6 tháng",
        "metric": "Chỉ tiêu", "value": "Giá trị", "prev": "Tháng trước", "year_ago": "Cùng kỳ năm trước",
        "month": "Tháng", "branch": "Công đoàn cấp trên", "submitted": "Đã nộp", "rule": "Lý do", "rows": "Số dòng",
        "yes": "có", "no": "chưa", "net": "Tăng ròng",
    },
    "en": {
        "brand": "Đoàn viên số", "report": "Report", "data_as_of": "Figures for {m}; warehouse published {d}",
        "headline": "Headline figures", "vs_prev": "vs previous month", "vs_year": "same month last year",
        "members": "Members", "joins": "Joins", "leaves": "Leaves", "net_growth": "Net growth",
        "dues_rate": "Dues collected / expected", "services": "Services delivered",
        "attention": "Needs attention", "nothing": "Nothing needs attention this period.",
        "missing": "{n} upper-level unions have not sent their {m} roster: {names}",
        "drops": "{n} units lost more than 5 % of their members this month: {names}",
        "arrears": "{n} units collected less than 80 % of expected dues: {names}",
        "zero": "{n} grassroots unions paid no dues this month: {names}",
        "refused": "{n} rows were refused in the {m} files (main reasons: {rules})",
        "top": "Top units by growth", "bottom": "Bottom units by growth",
        "unit": "Unit", "change": "Change", "change_pct": "Change %", "members_prev": "Members previous month",
        "expected": "Expected", "collected": "Collected", "rate": "Collection rate %",
        "chart_members": "Members at month end", "chart_flows": "Joins and leaves per month",
        "chart_dues": "Dues {m}: collected vs expected",
        "statutory": "Semi-annual statutory report (as of {d})",
        "attachment": "The detailed tables are in the attached Excel file.",
        "footer": ("Automatic message from Đoàn viên số with aggregate figures for {unit} only; no personal data. "
                   "To stop receiving it, cancel the subscription on the 'Report emails' page or ask an administrator."),
        "merger": "Merger 1/7/2025",
        "sheet_headline": "Headline", "sheet_trend": "Trend", "sheet_units": "Units",
        "sheet_dues": "Dues", "sheet_branches": "Submissions", "sheet_refused": "Refused rows",
        "sheet_statutory": "Statutory",
        "metric": "Metric", "value": "Value", "prev": "Previous month", "year_ago": "Same month last year",
        "month": "Month", "branch": "Upper-level union", "submitted": "Submitted", "rule": "Reason", "rows": "Rows",
        "yes": "yes", "no": "no", "net": "Net growth",
    },
}

MERGER = dt.date(2025, 7, 1)


def clean(text) -> str:
    """NFC, no control characters (for headers, file names and HTML alike)."""
    s = unicodedata.normalize("NFC", str(text if text is not None else ""))
    return "".join(c if c >= " " and c != "\x7f" else " " for c in s).strip()


def esc(text) -> str:
    return html.escape(clean(text), quote=True)


def _fmt(metric: F.Metric, value, lang: str) -> str:
    if metric.kind == "money":
        return fmt_money(value, lang)
    if metric.kind == "ratio":
        return fmt_pct(value, 1, lang)
    return fmt_int(value, lang)


def _fmt_change(metric: F.Metric, lang: str) -> str:
    d = metric.change
    if d is None:
        return "–"
    if metric.kind == "ratio":
        pts = fmt_num_signed(d * 100, lang)
        return f"{pts} {'điểm %' if lang == 'vi' else 'pts'}"
    if metric.kind == "money":
        return ("+" if d > 0 else "") + fmt_money(d, lang)
    return fmt_signed_int(d, lang)


def fmt_num_signed(x: float, lang: str) -> str:
    from pipelines.analytics.i18n import fmt_num
    s = fmt_num(x, 1, lang)
    return "+" + s if x > 0 else s


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    images: list[tuple[str, bytes]]   # (cid without brackets, png)
    xlsx: bytes
    xlsx_name: str


def _names(df: pd.DataFrame, col: str, n: int = 5) -> str:
    names = [clean(x) for x in df[col].head(n).tolist()]
    more = len(df) - len(names)
    return ", ".join(names) + (f" (+{more})" if more > 0 else "")


def attention_items(fig: F.Figures, lang: str) -> list[str]:
    t = L[lang]
    m = fmt_month(fig.month, lang)
    items = []
    miss = fig.missing_branches
    if len(miss):
        items.append(t["missing"].format(n=len(miss), m=m, names=_names(miss, "branch_name")))
    drops = fig.sharp_drops
    if len(drops):
        items.append(t["drops"].format(n=len(drops), names=_names(drops, "unit_name")))
    arr = fig.arrears
    if len(arr):
        items.append(t["arrears"].format(n=len(arr), names=_names(arr, "unit_name")))
    zero = fig.dues_zero
    if len(zero):
        items.append(t["zero"].format(n=len(zero), names=_names(zero, "unit_name")))
    if len(fig.refused):
        rules = fig.refused.groupby("rule")["rows"].sum().sort_values(ascending=False).head(3)
        items.append(t["refused"].format(n=fmt_int(int(fig.refused["rows"].sum()), lang), m=m,
                                         rules=", ".join(clean(rule_label(r, lang)) for r in rules.index)))
    return items


HEADLINE_KEYS = ("members", "joins", "leaves", "net_growth", "dues_rate", "services")


def render(fig: F.Figures, per: Period, lang: str, *, cid_domain: str = "doanvien.local") -> Rendered:
    t = L[lang]
    unit = clean(fig.unit_name) or fig.unit_code
    subject = clean(f"[{t['brand']}] {per.title(lang)} – {unit}")
    month_lbl = fmt_month(fig.month, lang)
    published = ""
    if fig.published_at:
        try:
            from zoneinfo import ZoneInfo
            published = (dt.datetime.fromisoformat(fig.published_at).astimezone(ZoneInfo(TIMEZONE))
                         .strftime("%d/%m/%Y %H:%M"))
        except ValueError:
            published = clean(fig.published_at)[:16]
    as_of = t["data_as_of"].format(m=month_lbl, d=published or "–")

    # ---- charts
    tr = fig.series
    months = [fmt_month(p, lang) for p in tr["period"]]
    marks = [(i, t["merger"]) for i, p in enumerate(tr["period"]) if p == MERGER]
    png_members = charts.members_trend(months, [float(v or 0) for v in tr["members"]], t["chart_members"], lang, marks)
    png_flows = charts.joins_leaves(months, [float(v or 0) for v in tr["joins"].fillna(0)],
                                    [float(v or 0) for v in tr["leaves"].fillna(0)], t["chart_flows"], lang)
    dues = fig.dues_by_child.head(8)
    png_dues = charts.dues_by_unit(dues["unit_name"].tolist(), [float(v) for v in dues["expected"]],
                                   [float(v) for v in dues["collected"]], t["chart_dues"].format(m=month_lbl), lang)
    stamp = f"{fig.unit_code}.{per.key}.{lang}".lower()
    images = [(f"members.{stamp}@{cid_domain}", png_members), (f"flows.{stamp}@{cid_domain}", png_flows),
              (f"dues.{stamp}@{cid_domain}", png_dues)]
    alts = [t["chart_members"], t["chart_flows"], t["chart_dues"].format(m=month_lbl)]

    items = attention_items(fig, lang)
    html_body = _html(fig, per, lang, subject, unit, as_of, items, images, alts)
    text_body = _text(fig, per, lang, subject, unit, as_of, items)
    xlsx = _xlsx(fig, per, lang, subject, as_of)
    safe_unit = "".join(c for c in fig.unit_code if c.isalnum())
    xlsx_name = f"bao-cao-{per.cadence}-{per.key}-{safe_unit}.xlsx"
    return Rendered(subject, text_body, html_body, images, xlsx, xlsx_name)


# --------------------------------------------------------------------------- HTML

_TD = "font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#1d2733;"
_SMALL = "font-family:Arial,Helvetica,sans-serif;font-size:12px;color:#5b6773;"


def _card(label: str, value: str, change: str, sub: str, up: bool | None) -> str:
    color = "#2e8b57" if up else ("#c0392b" if up is False else "#5b6773")
    arrow = "▲ " if up else ("▼ " if up is False else "")
    return (f'<td class="card" width="50%" valign="top" style="padding:6px;">'
            f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
            f'style="border:1px solid #dfe4ea;border-radius:6px;background:#ffffff;"><tr><td style="padding:10px 12px;">'
            f'<div style="{_SMALL}">{esc(label)}</div>'
            f'<div style="font-family:Arial,Helvetica,sans-serif;font-size:22px;font-weight:bold;color:#1f5fa8;'
            f'padding:2px 0;">{esc(value)}</div>'
            f'<div style="{_SMALL}color:{color};">{arrow}{esc(change)}</div>'
            f'<div style="{_SMALL}">{esc(sub)}</div></td></tr></table></td>')


def _metric_card(fig: F.Figures, key: str, lang: str) -> str:
    t = L[lang]
    m = fig.metrics[key]
    if key == "dues_rate":
        c, e = fig.metrics["dues_collected"].value, fig.metrics["dues_expected"].value
        value = fmt_pct(m.value, 1, lang)
        sub = f"{fmt_money(c, lang)} / {fmt_money(e, lang)}"
    else:
        value = _fmt(m, m.value, lang)
        sub = f"{t['vs_year']}: {_fmt(m, m.year_ago, lang)}" if m.year_ago is not None else ""
    change = f"{_fmt_change(m, lang)} {t['vs_prev']}"
    d = m.change
    good = None if d in (None, 0) else (d > 0 if key != "leaves" else d < 0)
    return _card(t[key], value, change, sub, good)


def _table(headers: list[str], rows: list[list[str]], align: list[str]) -> str:
    th = "".join(f'<th align="{a}" style="{_SMALL}font-weight:bold;border-bottom:1px solid #dfe4ea;'
                 f'padding:6px 4px;">{esc(h)}</th>' for h, a in zip(headers, align))
    trs = "".join("<tr>" + "".join(f'<td align="{a}" style="{_TD}font-size:13px;border-bottom:1px solid #f0f2f5;'
                                   f'padding:6px 4px;">{esc(v)}</td>' for v, a in zip(r, align)) + "</tr>"
                  for r in rows)
    return (f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
            f"<tr>{th}</tr>{trs}</table>")


def _unit_rows(df: pd.DataFrame, lang: str) -> list[list[str]]:
    return [[clean(r.unit_name), fmt_int(r.members, lang), fmt_signed_int(r.change, lang),
             fmt_pct(r.change_pct, 1, lang, signed=True) if r.change_pct is not None and pd.notna(r.change_pct) else "–"]
            for r in df.itertuples()]


def _section(title: str, inner: str) -> str:
    return (f'<tr><td style="padding:18px 20px 4px 20px;{_TD}font-size:16px;font-weight:bold;color:#1d2733;">'
            f'{esc(title)}</td></tr><tr><td style="padding:4px 20px 8px 20px;">{inner}</td></tr>')


def _html(fig, per, lang, subject, unit, as_of, items, images, alts) -> str:
    t = L[lang]
    cards = [_metric_card(fig, k, lang) for k in HEADLINE_KEYS]
    grid = "".join(f"<tr>{cards[i]}{cards[i + 1]}</tr>" for i in range(0, len(cards), 2))
    att = ("<ul style=\"margin:0;padding-left:18px;\">" + "".join(
        f'<li style="{_TD}padding:3px 0;">{esc(i)}</li>' for i in items) + "</ul>") if items else \
        f'<div style="{_TD}">{esc(t["nothing"])}</div>'
    imgs = "".join(
        f'<tr><td style="padding:8px 20px;"><img src="cid:{html.escape(cid)}" width="560" alt="{esc(alt)}" '
        f'style="display:block;width:100%;max-width:560px;height:auto;border:0;"></td></tr>'
        for (cid, _), alt in zip(images, alts))
    sections = [_section(t["headline"], f'<table role="presentation" width="100%" cellpadding="0" '
                                        f'cellspacing="0" border="0">{grid}</table>'),
                _section(t["attention"], att)]
    heads = [t["unit"], t["members"], t["change"], t["change_pct"]]
    al = ["left", "right", "right", "right"]
    if len(fig.children) > 1:
        sections.append(_section(t["top"], _table(heads, _unit_rows(fig.top, lang), al)))
        sections.append(_section(t["bottom"], _table(heads, _unit_rows(fig.bottom, lang), al)))
    if per.cadence == "semiannual" and len(fig.statutory):
        st = _statutory_table(fig.statutory, lang)
        sections.append(_section(t["statutory"].format(d=per.report_date.strftime("%d/%m/%Y")), st))
    body = "".join(sections)
    footer = esc(t["footer"].format(unit=unit))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting"><title>{esc(subject)}</title>
<style>@media only screen and (max-width:620px){{ .card{{display:block!important;width:100%!important;}} }}</style>
</head>
<body style="margin:0;padding:0;background:#f3f5f8;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f3f5f8;">
<tr><td align="center" style="padding:12px 6px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background:#ffffff;border-radius:8px;">
<tr><td style="background:#1f5fa8;border-radius:8px 8px 0 0;padding:16px 20px;">
<div style="font-family:Arial,Helvetica,sans-serif;font-size:12px;color:#d6e4f5;">{esc(t['brand'])} · {esc(t['report'])} {esc(CADENCE_LABELS[lang][per.cadence])}</div>
<div style="font-family:Arial,Helvetica,sans-serif;font-size:20px;font-weight:bold;color:#ffffff;padding-top:4px;">{esc(unit)}</div>
<div style="font-family:Arial,Helvetica,sans-serif;font-size:13px;color:#ffffff;padding-top:2px;">{esc(per.title(lang))} · {esc(as_of)}</div>
</td></tr>
{body}
{imgs}
<tr><td style="padding:10px 20px;{_TD}">{esc(t['attachment'])}</td></tr>
<tr><td style="padding:12px 20px 18px 20px;{_SMALL}border-top:1px solid #dfe4ea;">{footer}</td></tr>
</table></td></tr></table></body></html>"""


def _statutory_table(df: pd.DataFrame, lang: str) -> str:
    num = [c for c in df.columns if c not in ("unit_code", "unit_name", "level")][:4]
    rows = []
    for r in df.head(15).itertuples(index=False):
        d = r._asdict()
        rows.append([clean(d.get("unit_name") or d.get("unit_code"))] + [fmt_int(d[c], lang) for c in num])
    return _table([L[lang]["unit"], *num], rows, ["left"] + ["right"] * len(num))


# --------------------------------------------------------------------------- text

def _text(fig, per, lang, subject, unit, as_of, items) -> str:
    t = L[lang]
    out = [subject, "", as_of, "", f"== {t['headline']} =="]
    for k in HEADLINE_KEYS:
        m = fig.metrics[k]
        out.append(f"- {t[k]}: {_fmt(m, m.value, lang)} ({_fmt_change(m, lang)} {t['vs_prev']})")
    out += ["", f"== {t['attention']} =="]
    out += [f"- {i}" for i in items] or [t["nothing"]]
    if len(fig.children) > 1:
        for title, df in ((t["top"], fig.top), (t["bottom"], fig.bottom)):
            out += ["", f"== {title} =="]
            out += [f"- {' | '.join(r)}" for r in _unit_rows(df, lang)]
    if per.cadence == "semiannual" and len(fig.statutory):
        out += ["", f"== {t['statutory'].format(d=per.report_date.strftime('%d/%m/%Y'))} =="]
        num = [c for c in fig.statutory.columns if c not in ("unit_code", "unit_name", "level")][:4]
        for r in fig.statutory.head(15).to_dict("records"):
            out.append(f"- {r.get('unit_name') or r.get('unit_code')}: "
                       + ", ".join(f"{c} {fmt_int(r[c], lang)}" for c in num))
    out += ["", t["attachment"], "", "--", t["footer"].format(unit=unit)]
    return "\n".join(clean(line) for line in out) + "\n"


# --------------------------------------------------------------------------- XLSX

def _xlsx(fig: F.Figures, per: Period, lang: str, subject: str, as_of: str) -> bytes:
    t = L[lang]
    head = pd.DataFrame([{t["metric"]: t.get(k, k), t["value"]: m.value, t["prev"]: m.prev, t["year_ago"]: m.year_ago}
                         for k, m in fig.metrics.items() if k in t] +
                        [{t["metric"]: t["expected"], t["value"]: fig.metrics["dues_expected"].value,
                          t["prev"]: fig.metrics["dues_expected"].prev, t["year_ago"]: None},
                         {t["metric"]: t["collected"], t["value"]: fig.metrics["dues_collected"].value,
                          t["prev"]: fig.metrics["dues_collected"].prev, t["year_ago"]: None}])
    trend = pd.DataFrame({t["month"]: [fmt_month(p, lang) for p in fig.series["period"]],
                          t["members"]: fig.series["members"], t["joins"]: fig.series["joins"],
                          t["leaves"]: fig.series["leaves"], t["net"]: fig.series["net"]})
    c = fig.children.sort_values("members", ascending=False)
    units = pd.DataFrame({"Mã / code": c["unit_code"], t["unit"]: c["unit_name"], t["members"]: c["members"],
                          t["members_prev"]: c["members_prev"], t["change"]: c["change"],
                          t["change_pct"]: c["change_pct"]})
    d = fig.dues_by_child
    dues = pd.DataFrame({"Mã / code": d["unit_code"], t["unit"]: d["unit_name"], t["expected"]: d["expected"],
                         t["collected"]: d["collected"], t["rate"]: d["rate"]})
    b = fig.branches
    branches = pd.DataFrame({"Mã / code": b["branch_code"], t["branch"]: b.get("branch_name", b["branch_code"]),
                             t["submitted"]: [t["yes"] if v else (t["no"] if v is False else "–")
                                              for v in b.get("submitted", [None] * len(b))]})
    r = fig.refused
    refused = pd.DataFrame({t["rule"]: r["rule"], t["rows"]: r["rows"]})
    sheets = {t["sheet_headline"]: head, t["sheet_trend"]: trend, t["sheet_units"]: units, t["sheet_dues"]: dues,
              t["sheet_branches"]: branches, t["sheet_refused"]: refused}
    if per.cadence == "semiannual" and len(fig.statutory):
        sheets[t["sheet_statutory"]] = fig.statutory
    return to_xlsx(sheets, title=subject, notes=[as_of, L[lang]["footer"].format(unit=clean(fig.unit_name))])


# --------------------------------------------------------------------------- the message

def compose(r: Rendered, *, to_addr: str, from_addr: str, msg_id: str, sender_name: str = "Đoàn viên số") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = r.subject
    msg["From"] = formataddr((sender_name, from_addr))
    msg["To"] = to_addr
    msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(r.text, subtype="plain", charset="utf-8")
    msg.add_alternative(r.html, subtype="html", charset="utf-8")
    html_part = msg.get_payload()[1]
    for cid, png in r.images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>",
                              filename=cid.split("@")[0].split(".")[0] + ".png", disposition="inline")
    msg.add_attachment(r.xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=r.xlsx_name)
    return msg


class Renderer:
    """Used by `delivery.send_reports`: knows whether a period's data is published, and builds one
    message per subscription (figures and rendering cached per unit and language within a run)."""

    def __init__(self):
        from pipelines.warehouse import serving

        self._serving = serving
        v = serving.current_version()
        self.version = v.version if v else None
        self.published_at = v.published_at if v else None
        self._latest: dt.date | None = None
        self._figs: dict[tuple, F.Figures] = {}
        self._rendered: dict[tuple, Rendered] = {}

    def data_month(self, per: Period) -> dt.date | None:
        if per.cadence == "weekly":
            monday = week_monday(per.key)
            return min(self._latest, monday.replace(day=1)) if self._latest else None
        return per.month

    def ready(self, per: Period) -> tuple[bool, str]:
        if self.version is None:
            return False, "no warehouse published"
        self._latest = F.latest_period()
        if self._latest is None:
            return False, "the warehouse has no membership data"
        month = self.data_month(per)
        if month is None or month > self._latest:
            return False, f"month {month} not in the warehouse yet (latest {self._latest})"
        return True, ""

    def figures(self, unit_code: str, per: Period) -> F.Figures:
        key = (unit_code, per.cadence, per.key)
        if key not in self._figs:
            if self._latest is None:
                ok, why = self.ready(per)
                if not ok:
                    raise RuntimeError(why)
            self._figs[key] = F.compute(unit_code, self.data_month(per), report_date=per.report_date,
                                        version=self.version, published_at=self.published_at)
        return self._figs[key]

    def rendered(self, unit_code: str, per: Period, lang: str, cid_domain: str = "doanvien.local") -> Rendered:
        key = (unit_code, per.cadence, per.key, lang)
        if key not in self._rendered:
            self._rendered[key] = render(self.figures(unit_code, per), per, lang, cid_domain=cid_domain)
        return self._rendered[key]

    def message(self, sub, per: Period, *, to_addr: str, from_addr: str, msg_id: str) -> EmailMessage:
        domain = from_addr.rsplit("@", 1)[-1] if "@" in from_addr else "doanvien.local"
        r = self.rendered(sub.unit_code, per, sub.language, domain)
        msg = compose(r, to_addr=to_addr, from_addr=from_addr, msg_id=msg_id,
                      sender_name=os.environ.get("DOANVIEN_SMTP_FROM_NAME", "Đoàn viên số"))
        msg["X-Doanvien-Report"] = f"{per.cadence}/{per.key}/sub{sub.id}"
        return msg
