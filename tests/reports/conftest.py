"""Fixtures for the report-email tests: a published warehouse (the dashboards' hand-built fixture, the
contract's mart names), accounts, and a real SMTP server on loopback (aiosmtpd)."""
from __future__ import annotations

import importlib.util
import shutil
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]


def _dash_fixture():
    spec = importlib.util.spec_from_file_location("dash_warehouse_fixture",
                                                  REPO / "tests" / "dashboards" / "warehouse_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def published_template(tmp_path_factory):
    """Publish the fixture warehouse once; tests copy the pointer (the versions are read-only)."""
    import os

    root = tmp_path_factory.mktemp("reports_wh") / "data"
    root.mkdir()
    old = os.environ.get("DOANVIEN_DATA_DIR")
    try:
        _dash_fixture().publish_fixture(root)
    finally:
        if old is None:
            os.environ.pop("DOANVIEN_DATA_DIR", None)
        else:
            os.environ["DOANVIEN_DATA_DIR"] = old
    return root


@pytest.fixture
def wh(data_root, published_template, monkeypatch):
    """A data root with the published fixture warehouse, no SMTP configured, fast back-off."""
    shutil.copytree(published_template / "warehouse", data_root / "warehouse")
    for k in ("DOANVIEN_SMTP_HOST", "DOANVIEN_SMTP_PORT", "DOANVIEN_SMTP_USER", "DOANVIEN_SMTP_PASSWORD"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DOANVIEN_SMTP_FROM", "bao-cao@doanvien.test")
    monkeypatch.setenv("DOANVIEN_REPORTS_BACKOFF", "0.01")
    monkeypatch.setenv("DOANVIEN_REPORTS_RETRIES", "3")
    return data_root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingHandler:
    """Records every message; refuses chosen recipients at RCPT with a chosen reply."""

    def __init__(self):
        self.messages: list[SimpleNamespace] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(SimpleNamespace(
                mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                raw=envelope.original_content or envelope.content,
                msg=message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)))
        return "250 Message accepted for delivery"

    def to(self, addr: str) -> list[SimpleNamespace]:
        return [m for m in self.messages if addr in m.rcpt_tos]


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.handler = RecordingHandler()
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(wh, monkeypatch):
    """A real SMTP server on a free loopback port, configured through the environment (not started
    by the fixture when a test wants it down first: call .start())."""
    srv = SmtpServer(free_port())
    monkeypatch.setenv("DOANVIEN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DOANVIEN_SMTP_PORT", str(srv.port))
    monkeypatch.setenv("DOANVIEN_SMTP_SECURITY", "none")
    monkeypatch.setenv("DOANVIEN_SMTP_TIMEOUT", "5")
    yield srv
    srv.stop()


@pytest.fixture
def accounts(wh):
    from pipelines.access import accounts as A

    pw = "mat-khau-dai-12345"
    made = {
        "lanhdao.t08": A.create_user("lanhdao.t08", display_name="Lãnh đạo T08", role="province_leader",
                                     unit_code="T08", email="lanhdao.t08@congdoan.test", password=pw),
        "lanhdao.t01": A.create_user("lanhdao.t01", display_name="Lãnh đạo T01", role="province_leader",
                                     unit_code="T01", email="lanhdao.t01@congdoan.test", password=pw),
        "canbo.x01001": A.create_user("canbo.x01001", display_name="Cán bộ X01001", role="upper_official",
                                      unit_code="X01001", email="canbo.x01001@congdoan.test", password=pw),
        "tld": A.create_user("tld", display_name="Lãnh đạo TLĐ", role="national_leader",
                             email="tld@congdoan.test", password=pw),
    }
    return made
