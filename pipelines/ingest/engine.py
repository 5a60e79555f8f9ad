"""Ingestion engine: one uploaded file → archive, raw rows, quarantine, ledger, reports (CONTRACTS §4).

Public API (the CLI, the upload page and the Dagster sensor call exactly these):

``ingest_file(path, *, branch_code, period, declared_kind, received_at=None, original_name=None) -> IngestReport``
    Ingest one file. ``period`` is ``"YYYY-MM"``; ``declared_kind`` one of roster|dues|services|activities|
    insurance; ``received_at`` defaults to the file's mtime; ``original_name`` is display text only (the
    name is never used as a path). Status ``accepted`` (possibly with refused rows), ``refused`` (whole
    file; ``reason_code`` one of unreadable, empty, wrong_kind, wrong_period, unknown_branch, too_large,
    unsafe_file, legacy_encoding) or ``duplicate`` (same bytes received before; nothing changes).

``pending_inbox_files(inbox=None) -> list[InboxFile]``
    Files under ``<data>/inbox/<branch>/<YYYY-MM>/<kind>/`` not yet received for their branch × period × kind
    (same sha256 and same declaration in the ledger), sorted by received_at (mtime) then name.

``ingest_inbox(inbox=None, workers=None) -> list[IngestReport]``
    Ingest every pending file in arrival order through ``batch.ingest_batch`` (worker processes, one lane
    per branch); one bad file never stops the others. Great Expectations runs once per kind at the end of
    the batch on a pooled sample (see `GX_POOL_ROWS`), not once per file.

``ingest_batch(items, workers=None) -> list[IngestReport]``
    The batch door (Dagster asset, benchmark): ``(path, branch, period, kind, received_at)`` items.

``ingest_many(items, chunk_files=None) -> list[IngestReport | Exception]``
    What a batch worker runs (`batch.run_lane`): `ingest_file`'s outcome for each item, in order, with the
    files of a chunk normalised and validated together (see `CHUNK_FILES`, `CHUNK_BYTES`).

``branch_workbook(file_id) -> Path | None``
    The branch's workbook of an accepted file (a batch defers it; made from the archive on first request).
    ``branch_workbook_or_reason(file_id)`` also says why there is none (``WORKBOOK_UNAVAILABLE``:
    not accepted, original gone or unreadable, refused rows unreadable) and ``branch_workbook_message`` words it.

``gx_pooled()``
    Context manager giving the same pooling to callers that loop over ``ingest_file`` themselves.

``IngestReport`` is a dataclass (``.to_dict()``, ``.to_json()``); see its fields below.

Order of work for one file: read bytes → sha256 → archive ``archive/<aa>/<sha256>.<ext>`` (write-once) →
duplicate check (O(1): the ledger files this content can have) → read/lay out/normalise/validate and write
raw rows, quarantine and the xlsx report under temporary names (no lock held) → under the ledger lock
(``<data>/raw/.lock``, fcntl): duplicate re-check, temporary files moved into place (os.replace), JSON report,
ledger row last (the ledger row is what makes the version exist). rows_read = rows_accepted + rows_refused is
asserted before anything is written. A new file for the same branch × period × kind supersedes the earlier
one by its later ``received_at`` (both kept in raw; the warehouse picks the latest).

File ids: ``sha256[:16]`` (CONTRACTS §4). The same bytes declared for a *different* branch × period × kind
(a roster first misfiled under services, then sent under roster) are a second file version, not a duplicate:
it gets ``alt_file_id`` = first 16 hex of sha256("<sha256>|<branch>|<YYYY-MM>|<kind>"), so every ledger row
keeps a unique file_id. The same bytes for the same declaration are ``duplicate_content``: nothing changes
in raw or quarantine, but the arrival gets a ledger row of its own (status ``duplicate``, no rows) with
``duplicate_file_id`` = first 16 hex of sha256("<sha256>|<branch>|<YYYY-MM>|<kind>|<received_at>"), so the
warehouse's submissions show it (CONTRACTS §4). Idempotent: an arrival already recorded (the same
received_at as the version it repeats, or an existing duplicate row) writes nothing, and
``pending_inbox_files`` skips any content already received for its declaration.

Row rule across files (one person active in two branches' rosters in the same month) is left to the
warehouse (dq_member_conflicts); within one file it is flagged (``active_in_two_units``) here.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import polars as pl

from pipelines import config
from pipelines.ingest import ledger as ledger_store
from pipelines.ingest import quarantine as quarantine_store
from pipelines.ingest.hashing import sha256_file
from pipelines.ingest.layout import detect_layout
from pipelines.ingest.mapping import KINDS
from pipelines.ingest.readers import FileRefused, read_grids, sniff_format, MAX_FILE_BYTES

__all__ = ["IngestReport", "InboxFile", "ingest_file", "ingest_batch", "branch_workbook", "branch_workbook_or_reason",
           "branch_workbook_message", "WORKBOOK_UNAVAILABLE", "pending_inbox_files",
           "ingest_inbox", "gx_pooled",
           "sanitise_name", "neutralise"]

DUPLICATE_MESSAGE = "Tệp này đã được nhận trước đây"
# The branch's .xlsx report lists every row up to this size, only the refused rows above it.
REPORT_FULL_ROWS = int(os.environ.get("DOANVIEN_INGEST_REPORT_FULL_ROWS", 20_000))
# Set by `batch.run_lane`: a batch defers each file's branch workbook to `branch_workbook(file_id)` (about a
# fifth of a small file's cost, for a workbook few branches open); a single upload writes it at once.
DEFER_WORKBOOK = False
REASON_VI = {
    "unreadable": "Không đọc được tệp.",
    "empty": "Tệp không có dòng dữ liệu nào.",
    "wrong_kind": "Loại báo cáo trong tệp không đúng với loại đã khai báo.",
    "wrong_period": "Kỳ báo cáo không hợp lệ hoặc không khớp với nội dung tệp.",
    "unknown_branch": "Mã đơn vị gửi báo cáo không có trong danh mục tổ chức.",
    "too_large": "Tệp quá lớn.",
    "unsafe_file": "Tệp không an toàn, bị từ chối.",
    "legacy_encoding": "Tệp dùng bảng mã cũ không chuyển đổi được.",
}
KIND_VI = {"roster": "danh sách đoàn viên", "dues": "báo cáo đoàn phí", "services": "danh sách hỗ trợ đoàn viên",
           "activities": "danh sách tham gia hoạt động", "insurance": "danh sách đơn vị tham gia BHXH"}
LEDGER_COLUMNS = ["file_id", "sha256", "branch_code", "period", "kind", "detected_kind", "original_name",
                  "received_at", "status", "reason_code", "message_vi", "rows_read", "rows_accepted",
                  "rows_refused", "format", "encoding", "ingested_at"]
RAW_TYPED = {
    "roster": ["cdcs_code", "full_name", "birth_date", "birth_date_precision", "gender", "ethnicity_code", "cccd",
               "cmnd", "bhxh_code", "member_code", "join_date", "join_date_precision", "insurance_salary",
               "leave_date", "leave_date_precision", "leave_reason_code"],
    "dues": ["cdcs_code", "cdcs_name", "members_count", "salary_fund", "dues_expected", "dues_collected"],
    "services": ["cdcs_code", "full_name", "cccd", "cmnd", "program", "service_date", "service_date_precision",
                 "amount"],
    "activities": ["cdcs_code", "activity_type", "activity_name", "activity_date", "activity_date_precision",
                   "full_name", "cccd", "cmnd"],
    "insurance": ["employer_code", "employer_name", "province_new_code", "industry_code", "ownership_type",
                  "insured_workers", "insured_women"],
}


# The exact schema of every raw rows file of a kind (lineage, typed canonical columns, flags): every file of a kind
# has it, so the warehouse reads raw/<kind>/ without union_by_name (which opens every file of history to unify
# schemas) and binds on raw/<kind>/file_month=0000-00/_schema.parquet, an empty file of this schema
# (`write_raw_schema_templates`): a file missing a column then fails loudly instead of losing the column.
_DATE_COLS = {"birth_date", "join_date", "leave_date", "service_date", "activity_date"}
_INT_COLS = {"insurance_salary", "members_count", "salary_fund", "dues_expected", "dues_collected", "amount",
             "insured_workers", "insured_women"}
RAW_SCHEMA = {
    kind: pl.Schema({"file_id": pl.String, "branch_code": pl.String, "period": pl.Date, "source_sheet": pl.String,
                     "source_row": pl.Int64, "received_at": pl.Datetime("us"),
                     **{c: (pl.Date if c in _DATE_COLS else pl.Int64 if c in _INT_COLS else pl.String) for c in cols},
                     "flags": pl.List(pl.String)})
    for kind, cols in RAW_TYPED.items()
}
SCHEMA_TEMPLATE_MONTH = "0000-00"


@dataclass
class IngestReport:
    file_id: str
    sha256: str
    status: str                       # accepted | refused | duplicate | error
    reason_code: str | None
    message_vi: str
    branch_code: str
    period: str
    kind: str
    detected_kind: str | None = None
    original_name: str = ""
    received_at: str | None = None
    format: str | None = None
    encoding: str | None = None
    source_sheet: str | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_refused: int = 0
    counts_by_rule: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    json_report: str | None = None
    xlsx_report: str | None = None
    xlsx_on_demand: bool = False      # batch: the workbook is made by `branch_workbook(file_id)` when asked for
    raw_path: str | None = None
    quarantine_path: str | None = None
    gx: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return self.to_json_bytes().decode("utf-8")

    def to_json_bytes(self) -> bytes:
        """The report as indented UTF-8 JSON: the text `json.dumps(self.to_dict(), ensure_ascii=False, indent=2,
        default=str)` gives, made by orjson (~30× faster: a national batch writes ~8,500 reports twice, the
        second time in the batch's own process, after the workers, while nothing else runs). Dates and other
        non-JSON values become their str() as before (OPT_PASSTHROUGH_DATETIME; no numpy option)."""
        return orjson.dumps(self, default=str, option=_REPORT_JSON_OPTIONS)

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "duplicate")


@dataclass
class InboxFile:
    path: Path
    branch_code: str | None
    period: str | None
    kind: str | None
    received_at: _dt.datetime
    sha256: str


_REPORT_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


# ------------------------------------------------------------------------------------------- helpers
_BIDI = re.compile("[\u0000-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def sanitise_name(name: str | None) -> str:
    """Display-only file name: last path component, no control/bidi characters, NFC, ≤120 chars."""
    if not name:
        return ""
    s = unicodedata.normalize("NFC", str(name))
    s = re.split(r"[\\/]", s)[-1]
    s = _BIDI.sub("", s).strip().lstrip(".")
    return s[:120]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "{")


def neutralise(v):
    """Formula-like text stays data: prefix an apostrophe (ASVS 1.2.10). Numbers pass unchanged."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def _atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write under a temporary name, then rename. `durable`: fsync first (the archived original bytes); a
    derived file that can be rebuilt (the JSON report) skips the ~5–10 ms fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


class _Stage:
    """Files written under temporary names while a file is processed (outside the lock), moved into place
    with os.replace under the ledger lock once the duplicate check still passes, or deleted."""

    def __init__(self) -> None:
        self.moves: list[tuple[Path, Path]] = []

    def path_for(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.staged")
        self.moves.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.moves:
            os.replace(tmp, final)
        self.moves = []

    def discard(self) -> None:
        for tmp, _ in self.moves:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.moves = []


def _atomic_parquet(df: pl.DataFrame, path: Path, stage: _Stage | None = None) -> None:
    if stage is not None:
        df.write_parquet(stage.path_for(path))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def ledger_lock():
    lock_path = config.raw_dir() / ".lock"
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def raw_schema_template_path(kind: str, raw_dir: Path | None = None) -> Path:
    """`raw/<kind>/file_month=0000-00/_schema.parquet`: sorts before every month directory, so DuckDB binds on it."""
    base = Path(raw_dir) if raw_dir is not None else config.raw_dir()
    return base / kind / f"{config.RAW_PARTITION}={SCHEMA_TEMPLATE_MONTH}" / "_schema.parquet"


def write_raw_schema_templates(raw_dir: Path | None = None) -> list[str]:
    """Write (or rewrite, when the code's schema changed) the empty `_schema.parquet` of every kind under
    `raw_dir` (default: the data root's raw zone). Returns the kinds written."""
    done = []
    for kind, schema in RAW_SCHEMA.items():
        path = raw_schema_template_path(kind, raw_dir)
        if path.exists() and pl.read_parquet_schema(path) == dict(schema):
            continue
        _atomic_parquet(pl.DataFrame(schema=schema), path)
        done.append(kind)
    return done


def _to_raw_schema(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    """A rows file written by an earlier version, in this version's exact schema (a missing column null)."""
    schema = RAW_SCHEMA[kind]
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
                      for c, t in schema.items()])


def migrate_raw_layout() -> int:
    """Bring a raw zone written by an earlier version to this layout: rows files written flat
    (`raw/<kind>/<file_id>.parquet`) go to their month directory (`config.raw_rows_path`; the month their `period`
    column declares, or their ledger row's; a file with neither goes to `raw/<kind>/unplaced/`, kept, unread),
    rewritten in this version's schema (`RAW_SCHEMA`), and the schema templates are written. Idempotent, under the ledger lock; returns how many files moved. Called before every
    build reads the raw zone, so a data root ingested by an older version loses nothing."""
    flat = [p for kind in config.ROW_KINDS if (config.raw_dir() / kind).is_dir()
            for p in (config.raw_dir() / kind).glob("*.parquet")]
    moved = 0
    with ledger_lock():
        write_raw_schema_templates()
        for src in flat:
            if not src.exists():
                continue
            kind = src.parent.name
            df = pl.read_parquet(src)
            month = None
            if df.height and "period" in df.columns:
                month = df.get_column("period").cast(pl.Date).min().strftime("%Y-%m")
            elif (led := ledger_store.row(src.stem)) is not None and led["period"] is not None:
                month = str(led["period"])[:7]  # no row: its ledger row's month
            if month is None:  # no month to tell: kept aside (not read by the warehouse), never deleted
                dst = config.raw_dir() / kind / "unplaced" / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                moved += 1
                continue
            _atomic_parquet(_to_raw_schema(df, kind), config.raw_rows_path(kind, month, src.stem))
            src.unlink()
            moved += 1
    return moved


def ledger() -> pl.DataFrame:
    """Every ledger row, one per file_id (`pipelines.ingest.ledger.read_all`)."""
    return ledger_store.read_all()


def alt_file_id(sha: str, branch_code: str, period: str, kind: str) -> str:
    """file_id of the same bytes declared for a second branch × period × kind (e.g. a roster first misfiled
    under services, then sent under roster): the first declaration of a content keeps ``sha256[:16]``
    (CONTRACTS §4); another declaration gets the first 16 hex of sha256("<sha256>|<branch>|<YYYY-MM>|<kind>")."""
    return hashlib.sha256(f"{sha}|{branch_code}|{period}|{kind}".encode()).hexdigest()[:16]


def duplicate_file_id(sha: str, branch_code: str, period: str, kind: str, received: _dt.datetime) -> str:
    """file_id of a duplicate arrival (the same bytes, same declaration, received again at ``received``)."""
    return hashlib.sha256(f"{sha}|{branch_code}|{period}|{kind}|{received.isoformat(sep=' ')}".encode()
                          ).hexdigest()[:16]


def find_version(sha: str, branch_code: str, period: str, kind: str) -> tuple[dict | None, str]:
    """(ledger row of this content already received for this declaration, or None; file_id to use).

    O(1): looks up the two ledger rows this content can have (no scan of the whole ledger)."""
    pdate = _period_date(period)
    primary, alt = sha[:16], alt_file_id(sha, branch_code, period, kind)
    prim_row = None
    for fid in (primary, alt):
        row = ledger_store.row(fid)
        if row is None or row["sha256"] != sha:
            continue
        if fid == primary:
            prim_row = row
        if (row["branch_code"] or "") == branch_code and (row["kind"] or "") == kind and row["period"] == pdate:
            return row, fid
    return None, (primary if prim_row is None else alt)


def _period_date(period: str) -> _dt.date | None:
    m = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return _dt.date(int(m.group(1)), int(m.group(2)), 1)


def _month_end(d: _dt.date) -> _dt.date:
    nxt = _dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - _dt.timedelta(days=1)


# ------------------------------------------------------------------------------------------- registry
# the organisation registry, loaded once per process and indexed: `pipelines/ingest/registry.py`
def _branch_known(branch: str, period: _dt.date) -> bool | None:
    from pipelines.ingest.registry import branch_known
    return branch_known(branch, period)


def _units_of_branch(branch: str, start: _dt.date, end: _dt.date | None = None) -> pl.Series | None:
    """CĐCS under `branch` (as parent or grandparent) at some time between `start` and `end` (default: the
    end of `start`'s month): an indexed lookup in the registry loaded once per process (`registry.py`)."""
    from pipelines.ingest.registry import units_of_branch
    return units_of_branch(branch, start, end)


def _dues_rule(period: _dt.date) -> tuple[float, int]:
    from pipelines.ingest.normalize import reference
    for r in reference("dues_rules"):
        vf = _dt.date.fromisoformat(r["valid_from"])
        vt = _dt.date.fromisoformat(r["valid_to"]) if r["valid_to"] else _dt.date.max
        if vf <= period <= vt:
            return float(r["rate"]), round(int(r["base_salary"]) * float(r["cap_multiplier"]))
    r = reference("dues_rules")[-1]
    return float(r["rate"]), round(int(r["base_salary"]) * float(r["cap_multiplier"]))


_TITLE_PERIOD = re.compile(r"(?i)th[áa]ng\s*(\d{1,2})\s*(?:[/\-.]|n[ăa]m)\s*(\d{4})")


# ------------------------------------------------------------------------------------------- main
def _open(path: Path, branch_code: str, period: str, declared_kind: str, received_at: _dt.datetime | None,
          original_name: str | None) -> tuple[IngestReport, bytes | None, _dt.datetime, float]:
    """Read the bytes, hash them, archive the original (write-once): (report, bytes or None if too large,
    received_at, start time)."""
    t0 = time.perf_counter()
    path = Path(path)
    st = path.stat()
    received = received_at or _dt.datetime.fromtimestamp(st.st_mtime)
    received = received.replace(tzinfo=None, microsecond=received.microsecond)
    oname = sanitise_name(original_name if original_name is not None else path.name)
    branch_code = (branch_code or "").strip().upper()
    if st.st_size > MAX_FILE_BYTES:
        data = None
        sha = sha256_file(path)
    else:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
    rep = IngestReport(file_id=sha[:16], sha256=sha, status="refused", reason_code=None, message_vi="",
                       branch_code=branch_code, period=period or "", kind=declared_kind or "", original_name=oname,
                       received_at=received.isoformat(sep=" "))
    fmt_guess = sniff_format(data[:8192]) if data else "unknown"
    ext = {"zip": "xlsx", "xls": "xls", "parquet": "parquet", "text": "csv", "text16": "csv"}.get(fmt_guess, "bin")
    # 1. archive the original bytes first (write-once, by content hash)
    if data is not None:
        arc = config.archive_dir() / sha[:2] / f"{sha}.{ext}"
        if not arc.exists():
            _atomic_write_bytes(arc, data)
    rep.timings["read_archive_s"] = round(time.perf_counter() - t0, 4)
    return rep, data, received, t0


def _refuse(rep: IngestReport, stage: _Stage, fr: FileRefused) -> None:
    stage.discard()
    rep.status, rep.reason_code, rep.message_vi = "refused", fr.reason_code, fr.message_vi
    rep.rows_accepted = 0
    rep.rows_refused = rep.rows_read


def _commit(rep: IngestReport, stage: _Stage, received: _dt.datetime, t0: float, file_id: str) -> IngestReport | None:
    """Under the ledger lock: duplicate re-check, staged files into place, JSON report, ledger row last.
    None when another declaration of these bytes took `file_id` meanwhile (the caller redoes the file)."""
    with ledger_lock():
        prev, fid_now = find_version(rep.sha256, rep.branch_code, rep.period, rep.kind)
        if prev is not None:
            stage.discard()
            return _duplicate(rep, prev, received, t0, locked=True)
        if fid_now != file_id:
            stage.discard()
            return None
        stage.commit()
        rep.timings["total_s"] = round(time.perf_counter() - t0, 4)
        _write_json_report(rep)
        _write_ledger(rep)  # last: the ledger row is what makes this version exist
    return rep


def ingest_file(path: Path, *, branch_code: str, period: str, declared_kind: str,
                received_at: _dt.datetime | None = None, original_name: str | None = None) -> IngestReport:
    # (no GX import here: the first upload of a process pays the ~3 s import unless the caller prewarmed it, as
    # the upload page does with `rules.prewarm_gx()`)
    rep, data, received, t0 = _open(path, branch_code, period, declared_kind, received_at, original_name)
    for _attempt in range(3):
        prev, file_id = find_version(rep.sha256, rep.branch_code, rep.period, rep.kind)
        if prev is not None:
            return _duplicate(rep, prev, received, t0)
        rep.file_id = file_id
        stage = _Stage()
        try:
            try:
                if data is None:
                    raise FileRefused("too_large", f"Tệp quá lớn (tối đa {MAX_FILE_BYTES // (1024 * 1024)} MB).")
                _process(rep, data, declared_kind, received, stage)
            except FileRefused as fr:
                _refuse(rep, stage, fr)
            # only the duplicate re-check and the moves into place hold the lock
            done = _commit(rep, stage, received, t0, file_id)
            if done is not None:
                return done
        finally:
            stage.discard()
    raise RuntimeError("could not allocate a file_id (concurrent ingestion of the same bytes)")


# A batch (`batch.run_lane`) ingests its files in chunks of up to CHUNK_FILES: every file is read, laid out and
# checked on its own, then the files of one kind are normalised and validated together (one Polars plan per
# step for the whole chunk instead of one per file: the ~145 small queries of a file were most of its cost),
# split back per file and written, each committed in item order exactly as `ingest_file` commits it.
CHUNK_FILES = int(os.environ.get("DOANVIEN_INGEST_CHUNK_FILES", 48))
# ... and at most about this many bytes of source files per chunk (memory: a chunk's rows are held together;
# 16 MB of CSV is ~140,000 roster rows)
CHUNK_BYTES = int(os.environ.get("DOANVIEN_INGEST_CHUNK_BYTES", 16 << 20))


class _Fallback(Exception):
    """The chunk path does not handle this case: the file goes through `ingest_file` on its own."""


@dataclass
class _Entry:
    idx: int
    item: tuple
    rep: IngestReport
    data: bytes | None
    received: _dt.datetime
    t0: float
    file_id: str
    stage: _Stage
    layout: object = None
    period: _dt.date | None = None
    info: dict | None = None
    done: bool = False          # processed (accepted or refused): ready to commit
    fallback: bool = False      # redo through ingest_file


def ingest_many(items, chunk_files: int | None = None) -> list:
    """`ingest_file` for each ``(path, branch, period, kind, received_at[, …])`` item, in order, with the same
    outcome (raw rows, quarantine, ledger, JSON reports) as calling it file by file; files are normalised
    and validated together in chunks (`CHUNK_FILES`). A chunk never holds the same bytes twice (the later
    copy starts the next chunk, after the earlier is committed), so duplicates and alternative file ids come
    out as in sequence. Returns one report per item, or the exception that file raised."""
    chunk_files = max(1, chunk_files or CHUNK_FILES)
    out: list = [None] * len(items)
    pending: list[_Entry] = []
    shas: set[str] = set()
    size = [0]

    def flush() -> None:
        if pending:
            _run_chunk(pending, out)
        pending.clear()
        shas.clear()
        size[0] = 0

    for i, item in enumerate(items):
        path, branch, period, kind, received = item[:5]
        try:
            rep, data, received, t0 = _open(Path(path), branch or "", period or "", kind or "", received, None)
        except Exception as exc:  # noqa: BLE001 - reported per file by the caller
            out[i] = exc
            continue
        nbytes = len(data) if data is not None else 0
        if rep.sha256 in shas or len(pending) >= chunk_files or (pending and size[0] + nbytes > CHUNK_BYTES):
            flush()
        try:
            prev, file_id = find_version(rep.sha256, rep.branch_code, rep.period, rep.kind)
            if prev is not None:
                out[i] = _duplicate(rep, prev, received, t0)
                continue
        except Exception as exc:  # noqa: BLE001
            out[i] = exc
            continue
        rep.file_id = file_id
        shas.add(rep.sha256)
        size[0] += nbytes
        pending.append(_Entry(i, item, rep, data, received, t0, file_id, _Stage()))
    flush()
    return out


def _run_chunk(entries: list[_Entry], out: list) -> None:
    for e in entries:
        try:
            if e.data is None:
                raise FileRefused("too_large", f"Tệp quá lớn (tối đa {MAX_FILE_BYTES // (1024 * 1024)} MB).")
            e.layout, e.period = _prepare(e.rep, e.data, e.rep.kind, e.received)
        except FileRefused as fr:
            _refuse(e.rep, e.stage, fr)
            e.done = True
        except Exception:  # noqa: BLE001 - ingest_file redoes it (and reports its error)
            e.fallback = True
    kinds: dict[str, list[_Entry]] = {}
    for e in entries:
        if not e.done and not e.fallback:
            kinds.setdefault(e.rep.kind, []).append(e)
    for kind, group in kinds.items():
        try:
            _validate_group(kind, group)
        except Exception:  # noqa: BLE001 - the files of this group not yet done go one by one
            for e in group:
                if not e.done:
                    e.stage.discard()
                    e.fallback = True
    for e in entries:
        try:
            if not e.fallback:
                # total_s: this file's own steps and its share of the chunk's (not the time it waited for the chunk)
                own = sum(v for k, v in e.rep.timings.items() if k in (
                    "read_archive_s", "parse_s", "normalise_validate_s", "cross_row_s", "gx_s", "write_s"))
                e.t0 = time.perf_counter() - own
                try:
                    done = _commit(e.rep, e.stage, e.received, e.t0, e.file_id)
                finally:
                    e.stage.discard()
                if done is not None:
                    out[e.idx] = done
                    continue
            path, branch, period, kind, received = e.item[:5]
            out[e.idx] = ingest_file(Path(path), branch_code=branch or "", period=period or "",
                                     declared_kind=kind or "", received_at=received)
        except Exception as exc:  # noqa: BLE001
            out[e.idx] = exc


def _validate_group(kind: str, group: list[_Entry]) -> None:
    """Normalise and validate the files of one kind together (``__fid`` = position in `group`), then finish
    each file on its own slice: the same typed rows, verdicts and counts as `_process` gives file by file."""
    from pipelines.ingest.normalize import (GENDER_LAYOUT_COLUMNS, map_rows, new_info, prepare_text,
                                            resolve_gender_layouts, type_rows)
    from pipelines.ingest.rules import verdicts
    r_cols = [f"r_{c.name}" for c in KINDS[kind].columns]
    frames, live = [], []
    for e in group:
        e.info = new_info()
        df = map_rows(e.layout)
        rate, cap = _dues_rule(e.period) if kind == "dues" else (0.0, 0)
        today = e.received.date()
        frames.append(df.select(
            "__row", *r_cols, *(c for c in GENDER_LAYOUT_COLUMNS if c in df.columns),
            pl.lit(len(live), dtype=pl.UInt32).alias("__fid"),
            pl.lit(today.year * 10000 + today.month * 100 + today.day, dtype=pl.Int64).alias("__today"),
            pl.lit(rate, dtype=pl.Float64).alias("__rate"), pl.lit(cap, dtype=pl.Int64).alias("__cap")))
        live.append(e)
    if not live:
        return
    t1 = time.perf_counter()
    binfo = new_info()
    # the text of all the files at once (the encoding decisions still file by file): one set of Polars
    # operations per chunk instead of one per file
    rows = pl.concat(frames, how="diagonal")
    text_cols = [c for c in rows.columns if c in r_cols or c in ("__gm_M", "__gm_F", "__bg_M", "__bg_F")]
    rows = prepare_text(rows, text_cols, binfo, by="__fid",
                        tcvn3_files=pl.Series([e.layout.header_tcvn3 for e in live], dtype=pl.Boolean))
    rows = resolve_gender_layouts(rows)
    refused = binfo.pop("refused_files", {})
    for k in binfo.pop("encoding_files", ()):
        live[k].info["encoding_detected"] = "TCVN3"
    for k, fr in refused.items():
        _refuse(live[k].rep, live[k].stage, fr)
        live[k].done = True
    if refused:
        rows = rows.filter(~pl.col("__fid").is_in(list(refused)))
        if rows.height == 0:
            return
    binfo["steps"]["prepare_text"] = round(time.perf_counter() - t1, 4)
    binfo["_t"] = time.perf_counter()
    typed = type_rows(rows.select("__row", "__enc", "__nfd", *r_cols, "__fid", "__today", "__rate", "__cap"),
                      kind, binfo, keep=["__today", "__rate", "__cap"])
    t_norm = time.perf_counter() - t1
    t1 = time.perf_counter()
    if "cdcs_code" in typed.columns:
        cur, prv = [], []
        for k, e in enumerate(live):
            units = _units_of_branch(e.rep.branch_code, e.period)
            if units is None:
                raise _Fallback("no units registry")
            cur.append(pl.DataFrame({"cdcs_code": units}).with_columns(pl.lit(k, dtype=pl.UInt32).alias("__fid")))
            if "leave_date" in typed.columns:
                prev = (e.period - _dt.timedelta(days=1)).replace(day=1)
                up = _units_of_branch(e.rep.branch_code, prev, _month_end(e.period))
                prv.append(pl.DataFrame({"cdcs_code": up}).with_columns(pl.lit(k, dtype=pl.UInt32).alias("__fid")))
        keys = typed.select("__fid", "cdcs_code")
        got = keys.join(pl.concat(cur).with_columns(pl.lit(True).alias("__known")), on=["__fid", "cdcs_code"],
                        how="left", maintain_order="left")
        known = pl.col("__known").fill_null(False)
        if prv:
            got = got.join(pl.concat(prv).with_columns(pl.lit(True).alias("__known_prev")),
                           on=["__fid", "cdcs_code"], how="left", maintain_order="left")
            known = known | (pl.col("leave_date").is_not_null() & pl.col("__known_prev").fill_null(False))
        typed = typed.hstack(got.drop("__fid", "cdcs_code").get_columns())
        typed = typed.with_columns(pl.when(pl.col("cdcs_code").is_null()).then(None)
                                   .when(known).then(pl.lit("yes"))
                                   .otherwise(pl.lit("no")).alias("v_unit_known"))
        typed = typed.drop([c for c in ("__known", "__known_prev") if c in typed.columns])
    if kind == "dues":
        typed = typed.with_columns(pl.min_horizontal(
            (pl.col("salary_fund") * pl.col("__rate")).round(0).cast(pl.Int64), pl.col("members_count") * pl.col("__cap"))
            .add(pl.col("members_count")).alias("v_dues_max"))
    typed, counts = verdicts(typed, kind, {"today_ymd": pl.col("__today")}, by="__fid")
    parts = typed.drop("__today", "__rate", "__cap").partition_by("__fid", as_dict=True, maintain_order=True,
                                                                 include_key=False)
    t_val = time.perf_counter() - t1
    total_rows = typed.height or 1
    for k, e in enumerate(live):
        if k in refused:
            continue
        sub = parts.get((k,))
        if sub is None:
            raise _Fallback("a file lost its rows")  # cannot happen: every file has rows (checked in _prepare)
        share = sub.height / total_rows
        rep = e.rep
        rep.timings.update({f"normalise.{s}": v for s, v in e.info.get("steps", {}).items()})
        for s, v in binfo.get("steps", {}).items():
            rep.timings[f"normalise.{s}"] = round(rep.timings.get(f"normalise.{s}", 0) + v * share, 4)
        try:
            _apply_info(rep, e.info, sub)
            _check_dated_period(sub, kind, e.period)
            rep.timings["verdicts_s"] = round(t_val * share, 4)  # registry, dues and verdicts: the chunk's, shared
            own_prep = sum(v for v in e.info.get("steps", {}).values())
            rep.timings["normalise_validate_s"] = round(own_prep + (t_norm + t_val) * share, 4)
            today = e.received.date()
            params = {"today_ymd": today.year * 10000 + today.month * 100 + today.day}
            _finish(rep, e.layout, sub, counts.get(k, ()), kind, e.period, e.received, e.stage, params)
        except FileRefused as fr:
            _refuse(rep, e.stage, fr)
        e.done = True


def _duplicate(rep: IngestReport, prev: dict, received: _dt.datetime, t0: float,
               locked: bool = False) -> IngestReport:
    """The same bytes were already received for this branch × period × kind. Raw rows, quarantine and reports
    stay as they are; the arrival itself gets its own ledger row (status ``duplicate``, no rows, its own
    ``duplicate_file_id``) unless it is already recorded: the same received_at as the version it repeats (a
    re-scan of that very file) or a duplicate row with this id."""
    when = prev.get("received_at")
    rep.status, rep.reason_code = "duplicate", "duplicate_content"
    rep.message_vi = f"{DUPLICATE_MESSAGE} (lúc {when:%d/%m/%Y %H:%M}); không có gì thay đổi." if when else \
        f"{DUPLICATE_MESSAGE}; không có gì thay đổi."
    rep.json_report = str(config.reports_dir() / f"{prev['file_id']}.json")  # the report of the repeated file
    rep.detected_kind, rep.format, rep.encoding = prev.get("detected_kind"), prev.get("format"), prev.get("encoding")
    rep.rows_read = rep.rows_accepted = rep.rows_refused = 0
    if when is not None and when == received:
        rep.file_id = prev["file_id"]  # this very arrival is the recorded version
        return rep
    rep.file_id = duplicate_file_id(rep.sha256, rep.branch_code, rep.period, rep.kind, received)
    with (contextlib.nullcontext() if locked else ledger_lock()):
        if not ledger_store.has(rep.file_id):
            rep.timings["total_s"] = round(time.perf_counter() - t0, 4)
            _write_ledger(rep)
    return rep


def _best_layout(grids, declared_kind: str):
    """(layout, grid) of the sheet whose header reading scores best, or (None, None)."""
    layout = grid = None
    for g in grids:
        lay = detect_layout(g, declared_kind)
        if lay is not None and (layout is None or lay.score > layout.score):
            layout, grid = lay, g
    return layout, grid


def _prepare(rep: IngestReport, data: bytes, declared_kind: str, received: _dt.datetime):
    """Checks of the declaration, reading and layout: (layout, period date), or FileRefused."""
    t = time.perf_counter()
    if declared_kind not in KINDS:
        raise FileRefused("wrong_kind", f"Loại báo cáo khai báo '{declared_kind}' không hợp lệ "
                                        f"(chỉ nhận: {', '.join(KINDS)}).")
    period = _period_date(rep.period)
    if period is None:
        raise FileRefused("wrong_period", f"Kỳ báo cáo '{rep.period}' không hợp lệ (phải có dạng YYYY-MM).")
    if period > received.date().replace(day=1):
        raise FileRefused("wrong_period", f"Kỳ báo cáo {period:%m/%Y} ở tương lai so với ngày nhận tệp.")
    known = _branch_known(rep.branch_code, period)
    if known is False:
        raise FileRefused("unknown_branch", f"Mã đơn vị gửi '{rep.branch_code}' không có trong danh mục tổ chức "
                                            f"tại kỳ {period:%m/%Y}.")
    if known is None:
        rep.warnings.append("registry/branches.parquet not found: branch not checked")
    if (declared_kind == "insurance") != (rep.branch_code == "BHXH"):
        raise FileRefused("unknown_branch", "Danh sách đơn vị tham gia BHXH chỉ do cơ quan BHXH gửi; "
                                            "đơn vị này không gửi được loại báo cáo đã khai báo."
                          if declared_kind == "insurance" else
                          "Cơ quan BHXH chỉ gửi danh sách đơn vị tham gia BHXH.")
    fmt, grids = read_grids(data)
    rep.format = fmt
    rep.timings["read_s"] = round(time.perf_counter() - t, 4)
    layout, grid = _best_layout(grids, declared_kind)
    rep.timings["parse_s"] = round(time.perf_counter() - t, 4)
    if layout is None:
        if all(g.df.height == 0 or g.df.drop("__row").null_count().sum_horizontal().item() == g.df.height * (g.df.width - 1)
               for g in grids):
            raise FileRefused("empty", "Tệp không có dữ liệu.")
        raise FileRefused("wrong_kind", "Không tìm thấy dòng tiêu đề cột nào quen thuộc trong tệp; không xác định "
                                        f"được loại báo cáo (đã khai báo: {KIND_VI[declared_kind]}).")
    rep.encoding = grid.encoding
    rep.source_sheet = grid.sheet
    rep.detected_kind = layout.kind
    if layout.kind is None:
        raise FileRefused("wrong_kind", f"Các cột trong tệp không khớp với {KIND_VI[declared_kind]} đã khai báo.")
    if layout.kind != declared_kind:
        raise FileRefused("wrong_kind", f"Tệp là {KIND_VI[layout.kind]} nhưng được gửi vào mục "
                                        f"{KIND_VI[declared_kind]}.")
    missing = [c.preferred for c in KINDS[declared_kind].columns
               if c.required and c.name not in layout.found_by_kind[declared_kind]]
    if missing:
        raise FileRefused("wrong_kind", "Thiếu cột bắt buộc: " + ", ".join(missing) + ".")
    m = _TITLE_PERIOD.search(layout.title_text or "")
    if m and (int(m.group(2)), int(m.group(1))) != (period.year, period.month):
        raise FileRefused("wrong_period", f"Tệp ghi kỳ báo cáo tháng {int(m.group(1)):02d}/{m.group(2)} nhưng được "
                                          f"gửi cho kỳ {period:%m/%Y}.")
    if layout.data.height == 0:
        raise FileRefused("empty", "Tệp có tiêu đề cột nhưng không có dòng dữ liệu nào.")
    return layout, period


def _apply_info(rep: IngestReport, info: dict, typed: pl.DataFrame) -> None:
    if info.get("encoding_detected"):
        rep.encoding = f"{rep.encoding or rep.format}+{info['encoding_detected']}"
    rep.rows_read = typed.height


def _check_dated_period(typed: pl.DataFrame, declared_kind: str, period: _dt.date) -> None:
    """Wrong period: dated rows (services/activities) overwhelmingly outside the declared month."""
    date_col = {"services": "service_date", "activities": "activity_date"}.get(declared_kind)
    if date_col:
        d = typed.get_column(date_col).drop_nulls()
        if d.len() and (((d < period) | (d > _month_end(period))).sum() / d.len()) >= 0.8:
            raise FileRefused("wrong_period", f"Ngày trong tệp không thuộc kỳ báo cáo {period:%m/%Y}.")


def _process(rep: IngestReport, data: bytes, declared_kind: str, received: _dt.datetime, stage: _Stage) -> None:
    layout, period = _prepare(rep, data, declared_kind, received)
    from pipelines.ingest.normalize import normalise
    from pipelines.ingest.rules import verdicts
    t = time.perf_counter()
    today = received.date()  # "no future dates" is judged against the day the file arrived
    typed, info = normalise(layout, period=period, today=today)
    rep.timings.update({f"normalise.{k}": v for k, v in info.get("steps", {}).items()})
    t1 = time.perf_counter()
    _apply_info(rep, info, typed)
    # registry and rate helpers
    if "cdcs_code" in typed.columns:
        units = _units_of_branch(rep.branch_code, period)
        if units is None:
            rep.warnings.append("registry/units.parquet not found: units not checked")
            typed = typed.with_columns(pl.lit("yes").alias("v_unit_known"))
        else:
            known = pl.col("cdcs_code").is_in(units)
            if "leave_date" in typed.columns:
                # a leaver is listed by the unit it left, which may have closed before this month (public-sector
                # CĐCS end 31/05/2025; their members leave on 01/06/2025): the unit counts if it was the
                # branch's during the previous month too
                prev = (period - _dt.timedelta(days=1)).replace(day=1)
                units_prev = _units_of_branch(rep.branch_code, prev, _month_end(period))
                known = known | (pl.col("leave_date").is_not_null() & pl.col("cdcs_code").is_in(units_prev))
            typed = typed.with_columns(pl.when(pl.col("cdcs_code").is_null()).then(None)
                                       .when(known).then(pl.lit("yes"))
                                       .otherwise(pl.lit("no")).alias("v_unit_known"))
    if declared_kind == "dues":
        rate, cap = _dues_rule(period)
        typed = typed.with_columns(pl.min_horizontal(
            (pl.col("salary_fund") * rate).round(0).cast(pl.Int64), pl.col("members_count") * cap)
            .add(pl.col("members_count")).alias("v_dues_max"))
    _check_dated_period(typed, declared_kind, period)
    params = {"today_ymd": info["today_ymd"]}
    rep.timings["registry_s"] = round(time.perf_counter() - t1, 4)
    t1 = time.perf_counter()
    typed, fail_counts = verdicts(typed, declared_kind, params)
    rep.timings["verdicts_s"] = round(time.perf_counter() - t1, 4)
    rep.timings["normalise_validate_s"] = round(time.perf_counter() - t, 4)
    _finish(rep, layout, typed, fail_counts, declared_kind, period, received, stage, params)


def _finish(rep: IngestReport, layout, typed: pl.DataFrame, fail_counts, declared_kind: str, period: _dt.date,
            received: _dt.datetime, stage: _Stage, params: dict) -> None:
    """From the typed rows with their verdicts (`rule_idx`) to the accepted/refused split, counts, the GX
    sample and the staged writes of one file."""
    from pipelines.ingest.rules import gx_columns, load_suite, run_gx
    suite = load_suite(declared_kind)["expectations"]

    # only the columns each side needs (typed is wide: raw text, helpers, typed values)
    acc_cols = [c for c in typed.columns if c in set(RAW_TYPED[declared_kind]) | {
        "source_row", "flags", "v_person", "leave_date", "cdcs_code", "rule_idx"}]
    ref_cols = [c for c in typed.columns if c in ("source_row", "rule_idx", "v_missing_column") or c.startswith("r_")]
    ok = pl.col("rule_idx").is_null()
    accepted = typed.select(acc_cols).filter(ok)
    refused = typed.select(ref_cols).filter(~ok)
    rep.rows_accepted, rep.rows_refused = accepted.height, refused.height
    # the invariant blocks the load when it does not hold
    assert rep.rows_read == rep.rows_accepted + rep.rows_refused, "rows_read != accepted + refused"

    t1 = time.perf_counter()
    # cross-row: one person active in two units in the same month (flag, the warehouse resolves)
    if declared_kind == "roster" and accepted.height:
        active = accepted.filter(pl.col("leave_date").is_null() & pl.col("v_person").is_not_null()
                                 & pl.col("v_person").is_duplicated())  # only repeated persons can be in two units
        multi = active.group_by("v_person").agg(pl.col("cdcs_code").n_unique().alias("n")).filter(pl.col("n") > 1)
        if multi.height:
            accepted = accepted.with_columns(
                pl.when(pl.col("v_person").is_in(multi.get_column("v_person").implode()) & pl.col("leave_date").is_null())
                .then(pl.col("flags").list.concat(pl.lit(["active_in_two_units"])))
                .otherwise(pl.col("flags")).alias("flags"))
            rep.warnings.append(f"{multi.height} person(s) active in two units of this file in the same month")
        # Across files (another branch's roster of the same month) the rule runs in the warehouse
        # (dq_member_conflicts): scanning every earlier roster here made each file's cost grow with history.

    rep.timings["cross_row_s"] = round(time.perf_counter() - t1, 4)
    t = time.perf_counter()
    rule_meta = [(e["meta"]["rule"], e["meta"]["column"], e["meta"]["message_vi"], e["meta"]["message_en"],
                  e["meta"].get("message_vi_cmnd_column"), e["meta"].get("message_en_cmnd_column"),
                  e["meta"].get("message_vi_cmnd_only"), e["meta"].get("message_en_cmnd_only")) for e in suite]
    rep.counts_by_rule = {}
    if refused.height:
        rc = refused.group_by("rule_idx").len().sort("rule_idx")
        for idx, n in rc.iter_rows():
            rule = rule_meta[idx][0]
            rep.counts_by_rule[rule] = rep.counts_by_rule.get(rule, 0) + n
    fl = accepted.select(pl.col("flags").explode().drop_nulls().value_counts()).unnest("flags") if accepted.height else None
    rep.flags = {r[0]: r[1] for r in fl.iter_rows()} if fl is not None and fl.height else {}
    if _GX_POOL is not None and GX_POOL_ROWS > 0 and rules_gx_mode() == "sample":
        # batch: this file's sample joins one GX run per kind × ingest date at the end of the batch
        cols = [c for c in gx_columns(declared_kind) if c in typed.columns]
        smp = typed.select(cols)
        smp = smp.sample(n=GX_POOL_ROWS, seed=0) if smp.height > GX_POOL_ROWS else smp
        _GX_POOL.setdefault(declared_kind, []).append((rep, smp, params["today_ymd"]))
        rep.gx = {"engine": "great_expectations", "mode": "batch", "ran": False,
                  "reason": "pooled: run once per kind at the end of the batch"}
    else:
        rep.gx = run_gx(typed, declared_kind, params)
    rep.gx["fast_path_failures"] = {f"{i}:{rule_meta[i][0]}": int(n) for i, n in enumerate(fail_counts) if n}
    rep.timings["gx_s"] = round(time.perf_counter() - t, 4)

    t = time.perf_counter()
    _write_rows(rep, layout, typed, accepted, refused, rule_meta, period, received, stage)
    rep.timings["write_s"] = round(time.perf_counter() - t, 4)
    rep.status, rep.reason_code = "accepted", None
    rep.message_vi = (f"Đã nhận {KIND_VI[declared_kind]} kỳ {period:%m/%Y}: {rep.rows_read} dòng, "
                      f"{rep.rows_accepted} dòng hợp lệ, {rep.rows_refused} dòng bị từ chối.")


def _quarantine_rows(rep, refused: pl.DataFrame, rule_meta, identity_is_cmnd: bool = False) -> pl.DataFrame:
    """The quarantine rows of one file version (quarantine.SCHEMA): each refused row under its first broken rule,
    with the offending value of that rule's column. A CCCD rule broken by the number of the file's CMND column (the
    row's CCCD cell empty: normalize._identity_columns reads that number instead) is reported on the CMND column,
    with its value and the rule's message for that case (meta.message_*_cmnd_column of the suite), so the branch is
    not told its empty CCCD cell is malformed. In a file whose identity column is a lone "Số CMND" column
    (`identity_is_cmnd`: layout.Layout) every identity-column rule is reported on the CMND column, with the
    messages for that case where the rule has them (meta.message_*_cmnd_only): the file has no CCCD column."""
    if not refused.height:
        return pl.DataFrame(schema=quarantine_store.SCHEMA)

    def meta(i: int) -> list:
        return [m[i] if len(m) > i else None for m in rule_meta]

    rules = pl.DataFrame({"rule_idx": list(range(len(rule_meta))), "rule": meta(0), "column": meta(1),
                          "message_vi": meta(2), "message_en": meta(3), "__vi_cmnd": meta(4), "__en_cmnd": meta(5),
                          "__vi_only": meta(6), "__en_only": meta(7)},
                         schema_overrides={"rule_idx": pl.Int32, **{c: pl.String for c in (
                             "__vi_cmnd", "__en_cmnd", "__vi_only", "__en_only")}})
    q = refused.select("source_row", "rule_idx", "v_missing_column", *[c for c in refused.columns if c.startswith("r_")])
    q = q.join(rules, on="rule_idx", how="left")
    q = q.with_columns(pl.when(pl.col("column") == "$v_missing_column").then(pl.col("v_missing_column"))
                       .otherwise(pl.col("column")).alias("column"))
    if identity_is_cmnd and "r_cccd" in q.columns:
        on_id = pl.col("column") == "cccd"
        own = on_id & pl.col("__vi_only").is_not_null()
        q = q.with_columns(pl.when(on_id).then(pl.lit("cmnd")).otherwise(pl.col("column")).alias("column"),
                           pl.when(own).then(pl.col("__vi_only")).otherwise(pl.col("message_vi")).alias("message_vi"),
                           pl.when(own).then(pl.col("__en_only")).otherwise(pl.col("message_en")).alias("message_en"),
                           pl.col("r_cccd").alias("r_cmnd"))  # what the branch wrote in its CMND column
    elif "r_cmnd" in q.columns and "r_cccd" in q.columns:
        from_cmnd = (pl.col("column") == "cccd") & pl.col("__vi_cmnd").is_not_null() & pl.col("r_cccd").is_null() \
            & pl.col("r_cmnd").is_not_null()
        q = q.with_columns(pl.when(from_cmnd).then(pl.lit("cmnd")).otherwise(pl.col("column")).alias("column"),
                           pl.when(from_cmnd).then(pl.col("__vi_cmnd")).otherwise(pl.col("message_vi")).alias("message_vi"),
                           pl.when(from_cmnd).then(pl.col("__en_cmnd")).otherwise(pl.col("message_en")).alias("message_en"))
    rcols = [c for c in q.columns if c.startswith("r_")]
    value = pl.lit(None, dtype=pl.String)
    for c in rcols:
        # a row's identity number read from the CMND column under a rule without a CMND-column message (a duplicate
        # row, say) is still shown: the CMND column's value
        v = pl.coalesce(pl.col(c), pl.col("r_cmnd")) if c == "r_cccd" and "r_cmnd" in rcols else pl.col(c)
        value = pl.when(pl.col("column") == c[2:]).then(v).otherwise(value)
    return q.select(pl.lit(rep.file_id).alias("file_id"), pl.lit(rep.source_sheet or "").alias("source_sheet"),
                   pl.col("source_row").cast(pl.Int64), "rule", "column", value.alias("value"), "message_vi",
                   "message_en").sort("source_row")


def _write_rows(rep, layout, typed, accepted, refused, rule_meta, period, received, stage) -> None:
    kind = rep.kind
    t = time.perf_counter()
    lineage = [pl.lit(rep.file_id).alias("file_id"), pl.lit(rep.branch_code).alias("branch_code"),
               pl.lit(period).alias("period"), pl.lit(rep.source_sheet or "").alias("source_sheet"),
               pl.col("source_row").cast(pl.Int64), pl.lit(received).cast(pl.Datetime("us")).alias("received_at")]
    cols = [c for c in RAW_TYPED[kind]]
    sel = [(pl.col(c) if c in accepted.columns else pl.lit(None, dtype=pl.String).alias(c)) for c in cols]
    raw = accepted.select(lineage + sel + [pl.col("flags").cast(pl.List(pl.String))]).cast(RAW_SCHEMA[kind])
    raw_path = config.raw_rows_path(kind, period, rep.file_id)
    _atomic_parquet(raw, raw_path, stage)
    rep.raw_path = str(raw_path)
    rep.timings["write_raw_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    # quarantine: one row per refused row, under its first broken rule. A version with no refused row writes
    # no file (nothing to keep; ~8,000 empty files a national month were 10 % of ingestion's write time)
    qdf = _quarantine_rows(rep, refused, rule_meta, identity_is_cmnd=layout.identity_is_cmnd)
    if qdf.height:
        qpath = config.quarantine_dir() / f"{rep.file_id}.parquet"
        _atomic_parquet(qdf, qpath, stage)
        rep.quarantine_path = str(qpath)
    else:
        rep.quarantine_path = None
    rep.timings["write_quarantine_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    # the branch's own workbook with an added "Lỗi" column: written now for a single upload (the page shows it at
    # once); in a batch it is made on first request by `branch_workbook` (the same function, the same bytes)
    if DEFER_WORKBOOK:
        rep.xlsx_report, rep.xlsx_on_demand = None, True
    else:
        _write_xlsx_report(rep, layout, typed, qdf, stage)
    rep.timings["write_xlsx_s"] = round(time.perf_counter() - t, 4)


def _write_xlsx_report(rep, layout, typed, qdf, stage) -> None:
    """The branch's own rows (as read) with an added red "Lỗi" column, plus a summary sheet.

    Built by `xlsxfast` (cell XML from Polars expressions): ~0.2 s for 10,000 rows, where xlsxwriter's
    per-cell Python took ~2 s. Formula-like text is neutralised in every cell. A file of more than
    `REPORT_FULL_ROWS` rows gets only its refused rows on the first sheet (the summary says so): the branch
    has its own file, and a 200,000-row copy would cost more than validating it.
    """
    from pipelines.ingest.xlsxfast import Sheet, write_xlsx
    ccols = sorted((int(c[1:]) for c in typed.columns if re.fullmatch(r"c\d+", c)))
    shown = [j for j in ccols if layout.headers.get(j)]
    errs = qdf.select("source_row", (pl.col("message_vi") + pl.lit(" [") + pl.col("rule") + pl.lit("]")).alias("err"))
    full = typed.height <= REPORT_FULL_ROWS
    rows = typed if full else typed.join(qdf.select("source_row"), on="source_row", how="semi")
    body = (rows.select(pl.col("source_row").cast(pl.Int64), *[f"c{j}" for j in shown])
            .join(errs, on="source_row", how="left", maintain_order="left").sort("source_row"))
    main = Sheet("Kết quả", ["Dòng trong tệp", *[layout.headers[j] for j in shown], "Lỗi"], body,
                 red_columns={len(shown) + 1})
    summary_rows = [("Tệp", rep.original_name), ("Đơn vị gửi", rep.branch_code), ("Kỳ báo cáo", rep.period),
                    ("Loại báo cáo", KIND_VI.get(rep.kind, rep.kind)), ("Số dòng đọc được", str(rep.rows_read)),
                    ("Số dòng hợp lệ", str(rep.rows_accepted)), ("Số dòng bị từ chối", str(rep.rows_refused))]
    summary_rows += [(f"Lỗi [{rule}]", str(n)) for rule, n in sorted(rep.counts_by_rule.items())]
    if not full:
        summary_rows.append(("Ghi chú", f"Tệp có hơn {REPORT_FULL_ROWS:,} dòng: trang 'Kết quả' chỉ liệt kê các dòng "
                                        "bị từ chối (cột 'Dòng trong tệp' là số dòng trong tệp gốc)."))
    summary = Sheet("Tóm tắt", ["Mục", "Giá trị"],
                    pl.DataFrame(summary_rows, schema={"k": pl.String, "v": pl.String}, orient="row"),
                    widths=[28, 60])
    path = config.reports_dir() / f"{rep.file_id}.xlsx"
    write_xlsx(stage.path_for(path), [main, summary])
    rep.xlsx_report = str(path)


# Why a branch workbook cannot be made (`branch_workbook_or_reason`): the message the upload page shows, (vi, en).
WORKBOOK_UNAVAILABLE = {
    "unknown": ("Không tìm thấy tệp này trong sổ tiếp nhận.", "This file is not in the ingestion ledger."),
    "not_accepted": ("Tệp này không được tiếp nhận (bị từ chối hoặc trùng với tệp đã gửi) nên không có bảng lỗi "
                     "theo dòng; lý do ở cột Ghi chú.",
                     "This file was not accepted (refused, or a copy of one already sent), so it has no row-by-row "
                     "error workbook; the reason is in the Message column."),
    "original_missing": ("Tệp gốc không còn trong kho lưu trữ nên không tạo lại được bảng lỗi. Vui lòng gửi lại "
                         "tệp để có bảng lỗi.",
                         "The original file is no longer archived, so its error workbook cannot be made again. "
                         "Send the file again to get one."),
    "original_unreadable": ("Không đọc lại được tệp gốc trong kho lưu trữ như lúc tiếp nhận. Vui lòng gửi lại tệp "
                            "để có bảng lỗi.",
                            "The archived original can no longer be read as it was at ingestion. Send the file "
                            "again to get its error workbook."),
    "refused_rows_unreadable": ("Tệp gốc vẫn còn, nhưng danh sách {n} dòng bị từ chối của tệp không còn đọc được "
                                "(tệp lưu dòng lỗi bị hỏng, đã được để riêng). Bảng lỗi thiếu các dòng đó sẽ báo sai "
                                "rằng mọi dòng đều hợp lệ, nên không tạo. Vui lòng gửi lại tệp để có bảng lỗi đầy đủ.",
                                "The original is still archived, but the list of its {n} refused rows can no longer "
                                "be read (their quarantine file was damaged and set aside). A workbook without them "
                                "would say every row passed, so none is made. Send the file again to get a full one."),
}


def branch_workbook(file_id: str) -> Path | None:
    """The branch workbook of an accepted file version, or None (`branch_workbook_or_reason` says why)."""
    return branch_workbook_or_reason(file_id)[0]


def branch_workbook_message(reason: str, lang: str = "vi", n: int | None = None) -> str:
    """The user's message for a `branch_workbook_or_reason` reason code."""
    vi, en = WORKBOOK_UNAVAILABLE.get(reason, WORKBOOK_UNAVAILABLE["unknown"])
    from pipelines.analytics.i18n import fmt_int
    return (en if lang == "en" else vi).replace("{n}", fmt_int(n, lang) if n is not None else "")


def branch_workbook_or_reason(file_id: str) -> tuple[Path | None, str | None, int | None]:
    """The branch workbook (its own rows with the "Lỗi" column, plus the summary) of an accepted file version:
    `reports/<file_id>.xlsx`, made now from the archived original, the quarantine and the JSON report when
    the batch deferred it. The same reading, layout and normalisation as at ingestion (the same engine code),
    so the workbook is the one a single upload gets. Returns (path, None, None), or (None, reason, refused rows)
    with reason a key of `WORKBOOK_UNAVAILABLE`: an unknown file id, one not accepted (refused or duplicate), an
    original no longer archived or no longer readable as it was, or refused rows that can no longer be read
    (their quarantine file unreadable or set aside) — told apart, so the page can say which."""
    if not re.fullmatch(r"[0-9a-f]{16}", file_id or ""):
        return None, "unknown", None
    path = config.reports_dir() / f"{file_id}.xlsx"
    if path.exists():
        return path, None, None
    row = ledger_store.row(file_id)
    js = config.reports_dir() / f"{file_id}.json"
    if row is None or not js.exists():
        return None, "unknown", None
    if row["status"] != "accepted":
        return None, "not_accepted", None
    known = {f for f in IngestReport.__dataclass_fields__}
    rep = IngestReport(**{k: v for k, v in json.loads(js.read_text(encoding="utf-8")).items() if k in known})
    arc = next(iter(sorted((config.archive_dir() / row["sha256"][:2]).glob(f"{row['sha256']}.*"))), None)
    if arc is None:
        return None, "original_missing", None
    from pipelines.ingest.normalize import normalise
    _, grids = read_grids(arc.read_bytes())
    if rep.source_sheet is not None:
        grids = [g for g in grids if (g.sheet or "") == (rep.source_sheet or "")] or grids
    layout, _ = _best_layout(grids, rep.kind)
    if layout is None:
        return None, "original_unreadable", None
    received = row["received_at"]
    typed, _ = normalise(layout, period=row["period"], today=received.date())
    from pipelines.ingest import quarantine

    qdf = quarantine.rows_for(file_id)  # its loose file, or its rows in the compacted segments
    if qdf is None and (rep.rows_refused or 0) > 0:
        # its refused rows cannot be read (an unreadable quarantine file, set aside by a build): a workbook
        # without them would tell the branch every row passed. None; the original, ingested again, gives them.
        logging.getLogger(__name__).warning(
            "branch workbook of %s: its %d refused rows cannot be read; ingest the original again",
            file_id, rep.rows_refused)
        return None, "refused_rows_unreadable", rep.rows_refused
    if qdf is None:
        qdf = pl.DataFrame(schema={"source_row": pl.Int64, "rule": pl.String, "message_vi": pl.String})
    stage = _Stage()
    try:
        _write_xlsx_report(rep, layout, typed, qdf, stage)
        stage.commit()
    finally:
        stage.discard()
    return path, None, None


def _write_ledger(rep: IngestReport) -> None:
    ledger_store.write_row({
        "file_id": rep.file_id, "sha256": rep.sha256, "branch_code": rep.branch_code,
        "period": _period_date(rep.period), "kind": rep.kind, "detected_kind": rep.detected_kind,
        "original_name": rep.original_name,
        "received_at": _dt.datetime.fromisoformat(rep.received_at) if rep.received_at else None,
        "status": rep.status, "reason_code": rep.reason_code, "message_vi": rep.message_vi,
        "rows_read": rep.rows_read, "rows_accepted": rep.rows_accepted, "rows_refused": rep.rows_refused,
        "format": rep.format, "encoding": rep.encoding, "ingested_at": _dt.datetime.now(),
    }, write=_atomic_parquet)


def _write_json_report(rep: IngestReport) -> None:
    path = config.reports_dir() / f"{rep.file_id}.json"
    rep.json_report = str(path)
    _atomic_write_bytes(path, rep.to_json_bytes(), durable=False)


# ------------------------------------------------------------------------------------------- inbox
def _inbox_parts(path: Path, inbox: Path) -> tuple[str | None, str | None, str | None]:
    return _resolved_inbox_parts(path.resolve(), inbox.resolve())


def _resolved_inbox_parts(path: Path, inbox: Path) -> tuple[str | None, str | None, str | None]:
    """`_inbox_parts` of a path and an inbox already resolved (a scan resolves each once: ~0.1 ms a realpath)."""
    try:
        rel = path.relative_to(inbox).parts
    except ValueError:
        return None, None, None
    if len(rel) >= 4:
        return rel[0], rel[1], rel[2]
    return (rel[0] if len(rel) >= 2 else None), None, None


def declared_from_path(path: Path, inbox: Path | None = None) -> tuple[str | None, str | None, str | None]:
    """(branch, period, kind) from `<data>/inbox/<branch>/<YYYY-MM>/<kind>/<file>`, else Nones."""
    return _inbox_parts(Path(path), inbox or config.inbox_dir())


INBOX_HASHES = ".inbox_sha256.parquet"


def _inbox_hash_cache() -> Path:
    return config.raw_dir() / INBOX_HASHES


def _load_inbox_hashes() -> dict[str, tuple[int, int, str]]:
    p = _inbox_hash_cache()
    try:
        df = pl.read_parquet(p)
    except Exception:  # none yet, or unreadable: hash everything again (it is only a cache)
        return {}
    return {r[0]: (r[1], r[2], r[3]) for r in df.select("path", "size", "mtime_ns", "sha256").iter_rows()}


def _save_inbox_hashes(known: dict[str, tuple[int, int, str]]) -> None:
    df = pl.DataFrame({"path": list(known), "size": [v[0] for v in known.values()],
                       "mtime_ns": [v[1] for v in known.values()], "sha256": [v[2] for v in known.values()]},
                      schema={"path": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64, "sha256": pl.String})
    with contextlib.suppress(OSError):
        _atomic_parquet(df, _inbox_hash_cache())


def pending_inbox_files(inbox: Path | None = None) -> list[InboxFile]:
    """The inbox's files whose content was not yet received for their branch × month × kind, oldest first.

    The inbox keeps every month's files, so hashing all of them on every run would grow with history (a
    national month is ~1.6 GB): a file's sha256 is remembered (`raw/.inbox_sha256.parquet`) with its size and
    modification time in nanoseconds, and hashed again only when either changed."""
    inbox = Path(inbox) if inbox else config.inbox_dir()
    if not inbox.exists():
        return []
    known = _load_inbox_hashes()
    seen: dict[str, tuple[int, int, str]] = {}
    out: list[InboxFile] = []
    inbox_resolved = inbox.resolve()
    for p in inbox.rglob("*"):
        if not p.is_file() or p.is_symlink() or p.name.startswith((".", "~$")):
            continue
        st = p.stat()
        resolved = p.resolve()
        key = os.fspath(resolved)
        hit = known.get(key)
        sha = hit[2] if hit is not None and hit[:2] == (st.st_size, st.st_mtime_ns) else sha256_file(p)
        seen[key] = (st.st_size, st.st_mtime_ns, sha)
        b, per, k = _resolved_inbox_parts(resolved, inbox_resolved)
        if find_version(sha, (b or "").strip().upper(), per or "", k or "")[0] is not None:
            continue  # this content was already received for this branch × period × kind
        out.append(InboxFile(path=p, branch_code=b, period=per, kind=k,
                             received_at=_dt.datetime.fromtimestamp(st.st_mtime), sha256=sha))
    prefix = os.fspath(inbox.resolve()) + os.sep
    merged = {k: v for k, v in known.items() if not k.startswith(prefix)}  # another inbox's entries stay
    merged.update(seen)
    if merged != known:
        _save_inbox_hashes(merged)
    out.sort(key=lambda f: (f.received_at, str(f.path)))
    return out


def rules_gx_mode() -> str:
    from pipelines.ingest import rules
    return rules.gx_mode()


# Great Expectations costs ~0.8 s per run whatever the rows (per-expectation overhead), i.e. ~27 min for the
# ~2,000 files of a national month if run per file. In a batch (`ingest_inbox`) each file contributes a
# sample of GX_POOL_ROWS rows and GX runs once per kind over the pooled sample; every file's
# JSON report then records that run (the row verdicts themselves always come from the compiled suite).
GX_POOL_ROWS = int(os.environ.get("DOANVIEN_INGEST_GX_POOL_ROWS", 200))
_GX_POOL: dict | None = None


def _pool_sample(smp: pl.DataFrame, today: int, batch_today: int) -> pl.DataFrame:
    """Re-anchor a file's date helpers (yyyymmdd) on the batch's latest ingest date, keeping each value's
    verdict against its own file's date: future → 99991231, otherwise unchanged (≤ its date ≤ the batch's)."""
    ymd = [c for c in smp.columns if c.startswith("v_") and c.endswith("_ymd")]
    return smp.with_columns([pl.when(pl.col(c) > today).then(pl.lit(99991231)).otherwise(pl.col(c))
                             .cast(smp.schema[c]).alias(c) for c in ymd]) if today != batch_today else smp


def _run_gx_pool(pool: dict) -> None:
    from pipelines.ingest.rules import run_gx
    for kind, items in pool.items():
        batch_today = max(today for _, _, today in items)
        frame = pl.concat([_pool_sample(smp, today, batch_today) for _, smp, today in items], how="diagonal_relaxed")
        res = run_gx(frame, kind, {"today_ymd": batch_today}, mode="full")
        res.update({"mode": "batch", "files_pooled": len(items),
                    "sample": {"method": f"up to {GX_POOL_ROWS} uniform random rows per file (seed 0), pooled over "
                                         "the batch's files of this kind; date helpers re-anchored on the latest "
                                         "ingest date (future → 99991231)", "rows": frame.height}})
        for rep, _, _ in items:
            rep.gx = {**res, "fast_path_failures": rep.gx.get("fast_path_failures", {})}
            if rep.json_report and rep.status == "accepted":
                _write_json_report(rep)


@contextlib.contextmanager
def gx_pooled():
    """Within this block, `ingest_file` calls pool their GX sample; GX runs once per kind when it exits and
    the pooled result is written into every file's JSON report. For batch callers that loop over
    `ingest_file` themselves (the Dagster asset, the benchmark): ``with gx_pooled(): for f in …: ingest_file(…)``.
    Nested use is a no-op."""
    global _GX_POOL
    if _GX_POOL is not None:
        yield
        return
    _GX_POOL = {}
    try:
        yield
        pool, _GX_POOL = _GX_POOL, None
        if pool:
            try:
                _run_gx_pool(pool)
            except Exception as exc:  # GX is a recorded cross-check; never lose the batch over it
                for items in pool.values():
                    for rep, _, _ in items:
                        rep.gx.update({"ran": False, "reason": f"pooled GX run failed: {type(exc).__name__}"})
    finally:
        _GX_POOL = None


def ingest_batch(items, workers: int | None = None) -> list[IngestReport]:
    """(path, branch, period, kind, received_at) items in arrival order → reports in the same order, through
    worker processes (one lane per branch); see `pipelines.ingest.batch`."""
    from pipelines.ingest.batch import ingest_batch as run
    return run(items, workers=workers)


def ingest_inbox(inbox: Path | None = None, workers: int | None = None) -> list[IngestReport]:
    """Every pending inbox file, in arrival order, through `batch.ingest_batch` (worker processes for a
    large batch, one lane per branch; GX pooled once per kind). One bad file never stops the others."""
    from pipelines.ingest.batch import as_items, ingest_batch
    return ingest_batch(as_items(pending_inbox_files(inbox)), workers=workers)
