"""`make bench`: the monthly cycle of Đoàn viên số measured side by side with DuckDB's own floor.

    python -m bench.run --scale small|national [--seed 42] [--repeat 3] [--only ingest,build,...]

Every step runs in a fresh child process (bench.proc): wall time, CPU time (user+sys) and peak RSS
(wait4, as /usr/bin/time -v). A step whose engine is not there yet is reported "not available: <reason>".
Results: bench/results/<scale>-<YYYY-MM-DD>.json and .md. Targets are reported, never asserted.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from bench.proc import REPO_ROOT, Series, install_signal_handlers, repeat, run_callable, run_command

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / "cache"
RESULTS_DIR = BENCH_DIR / "results"
# imported before the clock starts, so that 'work' time is the work (imports show in the process time)
PREIMPORT = {"duckdb_read_csv": ("duckdb",), "xlsx_polars": ("polars", "fastexcel"), "xlsx_fastexcel": ("fastexcel",),
             "build_floor": ("duckdb",)}
ENGINE_PREIMPORT = ("pipelines.ingest.engine", "great_expectations",
                    "great_expectations.expectations.expectation_configuration")
SECTIONS = ("generate", "ingest", "upload", "build", "dashboards", "lookup")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def na(reason: str, **extra) -> dict:
    return {"available": False, "reason": reason, **extra}


def _history_key(months: list[str]) -> str:
    """Cache key of an ingested history: the months and every ingestion source/suite file's content."""
    import hashlib
    h = hashlib.sha256(",".join(months).encode())
    for base in ("pipelines/ingest", "expectations", "data/reference"):
        for f in sorted((REPO_ROOT / base).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(REPO_ROOT)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _run_from(d: dict):
    from bench.proc import Run
    return Run(**d)


# what makes the generated data: the generator, not the comparisons with its truth (pipelines/generate/verify.py),
# whose change must not throw away a cached national data set (~5 min to make, and the raw zone ingested from it)
GENERATOR_PATHS = ["pipelines/generate", ":(exclude)pipelines/generate/verify.py"]


def git_rev(paths: list[str] | None = None) -> str:
    try:
        cmd = ["git", "log", "-1", "--format=%h"] + (["--", *paths] if paths else [])
        return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


# --------------------------------------------------------------------------- 1. data set (cached)

def ensure_generated(scale: str, seed: int, months: int | None, regenerate: bool, timeout: float) -> dict:
    """Generate once per (scale, seed[, months]) into bench/cache/; later runs reuse it and report the
    generator's figures from when it ran, unless the generator (pipelines/generate) has a newer commit than the
    one that made the cached data: then the truth the build is compared with would be the old generator's."""
    tag = f"{scale}-{seed}" + (f"-m{months}" if months else "")
    base = CACHE_DIR / tag
    data, meta = base / "data", base / "generate.json"
    if meta.exists() and data.exists() and not regenerate:
        info = json.loads(meta.read_text())
        now = git_rev(GENERATOR_PATHS) or "?"  # "?" / empty: not a git checkout, nothing to compare
        if info.get("available") and (info.get("generator_commit") in (now, "?", "") or now == "?"):
            info["cached"] = True
            info["data_dir"] = str(data)
            return info
        log(f"cached {tag} data made by generator {info.get('generator_commit')}, now {now}: regenerating")
    if not has_module("pipelines.generate.cli"):
        return na("pipelines.generate.cli does not exist yet (generator not landed)")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    argv = [sys.executable, "-m", "pipelines.cli", "generate", "--scale", scale, "--seed", str(seed),
            "--out", str(data)] + (["--months", str(months)] if months else [])
    log("generating: " + " ".join(argv[2:]))
    run = run_command(argv, env={"DOANVIEN_DATA_DIR": str(data)}, timeout=timeout)
    if not run.ok:
        info = na(f"generator failed: {run.error}", detail=run.stderr_tail)
        meta.write_text(json.dumps(info, indent=1))
        shutil.rmtree(data, ignore_errors=True)
        return info
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    info = {"available": True, "command": "doanvien " + " ".join(argv[3:]),
            "generator_commit": git_rev(GENERATOR_PATHS), "generated_at": dt.datetime.now().isoformat(),
            "wall_s": run.wall_s, "cpu_s": run.cpu_s, "max_rss_mb": run.max_rss_mb,
            "bytes": size, "cached": False}
    meta.write_text(json.dumps(info, indent=1))
    info["data_dir"] = str(data)
    return info


def inventory(data: Path) -> dict:
    """Files in the generated inbox: inbox/<branch>/<YYYY-MM>/<kind>/<file>."""
    files = []
    inbox = data / "inbox"
    for f in sorted(inbox.glob("*/*/*/*")):
        if f.is_file():
            branch, month, kind = f.relative_to(inbox).parts[:3]
            files.append({"path": str(f), "branch": branch, "month": month, "kind": kind,
                          "ext": f.suffix.lower().lstrip("."), "bytes": f.stat().st_size})
    months = sorted({f["month"] for f in files})
    return {"files": files, "months": months}


def make_root(gen_data: Path, name: str, tag: str, months: list[str]) -> Path:
    """A private data root: the generated registry etc. symlinked, the chosen months of the inbox
    hard-linked (same bytes and modification times, nothing copied, the cache never written)."""
    root = CACHE_DIR / tag / "work" / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for entry in gen_data.iterdir():
        if entry.name == "inbox":
            continue
        (root / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    add_months(gen_data, root, months)
    return root


def add_months(gen_data: Path, root: Path, months: list[str]) -> list[str]:
    added = []
    for month_dir in sorted((gen_data / "inbox").glob("*/*")):
        if month_dir.name in months:
            dest = root / "inbox" / month_dir.relative_to(gen_data / "inbox")
            dest.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(month_dir), str(dest)], check=True)
            added += [str(p) for p in sorted(dest.rglob("*")) if p.is_file()]
    return added


