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


def _ring_area_centroid(ring) -> tuple[float, float, float]:
    a = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
        cross = x0 * y1 - x1 * y0
        a += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    a /= 2
    if abs(a) < 1e-12:
        xs, ys = zip(*ring)
        return 0.0, sum(xs) / len(xs), sum(ys) / len(ys)
    return abs(a), cx / (6 * a), cy / (6 * a)


@functools.lru_cache(maxsize=1)
def province_shapes() -> dict[str, dict]:
    """new_code -> {'name', 'lon': [...], 'lat': [...], 'centroid': (lon, lat)}: every ring of the province
    as one path separated by None (Plotly draws it as one filled SVG shape; no map tiles, no network)."""
    out = {}
    for feat in _geojson()["features"]:
        g = feat["geometry"]
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        lon, lat, best = [], [], (0.0, 0.0, 0.0)
        for poly in polys:
            for ring in poly:
                lon += [p[0] for p in ring] + [None]
                lat += [p[1] for p in ring] + [None]
            area = _ring_area_centroid([tuple(p[:2]) for p in poly[0]])
            if area[0] > best[0]:
                best = area
        out[feat["properties"]["new_code"]] = {"name": feat["properties"]["new_name"], "lon": lon, "lat": lat,
                                                "centroid": (best[1], best[2])}
    return out
