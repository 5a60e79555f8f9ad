"""Serving the warehouse to readers: versioned DuckDB files behind an atomic pointer.

Plain Python (duckdb only; no Dagster, no dbt), cheap to import from the app, the emails and analysts' tools.

Layout under `<data>/warehouse/`::

    build/<run_id>.duckdb                 a build in progress (only the single writer touches it)
    versions/<version>.duckdb             published, immutable full warehouse
    versions/<version>.analyst.duckdb     published, immutable copy of schema `marts` (+ `reference`, `meta`)
    versions/<version>.json               the pointer record of that version (for rollback)
    CURRENT                               JSON pointer to the version readers use, replaced atomically

Rules (docs/CONTRACTS.md §6, reliability notes §1):
- a published file is never written again and never replaced in place; every version has a new path,
  so DuckDB's per-path instance cache can never serve stale data;
- a file is published only after CHECKPOINT + close, with no `.wal` beside it, and after a fresh
  read-only open has run smoke queries;
- readers open a short-lived READ-ONLY connection per use (`connect()`), never cached across versions;
- old versions are deleted only when no reader can still be using them (never the current or the
  previous version, and only some minutes after they were superseded).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Iterator

import duckdb

from pipelines import config

POINTER_NAME = "CURRENT"
META_SCHEMA = "meta"
VERSION_TABLE = f"{META_SCHEMA}.warehouse_version"
# Schemas copied into the analyst file: de-identified marts, reference seeds, and the version stamp.
ANALYST_SCHEMAS = ("marts", "reference", META_SCHEMA)
DEFAULT_KEEP = 3
# A superseded version stays on disk at least this long, so that a reader that read the pointer just before
# the flip can still open it (connections are short-lived: seconds).
DEFAULT_GRACE_SECONDS = 600

_VERSION_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-zA-Z_-]{1,64}$")


class WarehouseNotPublished(RuntimeError):
    """No warehouse version has been published yet under this data root."""


class PublishError(RuntimeError):
    """A build file failed the publication checks; nothing was published."""


@dataclass(frozen=True)
class Version:
    version: str
    path: str
    analyst_path: str | None
    published_at: str
    run_id: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_mapping(cls, m: dict) -> "Version":
        return cls(
            version=m["version"],
            path=m["path"],
            analyst_path=m.get("analyst_path"),
            published_at=m["published_at"],
            run_id=m.get("run_id", ""),
        )


# ---------------------------------------------------------------- paths

# Point lookups by person key or CCCD go through ART indexes on these expressions, not on the text itself
# (`build.set_lookup_indexes`): a 32-hex-digit key held as a UUID and a 12-digit CCCD as a number are 16 and 8
# bytes, which DuckDB's ART indexes inline; an index on the text (32 and 12 characters) took 9.2 s and 8.3 s to
# make on 12 M national rows, on these 5.4 s and 3.4 s (bench/README.md). A query uses the index only when its
# filter is the indexed expression itself: `lookup_match`. Exact: every stored key is 32 hex digits and every
# stored CCCD 12 digits, so equal numbers are equal texts; TRY_CAST, so a malformed value matches nothing.
# The member code (free text of up to 40 characters) is indexed by its 64-bit hash: 4.4 s against 11.8–15.3 s for
# an index on the text (12 M national rows). A hash can collide, so its match is followed by the exact equality
# (`lookup_exact`), outside the indexed filter: DuckDB leaves the index for a scan when the same column has a
# second filter beside the indexed expression (a MATERIALIZED CTE keeps them apart).
LOOKUP_KEY_EXPRESSIONS = {"member_key": "TRY_CAST({} AS UUID)", "cccd": "TRY_CAST({} AS BIGINT)",
                          "member_code": "hash({})"}
LOSSY_LOOKUPS = frozenset({"member_code"})
# `hash` is DuckDB's own and may change between DuckDB versions: the build stores hash(HASH_PROBE_TEXT) beside the
# indexes (HASH_PROBE_TABLE) and a reader whose DuckDB hashes differently matches the text itself (a scan, still
# right) instead of the index (`lookup_hash_ok`).
HASH_PROBE_TABLE = "meta.lookup_hash_probe"
HASH_PROBE_TEXT = "doanvien-lookup"


def lookup_expression(column: str, alias: str | None = None) -> str:
    """The SQL expression a lookup index is made on for `column` (the column itself when it has none)."""
    ref = f'{alias}."{column}"' if alias else f'"{column}"'
    return LOOKUP_KEY_EXPRESSIONS.get(column, "{}").format(ref)


def lookup_match(column: str, alias: str | None = None, *, hash_ok: bool = True) -> str:
    """`<indexed expression of column> = <the same of ?>`: an equality DuckDB answers from the lookup index.
    hash_ok=False (`lookup_hash_ok` said no): a hashed column is matched as itself."""
    if column in LOSSY_LOOKUPS and not hash_ok:
        return lookup_exact(column, alias)
    return f"{lookup_expression(column, alias)} = {LOOKUP_KEY_EXPRESSIONS.get(column, '{}').format('?')}"


def lookup_hash_ok(con) -> bool:
    """Whether this DuckDB hashes as the one that made the file's hash indexes did (`HASH_PROBE_TABLE`)."""
    try:
        row = con.execute(f"SELECT bool_and(value = hash(?)) FROM {HASH_PROBE_TABLE}", [HASH_PROBE_TEXT]).fetchone()
    except duckdb.Error:
        return False
    return bool(row and row[0])


