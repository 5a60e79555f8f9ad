"""What every browser test needs: the real app served by `streamlit run` on a free loopback port, accounts made
cheaply, and Debian's Chromium with the flags this machine allows. Imported by the tests of this folder."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# the leaders' dashboard pages: (url path, title)
DASHBOARD_PAGES = [("tong_quan", "Tổng quan"), ("ban_do", "Bản đồ"), ("co_cau", "Cơ cấu"), ("bien_dong", "Biến động"),
                   ("dich_vu", "Dịch vụ & hoạt động"), ("doan_phi", "Đoàn phí"),
                   ("phat_trien", "Phát triển đoàn viên"), ("nop_bao_cao", "Tình hình nộp báo cáo"),
                   ("bao_cao_dinh_ky", "Báo cáo định kỳ")]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def accounts_in(root: Path) -> Iterator:
    """`pipelines.access.accounts` writing into `root` with a minimal argon2 cost (the server verifies with the
    cost stored in each hash: ~0.5 s per login otherwise); DOANVIEN_DATA_DIR restored afterwards."""
    from argon2 import PasswordHasher

    from pipelines.access import accounts
    old = os.environ.get("DOANVIEN_DATA_DIR")
    os.environ["DOANVIEN_DATA_DIR"] = str(root)
    hasher, accounts._hasher = accounts._hasher, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield accounts
    finally:
        accounts._hasher = hasher
        if old is None:
            os.environ.pop("DOANVIEN_DATA_DIR", None)
        else:
            os.environ["DOANVIEN_DATA_DIR"] = old


@contextlib.contextmanager
def serve_app(root: Path, *, drop_env: tuple[str, ...] = (), timeout_s: float = 90) -> Iterator[str]:
    """`dashboards/streamlit_app.py` on the data root `root`; yields the base URL once /_stcore/health answers.
    The server's output goes to `root/streamlit.log` (quoted when it does not start)."""
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    for k in drop_env:
        env.pop(k, None)
    port = free_port()
    log_path = Path(root) / "streamlit.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboards" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.toolbarMode", "minimal"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(base + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not start: " + log_path.read_text()[-2000:])
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
