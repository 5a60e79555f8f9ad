"""Where things live. Every path in the project is derived from here.

The data root is `DOANVIEN_DATA_DIR` (default `./data`, relative to the working directory).
Layout under the data root (only `reference/` is committed):

    reference/                 committed reference data (provinces, map, ethnic groups, ...)
    registry/                  the Confederation's organisation registry (units, branches, employers)
    inbox/<branch>/<YYYY-MM>/<kind>/<file>   files as branches send them
    archive/<aa>/<sha256>.<ext>              original bytes, immutable, by content hash
    raw/files/<file_id>.parquet              one row per received file version (the ingest ledger)
    raw/<kind>/file_month=<YYYY-MM>/<file_id>.parquet
                                             accepted rows, canonical columns + lineage, one directory per
                                             month the file declares (hive partitioning: a build reading
                                             the restated months opens only their files); plus
                                             file_month=0000-00/_schema.parquet, empty, the exact
                                             schema every rows file of the kind has
    quarantine/<file_id>.parquet             refused rows with rule, column, value, message
    reports/<file_id>.json|.xlsx             per-file ingestion reports
    warehouse/                               build area, versioned published files, CURRENT pointer
    app/                                     accounts, audit log, correction requests, subscriptions
    outbox/                                  report emails written as .eml when no SMTP is set
    ground_truth/                            what the generator knows (tests compare against it)
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = REPO_ROOT / "data" / "reference"  # committed; never the data root's copy
DBT_PROJECT_DIR = REPO_ROOT
DBT_PROFILES_DIR = REPO_ROOT / "dbt_project" / "profiles"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

KINDS = ("roster", "dues", "services", "activities", "insurance")


def data_dir() -> Path:
    """The data root, from DOANVIEN_DATA_DIR (default ./data). The variable is read at every call (and the working
    directory, when the value is relative); only the resolution of that path is remembered (`_resolved`)."""
    value = os.environ.get("DOANVIEN_DATA_DIR", "data")
    return _resolved(value, "" if os.path.isabs(value) else os.getcwd())


@lru_cache(maxsize=64)
def _resolved(value: str, cwd: str) -> Path:
    """`Path(value).resolve()` from `cwd` ("" for an absolute value): ~0.04 ms of system calls (a realpath of
    every component), and ingestion asks ~17 times a file (8,500 files a national month)."""
    p = Path(value)
    return (p if p.is_absolute() else Path(cwd) / p).resolve()


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


ROW_KINDS = ("roster", "dues", "services", "activities", "insurance")
RAW_PARTITION = "file_month"


def raw_rows_path(kind: str, period, file_id: str) -> Path:
    """Where the accepted rows of one file version live: `raw/<kind>/file_month=<YYYY-MM>/<file_id>.parquet`
    (`period`: a date or a 'YYYY-MM…' string, the month the file declares)."""
    month = period.strftime("%Y-%m") if hasattr(period, "strftime") else str(period)[:7]
    return raw_dir() / kind / f"{RAW_PARTITION}={month}" / f"{file_id}.parquet"


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