def write_hash_probe(con) -> None:
    """Store this DuckDB's hash of HASH_PROBE_TEXT (`lookup_hash_ok`); `con` writes the build file."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {HASH_PROBE_TABLE.split('.')[0]}")
    con.execute(f"CREATE OR REPLACE TABLE {HASH_PROBE_TABLE} AS SELECT hash(?::VARCHAR) AS value", [HASH_PROBE_TEXT])


def lookup_exact(column: str, alias: str | None = None) -> str:
    """`column = ?`: the exact equality a `lookup_match` on a column of `LOSSY_LOOKUPS` must be followed by,
    outside the indexed filter (e.g. on a MATERIALIZED CTE of its rows)."""
    ref = f'{alias}."{column}"' if alias else f'"{column}"'
    return f"{ref} = ?"


def warehouse_root() -> Path:
    return config.warehouse_dir()


def versions_dir() -> Path:
    p = warehouse_root() / "versions"
    p.mkdir(parents=True, exist_ok=True)
    return p


def build_dir() -> Path:
    p = warehouse_root() / "build"
    p.mkdir(parents=True, exist_ok=True)
    return p


def pointer_path() -> Path:
    return warehouse_root() / POINTER_NAME


def wal_path(db_path: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(db_path)}.wal")


def new_version_id(run_id: str, now: dt.datetime | None = None) -> str:
    """A sortable, unique version id: UTC timestamp plus (a safe prefix of) the run id."""
    now = now or dt.datetime.now(dt.timezone.utc)
    safe = re.sub(r"[^0-9a-zA-Z_-]", "", run_id)[:12] or "run"
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{safe}"


# ---------------------------------------------------------------- reading the pointer

def current_version() -> Version | None:
    """The version readers use now, or None when nothing has been published."""
    try:
        raw = pointer_path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return Version.from_mapping(json.loads(raw))


def warehouse_path(analyst: bool = False) -> Path:
    """The current published file (the analyst copy when `analyst`); raises WarehouseNotPublished."""
    v = current_version()
    if v is None:
        raise WarehouseNotPublished(
            "Chưa có kho dữ liệu nào được công bố / no warehouse published yet: run `doanvien refresh`."
        )
    if analyst:
        if not v.analyst_path:
            raise WarehouseNotPublished(f"version {v.version} has no analyst file")
        return resolve_recorded(v.analyst_path)
    return resolve_recorded(v.path)


def analyst_path_for(full_path: str | os.PathLike, suffix: str = ".analyst.duckdb") -> Path:
    """The analysts' file beside full file `<name>.duckdb` (`<name>.analyst.duckdb`, as published), or another
    sibling of it with `suffix`."""
    p = Path(full_path)
    stem = p.name[: -len(".duckdb")] if p.name.endswith(".duckdb") else p.name
    return p.with_name(stem + suffix)


def resolve_recorded(recorded: str) -> Path:
    """The file a pointer or version record names: the same file name under this data root's versions/ when it
    is there (the recorded path itself, unless the data root was moved, mounted elsewhere or copied), else the
    recorded absolute path. This root's own file first: a copied root's records still name the original's files,
    and retiring an old version in the copy must not delete the original's."""
    p = Path(recorded)
    local = warehouse_root() / "versions" / p.name
    return local if local.exists() else p


