"""Building the warehouse into a new file and publishing it (the single writer).

A build never touches a published file:

1. `prepare_build(run_id)` chooses `<data>/warehouse/build/<run_id>.duckdb`. An incremental build starts
   from a *copy* of the current published file (so a monthly refresh only adds its month); a full
   refresh, the first build, or a build whose warehouse code differs from the base version's, starts from an
   empty file. The monthly refresh starts that copy in a thread while it ingests (`prefetch_base_copy`), and
   `prepare_build` takes it when it is of the version the build starts from. Before dbt reads the raw zone,
   `prepare_build` also moves an older flat layout into month directories and folds the loose ingest ledger rows
   and quarantine files into segments (`pipelines.ingest.ledger.compact`, `pipelines.ingest.quarantine.compact`).
2. dbt (`dbt build`) runs against it with `dbt_env(plan)`: DOANVIEN_BUILD_DB, DOANVIEN_RAW_DIR,
   DOANVIEN_REGISTRY_DIR, DOANVIEN_QUARANTINE_DIR, DOANVIEN_MEMBER_KEY_SECRET. Either in-process
   (`run_dbt`, dbtRunner: `doanvien build`) or from Dagster (`pipelines/defs/warehouse.py`).
3. `finish_and_publish(run_id)` stamps `meta.warehouse_version`, CHECKPOINTs, closes, checks that no
   `.wal` is left, writes the analyst copy (marts + reference + meta: on an incremental build the base version's
   copy, prefetched or copied by `prepare_build`, brought up to date with the months the build restated,
   `serving.make_analyst_copy`), and publishes both through `serving.publish` (read-only smoke queries, then the
   atomic pointer flip).

On any failure the build files are deleted and the published version stays as it was.
The plan of a build is saved beside it (`<run_id>.plan.json`) so that the Dagster steps, which may run in
different processes, agree on the build file, the version id and the mode.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import json
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from pipelines import config
from pipelines.warehouse import serving
from pipelines.warehouse.keys import member_key_secret

log = logging.getLogger(__name__)

# Schemas a warehouse must contain to be published (once the dbt project defines models in them).
PUBLISH_REQUIRED_SCHEMAS = ("marts",)


@dataclass
class BuildPlan:
    run_id: str
    version: str
    build_path: str
    analyst_build_path: str
    full_refresh: bool
    base_version: str | None = None
    base_published_at: str | None = None
    periods: list[str] | None = None  # months (YYYY-MM) touched by files ingested since the base version (incremental)
    started_at: float = field(default_factory=time.time)
    code_fingerprint: str | None = None  # of the warehouse code this build runs (`warehouse_code_fingerprint`)
    full_refresh_reason: str | None = None  # why a build asked to be incremental runs in full
    # why this build runs in full: requested (--full-refresh), first_build (no version to start from),
    # code_changed (the warehouse code differs from the base version's); None for an incremental build
    full_refresh_reason_code: str | None = None
    # what the operator must know about this build's inputs, Vietnamese / English (e.g. a ledger or quarantine file
    # that could not be read and was set aside by the compaction: `ledger.compact`, `quarantine.compact`)
    notices: list[str] = field(default_factory=list)
    # a copy of the base version's analysts' file, brought up to date at publication instead of copying every
    # table again (`serving.make_analyst_copy`); None for a full build or when the base version has none
    analyst_base_path: str | None = None

    def save(self) -> None:
        serving.atomic_write_text(plan_path(self.run_id), json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, run_id: str) -> "BuildPlan":
        try:
            data = json.loads(plan_path(run_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RuntimeError(f"no build prepared for run {run_id} (missing {plan_path(run_id)})") from None
        return cls(**data)


def _safe_run_id(run_id: str) -> str:
    safe = re.sub(r"[^0-9a-zA-Z_-]", "_", run_id)
    if not safe:
        raise ValueError("empty run id")
    return safe


def build_path_for(run_id: str) -> Path:
    return serving.build_dir() / f"{_safe_run_id(run_id)}.duckdb"


def plan_path(run_id: str) -> Path:
    return serving.build_dir() / f"{_safe_run_id(run_id)}.plan.json"


def changed_periods_since(published_at: str | None) -> list[str] | None:
    """Months (YYYY-MM) of files the ingest ledger recorded after `published_at`; None if unknown."""
    if not published_at:
        return None
    from pipelines.ingest import ledger

    files = ledger.paths()
    if not files:
        return []
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT strftime(CAST(period AS DATE), '%Y-%m') FROM read_parquet(?, union_by_name=true) "
            "WHERE CAST(ingested_at AS TIMESTAMPTZ) > CAST(? AS TIMESTAMPTZ) ORDER BY 1",
            [[str(f) for f in files], published_at],
        ).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return [r[0] for r in rows]


# ART indexes for point lookups (an official's search by CCCD or member code, a member's own record and the
# lookup's current unit), the person key, the CCCD and the member code by serving.lookup_expression (queries:
# serving.lookup_match; the member code's is a hash, checked by serving.lookup_hash_ok).
# Made on the finished build, before publishing; dropped from the copy an incremental build starts from, because
# dbt rebuilds a table by renaming it, which DuckDB refuses for an indexed table.
# dim_member has none: a lookup reads the current unit, status and age band from member_pii (the same macros), so
# its national index (8–11 s to make, 0.53 GB of the file) served no reader.
LOOKUP_INDEXES = (("restricted", "member_pii", "cccd"), ("restricted", "member_pii", "member_code"),
                  ("restricted", "member_pii", "member_key"),
                  # the records of a search by name: the first 50 name_ranks, often far apart in the table
                  ("restricted", "member_search", "name_rank"))
# indexes earlier builds made and this one does not: still dropped from a copy an incremental build starts from
RETIRED_LOOKUP_INDEXES = (("marts", "dim_member", "member_key"),)


def set_lookup_indexes(db_path: str | os.PathLike, present: bool) -> list[str]:
    """Create (present=True) or drop the `LOOKUP_INDEXES` of the tables that exist in `db_path`; dropping also
    removes `RETIRED_LOOKUP_INDEXES` (a base copy made by an older build can still have them)."""
    import duckdb

    done: list[str] = []
    con = duckdb.connect(os.fspath(db_path))
    try:
        have = {(r[0], r[1], r[2]) for r in con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        ).fetchall()}
        for schema, table, col in LOOKUP_INDEXES:
            name = f"ix_{table}_{col}"
            if present and (schema, table, col) in have:
                # on serving.lookup_expression(col): the key as a UUID, the CCCD as a number, else the column
                on = (f"({serving.lookup_expression(col)})" if col in serving.LOOKUP_KEY_EXPRESSIONS
                      else f'"{col}"')
                con.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{schema}"."{table}" ({on})')
                done.append(name)
                if col in serving.LOSSY_LOOKUPS:
                    serving.write_hash_probe(con)
            elif not present:
                con.execute(f'DROP INDEX IF EXISTS "{schema}".{name}')
                done.append(name)
        if not present:
            for schema, table, col in RETIRED_LOOKUP_INDEXES:
                con.execute(f'DROP INDEX IF EXISTS "{schema}".ix_{table}_{col}')
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return done


def member_key_changes(db_path: str | os.PathLike) -> list[tuple[str, str]]:
    """(previous_member_key, member_key) of the people a build re-keyed (keys only; empty when none or when
    the build has no such table)."""
    import duckdb

    con = duckdb.connect(os.fspath(db_path), read_only=True)
    try:
        try:
            return [tuple(r) for r in con.execute(
                # the keys as analysts and accounts hold them: 32 hex digits (the warehouse keeps a UUID inside)
                "SELECT DISTINCT replace(CAST(previous_member_key AS VARCHAR), '-', ''), "
                "replace(CAST(member_key AS VARCHAR), '-', '') FROM intermediate.int_member_key_changes").fetchall()]
        except duckdb.CatalogException:
            return []
    finally:
        con.close()


# What the warehouse's content depends on besides the data: its dbt code and the reference data the build reads.
FINGERPRINT_GLOBS = ("dbt_project.yml", "dbt_project/**/*.sql", "dbt_project/**/*.yml", "dbt_project/**/*.csv",
                     "data/reference/*")


def warehouse_code_fingerprint() -> str:
    """sha256 of the dbt project and reference files (paths and bytes). A published version records it; a build
    whose code differs from its base version's runs in full (`prepare_build`), because the tables kept month by
    month and the incremental models hold rows computed by the old code. A YAML file counts without its
    `description` texts (documentation: the warehouse stores no description, the SQL page reads them from the
    manifest) and a SQL file without its comments, so a docs-only YAML edit or a comment edit keeps the next
    refresh incremental; every other edit counts (a full build is always correct, only slower)."""
    h = hashlib.sha256()
    root = config.REPO_ROOT
    # not: hidden files (dbt writes profiles/.user.yml on its first run), the profiles (connection settings, not
    # logic), build output
    skip = ("target", "dbt_packages", "logs", "profiles")
    files = sorted({p for g in FINGERPRINT_GLOBS for p in root.glob(g)
                    if p.is_file() and not any(part.startswith(".") or part in skip
                                               for part in p.relative_to(root).parts)})
    for p in files:
        h.update(p.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(_fingerprint_bytes(p))
        h.update(b"\0")
    return h.hexdigest()[:16]


def _without_descriptions(node):
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


_JINJA_COMMENT = re.compile(rb"\{#.*?#\}", re.S)
_SQL_COMMENT_LINE = re.compile(rb"^[ \t]*--[^\n]*(\n|$)", re.M)


def _without_comments(sql: bytes) -> bytes:
    """A model or macro without its comments: Jinja comments (`{# … #}`, never rendered) and whole-line SQL
    comments (`-- …` from the line start; a comment after code on the same line still counts, since telling it
    from `--` inside a string would need a SQL parser), and without blank lines."""
    text = _SQL_COMMENT_LINE.sub(b"", _JINJA_COMMENT.sub(b"", sql))
    return b"\n".join(line for line in text.splitlines() if line.strip())  # nor the blank lines left


def _fingerprint_bytes(path: Path) -> bytes:
    """What of a file the fingerprint covers: its bytes; for SQL without its comments (`_without_comments`); for
    YAML its content without `description` keys (canonical JSON; a file that does not parse counts byte for
    byte)."""
    data = path.read_bytes()
    if path.suffix == ".sql":
        return _without_comments(data)
    if path.suffix not in (".yml", ".yaml"):
        return data
    try:
        import yaml

        doc = yaml.safe_load(data)
    except Exception:  # noqa: BLE001 - unparsable YAML: dbt will say why; its bytes count
        return data
    return json.dumps(_without_descriptions(doc), sort_keys=True, default=str, ensure_ascii=False).encode()


def version_fingerprint(db_path: str | os.PathLike) -> str | None:
    """The code fingerprint a published file recorded (None for a version made before fingerprints)."""
    import duckdb

    con = duckdb.connect(os.fspath(db_path), read_only=True)
    try:
        row = con.execute(f"SELECT build_info FROM {serving.VERSION_TABLE}").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    try:
        return json.loads(row[0]).get("code_fingerprint") if row and row[0] else None
    except ValueError:
        return None


def prepare_build(run_id: str, full_refresh: bool = False) -> BuildPlan:
    """Create the build file for `run_id` (a copy of the current version, or nothing for a full build)."""
    from pipelines.ingest import ledger, quarantine
    from pipelines.ingest.engine import ledger_lock, migrate_raw_layout

    path = build_path_for(run_id)
    serving.remove_build_files(path)  # a retried step starts again from a clean state
    migrate_raw_layout()  # a raw zone an older version wrote flat: into month directories before dbt reads it
    with ledger_lock():  # loose ledger rows and quarantine files into segments: dbt opens a file per build,
        folded = [ledger.compact(), quarantine.compact()]  # not one per version received
    notices = [f["notice"] for f in folded if f.get("notice")]
    for n in notices:
        log.warning("build %s: %s", run_id, n)
    remove_stale_builds()
    cur = serving.current_version()
    base_file = serving.warehouse_path() if cur is not None else None
    base = cur if (cur is not None and not full_refresh and base_file.exists()) else None
    fingerprint, reason = warehouse_code_fingerprint(), None
    reason_code = None if base is not None else ("requested" if full_refresh else "first_build")
    if base is not None and (recorded := version_fingerprint(base_file)) != fingerprint:
        reason = (f"the warehouse code changed since version {base.version} (fingerprint {recorded} → {fingerprint}): "
                  "its kept tables were computed by the old code, so this build runs in full")
        log.warning("build %s: %s", run_id, reason)
        reason_code = "code_changed"
        base = None
    prefetched = take_prefetched_copy(base.version if base is not None else None)
    analyst_base = serving.analyst_path_for(path, ".analyst-base.duckdb")
    if base is not None and prefetched is not None:
        os.replace(prefetched, path)  # copied while the files were being ingested
        if not _take_analyst_companion(prefetched, analyst_base):
            _copy_analyst_base(base, analyst_base)
    elif base is not None:
        tmp = path.with_name(path.name + ".copying")
        _copy_base(base_file, tmp)
        os.replace(tmp, path)
        _copy_analyst_base(base, analyst_base)
    plan = BuildPlan(
        run_id=run_id,
        version=serving.new_version_id(run_id),
        build_path=os.fspath(path),
        analyst_build_path=os.fspath(serving.analyst_path_for(path)),
        full_refresh=base is None,
        base_version=base.version if base else None,
        base_published_at=base.published_at if base else None,
        periods=changed_periods_since(base.published_at) if base else None,
        code_fingerprint=fingerprint,
        full_refresh_reason=reason,
        full_refresh_reason_code=reason_code,
        notices=notices,
        analyst_base_path=os.fspath(analyst_base) if base is not None and analyst_base.exists() else None,
    )
    plan.save()
    return plan


def describe_build(full_refresh: bool, periods: list[str] | None, reason_code: str | None = None) -> str:
    """One line, Vietnamese / English, telling an operator how a build ran: incremental from which month, or
    in full and why (`BuildPlan.full_refresh_reason_code`)."""
    if not full_refresh:
        if not periods:
            return ("tăng dần: không có tệp mới, không tháng nào phải tính lại / "
                    "incremental: no new file, no month restated")
        first = min(periods)
        mm = f"{first[5:7]}/{first[:4]}"
        return (f"tăng dần: tính lại từ tháng {mm} ({len(periods)} tháng có tệp mới), giữ nguyên các tháng trước / "
                f"incremental: months restated from {mm} ({len(periods)} with new files), earlier months kept")
    if reason_code == "code_changed":
        return ("dựng lại toàn bộ vì mã kho dữ liệu đã đổi so với phiên bản trước (các bảng giữ lại do mã cũ tính) / "
                "full rebuild: the warehouse code changed since the previous version")
    if reason_code == "first_build":
        return "dựng toàn bộ: chưa có phiên bản nào để làm nền / full build: no earlier version to start from"
    return "dựng lại toàn bộ theo yêu cầu (--full-refresh) / full rebuild, as requested (--full-refresh)"


def _copy_base(base_file: Path, dst: Path) -> None:
    shutil.copyfile(base_file, dst)  # a published file is immutable and has no WAL: a plain copy is consistent
    set_lookup_indexes(dst, present=False)


def _copy_analyst_base(base: serving.Version, dst: Path) -> bool:
    """Copy the analysts' file of version `base` to `dst` (the start of this build's analysts' file); False when
    that version has none (then the analysts' file is made by copying every table)."""
    src = serving.resolve_recorded(base.analyst_path) if base.analyst_path else None
    if src is None or not src.exists():
        return False
    tmp = dst.with_name(dst.name + ".copying")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return True


def _analyst_companion(prefetched: Path) -> Path:
    """Where the prefetch leaves its copy of the analysts' file beside the copy of the full file (a name the
    `prefetch-*.duckdb` listing does not match)."""
    return prefetched.with_name(prefetched.name + ".analyst")


def _take_analyst_companion(prefetched: Path, dst: Path) -> bool:
    try:
        os.replace(_analyst_companion(prefetched), dst)
        return True
    except FileNotFoundError:
        return False


# The copy an incremental build starts from (~9 GB at national, ~40 s) does not depend on the files being
# ingested, so the monthly refresh starts it in a thread when ingestion starts (`prefetch_base_copy`) and
# `prepare_build` takes it when it is of the version the build starts from (else it is deleted and the build
# copies as before). A run of the monthly_refresh job launched from the Dagster UI runs each step in its own
# process: the raw_files step starts the copy and waits for it before it ends (`finish_prefetch`), leaving the
# finished file, `prefetch-<version>.duckdb`, for the build step's process to take.
_PREFETCH_LOCK = threading.Lock()
_PREFETCH: dict[str, object] = {}


def _prefetch_path(version: str) -> Path:
    return serving.build_dir() / f"prefetch-{_safe_run_id(version)}.duckdb"


def prefetch_base_copy() -> str | None:
    """Start copying the current published version into the build directory in a background thread (no-op when
    nothing is published or a copy is already under way). Returns the version being copied."""
    cur = serving.current_version()
    if cur is None or not serving.warehouse_path().exists():
        return None
    with _PREFETCH_LOCK:
        if _PREFETCH.get("version") == cur.version:
            return cur.version
        _discard_prefetch_locked()
        dst = _prefetch_path(cur.version)
        src = serving.warehouse_path()

        def run() -> None:
            tmp = dst.with_name(dst.name + ".copying")
            try:
                _copy_base(src, tmp)
                # the analysts' file too (`_analyst_companion`), before the full file's copy is in place: a
                # finished prefetch always has its companion when the version has one
                with contextlib.suppress(OSError):
                    _copy_analyst_base(cur, _analyst_companion(dst))
                os.replace(tmp, dst)
            except BaseException as exc:  # the build then copies by itself
                _PREFETCH["error"] = repr(exc)
                for p in (tmp, _analyst_companion(dst)):
                    with contextlib.suppress(OSError):
                        p.unlink()

        t = threading.Thread(target=run, name="prefetch-base-copy", daemon=True)
        _PREFETCH.update(version=cur.version, thread=t, path=dst, error=None)
        t.start()
        log.info("prefetching a copy of version %s for the next build", cur.version)
        return cur.version


def _discard_prefetch_locked() -> None:
    t, path = _PREFETCH.get("thread"), _PREFETCH.get("path")
    if t is not None:
        t.join()
    if path is not None:
        _unlink_prefetch(Path(path))
    _PREFETCH.clear()


def _unlink_prefetch(path: Path) -> None:
    for p in (path, _analyst_companion(path)):
        with contextlib.suppress(OSError):
            p.unlink()


def _finished_prefetches() -> list[Path]:
    """Finished prefetched copies on disk (a copy under way is `*.copying` until it is complete)."""
    d = serving.build_dir()
    return sorted(d.glob("prefetch-*.duckdb")) if d.is_dir() else []


def discard_prefetch() -> list[str]:
    """Delete a prefetched copy no build took (the refresh failed before building, or built in full); also called
    by the Dagster sensors that follow a failed or cancelled refresh run. Returns the files deleted."""
    removed: list[str] = []
    with _PREFETCH_LOCK:
        _discard_prefetch_locked()
        for p in _finished_prefetches():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p.name)
            with contextlib.suppress(OSError):
                _analyst_companion(p).unlink()
    return removed


