"""The 34-province map: `data/reference/vn_provinces_34.geojson` (see its NOTICE), each feature given the
official `new_code` of `provinces_2025.csv` by matching normalised names. The file's own `code`
(VN01..VN34) is the source's numbering, not an official code, and is never used as a key.
"""
from __future__ import annotations

import copy
import csv
import functools
import json
import re
import unicodedata

from pipelines.config import REFERENCE_DIR

_ALIASES = {"hcm": "ho chi minh", "tphcm": "ho chi minh", "thua thien hue": "hue"}


def norm_name(name: str) -> str:
    """'TP Hồ Chí Minh' / 'Khánh Hoà' / 'Thanh Hóa' -> 'ho chi minh' / 'khanh hoa' / 'thanh hoa'."""
    s = unicodedata.normalize("NFD", name.strip().lower()).replace("đ", "d").replace("\u0111", "d")
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    s = re.sub(r"^(tp\.?|thanh pho|tinh)\s+", "", s)
    s = re.sub(r"[^a-z0-9 ]+", " ", s)
    s = re.sub(r"\s+", " ", s).strip()
    return _ALIASES.get(s, s)


@functools.lru_cache(maxsize=1)
def _provinces() -> dict[str, str]:
    with open(REFERENCE_DIR / "provinces_2025.csv", encoding="utf-8") as fh:
        return {r["new_code"]: r["new_name"] for r in csv.DictReader(fh)}


@functools.lru_cache(maxsize=1)
def _geojson() -> dict:
    with open(REFERENCE_DIR / "vn_provinces_34.geojson", encoding="utf-8") as fh:
        gj = json.load(fh)
    by_name = {norm_name(n): c for c, n in _provinces().items()}
    for feat in gj["features"]:
        props = feat["properties"]
        code = by_name.get(norm_name(props["ten_tinh"]))
        if code is None:
            raise ValueError(f"map feature {props['ten_tinh']!r} matches no province of provinces_2025.csv")
        props["new_code"] = code
        props["new_name"] = _provinces()[code]
    codes = [f["properties"]["new_code"] for f in gj["features"]]
    if len(set(codes)) != len(codes):
        raise ValueError("two map features match the same province")
    return gj


def provinces_geojson() -> dict:
    """The GeoJSON with `properties.new_code` and `properties.new_name` on every feature (a copy)."""
    return copy.deepcopy(_geojson())


def geojson_shared() -> dict:
    """The same, not copied (read-only use: Plotly serialises it)."""
    return _geojson()
