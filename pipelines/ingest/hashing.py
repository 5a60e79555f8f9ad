"""The sha256 of a file, read in 1 MiB chunks (a file's identity in the ledger, the inbox scan and the sensor).
Standard library only, so the Dagster sensor can hash without importing the ingestion engine."""
from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