def finish_prefetch() -> str | None:
    """Wait for this process's prefetched copy and leave it on disk for a build in another process (the step
    processes of a run launched from the Dagster UI); this process forgets it. Returns its version, or None (no
    copy, or it failed: nothing is left)."""
    with _PREFETCH_LOCK:
        if not _PREFETCH:
            return None
        _PREFETCH["thread"].join()
        version, path, error = _PREFETCH.get("version"), Path(_PREFETCH["path"]), _PREFETCH.get("error")
        _PREFETCH.clear()
        if error or not path.exists():
            _unlink_prefetch(path)
            return None
        return str(version)


def take_prefetched_copy(version: str | None) -> Path | None:
    """The prefetched copy of `version` once complete (waits for a copy this process is making; a finished one
    left by another process is taken as it is), or None; a copy of another version, or one that failed, is
    deleted."""
    with _PREFETCH_LOCK:
        if not _PREFETCH:
            wanted = _prefetch_path(version) if version is not None else None
            found = None
            for p in _finished_prefetches():
                if p == wanted:
                    found = p
                else:  # of a version this build does not start from: it can never be used
                    _unlink_prefetch(p)
            return found
        if version is None or _PREFETCH.get("version") != version:
            _discard_prefetch_locked()
            return None
        _PREFETCH["thread"].join()
        path, error = Path(_PREFETCH["path"]), _PREFETCH.get("error")
        _PREFETCH.clear()
        if error or not path.exists():
            log.warning("prefetched copy of %s not usable (%s): copying now", version, error or "missing")
            _unlink_prefetch(path)
            return None
        return path


