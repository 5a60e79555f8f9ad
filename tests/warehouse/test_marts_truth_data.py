"""Every mart figure against the generator's ground truth on an existing, already built data root (issue 4's
"done when" at `small` scale): the comparisons of `pipelines.generate.verify`, run on the published warehouse
of `DOANVIEN_TRUTH_DATA` (a data root where `doanvien generate` and `doanvien refresh` have run). Skipped when
the variable is unset.

    DOANVIEN_DATA_DIR=/tmp/x/data doanvien generate --scale small --seed 42 --out /tmp/x/data
    DOANVIEN_DATA_DIR=/tmp/x/data doanvien refresh
    DOANVIEN_TRUTH_DATA=/tmp/x/data .venv/bin/pytest -q tests/warehouse/test_marts_truth_data.py
    .venv/bin/python -m pipelines.generate.verify /tmp/x/data   # a summary per comparison, no pytest
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.generate.verify import COMPARISONS, published_db

DATA = os.environ.get("DOANVIEN_TRUTH_DATA")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not DATA, reason="DOANVIEN_TRUTH_DATA (a generated and refreshed data root) unset")]


@pytest.fixture(scope="module")
def con():
    import duckdb

    c = duckdb.connect(str(published_db(Path(DATA))), read_only=True)
    yield c
    c.close()


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_mart_equals_ground_truth(con, name):
    bad = COMPARISONS[name](con, Path(DATA))
    assert bad == [], f"{len(bad)} mismatches, first: {bad[:10]}"

