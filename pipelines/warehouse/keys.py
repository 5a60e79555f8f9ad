"""The member-key secret (CONTRACTS §6): the key of the keyed hash that pseudonymises members.

It comes from `DOANVIEN_MEMBER_KEY_SECRET`; without it, a development secret is generated once into
`<data>/app/member_key.secret` (permissions 0600) and reused. It is never written into the warehouse.
"""
from __future__ import annotations

import os
import secrets

from pipelines import config

ENV_VAR = "DOANVIEN_MEMBER_KEY_SECRET"


def secret_path():
    return config.app_dir() / "member_key.secret"


def member_key_secret() -> str:
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return value
    path = secret_path()
    if not path.exists():
        # create with its content in one step: write a private temp file, then hard-link it into place
        # (link fails if another process won the race; then we read theirs)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise RuntimeError(f"{path} is empty; delete it or set {ENV_VAR}")
    return value
