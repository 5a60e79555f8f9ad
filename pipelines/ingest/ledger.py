"""The ingest ledger: one row per received file version (`file_id`), in `raw/files/` (CONTRACTS §4).

Ingestion writes each row as its own small Parquet file, `raw/files/<file_id>.parquet` (atomic, under the ledger
lock; the row is what makes a version exist). Read whole, those files grow with history: a national month is
~8,700 of them, and DuckDB or Polars pay per file opened (the warehouse's `stg_raw__files` took 5.5 s for one
national month, 11 s for two). So before every build `compact()` folds the loose rows into one immutable segment,
`raw/files/segments/<stamp>.parquet`, and, once there are many segments, merges them into one.

Every reader goes through this module (or reads `raw/files/**/*.parquet` and keeps one row per `file_id`): a row
is never lost, because a segment is written and made durable before the loose files it holds are deleted; a
reader between the two steps can see a row twice, identical, and `read_all` / `stg_raw__files` keep one.

Point lookups stay O(1): `row(file_id)` opens the loose file when it exists, else looks the id up in a per-process
index of the segments (built once per set of segment files, which never change once written).
"""
from __future__ import annotations

import datetime as _dt
import os
import threading
from pathlib import Path

import polars as pl

from pipelines import config

SCHEMA: dict[str, pl.DataType] = {
    "file_id": pl.String, "sha256": pl.String, "branch_code": pl.String, "period": pl.Date,
    "kind": pl.String, "detected_kind": pl.String, "original_name": pl.String,
    "received_at": pl.Datetime("us"), "status": pl.String, "reason_code": pl.String,
    "message_vi": pl.String, "rows_read": pl.Int64, "rows_accepted": pl.Int64, "rows_refused": pl.Int64,
    "format": pl.String, "encoding": pl.String, "ingested_at": pl.Datetime("us"),
}
SEGMENTS = "segments"
# loose files that cannot be read are moved here (`<name>.unreadable`: outside every reader's *.parquet glob)
UNREADABLE = "unreadable"
# merge the segments into one when there are more than this many (one segment is written per build)
MAX_SEGMENTS = 24


def ledger_dir(raw_dir: Path | None = None) -> Path:
    return (Path(raw_dir) if raw_dir is not None else config.raw_dir()) / "files"


def segments_dir(raw_dir: Path | None = None) -> Path:
    return ledger_dir(raw_dir) / SEGMENTS


def loose_path(file_id: str, raw_dir: Path | None = None) -> Path:
    return ledger_dir(raw_dir) / f"{file_id}.parquet"


def loose_files(raw_dir: Path | None = None) -> list[Path]:
    d = ledger_dir(raw_dir)
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def segment_files(raw_dir: Path | None = None) -> list[Path]:
    d = segments_dir(raw_dir)
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def paths(raw_dir: Path | None = None) -> list[Path]:
    """Every Parquet file holding ledger rows, oldest writes first: the segments by name (a UTC stamp), then the
    loose rows."""
    return segment_files(raw_dir) + loose_files(raw_dir)