def rel_files(root: Path, files: list[dict]) -> list[str]:
    """Paths of `files` (from the generated inbox) inside the private data root `root`."""
    out = []
    for f in files:
        p = Path(f["path"])
        rel = p.relative_to(p.parents[3].parent)  # inbox/<branch>/<month>/<kind>/<file>
        out.append(str(root / rel))
    return out


# --------------------------------------------------------------------------- 2a. ingestion vs floor

def bench_ingest(ctx: dict) -> dict:
    inv, month = ctx["inv"], ctx["month"]
    out = {"month": month}
    for fmt, exts, floors in (("csv", {"csv"}, ["duckdb_read_csv"]),
                              ("xlsx", {"xlsx"}, ["xlsx_polars", "xlsx_fastexcel"])):
        files = [f for f in inv["files"] if f["month"] == month and f["ext"] in exts]
        total_files = len(files)
        if ctx.get("ingest_sample") and len(files) > ctx["ingest_sample"]:
            # a deterministic, evenly spread sample (same files for the engine and the floors)
            step = len(files) / ctx["ingest_sample"]
            files = [files[int(i * step)] for i in range(ctx["ingest_sample"])]
        sec = {"files": len(files), "files_in_month": total_files, "bytes": sum(f["bytes"] for f in files),
               "by_kind": {k: sum(1 for f in files if f["kind"] == k) for k in sorted({f["kind"] for f in files})}}
        if not files:
            out[fmt] = {**sec, **na(f"no .{fmt} file in the month {month}")}
            continue
        paths = [f["path"] for f in files]
        floor_sums = {}
        for fl in floors:
            log(f"ingest/{fmt}: floor {fl} on {len(paths)} files")
            s = repeat(ctx["repeat"], run_callable, f"bench.floors:{fl}", {"files": paths},
                       preimport=PREIMPORT[fl])
            floor_sums[fl] = s.summary()
        sec["floors"] = floor_sums
        ok_floors = {k: v for k, v in floor_sums.items() if v["available"]}
        best = min(ok_floors, key=lambda k: ok_floors[k]["inner_wall_s"]["median"]) if ok_floors else None
        sec["floor"] = best
        if not has_module("pipelines.ingest.engine"):
            sec["engine"] = na("pipelines.ingest.engine does not exist yet (ingestion engine not landed)")
        else:
            series = Series()
            for i in range(ctx["repeat"]):
                root = make_root(ctx["gen_data"], f"ingest-{fmt}-{i}", ctx["tag"], [month])
                log(f"ingest/{fmt}: engine run {i + 1}/{ctx['repeat']} ({len(paths)} files)")
                # libraries imported before the clock starts, as for the floors (duckdb, polars, fastexcel):
                # GX's ~3 s import is a per-process constant (the upload page and a month's batch of thousands of
                # files pay it once); the process-wall ratio beside it includes it
                r = run_callable("bench.engines:ingest_files", {"files": rel_files(root, files)},
                                 env={"DOANVIEN_DATA_DIR": str(root), "GX_ANALYTICS_ENABLED": "False"},
                                 timeout=ctx["timeout"], preimport=ENGINE_PREIMPORT)
                series.runs.append(r)
                if not r.ok or r.wall_s > ctx["cheap_s"]:  # several runs where cheap, one where not
                    break
            sec["engine"] = series.summary()
            if sec["engine"]["available"] and ctx.get("gx_off_variant", True):
                # the engine's own switch (pipelines/ingest/rules.py: DOANVIEN_INGEST_GX=off): what GX costs
                root = make_root(ctx["gen_data"], f"ingest-{fmt}-nogx", ctx["tag"], [month])
                log(f"ingest/{fmt}: engine with DOANVIEN_INGEST_GX=off, one run")
                r = run_callable("bench.engines:ingest_files", {"files": rel_files(root, files)},
                                 env={"DOANVIEN_DATA_DIR": str(root), "DOANVIEN_INGEST_GX": "off"},
                                 timeout=ctx["timeout"], preimport=("pipelines.ingest.engine",))
                sec["engine_gx_off"] = Series([r]).summary()
        eng = sec["engine"]
        if eng["available"]:
            rows = eng["result"]["rows_read"]
            sec["rows"] = rows
            sec["engine_rows_per_s"] = rows / eng["inner_wall_s"]["median"] if rows else None
            if best:
                f = ok_floors[best]
                sec["floor_rows_per_s"] = f["result"]["rows"] / f["inner_wall_s"]["median"]
                sec["ratio"] = eng["inner_wall_s"]["median"] / f["inner_wall_s"]["median"]
                sec["ratio_process"] = eng["wall_s"]["median"] / f["wall_s"]["median"]
                sec["ratio_cpu"] = eng["inner_cpu_s"]["median"] / f["inner_cpu_s"]["median"]
                off = sec.get("engine_gx_off") or {}
                if off.get("available"):
                    sec["ratio_gx_off"] = off["inner_wall_s"]["median"] / f["inner_wall_s"]["median"]
        out[fmt] = sec
    out["csv"]["target"] = "CSV ingestion with validation within 3x of DuckDB read_csv"
    r = out["csv"].get("ratio")
    out["csv"]["met"] = None if r is None else r <= 3
    for fmt in ("csv", "xlsx"):
        if out[fmt].get("ratio") is not None and not out[fmt].get("rows"):
            out[fmt]["warning"] = "the engine read no row (every file refused?): the ratio says nothing"
            out[fmt]["met"] = None
    return out


