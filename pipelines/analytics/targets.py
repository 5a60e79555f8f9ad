"""Annual targets (chỉ tiêu) set for a unit: `data/reference/plans/targets.csv`, read and validated here.

Columns (one row per year × unit × metric; documented in dashboards/README.md, "Targets"):

    year       calendar year the target is for (e.g. 2025)
    unit_code  the unit the target is set for: `TLD` (the whole Confederation), a provincial federation
               `T<new province code>` (the federation of one of the 34 provinces), or any other unit code
    metric     `members`     - members at the end of the year
               `new_members` - members admitted during the year (joins, not transfers)
    target     a positive whole number

Plain Python (no Streamlit, no warehouse): the query layer (`queries.overview_targets`) joins it with the
figures. The file is read again when it changes (modification time).
"""
from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

from pipelines.analytics.filters import UNIT_RE
from pipelines.config import REFERENCE_DIR

# not at the top level of data/reference/: every CSV there is a dbt seed (tests/warehouse/test_dbt_project.py)
TARGETS_FILE = REFERENCE_DIR / "plans" / "targets.csv"
METRICS = ("members", "new_members")
COLUMNS = ("year", "unit_code", "metric", "target")


class TargetsError(ValueError):
    """The targets file is malformed (the message names the line)."""


def path() -> Path:
    return Path(TARGETS_FILE)


def load() -> dict[tuple[int, str, str], int]:
    """{(year, unit_code, metric): target}; an absent file gives no targets. Raises TargetsError."""
    p = path()
    if not p.exists():
        return {}
    return dict(_load(os.fspath(p), p.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _load(p: str, mtime_ns: int) -> tuple[tuple[tuple[int, str, str], int], ...]:
    out: dict[tuple[int, str, str], int] = {}
    with open(p, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise TargetsError(f"{p}: columns must be {','.join(COLUMNS)}, not {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            try:
                year = int(row["year"])
                target = int(row["target"])
            except (TypeError, ValueError):
                raise TargetsError(f"{p}:{i}: year and target must be whole numbers") from None
            unit, metric = (row["unit_code"] or "").strip(), (row["metric"] or "").strip()
            if not 2000 <= year <= 2100:
                raise TargetsError(f"{p}:{i}: year {year} out of range")
            if not UNIT_RE.match(unit):
                raise TargetsError(f"{p}:{i}: unknown unit code layout {unit!r}")
            if metric not in METRICS:
                raise TargetsError(f"{p}:{i}: metric must be one of {', '.join(METRICS)}")
            if target <= 0:
                raise TargetsError(f"{p}:{i}: target must be positive")
            key = (year, unit, metric)
            if key in out:
                raise TargetsError(f"{p}:{i}: duplicate target for {year} {unit} {metric}")
            out[key] = target
    return tuple(out.items())


def target_for(unit_code: str | None, year: int, metric: str) -> int | None:
    """The target of `unit_code` for `year` and `metric`, or None when none is set."""
    if not unit_code:
        return None
    return load().get((int(year), unit_code, metric))
