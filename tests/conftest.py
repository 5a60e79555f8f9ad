"""Shared test fixtures. Every test that writes data gets its own DOANVIEN_DATA_DIR."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A fresh, empty data root for one test (DOANVIEN_DATA_DIR points to it)."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    return root


# ---- two xdist workers (`make test`: `-n 2 --dist loadgroup`) -------------------------------------------------
# pytest 9 ignores the `@group` suffix xdist's own loadgroup writes into node ids, so the scheduling units are made
# here, in the controller's scheduler (`pytest_xdist_make_scheduler`), from node ids alone:
# - a module with a module-scoped fixture (WHOLE_MODULES: the handmade warehouse, the ground-truth build, a served
#   app…) runs whole on one worker, so that fixture is built once; a check at collection fails the run when a
#   module gains such a fixture and is not listed;
# - every other test is its own unit (the finest balance);
# - the tiny pipeline (`tiny_published`) is built once per run, by whichever worker needs it first, and shared
#   through a file lock (its readers never write into it);
# - the costly units go first (COSTLY_FIRST), so that no long unit starts last and runs alone.
WHOLE_MODULES = (
    "tests/e2e/test_access_browser.py",
    "tests/e2e/test_access_real_warehouse.py",
    "tests/e2e/test_dashboards_browser.py",
    "tests/e2e/test_dashboards_real_browser.py",
    "tests/generate/test_generator.py",
    "tests/ingest/test_defects.py",
    "tests/warehouse/test_marts_ground_truth.py",
    "tests/warehouse/test_marts_handmade.py",
    "tests/warehouse/test_marts_truth_data.py",
    "tests/warehouse/test_serving_e2e.py",
)
COSTLY_FIRST = (
    "tests/dashboards/test_distinct_members.py::test_repeated_tables_of_the_pipeline_warehouse_are_the_facts_repeated_rows",
    "tests/warehouse/test_marts_handmade.py",
    "tests/warehouse/test_month_by_month.py::test_month_by_month_refresh_equals_a_full_rebuild_across_cccd_switches",
    "tests/warehouse/test_rekey_publish.py::test_member_account_follows_its_person_through_an_incremental_publish",
    "tests/e2e/test_dashboards_real_browser.py",
    "tests/warehouse/test_marts_ground_truth.py",
    "tests/warehouse/test_serving_e2e.py",
)


def xdist_unit(nodeid: str) -> str:
    """The scheduling unit of a test: its module when the module is in WHOLE_MODULES, else the test itself."""
    module = nodeid.split("::")[0]
    return module if module in WHOLE_MODULES else nodeid


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            config.option.loadscopereorder = False  # keep the order of the collection (below): costly units first

        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return UnitScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    unlisted, grouped = set(), set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("xdist_group"):
            grouped.add(module)  # xdist's own groups do nothing under pytest 9: UnitScheduling decides
        info = getattr(item, "_fixtureinfo", None)
        for defs in (info.name2fixturedefs.values() if info else ()):
            if any(d.scope == "module" and str(d.baseid).split("::")[0] == module for d in defs) \
                    and module not in WHOLE_MODULES:
                unlisted.add(module)
    if grouped:
        raise pytest.UsageError("xdist_group marks are ignored here (pytest 9); list the module in tests/conftest.py "
                                "WHOLE_MODULES instead: " + ", ".join(sorted(grouped)))
    if unlisted:
        raise pytest.UsageError("these modules have module-scoped fixtures but are not in tests/conftest.py "
                                "WHOLE_MODULES (each xdist worker would build them): " + ", ".join(sorted(unlisted)))
    rank = {unit: k for k, unit in enumerate(COSTLY_FIRST)}
    items.sort(key=lambda item: rank.get(xdist_unit(item.nodeid), rank.get(item.nodeid.split("[")[0], len(rank))))


def chromium_available() -> bool:
    return shutil.which("chromium") is not None or os.path.exists("/usr/bin/chromium")


@pytest.fixture(scope="session")
def tiny_published(tmp_path_factory, worker_id) -> Path:
    """Tiny generated data taken through the whole monthly job once per test run.

    Returns the data root (with `ground_truth/`, `raw/`, and a published warehouse). Tests that only
    read it share it and write nothing into it (the ground-truth module keeps its dbt state in its own directory);
    tests that write must use their own `data_root` (or a copy). Built once per run because the
    pipeline costs tens of seconds: under xdist, the first worker that needs it builds it in the run's shared
    temporary directory while holding a file lock, and the other worker waits for it and reads the same root. The
    environment variable is set only while building it.
    """
    import subprocess
    import sys

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "tiny_published"
    root = shared / "data"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "done").exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir(parents=True)
            env = {**os.environ, "DOANVIEN_DATA_DIR": str(root)}
            doanvien = [sys.executable, "-m", "pipelines.cli"]
            subprocess.run([*doanvien, "generate", "--scale", "tiny", "--seed", "7", "--out", str(root)],
                           check=True, env=env, cwd=REPO_ROOT)
            subprocess.run([*doanvien, "refresh"], check=True, env=env, cwd=REPO_ROOT)
            (shared / "done").touch()
    return root