# --------------------------------------------------------------------------- 2b. one upload

def bench_upload(ctx: dict) -> dict:
    """The biggest roster file of the month through `doanvien ingest FILE --json` (what the upload page
    waits for), in a fresh process: interpreter start and imports included."""
    inv, month = ctx["inv"], ctx["month"]
    cand = [f for f in inv["files"] if f["month"] == month and f["kind"] == "roster" and f["ext"] in ("csv", "xlsx")]
    if not cand:
        return na(f"no roster file in {month}")
    out = {"target": "one branch file of 10,000 rows validated and reported under 3 s"}
    if not has_module("pipelines.ingest.cli"):
        return {**out, **na("pipelines.ingest.cli does not exist yet (`doanvien ingest` not landed)")}
    for ext in ("csv", "xlsx"):
        files = sorted((f for f in cand if f["ext"] == ext), key=lambda f: f["bytes"])
        if not files:
            continue
        f = files[-1]
        series = Series()
        for i in range(ctx["repeat"]):
            root = make_root(ctx["gen_data"], f"upload-{ext}-{i}", ctx["tag"], [month])
            path = rel_files(root, [f])[0]
            r = run_command([sys.executable, "-m", "pipelines.cli", "ingest", path, "--json"],
                            env={"DOANVIEN_DATA_DIR": str(root)}, timeout=ctx["timeout"], capture_stdout=True)
            rep = _json_report(r.result)
            if (not r.ok and r.returncode not in (0, None) and "timed out" not in (r.error or "")
                    and "Traceback" not in (r.stderr_tail or "") and rep):
                r.ok, r.error = True, None  # a refused file exits non-zero by contract: still a measured report
            r.result = {"exit": r.returncode, **{k: rep.get(k) for k in
                        ("status", "reason_code", "rows_read", "rows_accepted", "rows_refused", "timings")}}
            series.runs.append(r)
            if not r.ok or r.wall_s > ctx["cheap_s"]:
                break
        s = series.summary()
        s["file"] = str(Path(f["path"]).relative_to(ctx["gen_data"]))
        s["bytes"] = f["bytes"]
        s["lines"] = _rows_in(f["path"])
        s["rows"] = (s.get("result") or {}).get("rows_read") or s["lines"]
        engine_times = [((r.result or {}).get("timings") or {}).get("total_s") for r in series.ok_runs]
        engine_times = sorted(t for t in engine_times if t is not None)
        s["engine_s"] = engine_times[len(engine_times) // 2] if engine_times else None
        if s["available"] and s["rows"] and (s.get("result") or {}).get("status") in ("accepted", None):
            s["s_per_10k_rows"] = (s["engine_s"] or s["wall_s"]["median"]) * 10_000 / max(s["rows"], 1)
        out[ext] = s
    # what the page waits for once open: imports done, GX prewarmed, a 10,000-row roster (CSV and XLSX) in-process
    root = make_root(ctx["gen_data"], "upload-warm", ctx["tag"], [month])
    log("upload: warm in-process 10,000-row roster (CSV, XLSX), GX prewarmed")
    r = run_callable("bench.engines:upload_warm", {"n": 10_000, "repeat": ctx["repeat"]},
                     env={"DOANVIEN_DATA_DIR": str(root)}, timeout=ctx["timeout"],
                     preimport=("pipelines.ingest.engine", "pipelines.ingest.rules"))
    out["warm"] = r.to_dict() if hasattr(r, "to_dict") else {"ok": r.ok, "result": r.result, "error": r.error}
    out["warm"]["available"] = bool(r.ok and r.result)
    if not r.ok:
        out["warm"]["reason"] = r.error
    return out


def _json_report(text: str | None) -> dict:
    """The JSON report `doanvien ingest --json` printed (one object, or a list of one)."""
    if not text:
        return {}
    try:
        obj = json.loads(text)
    except ValueError:
        start = text.find("{")
        try:
            obj = json.loads(text[start:]) if start >= 0 else {}
        except ValueError:
            return {}
    if isinstance(obj, list):
        obj = obj[0] if obj else {}
    if isinstance(obj, dict) and isinstance(obj.get("reports"), list) and obj["reports"]:
        obj = obj["reports"][0]
    return obj if isinstance(obj, dict) else {}


def _rows_in(path: str) -> int | None:
    try:
        if path.endswith(".csv"):
            with open(path, "rb") as fh:
                return sum(1 for _ in fh)
        import fastexcel
        return fastexcel.read_excel(path).load_sheet(0, header_row=None).height
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- 2c. build & refresh

def bench_build(ctx: dict) -> dict:
    from bench import floors  # noqa: F401  (fail early if floors is broken)
    months = ctx["inv"]["months"][-ctx["build_months"]:]
    out = {"months": months, "months_in_data_set": len(ctx["inv"]["months"]), "target": "national one-month incremental refresh < 5 min and < 8 GB peak, "
                                       "and < 0.25 of a full rebuild of 12 months"}
    if not has_module("pipelines.warehouse.build"):
        return {**out, **na("pipelines.warehouse.build does not exist yet (orchestration not landed)")}
    if not has_module("pipelines.ingest.engine"):
        return {**out, **na("pipelines.ingest.engine does not exist yet (the build needs the raw zone)")}
    T = ctx["timeout"]
    if len(months) < 2:  # e.g. national scale generates one month: a full build only
        root = make_root(ctx["gen_data"], "warehouse", ctx["tag"], months)
        env = {"DOANVIEN_DATA_DIR": str(root)}
        log(f"build: one month only ({months[0]}): ingest + full build; no incremental refresh to measure")
        out["ingest_history"] = run_callable("bench.engines:ingest_inbox", env=env, timeout=T).to_dict()
        if not out["ingest_history"]["ok"]:
            return {**out, **na(f"ingesting the month did not complete: {out['ingest_history']['error']}")}
        out["full_rebuild"] = run_callable("bench.engines:build", {"full_refresh": True}, env=env, timeout=T).to_dict()
        out["incremental"] = {"ok": False, "wall_s": None, "cpu_s": None, "max_rss_mb": None,
                              "error": "not available: the data set has one month (nothing to refresh after a build)"}
        out["floor_all"] = run_callable("bench.floors:build_floor", {"data_dir": str(root), "months": months,
                                        "db_path": str(root / "floor_all.duckdb")}, timeout=T,
                                        preimport=PREIMPORT["build_floor"]).to_dict()
        f = out["floor_all"]
        out["floor_all"] = Series([_run_from(f)]).summary() if f["ok"] else na(f["error"])
        if out["full_rebuild"]["ok"] and f["ok"]:
            out["full_to_floor"] = out["full_rebuild"]["wall_s"] / f["wall_s"]
        ctx["warehouse_root"] = root
        return out
    key = _history_key(months[:-1])
    snap = CACHE_DIR / ctx["tag"] / f"history-{key}"
    root = CACHE_DIR / ctx["tag"] / "work" / "warehouse"
    if (snap / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["cp", "-a", str(snap), str(root)], check=True)
        out["ingest_history"] = json.loads((snap / ".complete").read_text())
        out["ingest_history"]["reused"] = f"raw zone reused from {snap.name} (same months, same ingestion code)"
        log(f"build: history of {len(months) - 1} months reused from the cache ({snap.name})")
    else:
        root = make_root(ctx["gen_data"], "warehouse", ctx["tag"], months[:-1])
        log(f"build: ingest {len(months) - 1} months ({months[0]}..{months[-2]})")
        out["ingest_history"] = run_callable("bench.engines:ingest_inbox", env={"DOANVIEN_DATA_DIR": str(root)},
                                             timeout=T).to_dict()
        if not out["ingest_history"]["ok"]:
            return {**out, **na(f"ingesting the history did not complete: {out['ingest_history']['error']}")}
        else:
            for old_snap in (CACHE_DIR / ctx["tag"]).glob("history-*"):
                shutil.rmtree(old_snap, ignore_errors=True)
            subprocess.run(["cp", "-a", str(root), str(snap)], check=True)
            (snap / ".complete").write_text(json.dumps(out["ingest_history"], default=str))
    env = {"DOANVIEN_DATA_DIR": str(root)}
    log("build: full build of the history")
    out["full_build_history"] = run_callable("bench.engines:build", {"full_refresh": True}, env=env, timeout=T).to_dict()
    add_months(ctx["gen_data"], root, [months[-1]])
    log(f"build: incremental refresh for {months[-1]} (ingest + build + publish)")
    out["incremental"] = run_callable("bench.engines:refresh_month", {"full_refresh": False}, env=env, timeout=T).to_dict()
    log(f"build: full rebuild of all {len(months)} months")
    out["full_rebuild"] = run_callable("bench.engines:build", {"full_refresh": True}, env=env, timeout=T).to_dict()
    # the same numbers: both warehouses against the generator's ground truth, and the refresh against the rebuild
    log("build: verify (ground truth, refresh = full rebuild)")
    paths = [(out[k].get("result") or {}).get("version_path") if out[k]["ok"] else None
             for k in ("incremental", "full_rebuild")]
    out["verify"] = run_callable("bench.engines:verify", {"root": str(root), "refresh_path": paths[0],
                                                          "full_path": paths[1]}, timeout=T).to_dict()
    # floors on the same raw zone: one plain DuckDB script, one month and all months
    for name, sel in (("floor_month", [months[-1]]), ("floor_all", months)):
        log(f"build: {name}")
        out[name] = repeat(ctx["repeat"] if name == "floor_month" else 1, run_callable,
                           "bench.floors:build_floor",
                           {"data_dir": str(root), "months": sel, "db_path": str(root / f"{name}.duckdb")},
                           timeout=T, preimport=PREIMPORT["build_floor"]).summary()
    inc, full = out["incremental"], out["full_rebuild"]
    if inc["ok"] and full["ok"]:
        out["incremental_to_full"] = inc["wall_s"] / full["wall_s"]
        # the build part alone: incremental dbt build + publish vs the full rebuild's (both the call's own time)
        if (inc.get("result") or {}).get("build_s") and full.get("inner_wall_s"):
            out["incremental_build_to_full_build"] = inc["result"]["build_s"] / full["inner_wall_s"]
        twelve = full_rebuild_of_12(out)
        if twelve:
            out["full_rebuild_12"] = twelve
            if twelve["wall_s"]:
                out["incremental_to_full_12"] = inc["wall_s"] / twelve["wall_s"]
        out["met"] = (inc["wall_s"] < 300 and inc["max_rss_mb"] < 8192
                      and (out.get("incremental_to_full_12") or out["incremental_to_full"]) < 0.25)
    if inc["ok"] and out["floor_month"]["available"]:
        out["incremental_to_floor"] = inc["wall_s"] / out["floor_month"]["wall_s"]["median"]
    if full["ok"] and out["floor_all"]["available"]:
        out["full_to_floor"] = full["wall_s"] / out["floor_all"]["wall_s"]["median"]
    ctx["warehouse_root"] = root
    return out


def full_rebuild_of_12(out: dict) -> dict | None:
    """The full rebuild of 12 months the target compares with: measured when the build step covered exactly 12
    months, otherwise moved linearly from the two full builds this step ran (N-1 months, then N):
    12-month wall = full(N) + (12 - N) x (full(N) - full(N-1)). Marked `projected` with its inputs, so the
    report never passes a projection off as a measurement."""
    months = len(out.get("months") or [])
    full, hist = out.get("full_rebuild") or {}, out.get("full_build_history") or {}
    if not full.get("ok"):
        return None
    if months == 12:
        return {"wall_s": full["wall_s"], "months": 12, "projected": False,
                "how": "measured: the full rebuild of all 12 months"}
    if not hist.get("ok") or months < 2:
        return None
    per_month = full["wall_s"] - hist["wall_s"]
    if per_month <= 0:
        return {"wall_s": None, "months": 12, "projected": True,
                "how": (f"not projected: the full rebuild of {months} months ({full['wall_s']:.1f} s) was not slower "
                        f"than the full build of {months - 1} ({hist['wall_s']:.1f} s); fixed costs dominate at this "
                        "scale")}
    plural = "month" if months - 1 == 1 else "months"
    return {"wall_s": full["wall_s"] + (12 - months) * per_month, "months": 12, "projected": True,
            "per_month_s": per_month,
            "how": (f"projected: full rebuild of {months} months {full['wall_s']:.1f} s {'+' if months < 12 else '-'} "
                    f"{abs(12 - months)} x {per_month:.1f} s, the full rebuild of {months} months minus the full "
                    f"build of {months - 1} {plural}")}


# --------------------------------------------------------------------------- 2d. dashboards, lookups

def _published_root(ctx: dict) -> tuple[Path | None, str | None]:
    root = ctx.get("warehouse_root")
    if root is None:
        earlier = CACHE_DIR / ctx["tag"] / "work" / "warehouse"
        if (earlier / "warehouse" / "CURRENT").exists():
            ctx["warehouse_from_earlier_run"] = True
            return earlier, None
        return None, "no warehouse was built in this run (see the build step)"
    if not (root / "warehouse" / "CURRENT").exists():
        return None, "the build published no warehouse (no warehouse/CURRENT)"
    return root, None


def bench_dashboards(ctx: dict) -> dict:
    root, why = _published_root(ctx)
    if root is None:
        return na(why)
    if not has_module("pipelines.analytics.pages"):
        return na("pipelines.analytics.pages (PAGE_QUERIES) does not exist yet")
    env = {"DOANVIEN_DATA_DIR": str(root)}
    r = run_callable("bench.dashboards:page_names", env=env, timeout=120)
    if not r.ok:
        return na(f"PAGE_QUERIES not importable: {r.error}", detail=r.stderr_tail)
    rows, reps = [], (20 if ctx["repeat"] > 1 else 10)
    for scope in ("national", "province"):
        log(f"dashboards: {len(r.result)} pages at {scope} scope")
        pr = run_callable("bench.dashboards:time_pages", {"scope_name": scope, "repeat": reps},
                          env=env, timeout=ctx["timeout"],
                          preimport=("pipelines.analytics.pages", "pipelines.access.scope"))
        if pr.ok:
            rows += [{**x, "process_wall_s": pr.wall_s, "max_rss_mb": pr.max_rss_mb} for x in pr.result]
        else:
            rows.append({"page": "(all)", "scope": scope, "error": pr.error, "detail": pr.stderr_tail})
    nat = [x for x in rows if x["scope"] == "national" and x.get("error") is None]
    for x in rows:
        x.setdefault("error", None)
    ok = [x for x in rows if x.get("error") is None]
    out = {"available": bool(ok), "pages": rows, "repeat": reps,
           "note": (f"Up to {reps} calls per series (fewer, at least 5, for slow pages: see `repeat` in the JSON). cold = result cache cleared + new read-only connection per call; "
                    "warm = result cache cleared, one connection; first paint = the page's first call (new connection, empty "
                    "result cache) in a process with the app's modules imported, one process per scope; filter change = "
                    "warm with another filter each call (gender F/M, age band); cached = the query layer's result cache hit."),
           "worst_p95_ms_national_warm": max((x["warm_p95_ms"] for x in nat), default=None),
           "worst_p95_ms_national_cold": max((x["cold_p95_ms"] for x in nat), default=None),
           "worst_first_paint_ms": max((x["first_paint_ms"] for x in ok), default=None),
           "worst_filter_change_p95_ms": max((x["filter_change_p95_ms"] for x in ok), default=None),
           "province_scope": next((x["scope"] for x in ok if x["scope"] != "national"), None)}
    if not ok:
        out["reason"] = rows[0].get("error") if rows else "no page"
    if ctx.get("warehouse_from_earlier_run"):
        out["note"] += " Warehouse from an earlier run's build (build step not run this time)."
    return out


def _find_page_queries() -> str | None:
    import pkgutil
    pkg = REPO_ROOT / "pipelines" / "analytics"
    for m in pkgutil.iter_modules([str(pkg)]):
        try:
            text = (pkg / f"{m.name}.py").read_text(encoding="utf-8")
        except OSError:
            continue
        if "PAGE_QUERIES" in text:
            return f"pipelines.analytics.{m.name}"
    return None


def bench_lookup(ctx: dict) -> dict:
    root, why = _published_root(ctx)
    if root is None:
        return na(why)
    env = {"DOANVIEN_DATA_DIR": str(root)}
    fn = "bench.engines:lookup_access" if has_module("pipelines.access.lookup") else "bench.engines:lookup_direct"
    r = run_callable(fn, {"n": ctx["lookups"]}, env=env, timeout=ctx["timeout"])
    if not r.ok and fn.endswith("lookup_access"):
        first_error = r.error
        r = run_callable("bench.engines:lookup_direct", {"n": ctx["lookups"]}, env=env, timeout=ctx["timeout"])
        if r.ok:
            r.result["via"] += f" — pipelines.access.lookup failed: {first_error}"
    if not r.ok:
        return na(f"lookup failed: {r.error}", detail=r.stderr_tail)
    return {"available": True, **r.result, "process": {"wall_s": r.wall_s, "cpu_s": r.cpu_s, "max_rss_mb": r.max_rss_mb}}


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--months", type=int, default=None,
                    help="pass --months to the generator (default: 2 at national, the generator's own at small)")
    ap.add_argument("--repeat", type=int, default=None, help="runs of each cheap step (default 3 small, 1 national)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    ap.add_argument("--regenerate", action="store_true", help="ignore the cached data set")
    ap.add_argument("--gen-timeout", type=float, default=7200, help="seconds allowed to the generator")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per measured child process (default $BENCH_TIMEOUT, else 900 small / 3600 national)")
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--build-months", type=int, default=None,
                    help="months in the build step: the last N (default 3 at small, all otherwise); "
                         "N-1 are ingested and fully built, then the last one is the incremental refresh")
    ap.add_argument("--ingest-sample", type=int, default=None,
                    help="ingest step: an evenly spread sample of N files per format (default: all at small, "
                         "300 at national); the floors read the same files")
    ap.add_argument("--merge", action="store_true",
                    help="keep the steps of today's results file that this run does not measure (each step records "
                         "the commit, start time and load average it was measured with)")
    ap.add_argument("--cheap", type=float, default=20.0,
                    help="a step whose first run takes longer than this many seconds is not repeated")
    a = ap.parse_args(argv)
    install_signal_handlers()
    national = a.scale == "national"
    if a.months is None and national:
        a.months = 2  # two months: the first is ingested and fully built, the second is the incremental refresh
    only = set(a.only.split(","))
    started = time.perf_counter()
    timeout = a.timeout or float(os.environ.get("BENCH_TIMEOUT", 0)) or (3600 if national else 900)
    ctx = {"repeat": a.repeat or (1 if national else 3), "timeout": timeout,
           "tag": f"{a.scale}-{a.seed}" + (f"-m{a.months}" if a.months else ""), "lookups": a.lookups,
           "build_months": a.build_months or (3 if a.scale in ("small", "tiny", "fake") else 10**6),
           "cheap_s": a.cheap,
           "ingest_sample": a.ingest_sample or (300 if national else None)}
    res = {"scale": a.scale, "seed": a.seed, "date": dt.date.today().isoformat(),
           "started_at": dt.datetime.now().isoformat(timespec="seconds"), "commit": git_rev(),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                       "loadavg_at_start": os.getloadavg()},
           "repeat": ctx["repeat"], "steps": {}}
    if a.merge:  # before the first write below, which replaces today's file
        _merge_earlier_steps(res, a.scale, only)
    # written first, so that a run stopped while generating still leaves an honest record
    res["steps"]["generate"] = na(f"interrupted while generating (started {dt.datetime.now():%H:%M:%S}, "
                                  f"data set not cached before)")
    _write(res, a.scale)
    gen = ensure_generated(a.scale, a.seed, a.months, a.regenerate, max(ctx["timeout"], a.gen_timeout))
    res["steps"]["generate"] = gen
    if gen["available"]:
        ctx["gen_data"] = Path(gen["data_dir"])
        ctx["inv"] = inv = inventory(ctx["gen_data"])
        files = inv["files"]
        res["dataset"] = {"months": inv["months"], "files": len(files),
                          "by_ext": {e: sum(1 for f in files if f["ext"] == e) for e in sorted({f["ext"] for f in files})}}
        if not inv["months"]:
            gen = {**gen, "available": False, "reason": "the generated inbox holds no file"}
        else:
            ctx["month"] = inv["months"][-1]
    steps = [("ingest", bench_ingest), ("upload", bench_upload), ("build", bench_build),
             ("dashboards", bench_dashboards), ("lookup", bench_lookup)]
    for name, fn in steps:
        if name not in only:
            continue
        res["steps"][name] = na(f"interrupted during this step (started {dt.datetime.now():%H:%M:%S})")
        _write(res, a.scale)
        if not gen["available"]:
            res["steps"][name] = na(f"no data set ({gen['reason']})")
            continue
        measured = {"commit": git_rev(), "started_at": dt.datetime.now().isoformat(timespec="seconds"),
                    "loadavg_at_start": os.getloadavg()}
        try:
            res["steps"][name] = fn(ctx)
            if isinstance(res["steps"][name], dict):
                res["steps"][name]["measured"] = measured
        except Exception as exc:  # noqa: BLE001 - the harness reports, it does not hide
            import traceback
            res["steps"][name] = na(f"harness error: {type(exc).__name__}: {exc}", detail=traceback.format_exc()[-2000:])
        _write(res, a.scale)  # partial results survive a later crash or timeout
    res["total_s"] = time.perf_counter() - started
    js, md = _write(res, a.scale)
    print(report.summary(res))
    log(f"wrote {js.relative_to(REPO_ROOT)} and {md.relative_to(REPO_ROOT)} in {res['total_s']:.0f} s")
    return 0


