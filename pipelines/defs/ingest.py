"""Ingestion domain: the inbox sensor, the monthly-partitioned `raw_files` asset and its checks.

The asset is a thin door onto the ingestion engine (`pipelines.ingest.engine`, CONTRACTS §4): the same
functions `doanvien ingest` and the upload page call. Ingestion writes only the raw zone (Parquet), never
the warehouse file.

- `inbox_sensor`: one run per new file version in `<data>/inbox/<branch>/<YYYY-MM>/<kind>/<file>`.
  A cursor (inode change time, which the kernel sets when a file is written, moved in or re-stamped)
  keeps each tick cheap: only files changed since the cursor are hashed. The run key is the file's slot plus
  its sha256, so a file version launches at most one run, ever, even if the cursor were lost.
- `raw_files`, partitioned by month (`YYYY-MM`, the inbox folder): ingests the given files, or every
  pending file of the partition(s) run.
- Checks: `raw_zone_reconciles` (blocking): every file loaded in the run satisfies
  rows_read = rows_accepted + rows_refused and its raw rows are all there; if not, nothing downstream
  (dbt, publication) runs. `files_refused` (warning, non-blocking): refused files and rows, per branch,
  with their reason codes; a branch's bad file is refused on its own and never blocks the others.
"""

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import dagster as dg

from pipelines import config
from pipelines.ingest.hashing import sha256_file

PARTITION_START = "2020-01"
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITION_START, fmt="%Y-%m", end_offset=1)

RAW_FILES = dg.AssetKey("raw_files")
# the job that ingests and then builds and publishes (pipelines.defs.warehouse), and its full-rebuild run tag
REFRESH_JOB_NAME = "monthly_refresh"
FULL_REFRESH_TAG = "doanvien/full_refresh"
REGISTRY = dg.AssetKey("organisation_registry")
INGEST_POOL = "doanvien_raw_zone"
_PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# The organisation registry is written by the generator (or, in production, exported by the
# Confederation): an external asset, observed here only for lineage.
organisation_registry = dg.AssetSpec(
    REGISTRY,
    group_name="ingest",
    description="The Confederation's organisation registry (units, branches; CONTRACTS §2), <data>/registry/.",
    kinds={"parquet"},
)


# ---------------------------------------------------------------- inbox scanning

@dataclasses.dataclass(frozen=True)
class InboxFile:
    path: Path
    relpath: str  # relative to the inbox, POSIX
    branch: str
    period: str  # YYYY-MM
    kind: str
    ctime_ns: int
    size: int


def scan_inbox(inbox: Path | None = None) -> list[InboxFile]:
    """Every file at `<inbox>/<branch>/<YYYY-MM>/<kind>/<file>` (other layouts are ignored here; the
    engine reports them). Sorted by change time, then path."""
    inbox = inbox or config.inbox_dir()
    out: list[InboxFile] = []
    for branch_dir in _subdirs(inbox):
        for period_dir in _subdirs(branch_dir):
            if not _PERIOD_RE.match(period_dir.name):
                continue
            for kind_dir in _subdirs(period_dir):
                if kind_dir.name not in config.KINDS:
                    continue
                with os.scandir(kind_dir) as it:
                    for entry in it:
                        if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
                            continue
                        st = entry.stat(follow_symlinks=False)
                        out.append(InboxFile(
                            path=Path(entry.path),
                            relpath=f"{branch_dir.name}/{period_dir.name}/{kind_dir.name}/{entry.name}",
                            branch=branch_dir.name, period=period_dir.name, kind=kind_dir.name,
                            ctime_ns=st.st_ctime_ns, size=st.st_size,
                        ))
    out.sort(key=lambda f: (f.ctime_ns, f.relpath))
    return out


