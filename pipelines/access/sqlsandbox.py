"""The analysts' SQL sandbox (the `sql` page and `doanvien sql "QUERY"`).

DuckDB runs SQL with the full privileges of its process and has no statement timeout (reliability notes §2),
so untrusted SQL never runs in the app process:

1. Allow-list (defence in depth, in the app process, parse only): exactly one statement, of type SELECT
   (SELECT / WITH / FROM-first / VALUES / TABLE / DESCRIBE / SUMMARIZE); its syntax tree (DuckDB's own
   `json_serialize_sql`) may call only allow-listed table functions, may not name a file as a table
   (`FROM 'path'`), and may not call `getenv` and friends. COPY, EXPORT, ATTACH, INSTALL, LOAD, SET, RESET,
   PRAGMA, CALL, EXPLAIN, CREATE, INSERT ... are refused before any worker starts.
2. A separate worker process (`_sql_worker.py`, `python -I`, empty environment) opens the de-identified
   analyst file (`<version>.analyst.duckdb`: marts only, no CCCD, names or salaries) READ-ONLY with
   external access off, extension autoload/autoinstall and community extensions off, memory and thread
   limits, then locks the configuration. OS limits: address space, CPU time, no file writes.
3. Wall-clock limit enforced by killing the worker's process group; rows and characters capped.
4. Every query, refused or run, is audited (user, SQL text, rows, outcome).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.access import audit

WORKER = Path(__file__).with_name("_sql_worker.py")
DEFAULT_TIMEOUT_S = float(os.environ.get("DOANVIEN_SQL_TIMEOUT", "20"))
DEFAULT_MAX_ROWS = 5000
DEFAULT_MAX_CHARS = 5_000_000
DEFAULT_MEMORY = "512MB"
DEFAULT_THREADS = 1
ADDRESS_SPACE = 3 * 1024 ** 3
MAX_SQL_LEN = 20_000
_CONCURRENCY = threading.BoundedSemaphore(int(os.environ.get("DOANVIEN_SQL_WORKERS", "2")))

ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "duckdb_tables", "duckdb_columns", "duckdb_views",
    "duckdb_schemas", "duckdb_types", "duckdb_constraints", "duckdb_indexes", "duckdb_databases",
    "duckdb_functions", "duckdb_keywords", "pragma_table_info", "pragma_show", "show", "summarize",
})
DENIED_FUNCTIONS = frozenset({
    "getenv", "query", "query_table", "current_setting", "sql_auto_complete", "json_serialize_sql",
    "json_deserialize_sql", "json_execute_serialized_sql", "load_extension",
})
_DENIED_PREFIXES = ("read_", "parquet_", "sniff_", "glob", "iceberg_", "delta_", "sqlite_", "postgres_",
                    "mysql_", "http", "s3", "azure", "duckdb_secrets", "duckdb_settings", "duckdb_extensions",
                    "which_secret", "pragma_")


class SqlRefused(ValueError):
    """The statement was refused by the allow-list; the message says why (bilingual)."""


@dataclass
class SqlResult:
    ok: bool
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    truncated: bool = False
    elapsed: float = 0.0
    error: str | None = None
    error_type: str | None = None
    killed: bool = False

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)


# ---------------------------------------------------------------- allow-list

def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:", config={"enable_external_access": False,
                                              "autoload_known_extensions": False,
                                              "autoinstall_known_extensions": False})


def _walk(node, found: list):
    if isinstance(node, dict):
        t = node.get("type")
        if t == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            found.append(("table_function", (fn.get("function_name") or "").lower()))
        elif t == "BASE_TABLE":
            found.append(("table", node.get("catalog_name") or "", node.get("schema_name") or "",
                          node.get("table_name") or ""))
        if node.get("class") == "FUNCTION" and t != "TABLE_FUNCTION":
            found.append(("function", (node.get("function_name") or "").lower()))
        for v in node.values():
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)


def check_sql(sql: str) -> str:
    """Return the single statement to run, or raise SqlRefused."""
    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("Câu lệnh rỗng / empty statement")
    if len(sql) > MAX_SQL_LEN:
        raise SqlRefused(f"Câu lệnh quá dài / statement longer than {MAX_SQL_LEN} characters")
    if "\x00" in sql:
        raise SqlRefused("Ký tự không hợp lệ / invalid character")
    con = _parser()
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlRefused(f"Lỗi cú pháp / syntax error: {str(exc).splitlines()[0][:300]}") from None
        if len(statements) != 1:
            raise SqlRefused("Chỉ được một câu lệnh / exactly one statement, please")
        st = statements[0]
        if st.type != duckdb.StatementType.SELECT:
            kind = str(st.type).split(".")[-1]
            raise SqlRefused(f"Chỉ cho phép câu lệnh đọc (SELECT/WITH) / only read queries are allowed "
                             f"(refused: {kind})")
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        con.close()
    if tree.get("error"):
        raise SqlRefused("Câu lệnh không được hỗ trợ / unsupported statement: "
                         + str(tree.get("error_message", ""))[:300])
    found: list = []
    _walk(tree.get("statements", []), found)
    for item in found:
        if item[0] == "table_function":
            name = item[1]
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise SqlRefused(f"Hàm bảng không được phép / table function not allowed: {name}")
        elif item[0] == "function":
            name = item[1]
            if name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
                raise SqlRefused(f"Hàm không được phép / function not allowed: {name}")
        elif item[0] == "table":
            _cat, _schema, table = item[1], item[2], item[3]
            if any(ch in table for ch in "/\\:~") or "." in table or table.startswith(("http", "s3")):
                raise SqlRefused("Không được đọc tệp / reading files is not allowed")
    return sql


# ---------------------------------------------------------------- the worker

def _run_worker(db_path: str, sql: str, *, timeout: float, max_rows: int, max_chars: int,
                memory_limit: str, threads: int) -> SqlResult:
    req = {"db_path": db_path, "sql": sql, "max_rows": max_rows, "max_chars": max_chars,
           "memory_limit": memory_limit, "threads": threads, "address_space_bytes": ADDRESS_SPACE,
           "cpu_seconds": int(timeout * max(threads, 1)) + 5}
    with tempfile.TemporaryDirectory(prefix="dv-sql-") as tmp:
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "TMPDIR": tmp}
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-I", os.fspath(WORKER)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp, env=env,
                                start_new_session=True)
        try:
            out, err = proc.communicate(json.dumps(req).encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            proc.communicate()
            return SqlResult(ok=False, killed=True, elapsed=round(time.monotonic() - t0, 3),
                             error_type="Timeout",
                             error=f"Quá thời gian {timeout:g} giây, truy vấn đã bị dừng / "
                                   f"time limit of {timeout:g} s reached; the query was stopped")
        finally:
            if proc.poll() is None:
                _kill(proc)
    elapsed = round(time.monotonic() - t0, 3)
    if proc.returncode != 0 or not out:
        sig = -proc.returncode if proc.returncode and proc.returncode < 0 else None
        why = {signal.SIGKILL: "killed", signal.SIGXCPU: "CPU limit", signal.SIGXFSZ: "file write refused",
               signal.SIGSEGV: "crashed", signal.SIGABRT: "aborted (memory?)"}.get(sig, f"exit {proc.returncode}")
        return SqlResult(ok=False, killed=True, elapsed=elapsed, error_type="WorkerDied",
                         error=f"Tiến trình truy vấn đã dừng ({why}) / the query worker stopped ({why})")
    data = json.loads(out.decode("utf-8"))
    if not data.get("ok"):
        return SqlResult(ok=False, elapsed=elapsed, error=data.get("error"), error_type=data.get("error_type"))
    return SqlResult(ok=True, columns=data["columns"], types=data["types"], rows=data["rows"],
                     truncated=data["truncated"], elapsed=elapsed)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def run_sql(sql: str, *, user=None, actor: str | None = None, db_path: str | os.PathLike | None = None,
            timeout: float | None = None, max_rows: int = DEFAULT_MAX_ROWS, max_chars: int = DEFAULT_MAX_CHARS,
            memory_limit: str = DEFAULT_MEMORY, threads: int = DEFAULT_THREADS, page: str = "sql",
            audit_it: bool = True) -> SqlResult:
    """Check, run and audit one analyst query against the de-identified analyst file. Raises SqlRefused
    (audited) for a statement outside the allow-list; other failures come back as `SqlResult(ok=False)`."""
    if user is not None and getattr(user, "role", None) not in ("analyst", "admin", "national_leader"):
        if audit_it:
            audit.record_for(user, "denied", page=page, detail={"what": "sql"}, outcome="denied")
        raise SqlRefused("Vai trò này không dùng được trang SQL / this role may not run SQL")
    who = {"actor": actor or getattr(user, "username", None) or "cli", "role": getattr(user, "role", None)}
    text = sql if isinstance(sql, str) else ""
    try:
        stmt = check_sql(sql)
    except SqlRefused as exc:
        if audit_it:
            audit.record(who["actor"], "sql_refused", role=who["role"], page=page, outcome="refused",
                         detail={"sql": text[:4000], "reason": str(exc)[:300]})
        raise
    if db_path is None:
        from pipelines.access.warehouse import analyst_path
        db_path = analyst_path()
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    with _CONCURRENCY:
        res = _run_worker(os.fspath(db_path), stmt, timeout=timeout, max_rows=max_rows, max_chars=max_chars,
                          memory_limit=memory_limit, threads=threads)
    if audit_it:
        audit.record(who["actor"], "sql_query", role=who["role"], page=page,
                     outcome="ok" if res.ok else ("killed" if res.killed else "error"),
                     rows=len(res.rows) if res.ok else None,
                     detail={"sql": text[:4000], "elapsed": res.elapsed, "truncated": res.truncated,
                             "error": (res.error or "")[:300] or None})
    return res


# ---------------------------------------------------------------- start-up self-test (SQL-14)

SELF_TEST_PROBES = (
    "SELECT * FROM read_csv('/etc/passwd', sep=':')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT getenv('HOME')",
    "COPY (SELECT 1) TO 'probe.csv'",
    "SET enable_external_access = true",
    "SET memory_limit = '100GB'",
    "INSTALL httpfs",
)


def self_test(db_path: str | os.PathLike | None = None) -> list[str]:
    """Run the escape probes directly in a worker (bypassing the allow-list, to test the DuckDB layer
    itself). Returns the probes that SUCCEEDED (empty list = the sandbox holds)."""
    if db_path is None:
        from pipelines.access.warehouse import analyst_path
        db_path = analyst_path()
    leaks = []
    for probe in SELF_TEST_PROBES:
        res = _run_worker(os.fspath(db_path), probe, timeout=15, max_rows=5, max_chars=1000,
                          memory_limit=DEFAULT_MEMORY, threads=1)
        if res.ok:
            leaks.append(probe)
    return leaks


# ---------------------------------------------------------------- schema browser

def schema_catalog(db_path: str | os.PathLike | None = None) -> list[dict]:
    """Tables and columns of the analyst file with their descriptions (DuckDB comments written by dbt's
    `persist_docs`, else `target/manifest.json`). Trusted, fixed queries; read-only."""
    if db_path is None:
        from pipelines.access.warehouse import analyst_path
        db_path = analyst_path()
    con = duckdb.connect(os.fspath(db_path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2").fetchall()
        cols = con.execute(
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index").fetchall()
    finally:
        con.close()
    manifest = _manifest_docs()
    manifest.update({k: v for k, v in _full_file_comments().items() if v})
    by_table: dict[tuple[str, str], list[dict]] = {}
    for s, t, c, typ, com in cols:
        doc = com or manifest.get((t, c), "")
        by_table.setdefault((s, t), []).append({"column": c, "type": typ, "description": doc or ""})
    return [{"schema": s, "table": t, "description": com or manifest.get((t, None), "") or "",
             "columns": by_table.get((s, t), [])} for s, t, com in tables]


def _full_file_comments() -> dict:
    """Comments of the `marts` objects in the full file (the analyst copy is made with CREATE TABLE AS, which
    drops comments). Metadata only: table and column descriptions, never data."""
    out: dict = {}
    try:
        from pipelines.access.warehouse import connect_full
        with connect_full() as con:
            for t, c in con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'marts' "
                                    "UNION ALL SELECT view_name, comment FROM duckdb_views() "
                                    "WHERE schema_name = 'marts'").fetchall():
                out[(t, None)] = c or ""
            for t, col, c in con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                                         "WHERE schema_name = 'marts'").fetchall():
                out[(t, col)] = c or ""
    except Exception:  # noqa: BLE001 - descriptions are a convenience
        pass
    return out


def _manifest_docs() -> dict:
    from pipelines import config

    docs: dict = {}
    for p in (config.REPO_ROOT / "target" / "manifest.json", config.REPO_ROOT / "dbt_project" / "target" / "manifest.json"):
        if not p.exists():
            continue
        try:
            m = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for node in m.get("nodes", {}).values():
            if node.get("resource_type") not in ("model", "seed"):
                continue
            name = node.get("alias") or node.get("name")
            docs[(name, None)] = node.get("description", "")
            for cname, cdef in (node.get("columns") or {}).items():
                docs[(name, cname)] = cdef.get("description", "")
        break
    return docs


# ---------------------------------------------------------------- saved queries

def save_query(user, name: str, sql: str) -> None:
    import datetime as dt

    from pipelines.access.appdb import accounts_db
    name = (name or "").strip()[:100]
    if not name:
        raise ValueError("Cần tên / a name is required")
    check_sql(sql)
    with accounts_db() as db:
        db.execute("INSERT INTO saved_queries (username, name, sql, created_at) VALUES (?,?,?,?) "
                   "ON CONFLICT(username, name) DO UPDATE SET sql = excluded.sql, created_at = excluded.created_at",
                   [user.username, name, sql, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")])


def saved_queries(user) -> list[dict]:
    from pipelines.access.appdb import accounts_db
    with accounts_db() as db:
        return [dict(r) for r in db.execute("SELECT id, name, sql, created_at FROM saved_queries "
                                            "WHERE username = ? ORDER BY name", [user.username]).fetchall()]


def delete_saved_query(user, query_id: int) -> None:
    from pipelines.access.appdb import accounts_db
    with accounts_db() as db:
        db.execute("DELETE FROM saved_queries WHERE id = ? AND username = ?", [int(query_id), user.username])
