"""Labels and formatting: Vietnamese by default (NFC, `1.234.567`, `12,3 %`, `dd/mm/yyyy`), English as a switch.

Plain Python (no Streamlit): the dashboards and the report emails both use it.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import math
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from pipelines.analytics.labels import LABELS
from pipelines.config import REFERENCE_DIR

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"


def norm_lang(lang: str | None) -> str:
    return lang if lang in LANGS else DEFAULT_LANG


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def t(key: str, lang: str = DEFAULT_LANG, **kwargs) -> str:
    """The label `key` in `lang` (falls back to Vietnamese, then to the key itself)."""
    entry = LABELS.get(key)
    if entry is None:
        return key
    text = entry.get(norm_lang(lang)) or entry.get(DEFAULT_LANG) or key
    return text.format(**kwargs) if kwargs else text


# --- numbers -------------------------------------------------------------------------------------

def _is_missing(x) -> bool:
    if x is None:
        return True
    try:
        return isinstance(x, float) and math.isnan(x)
    except TypeError:
        return False


def _round_half_up(x: float, digits: int) -> Decimal:
    q = Decimal(1).scaleb(-digits) if digits else Decimal(1)
    return Decimal(str(x)).quantize(q, rounding=ROUND_HALF_UP)


def fmt_int(x, lang: str = DEFAULT_LANG) -> str:
    """1234567 -> '1.234.567' (vi) / '1,234,567' (en); None -> '–'."""
    if _is_missing(x):
        return "–"
    n = int(_round_half_up(float(x), 0))
    s = f"{abs(n):,}"
    if norm_lang(lang) == "vi":
        s = s.replace(",", ".")
    return ("-" if n < 0 else "") + s


def fmt_num(x, digits: int = 1, lang: str = DEFAULT_LANG) -> str:
    """1234.56 -> '1.234,6' (vi) / '1,234.6' (en)."""
    if _is_missing(x):
        return "–"
    d = _round_half_up(float(x), digits)
    s = f"{abs(d):,.{digits}f}"
    if norm_lang(lang) == "vi":
        s = s.replace(",", "\u0000").replace(".", ",").replace("\u0000", ".")
    return ("-" if d < 0 else "") + s


def fmt_pct(ratio, digits: int = 1, lang: str = DEFAULT_LANG, signed: bool = False) -> str:
    """0.123 -> '12,3 %' (vi) / '12.3%' (en). `ratio` is a fraction, not a percentage."""
    if _is_missing(ratio):
        return "–"
    body = fmt_num(float(ratio) * 100, digits, lang)
    if signed and float(ratio) > 0:
        body = "+" + body
    return f"{body} %" if norm_lang(lang) == "vi" else f"{body}%"


def fmt_signed_int(x, lang: str = DEFAULT_LANG) -> str:
    if _is_missing(x):
        return "–"
    s = fmt_int(x, lang)
    return "+" + s if float(x) > 0 else s


def fmt_money(x, lang: str = DEFAULT_LANG) -> str:
    """Amounts in VND: '1.234.567 đ' (vi) / 'VND 1,234,567' (en)."""
    if _is_missing(x):
        return "–"
    return f"{fmt_int(x, lang)} đ" if norm_lang(lang) == "vi" else f"VND {fmt_int(x, lang)}"


def fmt_date(d, lang: str = DEFAULT_LANG) -> str:
    """dd/mm/yyyy in both languages (the union's own convention)."""
    if d is None:
        return "–"
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return d.strftime("%d/%m/%Y")


def fmt_datetime(d, lang: str = DEFAULT_LANG) -> str:
    if d is None:
        return "–"
    if isinstance(d, str):
        d = dt.datetime.fromisoformat(d)
    return d.strftime("%d/%m/%Y %H:%M")


def fmt_month(d, lang: str = DEFAULT_LANG) -> str:
    """A period (1st of month) -> 'T06/2025' (vi) / '06/2025' (en)."""
    if d is None:
        return "–"
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return f"T{d.month:02d}/{d.year}" if norm_lang(lang) == "vi" else f"{d.month:02d}/{d.year}"


# --- reference names -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _reference(kind: str) -> dict[str, dict[str, str]]:
    """code -> {'vi': name, 'en': name} for one reference table in data/reference/."""
    out: dict[str, dict[str, str]] = {}
    if kind == "province":  # new (34) and old (63) codes; English keeps the Vietnamese name
        with open(REFERENCE_DIR / "provinces_2025.csv", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out.setdefault(row["new_code"], {"vi": nfc(row["new_name"]), "en": nfc(row["new_name"])})
                out.setdefault("old:" + row["old_code"], {"vi": nfc(row["old_name"]), "en": nfc(row["old_name"])})
        return out
    files = {"industry": "industries.csv", "ownership": "ownership_types.csv",
             "program": "service_programs.csv", "activity": "activity_types.csv",
             "leave_reason": "leave_reasons.csv", "ethnicity": "ethnic_groups.csv",
             "sector": "sector_unions.csv"}
    with open(REFERENCE_DIR / files[kind], encoding="utf-8") as f:
        for row in csv.DictReader(f):
            vi = row.get("name_vi") or row.get("name") or row["code"]
            en = row.get("name_en") or vi
            out[row["code"]] = {"vi": nfc(vi), "en": nfc(en)}
    return out


def ref_name(kind: str, code, lang: str = DEFAULT_LANG) -> str:
    """The display name of a reference code (e.g. ref_name('industry', 'C')); unknown codes as is."""
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return "–"
    code = str(code)
    if kind == "gender":
        return t(f"gender.{code}", lang)
    if kind == "age_band":
        return age_band_name(code, lang)
    if kind == "ethnic_group":
        return t(f"ethnic_group.{code}", lang) if f"ethnic_group.{code}" in LABELS else code
    if kind == "province_old":
        entry = _reference("province").get("old:" + code)
    else:
        entry = _reference(kind).get(code)
    return entry[norm_lang(lang)] if entry else code


def age_band_name(code: str, lang: str = DEFAULT_LANG) -> str:
    """'under_30' -> 'Dưới 30', '30_39' -> '30–39', '60_plus' -> '60+', 'unknown' -> 'Không rõ'."""
    import re
    if code == "unknown":
        return t("age.unknown", lang)
    m = re.fullmatch(r"under_(\d+)", code)
    if m:
        return t("age.under", lang, n=m.group(1))
    m = re.fullmatch(r"(\d+)_plus", code)
    if m:
        return f"{m.group(1)}+"
    m = re.fullmatch(r"(\d+)_(\d+)", code)
    if m:
        return f"{m.group(1)}–{m.group(2)}"
    return code


def ref_codes(kind: str) -> list[str]:
    """All codes of a reference table, in file order (province: the 34 new codes)."""
    if kind == "province":
        return [c for c in _reference("province") if not c.startswith("old:")]
    if kind == "gender":
        return ["M", "F"]
    return list(_reference(kind))