def _subdirs(p: Path) -> list[Path]:
    try:
        with os.scandir(p) as it:
            return sorted(Path(e.path) for e in it if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def run_key_for(f: InboxFile, sha256: str) -> str:
    return f"{f.branch}/{f.period}/{f.kind}/{sha256}"


# ---------------------------------------------------------------- the asset

class RawFilesConfig(dg.Config):
    """Which files to ingest. Empty: every pending file of the partition(s) of the run."""

    files: list[str] = []  # paths relative to the inbox (as the sensor sends them)


def _engine():
    try:
        from pipelines.ingest import engine
    except ImportError as exc:  # the engine is not there yet
        raise dg.Failure(f"the ingestion engine is not available: {exc}") from exc
    return engine


def _as_dict(result: Any) -> dict:
    if result is None:
        return {}
    if isinstance(result, dict):
        return dict(result)
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    if hasattr(result, "model_dump"):
        return result.model_dump()
    if hasattr(result, "_asdict"):
        return result._asdict()
    return {k: v for k, v in vars(result).items() if not k.startswith("_")}


def _partition_periods(context: dg.AssetExecutionContext) -> set[str] | None:
    """The months this run covers (None: unpartitioned run, every pending file)."""
    if context.has_partition_key_range:
        return set(context.partition_keys)
    if context.has_partition_key:
        return {context.partition_key}
    return None


def _pending_files(periods: set[str] | None) -> list[tuple]:
    """(path, branch, period, kind, received_at, sha256) of the pending files (sha256 not yet in the ledger) of the
    run's months, in arrival order. Files outside the inbox layout (no month folder) go with every
    multi-month run so that the engine records and reports them."""
    engine = _engine()
    out = []
    for f in engine.pending_inbox_files():
        if periods is not None and f.period is not None and f.period not in periods:
            continue
        out.append((Path(f.path), f.branch_code or "", f.period or "", f.kind or "", f.received_at,
                    getattr(f, "sha256", None)))  # the sha256 spares the batch hashing the file again
    return out


def _explicit_files(relpaths: list[str]) -> list[tuple[Path, str, str, str, Any]]:
    engine = _engine()
    out = []
    for r in relpaths:
        p = _resolve_inbox_path(r)
        b, per, k = engine.declared_from_path(p)
        out.append((p, b or "", per or "", k or "", None))
    return out


def _resolve_inbox_path(relpath: str) -> Path:
    inbox = config.inbox_dir().resolve()
    p = (inbox / relpath).resolve()
    if inbox not in p.parents:
        raise dg.Failure(f"refusing a path outside the inbox: {relpath!r}")
    return p


@dg.asset(
    key=RAW_FILES,
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"python", "parquet"},
    pool=INGEST_POOL,
    description=(
        "The raw zone (CONTRACTS §4): branches' files archived, validated, accepted rows in "
        "raw/<kind>/file_month=<YYYY-MM>/<file_id>.parquet (one directory per month the files declare), refused "
        "rows in quarantine/, one ledger row per file version in raw/files/. Partitioned by that month."
    ),
    check_specs=[
        dg.AssetCheckSpec("raw_zone_reconciles", asset=RAW_FILES, blocking=True,
                          description="Every file loaded in this run: rows_read = rows_accepted + rows_refused, "
                                      "and the accepted rows are all in the raw zone. Blocks dbt and publication."),
        dg.AssetCheckSpec("files_refused", asset=RAW_FILES, blocking=False,
                          description="Files and rows refused in this run, per branch and reason (a warning: a "
                                      "refused file is reported to its branch and never blocks the others)."),
    ],
)
def raw_files(context: dg.AssetExecutionContext, config: RawFilesConfig):
    from pipelines.warehouse import build as wbuild

    # the monthly refresh's build starts from a copy of the current version (~9 GB at national): made while the
    # files are ingested, and left finished for the build step (its own process when launched from the UI)
    prefetch = (context.job_name == REFRESH_JOB_NAME
                and str(context.run.tags.get(FULL_REFRESH_TAG, "")).lower() not in ("1", "true", "yes"))
    if prefetch:
        wbuild.prefetch_base_copy()
    try:
        yield from _ingest(context, config)
    finally:
        if prefetch:
            wbuild.finish_prefetch()


def _ingest(context: dg.AssetExecutionContext, config: RawFilesConfig):
    engine = _engine()
    periods = _partition_periods(context)
    todo = _explicit_files(config.files) if config.files else _pending_files(periods)
    context.log.info(f"ingesting {len(todo)} file(s) for {sorted(periods) if periods else 'all months'}")

    results: list[dict] = []
    crashed: list[dict] = []
    # one batch call: worker processes (one lane per branch, arrival order kept), GX once per kind on a
    # pooled sample; row verdicts come from the same suites compiled to Polars, file by file
    todo = [t for t in todo if t[0].exists()]  # withdrawn since it was listed
    for rep in engine.ingest_batch(todo):
        r = _as_dict(rep)
        if r.get("status") == "error":  # one file's crash never stops the others (no ledger row: retried)
            err = "; ".join(r.get("warnings") or []) or str(r.get("reason_code"))
            context.log.error(f"ingesting {r.get('branch_code')}/{r.get('period')}/{r.get('kind')} failed: {err}")
            crashed.append({"branch": r.get("branch_code"), "period": r.get("period"), "kind": r.get("kind"),
                            "error": err[:300]})
        else:
            results.append(r)
    paths = todo

    statuses = Counter(str(r.get("status", "?")) for r in results)
    yield dg.MaterializeResult(
        asset_key=RAW_FILES,
        metadata={
            "files": len(paths),
            "accepted": statuses.get("accepted", 0),
            "refused": statuses.get("refused", 0),
            "duplicate": statuses.get("duplicate", 0),
            "crashed": len(crashed),
            "rows_accepted": sum(int(r.get("rows_accepted") or 0) for r in results),
            "rows_refused": sum(int(r.get("rows_refused") or 0) for r in results),
        },
    )
    yield reconcile_check(results)
    yield refused_check(results, crashed)


