"""Child-process side of `bench.proc.run_callable`:
`python -m bench.child MODULE:FUNC ARGS_JSON OUT_JSON [PREIMPORT,...]`.

Imports MODULE and the PREIMPORT modules (timed separately, so that the call's own time excludes them), calls FUNC(**ARGS) once, and writes to OUT_JSON
{"import_s", "wall_s", "cpu_s", "result"} or {"error", "traceback"}. `wall_s`/`cpu_s` cover the call only (`cpu_s` includes the
child processes the call started and reaped, e.g. ingestion workers);
the parent adds the whole process's wall, CPU (user+sys) and peak RSS from wait4.
"""
from __future__ import annotations

import importlib
import json
import sys
import time
import traceback


def _children_cpu() -> float:
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str]) -> int:
    spec, args_json, out_path = argv[:3]
    preimport = [m for m in (argv[3] if len(argv) > 3 else "").split(",") if m]
    out: dict = {}
    t0 = time.perf_counter()
    try:
        module, func = spec.split(":")
        fn = getattr(importlib.import_module(module), func)
        for m in preimport:
            importlib.import_module(m)
        out["import_s"] = time.perf_counter() - t0
        kwargs = json.loads(args_json)
        w0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
        result = fn(**kwargs)
        out["wall_s"] = time.perf_counter() - w0
        # the call's CPU includes the worker processes it started and reaped (batch ingestion's workers)
        out["cpu_s"] = time.process_time() - c0 + (_children_cpu() - k0)
        out["result"] = result
        code = 0
    except BaseException as exc:  # reported, never hidden
        out["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        out["traceback"] = traceback.format_exc()[-4000:]
        code = 1
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, default=str, ensure_ascii=False)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
