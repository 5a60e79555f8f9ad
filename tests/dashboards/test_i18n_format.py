"""Labels in both languages (NFC, same placeholders), Vietnamese number/percent/date formats, reference
names, and the 34-province map keyed by official codes."""
from __future__ import annotations

import datetime as dt
import string
import unicodedata

import pytest

from pipelines.analytics.i18n import (fmt_date, fmt_int, fmt_money, fmt_month, fmt_num, fmt_pct, ref_codes,
                                      ref_name, t)
from pipelines.analytics.labels import LABELS


def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


def test_every_label_has_both_languages_in_nfc_with_same_placeholders():
    assert len(LABELS) > 100
    for key, entry in LABELS.items():
        assert set(entry) == {"vi", "en"}, key
        for lang, text in entry.items():
            assert text.strip(), (key, lang)
            assert unicodedata.normalize("NFC", text) == text, (key, lang)
        assert _fields(entry["vi"]) == _fields(entry["en"]), key


def test_every_label_key_used_in_code_exists():
    """Literal t("...") keys in the pages and modules all exist in the dictionary."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    files = list((repo / "dashboards").rglob("*.py")) + list((repo / "pipelines" / "analytics").rglob("*.py"))
    missing = set()
    for f in files:
        if f.name in ("auth.py",) or f.stem in ("dang_nhap", "tra_cuu", "tai_len", "sql", "quan_tri", "bao_cao_email"):
            continue
        for key in re.findall(r'\bt\(\s*"([a-z_]+\.[a-z_0-9.]+|[a-z_]+)"', f.read_text(encoding="utf-8")):
            if key not in LABELS:
                missing.add((f.name, key))
    assert not missing


def test_vietnamese_is_default_and_has_diacritics():
    assert t("page.co_cau") == "Cơ cấu"
    assert t("page.co_cau", "en") == "Structure"
    assert t("page.nop_bao_cao") == "Tình hình nộp báo cáo"
    assert t("banner.as_of", "vi", period="T06/2025", published="x").startswith("Dữ liệu tính đến T06/2025")
    assert t("no.such.key") == "no.such.key"


@pytest.mark.parametrize("value,vi,en", [
    (1234567, "1.234.567", "1,234,567"), (0, "0", "0"), (-1500, "-1.500", "-1,500"), (999.5, "1.000", "1,000"),
    (None, "–", "–"), (float("nan"), "–", "–")])
def test_integers(value, vi, en):
    assert fmt_int(value, "vi") == vi
    assert fmt_int(value, "en") == en


def test_decimals_percentages_money_dates():
    assert fmt_num(1234.56, 1, "vi") == "1.234,6"
    assert fmt_num(1234.56, 1, "en") == "1,234.6"
    assert fmt_pct(0.123, 1, "vi") == "12,3 %"
    assert fmt_pct(0.123, 1, "en") == "12.3%"
    assert fmt_pct(0.0005, 1, "vi") == "0,1 %"  # half up, not banker's rounding
    assert fmt_pct(0.05, 1, "vi", signed=True) == "+5,0 %"
    assert fmt_money(234000, "vi") == "234.000 đ"
    assert fmt_date(dt.date(2025, 7, 1)) == "01/07/2025"
    assert fmt_date("2025-05-31", "en") == "31/05/2025"
    assert fmt_month(dt.date(2025, 6, 1), "vi") == "T06/2025"


def test_reference_names():
    assert ref_name("province", "79") == "Hồ Chí Minh"
    assert ref_name("province_old", "02") == "Hà Giang"
    assert ref_name("industry", "C") == "Công nghiệp chế biến, chế tạo"
    assert ref_name("industry", "C", "en") == "Manufacturing"
    assert ref_name("ownership", "fdi", "en") == "Foreign-invested enterprise"
    assert ref_name("gender", "F") == "Nữ"
    assert ref_name("leave_reason", "public_sector_exit").startswith("Khu vực công")
    assert ref_name("ethnicity", "08") == "HMông"
    assert ref_name("industry", "ZZ") == "ZZ"
    assert len(ref_codes("province")) == 34
    for kind in ("province", "industry", "ownership", "program", "activity", "leave_reason", "ethnicity"):
        for code in ref_codes(kind):
            assert unicodedata.normalize("NFC", ref_name(kind, code)) == ref_name(kind, code)


def test_map_features_get_official_codes_by_name():
    from pipelines.analytics.geo import norm_name, provinces_geojson

    gj = provinces_geojson()
    codes = [f["properties"]["new_code"] for f in gj["features"]]
    assert sorted(codes) == sorted(ref_codes("province"))
    by_name = {f["properties"]["ten_tinh"]: f["properties"]["new_code"] for f in gj["features"]}
    assert by_name["TP HCM"] == "79" and by_name["Khánh Hoà"] == "56" and by_name["TP Huế"] == "46"
    assert by_name["Thanh Hoá"] == "38" and by_name["TP Hà Nội"] == "01"
    assert norm_name("Thành phố Hồ Chí Minh") == norm_name("TP HCM")
    assert all(not f["properties"]["code"] == f["properties"]["new_code"] for f in gj["features"])