@contextlib.contextmanager
def connect(analyst: bool = False, *, config_options: dict | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived READ-ONLY connection to the current version (the analyst copy when `analyst`).

    Open one per use (a page render, a query, an email) and let the `with` block close it: a new version
    is picked up by the next `connect()` without any restart. Published files are never written, so a
    read-only open never meets a writer's lock.
    """
    con = _open_current(analyst, config_options or {})
    try:
        yield con
    finally:
        con.close()


def _open_current(analyst: bool, config_options: dict) -> duckdb.DuckDBPyConnection:
    last_exc: Exception | None = None
    for _attempt in range(3):
        path = warehouse_path(analyst)
        try:
            return duckdb.connect(os.fspath(path), read_only=True, config=config_options)
        except duckdb.IOException as exc:  # the version was retired between reading the pointer and opening
            last_exc = exc
            if path.exists():
                raise
            time.sleep(0.05)
    assert last_exc is not None
    raise last_exc


# ---------------------------------------------------------------- publishing

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: temp file in the same directory, fsync, os.replace, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # readers may run as another user (mkstemp creates 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(timeout: float | None = None) -> Iterator[None]:
    """The single-writer lock of this data root (builds and publications). Waits up to `timeout` seconds
    (None: forever) and then fails with a clear message, never touching another writer's files."""
    lock_file = warehouse_root() / ".writer.lock"
    fh = open(lock_file, "a+")
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeError(
                        "Một lần dựng kho khác đang chạy / another warehouse build is running "
                        f"(lock {lock_file}); try again when it finishes."
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        fh.close()


def checkpoint_and_close(con: duckdb.DuckDBPyConnection, db_path: str | os.PathLike) -> None:
    """CHECKPOINT a writer connection, close it, and check that no WAL is left beside the file."""
    con.execute("FORCE CHECKPOINT")
    con.close()
    if wal_path(db_path).exists():
        raise PublishError(f"{db_path}: a .wal file is left after CHECKPOINT and close; not publishing it")


def stamp_version(db_path: str | os.PathLike, version: str, run_id: str, extra: dict | None = None) -> None:
    """Write the version stamp table (`meta.warehouse_version`, one row) into a build file, checkpoint, close."""
    con = duckdb.connect(os.fspath(db_path))
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
        con.execute(
            f"CREATE OR REPLACE TABLE {VERSION_TABLE} AS SELECT ?::VARCHAR AS version, ?::VARCHAR AS run_id, "
            "now()::TIMESTAMPTZ AS built_at, ?::VARCHAR AS build_info",
            [version, run_id, json.dumps(extra or {}, ensure_ascii=False, default=str)],
        )
    except BaseException:
        con.close()
        raise
    checkpoint_and_close(con, db_path)


# The build's own record of what it restated in each analysts' table kept month by month (dbt model
# int_restated_windows): read by `analyst_windows`, used by `make_analyst_copy`.
RESTATED_WINDOWS = ("intermediate", "int_restated_windows")


@dataclass
class AnalystCopy:
    """What `make_analyst_copy` did: every table copied in full, and the tables brought up to date from the
    previous analysts' file (only their restated months and re-keyed people written)."""
    copied: list[str]
    updated: list[str]


def analyst_windows(full_path: str | os.PathLike) -> dict[tuple[str, str], dt.date | None] | None:
    """{(schema, table): first month the build restated} of the analysts' tables kept month by month, as the
    build recorded them (`RESTATED_WINDOWS`; None for a table = every month written), or None when the file has
    no such record (a file of an older version: nothing can be reused)."""
    con = duckdb.connect(os.fspath(full_path), read_only=True)
    try:
        try:
            rows = con.execute(f'SELECT schema_name, table_name, restated_from FROM '
                               f'"{RESTATED_WINDOWS[0]}"."{RESTATED_WINDOWS[1]}"').fetchall()
        except duckdb.CatalogException:
            return None
    finally:
        con.close()
    return {(s, t): w for s, t, w in rows}


def _columns(con: duckdb.DuckDBPyConnection, database: str, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                       "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                       [database, schema, table]).fetchall()


def make_analyst_copy(full_path: str | os.PathLike, analyst_path: str | os.PathLike,
                      schemas: tuple[str, ...] = ANALYST_SCHEMAS, *, base: str | os.PathLike | None = None,
                      take_base: bool = False, windows: dict[tuple[str, str], dt.date | None] | None = None,
                      rekeyed: list[tuple[str, str]] | tuple = ()) -> AnalystCopy:
    """Copy the de-identified schemas of a (closed, checkpointed) full file into a new analyst file.

    Tables and views alike become plain tables (a view in `marts` is evaluated against the full file).

    With `base` (the analysts' file of the version this build started from) and `windows` (`analyst_windows` of
    the full file), the new file starts as a copy of `base` (`take_base`: the file itself, moved: a copy made for
    this build) and a table kept month by month is brought up to date instead of copied again: its months from
    the window start are deleted and copied from the full file, and so are the rows of every re-keyed person
    (`rekeyed`: (previous key, new key) pairs of this build) in the months before. Every other table (the
    dimensions, the tables rebuilt in full, a table whose columns changed) is copied in full. The result has the
    same rows as a full copy (tests/warehouse/test_month_by_month.py compares the two at every step), at the cost
    of the restated months instead of all history.
    """
    analyst_path = Path(analyst_path)
    if analyst_path.exists():
        analyst_path.unlink()
    incremental = base is not None and windows is not None
    if incremental:
        if take_base:
            os.replace(base, analyst_path)
        else:
            shutil.copyfile(base, analyst_path)  # a published file: immutable, no WAL
    done = AnalystCopy(copied=[], updated=[])
    con = duckdb.connect(os.fspath(analyst_path))
    try:
        con.execute(f"ATTACH '{_sql_str(os.fspath(full_path))}' AS src (READ_ONLY)")
        here = con.execute("SELECT current_database()").fetchone()[0]
        rows = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
            "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = 'src' AND NOT internal ORDER BY 1, 2"
        ).fetchall()
        wanted = [(s, t) for s, t in rows if s in schemas]
        if incremental:  # tables of the previous file the new full file no longer has
            for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                                    [here]).fetchall():
                if (s, t) not in wanted:
                    con.execute(f'DROP TABLE "{s}"."{t}"')
        keys = sorted({k for pair in rekeyed for k in pair})
        plan: list[tuple[str, str, dt.date | None, bool]] = []  # (schema, table, window start, re-keyed rows)
        for schema, table in wanted:
            start = windows.get((schema, table)) if incremental else None
            cols = _columns(con, "src", schema, table)
            if start is not None and cols and _columns(con, here, schema, table) == cols:
                plan.append((schema, table, start, bool(keys) and any(c == "member_key" for c, _ in cols)))
            else:
                plan.append((schema, table, None, False))
        if incremental:
            # first every row that goes away (whole tables, restated months, re-keyed people), then a checkpoint:
            # the new rows reuse the blocks freed (written first, a new copy of dim_member made the file ~2x larger)
            for schema, table, start, by_key in plan:
                name = f'"{schema}"."{table}"'
                if start is None:
                    con.execute(f"DROP TABLE IF EXISTS {name}")
                    continue
                con.execute(f"DELETE FROM {name} WHERE period >= ?", [start])
                if by_key:  # a re-keyed person's earlier months: renamed in the full file (rekey_stored_rows)
                    con.execute(f"DELETE FROM {name} WHERE period < ? AND member_key IN (SELECT unnest(?))",
                                [start, keys])
            con.execute("CHECKPOINT")
        for schema, table, start, by_key in plan:
            name, src = f'"{schema}"."{table}"', f'src."{schema}"."{table}"'
            if start is None:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM {src}")
                done.copied.append(f"{schema}.{table}")
                continue
            con.execute(f"INSERT INTO {name} SELECT * FROM {src} WHERE period >= ?", [start])
            if by_key:
                con.execute(f"INSERT INTO {name} SELECT * FROM {src} WHERE period < ? AND member_key IN "
                            "(SELECT unnest(?))", [start, keys])
            done.updated.append(f"{schema}.{table}")
        con.execute("DETACH src")
    except BaseException:
        con.close()
        raise
    checkpoint_and_close(con, analyst_path)
    return done


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def smoke_check(db_path: str | os.PathLike, required_schemas: tuple[str, ...] = (META_SCHEMA,)) -> dict:
    """Open a file READ-ONLY in a fresh connection and run smoke queries; raise PublishError if it fails.

    Returns {schema.table: row_count} of every table (a cheap count from a read-only open).
    """
    if wal_path(db_path).exists():
        raise PublishError(f"{db_path}: has a leftover .wal; not publishing it")
    try:
        con = duckdb.connect(os.fspath(db_path), read_only=True)
    except duckdb.Error as exc:
        raise PublishError(f"{db_path}: cannot be opened read-only: {exc}") from exc
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY 1, 2"
        ).fetchall()
        schemas = {s for s, _ in tables}
        missing = [s for s in required_schemas if s not in schemas]
        if missing:
            raise PublishError(f"{db_path}: schema(s) {missing} missing; not publishing it")
        counts = {}
        for schema, table in tables:
            counts[f"{schema}.{table}"] = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
        n = con.execute(f"SELECT count(*) FROM {VERSION_TABLE}").fetchone()[0]
        if n != 1:
            raise PublishError(f"{db_path}: {VERSION_TABLE} has {n} rows, expected 1")
        return counts
    except duckdb.Error as exc:
        raise PublishError(f"{db_path}: smoke query failed: {exc}") from exc
    finally:
        con.close()


