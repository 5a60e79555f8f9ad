"""The SQL sandbox worker: one query, in its own process, then exit.

Started by `pipelines.access.sqlsandbox` as `python -I <this file>` with an empty environment (no
secrets, no DOANVIEN_* variables), a private empty working directory and its own process group, so the
parent can end it (and anything it started) at the wall-clock limit. It imports nothing from the project.

Layers, outermost first: OS limits set here before DuckDB is imported (address space, CPU seconds, no file
may be written: RLIMIT_FSIZE = 0, few file descriptors); a READ-ONLY DuckDB connection to the
de-identified analyst file with external access disabled, extension autoload/autoinstall and community
extensions off, memory and thread limits, and then `lock_configuration = true`; a row and character cap on
what is returned. Request on stdin, result on stdout, both JSON.
"""
import json
import resource
import sys
import time


def _limits(req):
    mem = int(req.get("address_space_bytes") or 0)
    if mem:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(req.get("cpu_seconds") or 0)
    if cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))      # no file can be written, whatever SQL says
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        if isinstance(v, float) and v != v:
            return None
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "<blob %d bytes>" % len(bytes(v))
    return str(v)


def main():
    req = json.loads(sys.stdin.read())
    _limits(req)
    import duckdb  # after the limits

    out = {"ok": False}
    t0 = time.monotonic()
    try:
        con = duckdb.connect(req["db_path"], read_only=True, config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "allow_persistent_secrets": False,
            "memory_limit": req.get("memory_limit", "512MB"),
            "threads": int(req.get("threads", 1)),
            "max_temp_directory_size": "0B",
        })
        con.execute("SET lock_configuration = true")
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions', "
            "'allow_community_extensions')").fetchall())
        if settings.get("enable_external_access") != "false" or settings.get("lock_configuration") != "true":
            raise RuntimeError("sandbox settings not in force; refusing to run")
        cur = con.execute(req["sql"])
        desc = cur.description or []
        cols = [d[0] for d in desc]
        types = [str(d[1]) for d in desc]
        max_rows = int(req.get("max_rows", 1000))
        max_chars = int(req.get("max_chars", 2_000_000))
        rows, chars, truncated = [], 0, False
        while True:
            batch = cur.fetchmany(min(1000, max_rows + 1 - len(rows)))
            if not batch:
                break
            for r in batch:
                if len(rows) >= max_rows:
                    truncated = True
                    break
                jr = [_jsonable(v) for v in r]
                chars += sum(len(str(v)) for v in jr if v is not None)
                if chars > max_chars:
                    truncated = True
                    break
                rows.append(jr)
            if truncated or len(rows) >= max_rows:
                if not truncated and cur.fetchmany(1):
                    truncated = True
                break
        out = {"ok": True, "columns": cols, "types": types, "rows": rows, "truncated": truncated,
               "elapsed": round(time.monotonic() - t0, 3)}
    except BaseException as exc:  # report every error as data; the parent decides what to show
        out = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)[:2000],
               "elapsed": round(time.monotonic() - t0, 3)}
    sys.stdout.write(json.dumps(out, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
