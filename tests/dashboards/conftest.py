"""Fixtures of the dashboard tests: one published fixture warehouse per session (hand-built marts, published
through `pipelines.warehouse.serving`), accounts for a national and a provincial leader, and an AppTest
factory that runs the real router (`dashboards/streamlit_app.py`) logged in as one of them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

PASSWORD = "matkhau-kiem-thu-123"


@pytest.fixture(scope="session", autouse=True)
def _skip_component_scan():
    """AppTest scans every installed distribution for Streamlit v2 component manifests on every run
    (about 3 s here); the app uses no custom components, so the scan is skipped in these tests."""
    from streamlit.components.v2 import component_manager as cm

    original = cm.BidiComponentManager.discover_and_register_components
    cm.BidiComponentManager.discover_and_register_components = lambda self, **kw: None
    yield
    cm.BidiComponentManager.discover_and_register_components = original


@pytest.fixture(scope="session")
def dash_root(tmp_path_factory) -> Path:
    """A data root with the fixture warehouse published and two accounts; DOANVIEN_DATA_DIR points to it
    for the whole session of dashboard tests."""
    import warehouse_fixture

    root = tmp_path_factory.mktemp("dash") / "data"
    root.mkdir()
    old = os.environ.get("DOANVIEN_DATA_DIR")
    warehouse_fixture.publish_fixture(root)
    from argon2 import PasswordHasher

    from pipelines.access import accounts
    # argon2 at its production cost takes ~0.5 s per hash on this machine: minimal cost in tests (same path)
    hasher = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    accounts.create_user("lanhdao", display_name="Lãnh đạo Tổng Liên đoàn", role="national_leader",
                         password=PASSWORD, replace_existing=True)
    accounts.create_user("tinh08", display_name="Lãnh đạo LĐLĐ Tuyên Quang", role="province_leader",
                         unit_code="T08", password=PASSWORD, replace_existing=True)
    from pipelines.analytics import db

    db.clear_cache()
    yield root
    accounts._hasher = hasher
    if old is None:
        os.environ.pop("DOANVIEN_DATA_DIR", None)
    else:
        os.environ["DOANVIEN_DATA_DIR"] = old


@pytest.fixture
def login(dash_root):
    """login(username) -> a fresh session token for that account."""
    from pipelines.access import accounts

    def _login(username: str = "lanhdao") -> str:
        # a server-side session of the access module (the password check itself is tested in tests/access)
        return accounts.create_session(accounts.get_user(username))
    return _login


@pytest.fixture
def app(dash_root, login):
    """app(page, username='lanhdao', params=None) -> an AppTest of the router on that page, already run."""
    from streamlit.testing.v1 import AppTest

    def _app(page: str, username: str = "lanhdao", params: dict | None = None, run: bool = True):
        at = AppTest.from_file(str(REPO / "dashboards" / "streamlit_app.py"), default_timeout=60)
        at.session_state["_dv_session_token"] = login(username)
        for k, v in (params or {}).items():
            at.query_params[k] = v
        at.switch_page(f"app_pages/{page}.py")
        if run:
            at.run()
        return at
    return _app