def publish(build_path: str | os.PathLike, *, version: str, run_id: str,
            analyst_build_path: str | os.PathLike | None = None,
            required_schemas: tuple[str, ...] = (META_SCHEMA,),
            keep: int = DEFAULT_KEEP, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> Version:
    """Publish a finished build file (and its analyst copy) as `version` and flip the pointer.

    The build files must be closed and checkpointed (see `checkpoint_and_close`). They are checked (no
    `.wal`, read-only open, smoke queries), moved into `versions/` (same filesystem: a rename, so a reader
    never sees a partial file), fsynced, and only then is `CURRENT` replaced atomically. Any failure
    before the flip leaves the published version untouched.
    """
    if not _VERSION_RE.match(version):
        raise ValueError(f"bad version id {version!r}")
    build_path = Path(build_path)
    smoke_check(build_path, required_schemas)
    if analyst_build_path is not None:
        smoke_check(analyst_build_path, (META_SCHEMA,))

    vdir = versions_dir()
    final = vdir / f"{version}.duckdb"
    final_analyst = analyst_path_for(final) if analyst_build_path is not None else None
    if final.exists() or (final_analyst is not None and final_analyst.exists()):
        raise PublishError(f"version {version} already exists; versions are never overwritten")
    os.replace(build_path, final)
    if final_analyst is not None:
        os.replace(analyst_build_path, final_analyst)
    for p in (final, final_analyst):
        if p is not None:
            _fsync_file(p)
    _fsync_dir(vdir)

    record = Version(
        version=version,
        path=os.fspath(final),
        analyst_path=os.fspath(final_analyst) if final_analyst is not None else None,
        published_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        run_id=run_id,
    )
    atomic_write_text(vdir / f"{version}.json", record.to_json())
    atomic_write_text(pointer_path(), record.to_json())
    retire_old_versions(keep=keep, grace_seconds=grace_seconds)
    return record


# ---------------------------------------------------------------- history, rollback, retention

def list_versions() -> list[Version]:
    """Every version still on disk, oldest first."""
    out = []
    for rec in sorted(versions_dir().glob("*.json")):
        try:
            v = Version.from_mapping(json.loads(rec.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError):
            continue
        if resolve_recorded(v.path).exists():
            out.append(dataclasses_replace(v, path=os.fspath(resolve_recorded(v.path)),
                                           analyst_path=os.fspath(resolve_recorded(v.analyst_path)) if v.analyst_path else None))
    return out


def rollback(to_version: str | None = None) -> Version:
    """Point readers back to `to_version` (default: the version published before the current one)."""
    versions = list_versions()
    cur = current_version()
    if to_version is None:
        if cur is None:
            raise WarehouseNotPublished("nothing published; nothing to roll back")
        older = [v for v in versions if v.version < cur.version]
        if not older:
            raise WarehouseNotPublished(f"no version older than {cur.version} is kept")
        target = older[-1]
    else:
        matches = [v for v in versions if v.version == to_version]
        if not matches:
            raise WarehouseNotPublished(f"version {to_version} is not kept on disk")
        target = matches[0]
    smoke_check(target.path)
    atomic_write_text(pointer_path(), target.to_json())
    return target


def retire_old_versions(keep: int = DEFAULT_KEEP, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
    """Delete versions beyond the newest `keep` (never fewer than 2: the current and the previous one),
    never the current version, and only `grace_seconds` after a newer version was published."""
    keep = max(keep, 2)
    versions = list_versions()
    cur = current_version()
    now = dt.datetime.now(dt.timezone.utc)
    protected: set[str] = set()
    if cur is not None:
        protected.add(cur.version)
        older = [v.version for v in versions if v.version < cur.version]
        if older:
            protected.add(older[-1])  # the previous version: the rollback target, maybe still being read
    removed = []
    for i, v in enumerate(versions[:-keep] if len(versions) > keep else []):
        if v.version in protected or (cur is not None and v.version > cur.version):
            continue  # the current one, its predecessor, or newer ones after a rollback
        successor = versions[i + 1]
        try:
            superseded_at = dt.datetime.fromisoformat(successor.published_at)
        except ValueError:
            continue
        if (now - superseded_at).total_seconds() < grace_seconds:
            continue
        for p in (Path(v.path), Path(v.analyst_path) if v.analyst_path else None):
            if p is not None:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        with contextlib.suppress(FileNotFoundError):
            (versions_dir() / f"{v.version}.json").unlink()
        removed.append(v.version)
    return removed


def remove_build_files(build_path: str | os.PathLike) -> None:
    """Delete a build file and its siblings (.wal, analyst copy); used when a build fails."""
    build_path = Path(build_path)
    stem = build_path.name[: -len(".duckdb")] if build_path.name.endswith(".duckdb") else build_path.name
    for p in build_path.parent.glob(f"{stem}.*"):
        if p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
