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


def chromium_available() -> bool:
    return shutil.which("chromium") is not None or os.path.exists("/usr/bin/chromium")


@pytest.fixture(scope="session")
def tiny_published(tmp_path_factory) -> Path:
    """Tiny generated data taken through the whole monthly job once per test session.

    Returns the data root (with `ground_truth/`, `raw/`, and a published warehouse). Tests that only
    read it share it; tests that write must use their own `data_root`. Session-scoped because the
    pipeline costs tens of seconds; the environment variable is set only while building it.
    """
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("tiny") / "data"
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(root)}
    doanvien = [sys.executable, "-m", "pipelines.cli"]
    subprocess.run([*doanvien, "generate", "--scale", "tiny", "--seed", "7", "--out", str(root)],
                   check=True, env=env, cwd=REPO_ROOT)
    subprocess.run([*doanvien, "refresh"], check=True, env=env, cwd=REPO_ROOT)
    return root