STALE_BUILD_SECONDS = 24 * 3600


def remove_stale_builds(max_age_seconds: float = STALE_BUILD_SECONDS) -> list[str]:
    """Delete build leftovers (crashed runs) older than a day; a live build is never that old."""
    removed = []
    now = time.time()
    link = dbt_database_link()  # a crashed build's second link keeps its file's space until the next build
    with contextlib.suppress(FileNotFoundError):
        if now - link.stat().st_mtime >= max_age_seconds:
            _remove_dbt_database_link()
            removed.append(f"{link.parent.name}/{link.name}")
    for p in serving.build_dir().iterdir():
        try:
            if now - p.stat().st_mtime < max_age_seconds:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
            removed.append(p.name)
        except FileNotFoundError:
            continue
    return removed


# dbt runs this many models at once (profiles.yml `threads`) unless DOANVIEN_DBT_THREADS says otherwise. Each DuckDB
# query already uses every core, and two 12 M-row models side by side share memory_limit and spill: in the national
# refresh at 8668f52, int_member_roster_states and int_member_unit_months took 104 s and 99 s side by side against
# 38 s and 37 s one after the other, and dbt as a whole ~30 s longer with two threads. So a build whose latest
# month of roster rows is large runs one model at a time; a small one keeps two (many small models and tests).
LARGE_MONTH_BYTES = 64 * 1024 * 1024  # Parquet bytes of one month's roster rows: national ~380 MB, small ~2 MB