def duckdb_glob(raw_dir: Path | None = None) -> str:
    """A glob DuckDB's read_parquet takes for every ledger file (loose rows and segments)."""
    return os.fspath(ledger_dir(raw_dir)) + "/**/*.parquet"


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Ledger rows in the exact schema (a column an older version did not write is null)."""
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
                      for c, t in SCHEMA.items()])


def _read(files: list[Path]) -> pl.DataFrame:
    if not files:
        return empty()
    try:  # one multi-file scan (Polars reads them in parallel): every file this version wrote has SCHEMA
        return conform(pl.scan_parquet([os.fspath(f) for f in files]).collect())
    except (pl.exceptions.PolarsError, ValueError):  # a file an older version wrote with other columns
        return pl.concat([conform(pl.read_parquet(f)) for f in files], how="vertical")


def _read_readable(files: list[Path]) -> pl.DataFrame:
    """The rows of the files that can be read, skipping (with a warning) those that cannot."""
    import logging

    good, bad = split_readable(files, _read)
    for f in bad:
        logging.getLogger(__name__).warning("ledger file %s cannot be read: skipped", f)
    return _read(good)


def read_all(raw_dir: Path | None = None) -> pl.DataFrame:
    """Every ledger row, one per file_id: the latest written (segments in the order written, then the loose rows),
    so a row seen twice mid-compaction is kept once."""
    for attempt in range(3):
        files = paths(raw_dir)
        try:
            df = _read(files)
            break
        except (OSError, pl.exceptions.PolarsError, ValueError):
            # a loose file folded (deleted) by a compaction between listing and reading: list again
            if attempt < 2 and not all(f.exists() for f in files):
                continue
            # a file that cannot be read (the next build's compaction sets it aside and says so): the others
            df = _read_readable(files)
            break
    return df.unique(subset="file_id", keep="last", maintain_order=True) if df.height else df


def write_row(row: dict, write=None) -> Path:
    """Write one ledger row as its loose file (`write(df, path)`: the caller's atomic Parquet writer)."""
    df = pl.DataFrame([{c: row.get(c) for c in SCHEMA}], schema=SCHEMA)
    path = loose_path(row["file_id"])
    if write is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        df.write_parquet(tmp)
        os.replace(tmp, path)
    else:
        write(df, path)
    return path


# ----------------------------------------------------------------------------------------- point lookups
_index_lock = threading.Lock()
_index: dict = {"key": None, "df": None, "pos": {}}


def _segment_index(raw_dir: Path | None = None) -> tuple[pl.DataFrame, dict[str, int]]:
    files = segment_files(raw_dir)
    key = tuple((os.fspath(f), f.stat().st_size) for f in files if f.exists())
    with _index_lock:
        if _index["key"] != key:
            try:
                df = _read([Path(k[0]) for k in key])
            except (OSError, pl.exceptions.PolarsError, ValueError):  # an unreadable segment (set aside next build)
                df = _read_readable([Path(k[0]) for k in key])
            if df.height:
                df = df.unique(subset="file_id", keep="last", maintain_order=True)
            _index.update(key=key, df=df, pos={fid: i for i, fid in enumerate(df.get_column("file_id").to_list())})
        return _index["df"], _index["pos"]


def row(file_id: str, raw_dir: Path | None = None) -> dict | None:
    """The ledger row of `file_id`, or None."""
    base = Path(raw_dir) if raw_dir is not None else config.raw_dir()  # once: a lookup per file of a batch
    p = loose_path(file_id, base)
    if p.exists():
        try:
            return conform(pl.read_parquet(p)).row(0, named=True)
        except FileNotFoundError:  # compacted meanwhile: it is in a segment now
            pass
    df, pos = _segment_index(base)
    i = pos.get(file_id)
    return df.row(i, named=True) if i is not None else None


def has(file_id: str, raw_dir: Path | None = None) -> bool:
    return loose_path(file_id, raw_dir).exists() or row(file_id, raw_dir) is not None


# ----------------------------------------------------------------------------------------- compaction
def _write_durable(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def split_readable(files: list[Path], read) -> tuple[list[Path], list[Path]]:
    """(files `read([f])` can read, files it cannot), each opened alone; files gone meanwhile are in neither."""
    good, bad = [], []
    for f in files:
        try:
            read([f])
            good.append(f)
        except FileNotFoundError:
            continue
        except (OSError, pl.exceptions.PolarsError, ValueError):
            bad.append(f)
    return good, bad


def read_or_set_aside(files: list[Path], read, aside_dir: Path) -> tuple[pl.DataFrame, list[Path]]:
    """`read(files)`, or, when some of them cannot be read (a truncated or overwritten Parquet file: a disk fault,
    a copy cut short, a hand edit), the others, with the unreadable ones moved to `aside_dir` as
    `<name>.unreadable` (kept for inspection, out of every reader's glob). Returns (rows, the moved files' new
    paths). The caller holds the ledger lock."""
    try:
        return read(files), []
    except FileNotFoundError:
        raise
    except (OSError, pl.exceptions.PolarsError, ValueError):
        pass
    good, bad = split_readable(files, read)
    if not bad:  # not a file's fault (e.g. out of memory): let it fail as it did
        return read(good), []
    aside_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for f in bad:
        dst = aside_dir / f"{f.name}.unreadable"
        os.replace(f, dst)
        moved.append(dst)
    return read(good), moved


def row_from_report(file_id: str, raw_dir: Path | None = None) -> dict | None:
    """A ledger row rebuilt from the version's JSON report (`<data>/reports/<file_id>.json`, written with the same
    values when the file was ingested), or None when there is none (a duplicate arrival has no report of its own)."""
    import json

    reports = (Path(raw_dir).parent / "reports") if raw_dir is not None else config.reports_dir()
    path = reports / f"{file_id}.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if d.get("file_id") != file_id:
        return None
    row = {c: d.get(c) for c in SCHEMA}
    try:
        row["period"] = _dt.date.fromisoformat(f"{d['period'][:7]}-01") if d.get("period") else None
        row["received_at"] = _dt.datetime.fromisoformat(d["received_at"]) if d.get("received_at") else None
    except (TypeError, ValueError):
        return None
    row["ingested_at"] = _dt.datetime.fromtimestamp(path.stat().st_mtime)
    return row


def compact(raw_dir: Path | None = None, max_segments: int = MAX_SEGMENTS) -> dict:
    """Fold the loose ledger rows into a new segment, then (more than `max_segments`) merge the segments.

    The caller holds the ledger lock (`engine.ledger_lock`), so no row is written meanwhile. Each new file is
    durable before the files it replaces are deleted: a crash leaves rows twice (kept once by every reader,
    folded again next time), never missing. A loose file that cannot be read is moved to `files/unreadable/` and
    its row rebuilt from the version's JSON report when there is one; so is a segment that cannot be read (its rows
    rebuilt from every JSON report left without a ledger row). Returns {"folded": n loose rows, "merged":
    n segments merged, "set_aside": [moved paths], "restored": [file_ids rebuilt], "notice": Vietnamese /
    English text for the operator, or None}."""
    out: dict = {"folded": 0, "merged": 0, "set_aside": [], "restored": [], "notice": None}
    loose = loose_files(raw_dir)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if loose:
        df, bad = read_or_set_aside(loose, _read, ledger_dir(raw_dir) / UNREADABLE)
        if bad:
            ids = [p.name[: -len(".parquet.unreadable")] for p in bad]
            rows = [r for r in (row_from_report(i, raw_dir) for i in ids) if r is not None]
            if rows:
                df = pl.concat([df, pl.DataFrame(rows, schema=SCHEMA)], how="vertical")
            out["set_aside"], out["restored"] = [os.fspath(p) for p in bad], [r["file_id"] for r in rows]
            lost = len(bad) - len(rows)
            lost = [i for i in ids if i not in set(out["restored"])]
            out["notice"] = (
                f"Sổ ghi nhận tệp: {len(bad)} tệp không đọc được đã chuyển sang {ledger_dir(raw_dir) / UNREADABLE}; "
                f"{len(rows)} dòng đã khôi phục từ báo cáo JSON của tệp"
                + (f"; {len(lost)} dòng không khôi phục được (không có báo cáo JSON: {', '.join(lost)}). Một lần nhận "
                   "trùng lặp không mất gì; một phiên bản tệp khác chỉ được tính lại khi nạp lại tệp gốc (lưu trong "
                   "archive/)" if lost else "") + ". / "
                f"Ingest ledger: {len(bad)} unreadable file(s) moved to {ledger_dir(raw_dir) / UNREADABLE}; "
                f"{len(rows)} row(s) rebuilt from the files' JSON reports"
                + (f"; {len(lost)} not rebuilt (no JSON report: {', '.join(lost)}). A duplicate arrival loses "
                   "nothing; any other file version counts again once its original (in archive/) is ingested again"
                   if lost else "") + ".")
        df = df.unique(subset="file_id", keep="last", maintain_order=True)
        _write_durable(df.sort("file_id"), segments_dir(raw_dir) / f"{stamp}-{os.getpid()}.parquet")
        for f in loose:
            f.unlink(missing_ok=True)
        out["folded"] = len(loose)
    segs = segment_files(raw_dir)
    # a segment that cannot be read fails every build that reads the ledger: set it aside too, and rebuild the rows
    # it held from the JSON reports that have no ledger row left (a report is written just before its ledger row)
    seg_df, bad_segs = read_or_set_aside(segs, _read, ledger_dir(raw_dir) / UNREADABLE)
    if bad_segs:
        known = set(seg_df.get_column("file_id").to_list()) if seg_df.height else set()
        reports = (Path(raw_dir).parent / "reports") if raw_dir is not None else config.reports_dir()
        missing = sorted(p.stem for p in reports.glob("*.json") if p.stem not in known)
        rows = [r for r in (row_from_report(i, raw_dir) for i in missing) if r is not None]
        if rows:
            _write_durable(pl.DataFrame(rows, schema=SCHEMA).sort("file_id"),
                           segments_dir(raw_dir) / f"{stamp}-{os.getpid()}-restored.parquet")
        out["set_aside"] += [os.fspath(p) for p in bad_segs]
        out["restored"] += [r["file_id"] for r in rows]
        seg_notice = (
            f"Sổ ghi nhận tệp: {len(bad_segs)} tệp phân đoạn không đọc được đã chuyển sang "
            f"{ledger_dir(raw_dir) / UNREADABLE}; {len(rows)} dòng đã khôi phục từ báo cáo JSON của các phiên bản "
            "tệp. Các lần nhận trùng lặp chỉ ghi trong tệp đó không khôi phục được (không ảnh hưởng số liệu). / "
            f"Ingest ledger: {len(bad_segs)} unreadable segment file(s) moved to {ledger_dir(raw_dir) / UNREADABLE}; "
            f"{len(rows)} row(s) rebuilt from the file versions' JSON reports. Duplicate arrivals recorded only in "
            "that file are not rebuilt (no figure depends on them).")
        out["notice"] = f"{out['notice']} {seg_notice}" if out["notice"] else seg_notice
        segs = segment_files(raw_dir)
    if len(segs) > max_segments:
        # later segments hold the later writes of a file_id (a refused version rewritten): keep the last (the rows
        # just read, unless segments were set aside and restored meanwhile)
        df = (_read(segs) if bad_segs else seg_df).unique(subset="file_id", keep="last", maintain_order=True)
        _write_durable(df.sort("file_id"), segments_dir(raw_dir) / f"{stamp}-{os.getpid()}-merged.parquet")
        for f in segs:
            f.unlink(missing_ok=True)
        out["merged"] = len(segs)
    return out