def reconcile_check(results: Iterable[dict]) -> dg.AssetCheckResult:
    """rows_read = rows_accepted + rows_refused for every accepted file, and its raw rows exist."""
    bad: list[str] = []
    checked = 0
    for r in results:
        if str(r.get("status")) not in ("accepted", "refused"):
            continue  # duplicates change nothing
        checked += 1
        fid = str(r.get("file_id", ""))
        read, acc, ref = (int(r.get(k) or 0) for k in ("rows_read", "rows_accepted", "rows_refused"))
        if read != acc + ref:
            bad.append(f"{fid}: rows_read {read} != accepted {acc} + refused {ref}")
            continue
        if str(r.get("status")) != "accepted" or not acc:
            continue
        raw_file = Path(r["raw_path"]) if r.get("raw_path") else \
            config.raw_rows_path(str(r.get("detected_kind") or r.get("kind")), str(r.get("period")), fid)
        if not raw_file.exists():
            bad.append(f"{fid}: accepted {acc} rows but {raw_file.name} is missing")
        elif (n := _parquet_rows(raw_file)) != acc:
            bad.append(f"{fid}: {n} raw rows != rows_accepted {acc}")
    return dg.AssetCheckResult(
        asset_key=RAW_FILES, check_name="raw_zone_reconciles", passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"files_checked": checked, "violations": len(bad), "details": "\n".join(bad[:50]) or "none"},
    )


def refused_check(results: Iterable[dict], crashed: list[dict]) -> dg.AssetCheckResult:
    results = list(results)
    refused = [r for r in results if str(r.get("status")) == "refused"]
    by_branch = Counter(str(r.get("branch_code", "?")) for r in refused)
    by_reason = Counter(str(r.get("reason_code", "?")) for r in refused)
    rows_refused = sum(int(r.get("rows_refused") or 0) for r in results)
    return dg.AssetCheckResult(
        asset_key=RAW_FILES, check_name="files_refused",
        passed=not refused and not crashed and rows_refused == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files_refused": len(refused),
            "rows_refused": rows_refused,
            "files_crashed": len(crashed),
            "by_branch": json.dumps(dict(by_branch.most_common(50)), ensure_ascii=False),
            "by_reason": json.dumps(dict(by_reason), ensure_ascii=False),
        },
    )


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


ingest_files_job = dg.define_asset_job(
    "ingest_files",
    selection=dg.AssetSelection.assets(RAW_FILES),
    partitions_def=monthly_partitions,
    executor_def=dg.in_process_executor,
    description="Ingest branch files into the raw zone (launched by inbox_sensor, one run per file version).",
)


# ---------------------------------------------------------------- the sensor

def _load_cursor(raw: str | None) -> dict:
    if not raw:
        return {"ctime_ns": 0, "at_max": []}
    try:
        c = json.loads(raw)
        return {"ctime_ns": int(c.get("ctime_ns", 0)), "at_max": list(c.get("at_max", []))}
    except (ValueError, TypeError):
        return {"ctime_ns": 0, "at_max": []}


MAX_RUNS_PER_TICK = 500


@dg.sensor(
    name="inbox_sensor",
    job=ingest_files_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="One ingest run per new file version in <data>/inbox/<branch>/<YYYY-MM>/<kind>/ (run key: "
                "slot + sha256; cursor: change time).",
)
def inbox_sensor(context: dg.SensorEvaluationContext):
    cursor = _load_cursor(context.cursor)
    files = scan_inbox()
    new = [f for f in files
           if f.ctime_ns > cursor["ctime_ns"] or (f.ctime_ns == cursor["ctime_ns"] and f.relpath not in cursor["at_max"])]
    if not new:
        return dg.SkipReason("Không có tệp mới / no new file in the inbox")
    new = new[:MAX_RUNS_PER_TICK]  # the rest next tick (sorted by change time, so the cursor stays exact)
    last = new[-1].ctime_ns
    requests = []
    first_partition = monthly_partitions.get_first_partition_key()
    last_partition = monthly_partitions.get_last_partition_key()
    for f in new:
        if f.period < first_partition or (last_partition and f.period > last_partition):
            context.log.warning(f"{f.relpath}: month {f.period} outside {first_partition}..{last_partition}; skipped")
            continue
        try:
            digest = sha256_file(f.path)
        except FileNotFoundError:  # withdrawn between the scan and the hash
            continue
        requests.append(dg.RunRequest(
            run_key=run_key_for(f, digest),
            partition_key=f.period,
            run_config=dg.RunConfig(ops={"raw_files": RawFilesConfig(files=[f.relpath])}),
            tags={"doanvien/branch": f.branch, "doanvien/kind": f.kind, "doanvien/sha256": digest[:16]},
        ))
    at_max = [f.relpath for f in new if f.ctime_ns == last]
    if last == cursor["ctime_ns"]:
        at_max = sorted(set(cursor["at_max"]) | set(at_max))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"ctime_ns": last, "at_max": at_max}))


def inbox_periods(inbox: Path | None = None) -> list[str]:
    """Months that have at least one file in the inbox (YYYY-MM, sorted)."""
    return sorted({f.period for f in scan_inbox(inbox)})


assets = [raw_files, organisation_registry]
asset_checks: list = []
jobs = [ingest_files_job]
sensors = [inbox_sensor]
schedules: list = []
