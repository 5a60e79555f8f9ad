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
