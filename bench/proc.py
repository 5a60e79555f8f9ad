"""Run one measured step in a fresh child process: (wall, cpu, max_rss) the way /usr/bin/time -v does.

`run_callable("bench.floors:duckdb_read_csv", {...})` and `run_command([...])` both return a `Run`:
outer wall time, CPU time (user+sys, the child and its reaped descendants) and peak RSS from os.wait4,
plus, for callables, the inner wall/CPU of the call itself (excluding interpreter start and imports).
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    ok: bool
    wall_s: float            # whole child process, as seen by the parent
    cpu_s: float             # user + sys of the child and its waited-for descendants
    max_rss_mb: float        # peak resident set size (largest of the child and its descendants)
    inner_wall_s: float | None = None   # the call alone (callables only)
    inner_cpu_s: float | None = None
    import_s: float | None = None
    result: object = None
    error: str | None = None
    returncode: int | None = None
    stderr_tail: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _env(extra: dict | None) -> dict:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "1")}
    pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pp if pp else "")
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


_ACTIVE: set[int] = set()  # process groups of running children, killed if the harness itself is stopped


def _stop_children(signum, frame):
    for pgid in list(_ACTIVE):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM/SIGINT/SIGHUP on the harness kill the child it is measuring (each child has its own group)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _stop_children)


def _wait(proc: subprocess.Popen, timeout: float | None):
    """Reap `proc` with wait4 (keeping its rusage); kill its process group on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline and not timed_out:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru, timed_out


def run_command(argv: list[str], env: dict | None = None, timeout: float | None = None,
                cwd: Path = REPO_ROOT, capture_stdout: bool = False) -> Run:
    """Run `argv` as a child (its own process group, killed on timeout). With `capture_stdout`, the
    child's standard output (up to 1 MB) is returned as `result`."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=_env(env), cwd=cwd, stderr=err, start_new_session=True,
                                stdout=out if capture_stdout else subprocess.DEVNULL)
        _ACTIVE.add(proc.pid)
        try:
            rc, ru, timed_out = _wait(proc, timeout)
        finally:
            _ACTIVE.discard(proc.pid)
        wall = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-3000:].decode("utf-8", "replace")
        out.seek(0)
        stdout = out.read(1 << 20).decode("utf-8", "replace") if capture_stdout else None
    ok = rc == 0 and not timed_out
    return Run(ok=ok, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime, max_rss_mb=ru.ru_maxrss / 1024,
               returncode=rc, stderr_tail=None if ok else tail, result=stdout,
               error=None if ok else (f"timed out after {timeout:.0f} s" if timed_out else f"exit {rc}"))


def run_callable(spec: str, kwargs: dict | None = None, env: dict | None = None,
                 timeout: float | None = None, preimport: tuple[str, ...] = ()) -> Run:
    """Call `module:function(**kwargs)` in a fresh `python -m bench.child` process. Modules in
    `preimport` are imported before the clock of the call starts (their cost shows in `import_s`)."""
    fd, out_path = tempfile.mkstemp(prefix="bench-", suffix=".json")
    os.close(fd)
    try:
        run = run_command([sys.executable, "-m", "bench.child", spec, json.dumps(kwargs or {}), out_path,
                           ",".join(preimport)],
                          env=env, timeout=timeout)
        try:
            out = json.loads(Path(out_path).read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            out = {}
    finally:
        Path(out_path).unlink(missing_ok=True)
    run.inner_wall_s = out.get("wall_s")
    run.inner_cpu_s = out.get("cpu_s")
    run.import_s = out.get("import_s")
    run.result = out.get("result")
    if out.get("error"):
        run.ok = False
        run.error = out["error"]
        run.stderr_tail = out.get("traceback")
    elif run.ok and "wall_s" not in out:
        run.ok, run.error = False, "child wrote no result"
    return run


@dataclass
class Series:
    """Several runs of one step, summarised (median, min, max)."""
    runs: list[Run] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    def summary(self) -> dict:
        ok = self.ok_runs
        if not ok:
            errs = [r.error for r in self.runs if r.error]
            return {"available": False, "reason": errs[0] if errs else "no run",
                    "detail": next((r.stderr_tail for r in self.runs if r.stderr_tail), None)}

        def stat(key):
            vals = [getattr(r, key) for r in ok if getattr(r, key) is not None]
            if not vals:
                return None
            return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}

        return {"available": True, "n": len(ok), "failed": len(self.runs) - len(ok),
                "wall_s": stat("wall_s"), "cpu_s": stat("cpu_s"), "max_rss_mb": stat("max_rss_mb"),
                "inner_wall_s": stat("inner_wall_s"), "inner_cpu_s": stat("inner_cpu_s"),
                "import_s": stat("import_s"), "result": ok[-1].result}


def repeat(n: int, fn, *args, **kwargs) -> Series:
    s = Series()
    for _ in range(n):
        r = fn(*args, **kwargs)
        s.runs.append(r)
        if not r.ok:  # a failing step fails the same way again: do not waste the machine
            break
    return s
