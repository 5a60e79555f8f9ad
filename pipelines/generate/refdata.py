"""Reference data, fixed dates and scale settings of the generator."""
from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np

from pipelines.config import REFERENCE_DIR

PUBLIC_EXIT_DATE = date(2025, 6, 1)        # members of hcsn / dvsn_100 CĐCS leave on this day
PUBLIC_CDCS_END = date(2025, 5, 31)        # their CĐCS end the day before
RESTRUCTURE_DATE = date(2025, 7, 1)        # 63 -> 34 provinces; district/IZ unions end; communes begin
OLD_END = date(2025, 6, 30)
TODAY = date(2026, 11, 28)
LAST_FULL_MONTH = date(2026, 10, 1)
FIXED_CREATED = (2026, 1, 1, 0, 0, 0)       # xlsx document properties (deterministic output)

PUBLIC_EXIT_TYPES = ("hcsn", "dvsn_100")
OWNERSHIP = ("hcsn", "dvsn_100", "dvsn_khac", "dnnn", "ngoai_nn", "fdi", "htx", "nghiep_doan")
# count share of CĐCS per ownership type, and lognormal (median, sigma) of the member count
OWNERSHIP_SHARE = np.array([0.20, 0.17, 0.04, 0.04, 0.39, 0.08, 0.04, 0.04])
SIZE_MEDIAN = np.array([35, 50, 60, 150, 30, 400, 15, 40], dtype=float)
SIZE_SIGMA = np.array([0.7, 0.7, 0.8, 1.0, 1.0, 1.3, 0.6, 0.5])
# VSIC sections typical per ownership type
INDUSTRY_BY_OWNERSHIP = {
    "hcsn": ["O", "O", "O", "P", "Q"],
    "dvsn_100": ["P", "P", "P", "Q", "Q", "R", "M"],
    "dvsn_khac": ["Q", "P", "M", "R", "J"],
    "dnnn": ["D", "H", "K", "B", "C", "J", "E", "F"],
    "ngoai_nn": ["C", "C", "G", "G", "F", "H", "I", "N", "M", "L", "J", "K", "S"],
    "fdi": ["C", "C", "C", "C", "G", "I", "J"],
    "htx": ["A", "A", "G", "H"],
    "nghiep_doan": ["H", "S", "A", "F", "T"],
}

INDUSTRIAL_OLD = {"74", "75", "27", "24", "79", "31", "30", "26", "01", "80", "33", "19", "22", "77", "72", "36"}
REGION_I_OLD = {"01", "31", "79", "74", "75", "77", "48", "27", "30"}
MIN_WAGE = {1: 5_310_000, 3: 4_140_000}
PROVINCE_WEIGHT = {  # national member weight per old province (default 0.8)
    "79": 12, "01": 10, "74": 8, "75": 5, "31": 3.5, "27": 3.5, "24": 2.5, "80": 2.5, "26": 2.0, "30": 2.5,
    "48": 1.8, "38": 2.5, "40": 2.0, "19": 1.7, "77": 1.5, "33": 1.5, "22": 1.5, "72": 1.3, "36": 1.2,
    "25": 1.1, "34": 1.1, "92": 1.0, "56": 1.0, "52": 1.0, "64": 0.9, "66": 0.9,
}
OLD_CITIES = {"01", "31", "48", "79", "92"}
NEW_CITIES = {"01", "31", "46", "48", "79", "92"}
CITY_SINCE = {"75": date(2026, 4, 30), "22": date(2026, 9, 1), "24": date(2026, 9, 20)}
# corporations: (sector code, number) hosted in these old provinces (national scale)
SECTOR_OWNERSHIP = {"N09": "dnnn", "N08": "dnnn", "N11": "dnnn", "N13": "dnnn", "N12": "dnnn",
                    "N07": "dnnn", "N10": "dnnn", "N14": "dnnn", "N15": "dnnn", "N18": "dnnn",
                    "N19": "dnnn", "N04": "dnnn", "N05": "dnnn", "N06": "dnnn", "N01": "dnnn",
                    "N16": "dnnn", "N17": "dnnn", "N02": "dvsn_khac", "N03": "dvsn_khac"}


@dataclass(frozen=True)
class Scale:
    name: str
    old_provinces: tuple[str, ...] | None   # None = all 63
    members: int
    start: date
    months: int | None                      # None = through LAST_FULL_MONTH
    members_per_district: int
    members_per_commune: int
    iz_per_industrial_province: int
    corporations: int
    xlsx_share: float
    xlsx_max_rows: int                      # larger files are always CSV
    force_each_defect: bool
    extra: dict = field(default_factory=dict)


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", ("02", "08"), 400, date(2025, 4, 1), 5, 120, 200, 1, 1, 0.5, 10**9, True,
                  {"join_rate": 0.25, "leave_rate": 0.2, "transfer_share": 0.4,
                   "legacy_cmnd_share": 0.05, "cccd_update_monthly": 0.2, "cmnd_column_share": 0.6,
                   "cmnd_fill_down_share": 0.5}),
    "small": Scale("small", ("30", "31"), 50_000, date(2024, 7, 1), None, 3_000, 1_500, 1, 2, 0.2,
                   2_500, False),
    "national": Scale("national", None, 12_000_000, LAST_FULL_MONTH, 1, 16_000, 6_000, 2, 40, 0.12, 3_000,
                      False),
}


def _read(name: str) -> list[dict]:
    with open(REFERENCE_DIR / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=None)
def provinces() -> list[dict]:
    return _read("provinces_2025.csv")


@lru_cache(maxsize=None)
def ethnic_groups() -> list[dict]:
    return _read("ethnic_groups.csv")


@lru_cache(maxsize=None)
def dues_rules() -> list[dict]:
    return _read("dues_rules.csv")


@lru_cache(maxsize=None)
def table(name: str) -> list[dict]:
    return _read(name)


def dues_rule_for(period: date) -> tuple[float, int]:
    """(rate, cap) in force on the first day of `period`."""
    for r in dues_rules():
        vf = date.fromisoformat(r["valid_from"])
        vt = date.fromisoformat(r["valid_to"]) if r["valid_to"] else date(9999, 12, 31)
        if vf <= period <= vt:
            return float(r["rate"]), int(round(float(r["base_salary"]) * float(r["cap_multiplier"])))
    raise ValueError(f"no dues rule for {period}")


def stable_int(*parts) -> int:
    """A stable 32-bit integer from strings/ints (for seeding per-file RNGs)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def rng_for(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng([seed, stable_int(*parts)])


def month_starts(start: date, months: int) -> list[date]:
    out = []
    y, m = start.year, start.month
    for _ in range(months):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_end(d: date) -> date:
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return date.fromordinal(date(y, m, 1).toordinal() - 1)


def months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)
