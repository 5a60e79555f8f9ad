"""The brief's 12-month series for a commune/ward union created on 01/07/2025 (tiny data through the real
pipeline): before that month each point counts the CĐCS that are under the union today, as the dashboards do,
and equals the generator's ground truth."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest


def test_commune_union_trend_spans_the_restructuring(tiny_published, monkeypatch):
    root = tiny_published
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    reg, gt = root / "registry" / "units.parquet", root / "ground_truth" / "membership_monthly.parquet"
    con = duckdb.connect()
    unit, created = con.execute(
        f"SELECT parent_code, min(valid_from) FROM '{reg}' WHERE level = 'cdcs' AND parent_code LIKE 'X%' "
        "GROUP BY 1 ORDER BY count(DISTINCT unit_code) DESC, 1 LIMIT 1").fetchone()
    created = con.execute(f"SELECT min(valid_from) FROM '{reg}' WHERE unit_code = ?", [unit]).fetchone()[0]
    truth = dict(con.execute(
        f"SELECT m.period, sum(m.members_expected)::BIGINT FROM '{gt}' m WHERE m.cdcs_code IN ("
        f"SELECT unit_code FROM '{reg}' WHERE level = 'cdcs' AND parent_code = ? AND valid_to IS NULL) "
        "GROUP BY 1", [unit]).fetchall())
    months = sorted(truth)
    assert months[0] < created <= months[-1], "tiny data spans the union's creation"

    from pipelines.reports.figures import compute
    fig = compute(unit, months[-1])
    got = {p: int(m) for p, m in zip(fig.series["period"], fig.series["members"])}
    before = [p for p in months if p < created and p in got]
    assert before, "the brief's window reaches back before 07/2025"
    for p in got:
        key = p if isinstance(p, dt.date) else p.date()
        assert got[p] == truth[key], (p, got[p], truth[key])
