"""The one filter bar, as a value: period range, organisation subtree, province, industry, ownership,
gender and age band. Serialises to and from URL query parameters (untrusted input: every value is
validated against a pattern or a closed list; anything else is dropped).

Filters narrow what a user sees *within* their scope; they never widen it (the scope is applied
separately by every query, from the auth module, never from a widget or the URL).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

from pipelines.analytics.i18n import ref_codes

UNIT_RE = re.compile(r"^(TLD|T\d{2}|N\d{2}|Q\d{4}|K\d{4}|X\d{5}|C\d{4}|CS\d{7})$")
PROVINCE_RE = re.compile(r"^\d{2}$")
AGE_BAND_RE = re.compile(r"^(under_[0-9]{2}|[0-9]{2}_[0-9]{2}|[0-9]{2}_plus|unknown)$")
PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")

# URL parameter names (short, stable: links are shared)
PARAMS = {"period_from": "tu", "period_to": "den", "unit": "dv", "province": "tinh", "industry": "nganh",
          "ownership": "loai", "gender": "gt", "age_band": "tuoi"}

# Restructuring dates marked on every time axis
PUBLIC_SECTOR_EXIT = dt.date(2025, 6, 1)
MERGER = dt.date(2025, 7, 1)


def unit_level(code: str | None) -> str:
    """The level of an organisation code from its layout (CONTRACTS §2)."""
    if not code or code == "TLD":
        return "confederation"
    if code.startswith("CS"):
        return "cdcs"
    if code[0] == "T":
        return "province_federation"
    if code[0] == "N":
        return "sector_union"
    return "upper_level"


def unit_column(code: str | None) -> str | None:
    """The mart column that holds an organisation code of this level (None for the whole country)."""
    return {"confederation": None, "province_federation": "top_unit_code", "sector_union": "top_unit_code",
            "upper_level": "upper_unit_code", "cdcs": "cdcs_code"}[unit_level(code)]


def parse_period(text: str | None) -> dt.date | None:
    if not text:
        return None
    m = PERIOD_RE.match(str(text).strip())
    if not m:
        return None
    y, mo = int(m.group(1)), int(m.group(2))
    if not (2000 <= y <= 2100 and 1 <= mo <= 12):
        return None
    return dt.date(y, mo, 1)


def add_months(d: dt.date, n: int) -> dt.date:
    m = d.year * 12 + d.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


@dataclasses.dataclass(frozen=True)
class Filters:
    period_from: dt.date | None = None   # 1st of month; None = period_to - 11 months
    period_to: dt.date | None = None     # 1st of month; None = latest published period
    unit: str | None = None              # organisation subtree (TLD/T../N../Q../K../X../C../CS...)
    province: str | None = None          # new province code (34)
    industry: str | None = None          # VSIC section A..U
    ownership: str | None = None         # ownership type code
    gender: str | None = None            # M | F
    age_band: str | None = None          # as in the marts, e.g. '30-39'

    # -- derived --------------------------------------------------------------------------------
    def resolved(self, latest: dt.date | None) -> "Filters":
        """Fill the period defaults from the latest published period (never later than it)."""
        to = self.period_to or latest
        if to and latest and to > latest:
            to = latest
        frm = self.period_from or (add_months(to, -11) if to else None)
        if frm and to and frm > to:
            frm = to
        return dataclasses.replace(self, period_from=frm, period_to=to)

    def key(self) -> tuple:
        """A hashable cache key (every field)."""
        return dataclasses.astuple(self)

    def with_(self, **changes) -> "Filters":
        return dataclasses.replace(self, **changes)

    # -- URL ----------------------------------------------------------------------------------------
    def to_params(self) -> dict[str, str]:
        out = {}
        for field, name in PARAMS.items():
            v = getattr(self, field)
            if v is None:
                continue
            out[name] = v.strftime("%Y-%m") if isinstance(v, dt.date) else str(v)
        return out

    @classmethod
    def from_params(cls, params) -> "Filters":
        """Build from a mapping of query parameters; invalid values are dropped, never trusted."""
        def get(name):
            v = params.get(name)
            if isinstance(v, (list, tuple)):
                v = v[-1] if v else None
            return None if v is None else str(v).strip()[:40]

        unit = get(PARAMS["unit"])
        province = get(PARAMS["province"])
        industry = get(PARAMS["industry"])
        ownership = get(PARAMS["ownership"])
        gender = get(PARAMS["gender"])
        age = get(PARAMS["age_band"])
        return cls(
            period_from=parse_period(get(PARAMS["period_from"])),
            period_to=parse_period(get(PARAMS["period_to"])),
            unit=unit if unit and UNIT_RE.match(unit) and unit != "TLD" else None,
            province=province if province in ref_codes("province") else None,
            industry=industry if industry in ref_codes("industry") else None,
            ownership=ownership if ownership in ref_codes("ownership") else None,
            gender=gender if gender in ("M", "F") else None,
            age_band=age if age and AGE_BAND_RE.match(age) else None,
        )