def _merge_earlier_steps(res: dict, scale: str, only: set[str]) -> None:
    """--merge: carry over today's earlier results of the steps this run does not measure."""
    earlier = RESULTS_DIR / f"{scale}-{res['date']}.json"
    if not earlier.exists():
        return
    old = json.loads(earlier.read_text())
    if old.get("seed") != res["seed"]:
        log(f"--merge: {earlier.name} has seed {old.get('seed')}, not {res['seed']}: nothing merged")
        return
    for name, step in (old.get("steps") or {}).items():
        if name not in only and name != "generate":
            step = dict(step)
            step.setdefault("measured", {"commit": old.get("commit"), "started_at": old.get("started_at"),
                                         "loadavg_at_start": (old.get("machine") or {}).get("loadavg_at_start")})
            res["steps"][name] = step
    res["merged_from"] = sorted({(v.get("measured") or {}).get("commit") or "?" for k, v in res["steps"].items()
                                 if isinstance(v, dict) and k not in only and k != "generate"})
    log(f"--merge: kept {', '.join(k for k in res['steps'] if k not in only and k != 'generate')} from {earlier.name}")


def _write(res: dict, scale: str) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"{scale}-{res['date']}"
    js, md = stem.with_suffix(".json"), stem.with_suffix(".md")
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1, default=str, ensure_ascii=False))
    tmp.replace(js)
    md.write_text(report.markdown(res), encoding="utf-8")
    return js, md


if __name__ == "__main__":
    sys.exit(main())
