"""Where things live. Every path in the project is derived from here.

The data root is `DOANVIEN_DATA_DIR` (default `./data`, relative to the working directory).
Layout under the data root (only `reference/` is committed):

    reference/                 committed reference data (provinces, map, ethnic groups, ...)
    registry/                  the Confederation's organisation registry (units, branches, employers)
    inbox/<branch>/<YYYY-MM>/<kind>/<file>   files as branches send them
    archive/<aa>/<sha256>.<ext>              original bytes, immutable, by content hash
    raw/files/<file_id>.parquet              one row per received file version (the ingest ledger)
    raw/<kind>/<file_id>.parquet             accepted rows, canonical columns + lineage
    quarantine/<file_id>.parquet             refused rows with rule, column, value, message
    reports/<file_id>.json|.xlsx             per-file ingestion reports
    warehouse/                               build area, versioned published files, CURRENT pointer
    app/                                     accounts, audit log, correction requests, subscriptions
    outbox/                                  report emails written as .eml when no SMTP is set
    ground_truth/                            what the generator knows (tests compare against it)
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = REPO_ROOT / "data" / "reference"  # committed; never the data root's copy
DBT_PROJECT_DIR = REPO_ROOT
DBT_PROFILES_DIR = REPO_ROOT / "dbt_project" / "profiles"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

KINDS = ("roster", "dues", "services", "activities", "insurance")


def data_dir() -> Path:
    """The data root, from DOANVIEN_DATA_DIR (default ./data). Read at call time, never cached."""
    return Path(os.environ.get("DOANVIEN_DATA_DIR", "data")).resolve()


def sub(name: str) -> Path:
    """A sub-directory of the data root, created on demand."""
    p = data_dir() / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def inbox_dir() -> Path:
    return sub("inbox")


def archive_dir() -> Path:
    return sub("archive")


def raw_dir() -> Path:
    return sub("raw")


def quarantine_dir() -> Path:
    return sub("quarantine")


def reports_dir() -> Path:
    return sub("reports")


def registry_dir() -> Path:
    return sub("registry")


def warehouse_dir() -> Path:
    return sub("warehouse")


def app_dir() -> Path:
    return sub("app")


def outbox_dir() -> Path:
    return sub("outbox")


def ground_truth_dir() -> Path:
    return sub("ground_truth")