def default_dbt_threads(raw_dir: Path | None = None) -> int:
    """1 when one of the three latest months of raw roster rows holds more than `LARGE_MONTH_BYTES`, else 2 (not
    the latest alone: a branch sending next month's roster early opens a month directory with one file)."""
    months = sorted(p for p in (Path(raw_dir or config.raw_dir()) / "roster").glob("file_month=*") if p.is_dir())

    def size(d: Path) -> int:
        total = 0
        for f in d.glob("*.parquet"):
            with contextlib.suppress(FileNotFoundError):
                total += f.stat().st_size
        return total

    return 1 if any(size(d) > LARGE_MONTH_BYTES for d in months[-3:]) else 2


# dbt reaches every build's file through one path per data root, `<warehouse>/dbt/warehouse.duckdb`, a second
# (hard) link to the build's file (`link_build_for_dbt`), and keeps its state in `<warehouse>/dbt/target` from one
# build to the next (`dbt_target_path`). Its profile (database path and name) and its project's variables are then
# the same every build, so dbt parses the project partially (the files that changed) instead of in full: 3.7 s
# against 9.1 s for `dbt parse` of this project in a new process (bench/README.md). A hard link, not a symbolic
# one: DuckDB names a database after the file a symbolic link points to, and dbt's SQL names it after the path in
# its profile. The build's own file keeps its name (`build_path_for`), so every other step is unchanged; the
# changed months reach dbt in DOANVIEN_PERIODS, read when SQL runs (restate_from() in macros/incremental.sql).
def dbt_state_dir() -> Path:
    p = serving.warehouse_root() / "dbt"
    p.mkdir(parents=True, exist_ok=True)
    return p


