"""The quarantine: the refused rows of every file version, with their rule and message (CONTRACTS §4).

Ingestion writes one Parquet file per accepted file version that refused rows, `quarantine/<file_id>.parquet`
(a version with none writes nothing; older versions of the code wrote an empty file). Like the ledger (`pipelines.ingest.ledger`), the warehouse read them all on every build
(`stg_raw__refused_rows`, `dq_refused_rows`), a cost growing with history, so before every build `compact()`
folds the loose files into one immutable segment, `quarantine/segments/<stamp>.parquet` (sorted by file_id),
and merges the segments once there are many. A segment is durable before the loose files it holds are deleted:
a reader may see a file's rows twice for a moment (identical; the warehouse keeps distinct rows), never none.
`rows_for(file_id)` reads one file version's rows wherever they are (the branch workbook made on request).
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path

import polars as pl

from pipelines import config
from pipelines.ingest.ledger import MAX_SEGMENTS, UNREADABLE, _write_durable, read_or_set_aside, split_readable

SCHEMA: dict[str, pl.DataType] = {
    "file_id": pl.String, "source_sheet": pl.String, "source_row": pl.Int64, "rule": pl.String,
    "column": pl.String, "value": pl.String, "message_vi": pl.String, "message_en": pl.String,
}
SEGMENTS = "segments"


def segments_dir(qdir: Path | None = None) -> Path:
    return (Path(qdir) if qdir is not None else config.quarantine_dir()) / SEGMENTS


def loose_files(qdir: Path | None = None) -> list[Path]:
    d = Path(qdir) if qdir is not None else config.quarantine_dir()
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def segment_files(qdir: Path | None = None) -> list[Path]:
    d = segments_dir(qdir)
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def conform(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
                      for c, t in SCHEMA.items()])


def _read(files: list[Path]) -> pl.DataFrame:
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    try:
        return conform(pl.scan_parquet([os.fspath(f) for f in files]).collect())
    except (pl.exceptions.PolarsError, ValueError):  # a file an older version wrote with other columns
        return pl.concat([conform(pl.read_parquet(f)) for f in files], how="vertical")


def rows_for(file_id: str, qdir: Path | None = None) -> pl.DataFrame | None:
    """The quarantined rows of one file version (its loose file, else its rows in the segments), or None."""
    base = Path(qdir) if qdir is not None else config.quarantine_dir()
    p = base / f"{file_id}.parquet"
    if p.exists():
        try:
            return conform(pl.read_parquet(p))
        except FileNotFoundError:  # folded meanwhile: read the segments
            pass
        except (OSError, pl.exceptions.PolarsError, ValueError):  # unreadable (the next build sets it aside)
            logging.getLogger(__name__).warning("quarantine file %s cannot be read", p)
            return None
    segs = segment_files(qdir)
    if not segs:
        return None

    def scan(files):
        return conform(pl.scan_parquet([os.fspath(f) for f in files]).filter(pl.col("file_id") == file_id).collect())

    try:
        df = scan(segs)
    except (OSError, pl.exceptions.PolarsError, ValueError):  # a segment that cannot be read: the others
        good, bad = split_readable(segs, _read)
        for f in bad:
            logging.getLogger(__name__).warning("quarantine segment %s cannot be read: skipped", f)
        df = scan(good) if good else pl.DataFrame(schema=SCHEMA)
    return df.unique(maintain_order=True).sort("source_row") if df.height else None


def compact(qdir: Path | None = None, max_segments: int = MAX_SEGMENTS) -> dict:
    """Fold the loose quarantine files into a new segment, then (more than `max_segments`) merge the segments.
    The caller holds the ledger lock (ingestion writes the quarantine under it). A file version with no refused
    row has no row to keep: its empty loose file (written by older versions) is deleted. A loose file that cannot be
    read is moved to `quarantine/unreadable/`: its version's refused rows are missing from the data-quality marts
    until the file is ingested again from the archive (the accepted rows are not concerned). Returns {"folded":
    n files, "merged": n segments, "set_aside": [moved paths], "notice": Vietnamese / English text for the
    operator, or None}."""
    out: dict = {"folded": 0, "merged": 0, "set_aside": [], "notice": None}
    base = Path(qdir) if qdir is not None else config.quarantine_dir()
    loose = loose_files(qdir)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if loose:
        df, bad = read_or_set_aside(loose, _read, base / UNREADABLE)
        if bad:
            ids = ", ".join(p.name[: -len(".parquet.unreadable")] for p in bad)
            out["set_aside"] = [os.fspath(p) for p in bad]
            out["notice"] = (
                f"Vùng cách ly: {len(bad)} tệp không đọc được đã chuyển sang {base / UNREADABLE}; các dòng bị từ chối "
                f"của phiên bản tệp {ids} sẽ thiếu trong báo cáo chất lượng dữ liệu cho đến khi nạp lại tệp gốc "
                "(lưu trong archive/). Các dòng hợp lệ không bị ảnh hưởng. / "
                f"Quarantine: {len(bad)} unreadable file(s) moved to {base / UNREADABLE}; the refused rows of file "
                f"version(s) {ids} are missing from the data-quality marts until the original (in archive/) is "
                "ingested again. Accepted rows are not affected.")
        if df.height:
            _write_durable(df.sort("file_id", "source_sheet", "source_row"),
                           segments_dir(qdir) / f"{stamp}-{os.getpid()}.parquet")
        for f in loose:
            f.unlink(missing_ok=True)
        out["folded"] = len(loose)
    segs = segment_files(qdir)
    seg_df, bad_segs = read_or_set_aside(segs, _read, base / UNREADABLE)
    if bad_segs:  # the refused rows it held cannot be rebuilt (only re-ingesting the originals gives them back)
        names = ", ".join(p.name for p in bad_segs)
        seg_notice = (
            f"Vùng cách ly: {len(bad_segs)} tệp phân đoạn không đọc được ({names}) đã chuyển sang {base / UNREADABLE}; "
            "các dòng bị từ chối trong đó sẽ thiếu trong báo cáo chất lượng dữ liệu cho đến khi nạp lại tệp gốc "
            "(lưu trong archive/). Các dòng hợp lệ không bị ảnh hưởng. / "
            f"Quarantine: {len(bad_segs)} unreadable segment file(s) ({names}) moved to {base / UNREADABLE}; the "
            "refused rows they held are missing from the data-quality marts until the originals (in archive/) are "
            "ingested again. Accepted rows are not affected.")
        out["set_aside"] += [os.fspath(p) for p in bad_segs]
        out["notice"] = f"{out['notice']} {seg_notice}" if out["notice"] else seg_notice
        segs = segment_files(qdir)
    if len(segs) > max_segments:
        df = seg_df.unique(maintain_order=True)  # the readable segments, just read (segs lists no other now)
        _write_durable(df.sort("file_id", "source_sheet", "source_row"),
                       segments_dir(qdir) / f"{stamp}-{os.getpid()}-merged.parquet")
        for f in segs:
            f.unlink(missing_ok=True)
        out["merged"] = len(segs)
    return out
