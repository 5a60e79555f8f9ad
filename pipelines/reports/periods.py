"""Cadences and their periods.

A *period key* names what one brief reports on; it is half of the delivery ledger's unique key
(subscription_id, period), so two runs that compute the same key never send twice.

| cadence      | key            | data shown                                       | default when run on day d   |
|--------------|----------------|--------------------------------------------------|-----------------------------|
| `weekly`     | `2025-W23`     | the latest published month + submissions so far  | ISO week of d               |
| `monthly`    | `2025-05`      | that month                                       | the month before d          |
| `semiannual` | `2025-05-31`   | the statutory report date (31/5 or 30/11)        | last report date on/before d|
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

CADENCES = ("weekly", "monthly", "semiannual")
TIMEZONE = "Asia/Ho_Chi_Minh"

CADENCE_LABELS = {
    "vi": {"weekly": "hằng tuần", "monthly": "hằng tháng", "semiannual": "định kỳ 6 tháng"},
    "en": {"weekly": "weekly", "monthly": "monthly", "semiannual": "semi-annual statutory"},
}

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def today_local() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


@dataclass(frozen=True)
class Period:
    cadence: str
    key: str
    month: dt.date | None  # 1st of the data month (weekly: None until resolved against the warehouse)
    report_date: dt.date | None = None  # semiannual only

    def label(self, lang: str = "vi") -> str:
        if self.cadence == "weekly":
            y, w = _WEEK.match(self.key).groups()
            return f"tuần {int(w)}/{y}" if lang == "vi" else f"week {int(w)} of {y}"
        if self.cadence == "monthly":
            return f"tháng {self.month:%m/%Y}" if lang == "vi" else f"{self.month:%B %Y}"
        d = self.report_date
        return f"6 tháng đến ngày {d:%d/%m/%Y}" if lang == "vi" else f"half-year to {d:%d/%m/%Y}"

    def title(self, lang: str = "vi") -> str:
        """'Báo cáo tháng 05/2025' / 'Monthly report, May 2025'."""
        if lang == "vi":
            return f"Báo cáo {self.label('vi')}"
        kind = {"weekly": "Weekly", "monthly": "Monthly", "semiannual": "Semi-annual statutory"}[self.cadence]
        return f"{kind} report, {self.label('en')}"


def check_cadence(cadence: str) -> str:
    if cadence not in CADENCES:
        raise ValueError(f"cadence must be one of {', '.join(CADENCES)}: {cadence!r}")
    return cadence


def default_key(cadence: str, on: dt.date | None = None) -> str:
    """The period a run of `cadence` on day `on` (default: today in Hanoi) reports on."""
    check_cadence(cadence)
    on = on or today_local()
    if cadence == "weekly":
        y, w, _ = on.isocalendar()
        return f"{y}-W{w:02d}"
    if cadence == "monthly":
        prev = on.replace(day=1) - dt.timedelta(days=1)
        return f"{prev:%Y-%m}"
    # semiannual: the last 31/5 or 30/11 on or before `on`
    candidates = [dt.date(on.year, 5, 31), dt.date(on.year, 11, 30), dt.date(on.year - 1, 11, 30)]
    return max(d for d in candidates if d <= on).isoformat()


def parse(cadence: str, key: str) -> Period:
    """Validate a period key for a cadence (raises ValueError)."""
    check_cadence(cadence)
    key = (key or "").strip()
    if cadence == "weekly":
        m = _WEEK.match(key)
        if not m or not 1 <= int(m.group(2)) <= 53:
            raise ValueError(f"weekly period must look like 2025-W23: {key!r}")
        dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)  # raises for week 53 of a 52-week year
        return Period(cadence, key, None)
    if cadence == "monthly":
        m = _MONTH.match(key)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"monthly period must look like 2025-05: {key!r}")
        return Period(cadence, key, dt.date(int(m.group(1)), int(m.group(2)), 1))
    m = _DAY.match(key)
    if not m:
        raise ValueError(f"semiannual period must be a report date like 2025-05-31: {key!r}")
    d = dt.date(*map(int, m.groups()))
    if (d.month, d.day) not in ((5, 31), (11, 30)):
        raise ValueError(f"statutory report dates are 31/05 and 30/11: {key!r}")
    return Period(cadence, key, d.replace(day=1), report_date=d)


def week_monday(key: str) -> dt.date:
    y, w = _WEEK.match(key).groups()
    return dt.date.fromisocalendar(int(y), int(w), 1)