def dbt_database_link() -> Path:
    return dbt_state_dir() / "warehouse.duckdb"


def _remove_dbt_database_link() -> None:
    """The link and what DuckDB keeps beside the path it opened (a .wal, the spill directory)."""
    link = dbt_database_link()
    for p in (link, serving.wal_path(link)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    shutil.rmtree(f"{os.fspath(link)}.tmp", ignore_errors=True)


def link_build_for_dbt(build_path: str | os.PathLike) -> Path:
    """Make `dbt_database_link()` a link to `build_path` (created empty when a full build starts from nothing),
    replacing the last build's. A crashed build's .wal beside the link is removed first: it must never be
    replayed onto another build's file."""
    import duckdb

    _remove_dbt_database_link()
    if not Path(build_path).exists():
        duckdb.connect(os.fspath(build_path)).close()
    link = dbt_database_link()
    os.link(build_path, link)
    return link


def is_linked_for_dbt(build_path: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(dbt_database_link(), build_path)
    except FileNotFoundError:
        return False


def settle_dbt_database(build_path: str | os.PathLike) -> None:
    """Fold a WAL that dbt's DuckDB left beside `dbt_database_link()` (it checkpoints when it closes, so normally
    none is there) into `build_path`, through the link, before anything opens the file by its own name (which
    would not see that WAL); then remove the link."""
    import duckdb

    if not is_linked_for_dbt(build_path):
        return
    link = dbt_database_link()
    if serving.wal_path(link).exists():
        log.warning("%s: dbt left a WAL beside %s; checkpointing it into the build file", build_path, link)
        serving.checkpoint_and_close(duckdb.connect(os.fspath(link)), link)
    _remove_dbt_database_link()


def dbt_env(plan: BuildPlan) -> dict[str, str]:
    """Environment variables dbt needs for this build (profiles.yml and dbt_project.yml read them). Points
    `dbt_database_link()` at the build's file (`link_build_for_dbt`): call it right before running dbt."""
    return {
        "DOANVIEN_DBT_THREADS": os.environ.get("DOANVIEN_DBT_THREADS") or str(default_dbt_threads()),
        "DOANVIEN_BUILD_DB": os.fspath(link_build_for_dbt(plan.build_path)),
        "DOANVIEN_RAW_DIR": os.fspath(config.raw_dir()),
        "DOANVIEN_REGISTRY_DIR": os.fspath(config.registry_dir()),
        "DOANVIEN_QUARANTINE_DIR": os.fspath(config.quarantine_dir()),
        "DOANVIEN_REFERENCE_DIR": os.fspath(config.REFERENCE_DIR),
        "DOANVIEN_MEMBER_KEY_SECRET": member_key_secret(),
        "DBT_PROFILES_DIR": os.fspath(config.DBT_PROFILES_DIR),
        "DBT_PROJECT_DIR": os.fspath(config.DBT_PROJECT_DIR),
        # incremental: the months to restate (restate_from() in macros/incremental.sql); empty = every month (the
        # ledger could not tell), "nothing" = no file ingested since the base version: restate no month
        "DOANVIEN_PERIODS": periods_env(plan),
    }


def periods_env(plan: BuildPlan) -> str:
    if plan.full_refresh or plan.periods is None:
        return ""
    return ",".join(plan.periods) if plan.periods else NO_MONTH_CHANGED


# DOANVIEN_PERIODS when nothing was ingested since the base version (restate_from() in macros/incremental.sql)
NO_MONTH_CHANGED = "nothing"


# dbt's unit tests check the models' SQL on fixed inputs: they run in the test suite (tests/warehouse), not in every
# production build, as dbt recommends (static inputs: the same answer every month; 4.7 s of a national build).
# The data tests still run on every build.
BUILD_EXCLUDES = ["--exclude-resource-type", "unit_test"]


def dbt_build_args(plan: BuildPlan) -> list[str]:
    """Arguments after `dbt`: `build` without the unit tests (`BUILD_EXCLUDES`), plus `--full-refresh` for a full
    build (the changed months of an incremental build travel in DOANVIEN_PERIODS, see `dbt_env`)."""
    return ["build", *BUILD_EXCLUDES, *(["--full-refresh"] if plan.full_refresh else [])]


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (dbt reads env_var() from os.environ)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def release_dbt_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb may still hold in this process (in-process dbt runs)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    if env is not None:
        with contextlib.suppress(Exception):
            env.close()
        DuckDBConnectionManager._ENV = None


def required_schemas() -> tuple[str, ...]:
    """Schemas the published file must have: `meta` always, `marts` once the dbt project has mart models."""
    marts_dir = config.DBT_PROJECT_DIR / "dbt_project" / "models" / "marts"
    has_marts = marts_dir.exists() and any(marts_dir.rglob("*.sql"))
    return (serving.META_SCHEMA, *(PUBLISH_REQUIRED_SCHEMAS if has_marts else ()))


def finish_and_publish(run_id: str, *, keep: int = serving.DEFAULT_KEEP,
                       extra: dict | None = None) -> serving.Version:
    """Stamp, checkpoint, copy the analyst schemas and publish the build of `run_id`. Deletes the build
    files when anything fails (nothing is published then)."""
    plan = BuildPlan.load(run_id)
    release_dbt_duckdb()
    try:
        if not Path(plan.build_path).exists():
            raise serving.PublishError(f"build file {plan.build_path} does not exist (did dbt build run?)")
        settle_dbt_database(plan.build_path)
        info = {"full_refresh": plan.full_refresh, "base_version": plan.base_version, "periods": plan.periods,
                "code_fingerprint": plan.code_fingerprint, "full_refresh_reason": plan.full_refresh_reason,
                "full_refresh_reason_code": plan.full_refresh_reason_code,
                **(extra or {})}
        serving.stamp_version(plan.build_path, plan.version, plan.run_id, info)
        set_lookup_indexes(plan.build_path, present=True)
        rekeyed = member_key_changes(plan.build_path)
        # an incremental build brings the base version's analysts' file up to date (its restated months and
        # re-keyed people) instead of copying every table of all history again
        base = plan.analyst_base_path if plan.analyst_base_path and Path(plan.analyst_base_path).exists() else None
        windows = serving.analyst_windows(plan.build_path) if base is not None and not plan.full_refresh else None
        copy = serving.make_analyst_copy(plan.build_path, plan.analyst_build_path, base=base if windows else None,
                                         take_base=True, windows=windows, rekeyed=rekeyed)
        if base is not None:
            with contextlib.suppress(FileNotFoundError):
                Path(base).unlink()  # not used (no record of the windows)
        LAST_ANALYST_COPY[:] = [copy]
        log.info("analysts' file of %s: %d tables copied, %d brought up to date", plan.version, len(copy.copied),
                 len(copy.updated))
        published = serving.publish(
            plan.build_path, version=plan.version, run_id=plan.run_id,
            analyst_build_path=plan.analyst_build_path, required_schemas=required_schemas(), keep=keep,
        )
    except BaseException:
        discard_build(run_id)
        raise
    with contextlib.suppress(FileNotFoundError):
        plan_path(run_id).unlink()
    if rekeyed:  # member accounts linked by member_key follow their person's new key
        from pipelines.access.accounts import follow_member_key_changes

        counts = follow_member_key_changes(rekeyed)
        log.info("published %s: %d people re-keyed, %d member accounts followed, %d left for an administrator "
                 "(person split)", published.version, len(rekeyed), counts["followed"], counts["split"])
    return published


def discard_build(run_id: str) -> None:
    """Delete everything a (failed) build left behind."""
    release_dbt_duckdb()
    if is_linked_for_dbt(build_path_for(run_id)):
        _remove_dbt_database_link()
    serving.remove_build_files(build_path_for(run_id))
    with contextlib.suppress(FileNotFoundError):
        plan_path(run_id).unlink()


def dbt_target_path(run_id: str | None = None) -> Path:
    """dbt's target and log directory for the builds of this data root (kept between builds for partial parsing;
    `clean_dbt_target` empties it of everything else after each run). One build at a time (the writer lock)."""
    return dbt_state_dir() / "target"


DBT_PARSE_STATE = "partial_parse.msgpack"


def clean_dbt_target(target: Path) -> None:
    """Remove a run's artifacts and logs from `target`, keeping dbt's parse state (`DBT_PARSE_STATE`)."""
    if not target.is_dir():
        return
    for p in target.iterdir():
        if p.name == DBT_PARSE_STATE:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def run_dbt(args: Sequence[str], env: dict[str, str], target_path: Path | None = None, callbacks=None):
    """Run dbt in this process (dbtRunner: no new interpreter, no re-import). Returns the dbtRunnerResult.
    `callbacks` receive every dbt event (EventMsg) as it happens."""
    from dbt.cli.main import dbtRunner

    full = [*args, "--project-dir", os.fspath(config.DBT_PROJECT_DIR),
            "--profiles-dir", os.fspath(config.DBT_PROFILES_DIR)]
    if target_path is not None:
        target_path.mkdir(parents=True, exist_ok=True)
        shared = config.DBT_PROJECT_DIR / "target" / DBT_PARSE_STATE
        if shared.exists() and not (target_path / DBT_PARSE_STATE).exists():
            shutil.copy(shared, target_path / DBT_PARSE_STATE)
        full += ["--target-path", os.fspath(target_path), "--log-path", os.fspath(target_path)]
    with patched_environ({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}):
        try:
            return dbtRunner(callbacks=list(callbacks or [])).invoke(full)
        finally:
            release_dbt_duckdb()


def build_and_publish(full_refresh: bool = False, *, run_id: str | None = None,
                      keep: int = serving.DEFAULT_KEEP, lock_timeout: float | None = 0) -> serving.Version:
    """`dbt build` into a new file and publish it (without Dagster). Raises if dbt fails; then nothing is
    published and the build files are removed."""
    import uuid

    run_id = run_id or uuid.uuid4().hex
    with serving.writer_lock(timeout=lock_timeout):
        plan = prepare_build(run_id, full_refresh=full_refresh)
        LAST_BUILD.clear()
        LAST_BUILD["build"] = describe_build(plan.full_refresh, plan.periods, plan.full_refresh_reason_code)
        if plan.notices:
            LAST_BUILD["notices"] = "\n".join(plan.notices)
        target = dbt_target_path(run_id)
        try:
            res = run_dbt(dbt_build_args(plan), dbt_env(plan), target_path=target)
            LAST_NODE_TIMINGS[:] = node_timings(res)
            if not res.success:
                raise RuntimeError(f"dbt build failed: {summarise_dbt_failure(res)}")
            return finish_and_publish(run_id, keep=keep)
        except BaseException:
            discard_build(run_id)
            raise
        finally:
            clean_dbt_target(target)


# (node, seconds) of the last build_and_publish in this process, slowest first: what bounds a build
LAST_NODE_TIMINGS: list[tuple[str, float]] = []
# what the last `finish_and_publish` of this process did to the analysts' file (`serving.AnalystCopy`)
LAST_ANALYST_COPY: list = []
# how the last build_and_publish in this process ran ({"build": describe_build(...)}), for the CLI's summary
LAST_BUILD: dict[str, str] = {}


def node_timings(res) -> list[tuple[str, float]]:
    """Each dbt node's execution time (model, test, seed) of one dbtRunner result, slowest first."""
    out = [(r.node.unique_id, float(getattr(r, "execution_time", 0.0) or 0.0))
           for r in (getattr(res.result, "results", None) or []) if getattr(r, "node", None) is not None]
    return sorted(out, key=lambda t: -t[1])


def summarise_dbt_failure(res) -> str:
    if res.exception is not None:
        return str(res.exception)
    failed = []
    for r in getattr(res.result, "results", None) or []:
        status = str(getattr(r, "status", ""))
        if status in ("error", "fail", "runtime error"):
            # the first line of dbt's message (the database error: what an operator needs to act on)
            message = " ".join(str(getattr(r, "message", "") or "").split())[:300]
            failed.append(f"{r.node.unique_id}: {status}" + (f" ({message})" if message else ""))
    return "; ".join(failed[:10]) or "unknown error"
