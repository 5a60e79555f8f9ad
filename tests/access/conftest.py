"""Fixtures for the access tests: one hand-made published warehouse per session (copied per test when a
test writes to the app database), and accounts for every role."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import access_fixture as wf

ROLE_UNITS = {
    "national_leader": dict(unit_code="TLD"),
    "province_leader": dict(unit_code="T08"),
    "upper_official": dict(unit_code="X08001"),
    "cdcs_official": dict(unit_code="CS0000002"),
    "analyst": {},
    "admin": {},
}


@pytest.fixture(scope="session")
def _built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("accessdw") / "data"
    root.mkdir()
    old = os.environ.get("DOANVIEN_DATA_DIR")
    try:
        wf.build(root)
    finally:
        if old is None:
            os.environ.pop("DOANVIEN_DATA_DIR", None)
        else:
            os.environ["DOANVIEN_DATA_DIR"] = old
    return root


@pytest.fixture
def dw(_built, tmp_path, monkeypatch) -> Path:
    """A private copy of the fixture data root (published warehouse, registry, ledger), empty app DB."""
    root = tmp_path / "data"
    shutil.copytree(_built, root, symlinks=False)
    # the pointer records absolute paths: rewrite them for the copy
    import json
    ptr = root / "warehouse" / "CURRENT"
    rec = json.loads(ptr.read_text())
    for k in ("path", "analyst_path"):
        rec[k] = rec[k].replace(str(_built), str(root))
    ptr.write_text(json.dumps(rec))
    shutil.rmtree(root / "app", ignore_errors=True)
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(root))
    return root


@pytest.fixture
def users(dw):
    """One account per role (the member is the first member of CS0000002)."""
    from pipelines.access import accounts
    out = {}
    for role, extra in ROLE_UNITS.items():
        out[role] = accounts.create_user(role.replace("_", "."), display_name=f"Test {role}", role=role,
                                         password=wf.PASSWORDS[role], **extra)
    m = [x for x in wf.members() if x["cdcs_code"] == "CS0000002"][0]
    out["member"] = accounts.create_user("member", display_name="Test member", role="member",
                                         password=wf.PASSWORDS["member"], member_code=m["member_code"])
    return out


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch):
    """Tests hash many passwords on two shared cores: use argon2id with minimal cost (same code path)."""
    from argon2 import PasswordHasher
    from pipelines.access import accounts
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
