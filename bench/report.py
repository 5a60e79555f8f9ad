"""Render bench results (the dict bench.run builds) as a Markdown report and a console summary."""
from __future__ import annotations


def _s(x, unit="s") -> str:
    if x is None:
        return "–"
    if unit == "s":
        return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"
    if unit == "ms":
        return f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"
    if unit == "mb":
        return f"{x / 1024:.2f} GB" if x >= 1024 else f"{x:.0f} MB"
    if unit == "x":
        return f"{x:.2f}×"
    if unit == "n":
        return f"{x:,.0f}"
    return str(x)


def _stat(d, key, unit="s") -> str:
    v = (d or {}).get(key)
    if not v:
        return "–"
    if isinstance(v, (int, float)):
        return _s(v, unit)
    if v["min"] == v["max"]:
        return _s(v["median"], unit)
    return f"{_s(v['median'], unit)} ({_s(v['min'], unit)}–{_s(v['max'], unit)})"


def _flat(text, n: int = 300) -> str:
    """One line, Markdown-table safe."""
    t = " ".join(str(text).split()).replace("|", "/")
    return t if len(t) <= n else t[: n - 1] + "…"


def _na(d) -> str:
    return f"not available: {_flat(d.get('reason', '?'))}"


def _verdict(met) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def targets(res: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target of the issues."""
    st = res.get("steps", {})
    out = []
    ing_all = st.get("ingest") or {}
    ing = ing_all.get("csv") or ing_all
    r = ing.get("ratio")
    out.append(("CSV ingestion with validation ≤ 3× DuckDB read_csv (same files, same run)",
                (_s(r, "x") + (f" ({ing['warning']})" if ing.get("warning") else "")) if r
                else _na(ing.get("engine") or ing) if ing else "not run",
                _verdict(ing.get("met"))))
    b = st.get("build") or {}
    inc = b.get("incremental") or {}
    scale = res.get("scale")
    if inc.get("ok"):
        m = (f"{_s(inc['wall_s'])}, peak {_s(inc['max_rss_mb'], 'mb')}, {_s(b.get('incremental_to_full'), 'x')} "
             f"of the full rebuild of {len(b.get('months') or [])} months")
        twelve = b.get("full_rebuild_12") or {}
        if b.get("incremental_to_full_12") is not None:
            m += (f", {_s(b['incremental_to_full_12'], 'x')} of the full rebuild of 12 months "
                  f"({'projected' if twelve.get('projected') else 'measured'}: {_s(twelve.get('wall_s'))})")
        elif twelve.get("how"):
            m += f"; 12-month rebuild {twelve['how']}"
        ratio = b.get("incremental_to_full_12") or b.get("incremental_to_full") or 9
        met = inc["wall_s"] < 300 and inc["max_rss_mb"] < 8192 and ratio < 0.25
        verdict = _verdict(met) + ("" if scale == "national" else f" (at {scale} scale; the target is national)")
    else:
        m, verdict = (inc.get("error") and f"failed: {_flat(inc['error'], 160)}") or _na(b) if b else "not run", _verdict(None)
    out.append(("national one-month incremental refresh < 5 min, < 8 GB, < 0.25 × full rebuild of 12 months", m, verdict))
    d = st.get("dashboards") or {}
    if d.get("available"):
        p95 = d.get("worst_p95_ms_national_warm")
        cold = d.get("worst_p95_ms_national_cold")
        v = "not measured" if p95 is None else (
            f"{'met' if p95 < 300 else '**missed**'} warm, {'met' if (cold or 0) < 300 else '**missed**'} cold")
        out.append(("dashboard queries p95 < 300 ms at national scope (per page: all of its queries)",
                    f"worst page p95: warm {_s(p95, 'ms')}, cold {_s(cold, 'ms')}", v))
        fp = d.get("worst_first_paint_ms")
        fc = d.get("worst_filter_change_p95_ms")
        worst = max(x for x in (fp, fc, -1) if x is not None)
        out.append(("first paint / filter change < 1 s (all of a page's queries)",
                    f"worst first paint {_s(fp, 'ms')}, worst filter-change p95 {_s(fc, 'ms')}",
                    _verdict(None if worst < 0 else worst < 1000)))
    else:
        out.append(("dashboard queries p95 < 300 ms at national scope", _na(d) if d else "not run", _verdict(None)))
    lk = st.get("lookup") or {}
    if lk.get("available"):
        worst = max((v["p95_ms"] for v in lk["by"].values() if v.get("p95_ms") is not None), default=None)
        out.append(("member lookup p95 < 50 ms (CCCD, member code, name)", f"worst p95 {_s(worst, 'ms')} via {lk.get('via')}",
                    _verdict(None if worst is None else worst < 50)))
    else:
        out.append(("member lookup p95 < 50 ms", _na(lk) if lk else "not run", _verdict(None)))
    up = st.get("upload") or {}
    cands = [v for k, v in up.items() if k in ("csv", "xlsx") and isinstance(v, dict) and v.get("available")]
    warm = (up.get("warm") or {}) if isinstance(up.get("warm"), dict) else {}
    wres = warm.get("result") or {}
    wfm = {k: wres[k] for k in ("csv", "xlsx") if isinstance(wres.get(k), dict)}
    if warm.get("available") and wfm:
        worst = max(v["wall_s"] for v in wfm.values())
        cold = ", ".join(f"{k.upper()} {_s(v['wall_s']['median'])} for {v.get('rows')} rows" for k, v in
                         ((k, v) for k, v in up.items() if k in ("csv", "xlsx") and isinstance(v, dict)
                          and v.get("available")))
        out.append(("one 10,000-row branch file validated and reported < 3 s (upload page: modules imported, "
                    "GX prewarmed)",
                    "warm in-process, " + ", ".join(f"{k.upper()} {_s(v['wall_s'])}" for k, v in wfm.items())
                    + f" for {wres.get('rows'):,} rows (GX {wres.get('gx_mode')}); cold new process "
                    f"(`doanvien ingest`, imports incl. GX): {cold or 'not run'}",
                    _verdict(worst < 3)))
    elif cands:
        worst = max(cands, key=lambda v: v.get("s_per_10k_rows") or 0)
        out.append(("one 10,000-row branch file validated and reported < 3 s",
                    f"engine {_s(worst.get('engine_s'))} in-process (CLI process {_s(worst['wall_s']['median'])}) for "
                    f"{worst.get('rows')} rows: {_s(worst.get('s_per_10k_rows'))} per 10k rows, scaled linearly",
                    _verdict(worst.get("s_per_10k_rows") is not None and worst["s_per_10k_rows"] < 3)))
    else:
        out.append(("one 10,000-row branch file validated and reported < 3 s", _na(up) if up else "not run", _verdict(None)))
    return out


def markdown(res: dict) -> str:
    st = res.get("steps", {})
    L = [f"# Benchmark: scale `{res['scale']}`, seed {res['seed']}, {res['date']}", "",
         f"Commit `{res.get('commit')}`, started {res.get('started_at')}, {res['machine']['cpus']} CPUs, "
         f"{res['machine']['mem_gb']} GB RAM, load average at start {', '.join(f'{x:.2f}' for x in res['machine']['loadavg_at_start'])}. "
         f"Cheap steps repeated {res.get('repeat')}×: median (min–max). Every step in a fresh child process; "
         "'work' = the call itself, 'process' = the whole child (interpreter start and imports included); "
         "CPU = user+sys; peak RSS from wait4. Total harness time: "
         f"{_s(res.get('total_s'))}.", ""]
    when = [(k, v["measured"]) for k, v in st.items() if isinstance(v, dict) and v.get("measured")]
    if when:
        L += ["Measured per step (commit, start, load average at start): " + "; ".join(
            f"{k} `{m.get('commit')}` {str(m.get('started_at') or '')[11:16]} load "
            f"{(m.get('loadavg_at_start') or [0])[0]:.1f}" for k, m in when) + ".", ""]
    L += ["## Targets (reported, not asserted)", "", "| target | measured | verdict |", "|---|---|---|"]
    L += [f"| {a} | {b} | {c} |" for a, b, c in targets(res)]
    g = st.get("generate") or {}
    L += ["", "## 1. Data set", ""]
    if g.get("available"):
        ds = res.get("dataset", {})
        L += [f"`{g.get('command')}` (generator commit `{g.get('generator_commit')}`{', cached from ' + g['generated_at'] if g.get('cached') else ''}): "
              f"wall {_s(g['wall_s'])}, CPU {_s(g['cpu_s'])}, peak RSS {_s(g['max_rss_mb'], 'mb')}, "
              f"{g['bytes'] / 2**20:.0f} MiB on disk; {ds.get('files')} inbox files over {len(ds.get('months', []))} months "
              f"({', '.join(f'{k}: {v}' for k, v in ds.get('by_ext', {}).items())})."]
    else:
        L.append(_na(g))
    ing = st.get("ingest")
    L += ["", "## 2. Ingestion of one month vs the floor", ""]
    if ing and "csv" in ing:
        samp = [f"{fmt}: {ing[fmt]['files']} of {ing[fmt]['files_in_month']} files" for fmt in ("csv", "xlsx")
                if (ing.get(fmt) or {}).get("files_in_month", 0) > (ing.get(fmt) or {}).get("files", 0)]
        if samp:
            L.append("**Sample** (evenly spread, the same files for engine and floors): " + "; ".join(samp) + ".\n")
        L += [f"Month {ing['month']}. Ratio = engine work wall time / fastest floor's work wall time; beside it, "
              "the ratio of whole-process wall times and of work CPU times (steadier on a loaded machine). "
              "Libraries are imported before the work clock starts on both sides (duckdb, polars, fastexcel; "
              "the engine and great_expectations): GX's import (~3 s) is a per-process constant, in the process "
              "wall column.", "",
              "| format | what | files | rows | work wall | process wall | CPU (process) | peak RSS | rows/s | ratio (process, CPU) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for fmt in ("csv", "xlsx"):
            sec = ing.get(fmt) or {}
            if not sec.get("files"):
                L.append(f"| {fmt} | – | 0 | | | | | | | {_na(sec)} |")
                continue
            for name, fl in (sec.get("floors") or {}).items():
                if fl.get("available"):
                    res_ = fl["result"]
                    rps = res_["rows"] / fl["inner_wall_s"]["median"]
                    L.append(f"| {fmt} | floor `{name}`{' (fastest)' if name == sec.get('floor') else ''} | {sec['files']} | {_s(res_['rows'], 'n')} | "
                             f"{_stat(fl, 'inner_wall_s')} | {_stat(fl, 'wall_s')} | {_stat(fl, 'cpu_s')} | {_stat(fl, 'max_rss_mb', 'mb')} | {_s(rps, 'n')} | 1 |")
                else:
                    L.append(f"| {fmt} | floor `{name}` | {sec['files']} | | | | | | | {_na(fl)} |")
            e = sec.get("engine") or {}
            if e.get("available"):
                r = e["result"]
                st_ = ", ".join(f"{k} {v}" for k, v in sorted(r.get("status", {}).items()))
                L.append(f"| {fmt} | **engine** `ingest_file` ({st_}) | {r['files']} | {_s(r['rows_read'], 'n')} read, {_s(r['rows_accepted'], 'n')} accepted | "
                         f"{_stat(e, 'inner_wall_s')} | {_stat(e, 'wall_s')} | {_stat(e, 'cpu_s')} | {_stat(e, 'max_rss_mb', 'mb')} | "
                         f"{_s(sec.get('engine_rows_per_s'), 'n')} | **{_s(sec.get('ratio'), 'x')}** ({_s(sec.get('ratio_process'), 'x')}, {_s(sec.get('ratio_cpu'), 'x')}) |")
            else:
                L.append(f"| {fmt} | engine | {sec['files']} | | | | | | | {_na(e)} |")
            off = sec.get("engine_gx_off") or {}
            if off.get("available"):
                r = off["result"]
                L.append(f"| {fmt} | engine with `DOANVIEN_INGEST_GX=off` (its own switch; same rules, no GX run) | {r['files']} | "
                         f"{_s(r['rows_read'], 'n')} read, {_s(r['rows_accepted'], 'n')} accepted | {_stat(off, 'inner_wall_s')} | "
                         f"{_stat(off, 'wall_s')} | {_stat(off, 'cpu_s')} | {_stat(off, 'max_rss_mb', 'mb')} | "
                         f"{_s(r['rows_read'] / off['inner_wall_s']['median'] if r['rows_read'] else None, 'n')} | {_s(sec.get('ratio_gx_off'), 'x')} |")
            elif off:
                L.append(f"| {fmt} | engine with `DOANVIEN_INGEST_GX=off` | | | | | | | | {_na(off)} |")
    else:
        L.append(_na(ing or {"reason": "not run"}))
    for fmt in ("csv", "xlsx"):
        t = ((ing or {}).get(fmt) or {}).get("engine", {}).get("result", {}) or {}
        if t.get("timings_s"):
            L.append(f"\n{fmt.upper()} engine's own timings summed over files (last run): "
                     + ", ".join(f"{k} {_s(v)}" for k, v in sorted(t["timings_s"].items(), key=lambda kv: -kv[1])))
        if ((ing or {}).get(fmt) or {}).get("warning"):
            L.append(f"\n**{fmt}: {ing[fmt]['warning']}**")
    up = st.get("upload") or {}
    L += ["", "## 3. One upload (`doanvien ingest FILE --json`, new process)", ""]
    rows = [(k, v) for k, v in up.items() if k in ("csv", "xlsx")]
    if rows:
        L += ["Process wall = the whole `doanvien ingest` command (interpreter, imports incl. GX); engine = the "
              "engine's own `timings.total_s` from its JSON report (what the upload page, with modules already "
              "imported, waits for). 'per 10k rows' scales the engine time linearly to 10,000 rows.", "",
              "| format | file | bytes | rows read | status | process wall | CPU | peak RSS | engine (in-process) | per 10k rows |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for k, v in rows:
            if v.get("available"):
                rr = v.get("result") or {}
                L.append(f"| {k} | `{v['file']}` | {_s(v['bytes'], 'n')} | {v.get('rows')} | {rr.get('status')} {rr.get('reason_code') or ''} | {_stat(v, 'wall_s')} | {_stat(v, 'cpu_s')} | "
                         f"{_stat(v, 'max_rss_mb', 'mb')} | {_s(v.get('engine_s'))} | {_s(v.get('s_per_10k_rows'))} |")
            else:
                L.append(f"| {k} | `{v.get('file')}` | | | | {_na(v)} | | | | |")
    else:
        L.append(_na(up or {"reason": "not run"}))
    warm = up.get("warm") if isinstance(up.get("warm"), dict) else None
    if warm is not None:
        L += ["", "Warm, in-process (what the upload page waits for once it is open: modules imported, GX prewarmed "
              "with `rules.prewarm_gx()`, one small file ingested first): a synthetic 10,000-row roster "
              "(`pipelines.ingest.perf.make_csv`, ~1 % defective rows; the XLSX has the same cells) through "
              "`engine.ingest_file` (GX on its sample, raw/quarantine/ledger, JSON report and the branch workbook), "
              "fresh data root each run (`bench/engines.py:upload_warm`).", ""]
        wres = warm.get("result") or {}
        if warm.get("available"):
            L += ["| format | rows read | status | refused | wall (median) | runs | CPU (median) | GX ran | workbook |",
                  "|---|---|---|---|---|---|---|---|---|"]
            for k in ("csv", "xlsx"):
                v = wres.get(k) or {}
                L.append(f"| {k} | {v.get('rows_read')} | {v.get('status')} | {v.get('rows_refused')} | "
                         f"{_s(v.get('wall_s'))} | {', '.join(_s(x) for x in v.get('runs_wall_s') or [])} | "
                         f"{_s(v.get('cpu_s'))} | {v.get('gx_ran')} | {v.get('xlsx_report')} |")
        else:
            L.append(f"warm upload: not available: {warm.get('reason') or warm.get('error')}")
    b = st.get("build") or {}
    L += ["", "## 4. Warehouse build and one-month incremental refresh vs the floor", ""]
    if b.get("available") is False and b.get("ingest_history"):
        v = b["ingest_history"]
        L.append(f"Ingesting the build's input: wall {_s(v.get('wall_s'))}, CPU {_s(v.get('cpu_s'))}, peak "
                 f"{_s(v.get('max_rss_mb'), 'mb')}; {_na(b)}")
    elif "full_rebuild" in b or "incremental" in b:
        L += [f"The last {len(b['months'])} of the data set's {b.get('months_in_data_set')} months "
              f"({b['months'][0]}..{b['months'][-1]}), in one private data root. Process wall time: "
              "interpreter start, imports and dbt included.", "",
              "| step | wall | CPU | peak RSS | note |", "|---|---|---|---|---|"]
        for key, label in (("ingest_history", f"ingest all months but the last ({len(b['months']) - 1})"),
                           ("full_build_history", "full build + publish of those months"),
                           ("incremental", f"**incremental refresh** of {b['months'][-1]} (ingest + build + publish)"),
                           ("full_rebuild", f"**full rebuild** of all {len(b['months'])} months"),
                           ("floor_month", "floor: DuckDB script, one month (load raw Parquet + aggregate)"),
                           ("floor_all", f"floor: DuckDB script, all {len(b['months'])} months")):
            v = b.get(key) or {}
            if v.get("reused"):
                L.append(f"| {label} | {_s(v['wall_s'])} | {_s(v['cpu_s'])} | {_s(v['max_rss_mb'], 'mb')} | "
                         f"from an earlier run: {v['reused']} |")
            elif "ok" in v:  # a single Run
                note = "" if v["ok"] else f"failed: {_flat(v.get('error'))}"
                rr = v.get("result") or {}
                if key == "incremental" and v["ok"]:
                    note = f"ingest {_s(rr.get('ingest_s'))}, build {_s(rr.get('build_s'))}"
                L.append(f"| {label} | {_s(v['wall_s'])} | {_s(v['cpu_s'])} | {_s(v['max_rss_mb'], 'mb')} | {note} |")
            elif v.get("available"):
                rr = v.get("result") or {}
                L.append(f"| {label} | {_stat(v, 'wall_s')} | {_stat(v, 'cpu_s')} | {_stat(v, 'max_rss_mb', 'mb')} | "
                         f"{_s(rr.get('roster_rows'), 'n')} roster rows → {_s(rr.get('aggregate_rows'), 'n')} cells |")
            elif v:
                L.append(f"| {label} | | | | {_na(v)} |")
        L += ["", f"Incremental refresh (ingest + build) / full rebuild (build): **{_s(b.get('incremental_to_full'), 'x')}**; "
              f"incremental build part alone / full rebuild: {_s(b.get('incremental_build_to_full_build'), 'x')}; incremental / one-month floor: "
              f"{_s(b.get('incremental_to_floor'), 'x')}; full rebuild / all-months floor: {_s(b.get('full_to_floor'), 'x')}."]
        twelve = b.get("full_rebuild_12")
        if twelve and not twelve.get("wall_s"):
            L += ["", f"Against a full rebuild of 12 months: {twelve['how']}."]
        elif twelve:
            L += ["", f"Against a full rebuild of 12 months ({twelve['how']}): incremental refresh / that rebuild = "
                  f"**{_s(b.get('incremental_to_full_12'), 'x')}**"
                  + (" (a projection, not a measurement: this data set's build step covers "
                     f"{len(b['months'])} months; see bench/README.md for how well the projection held at small scale)"
                     if twelve.get("projected") else "") + "."]
        L += _verify_lines(b.get("verify"))
    else:
        L.append(_na(b or {"reason": "not run"}))
    d = st.get("dashboards") or {}
    L += ["", "## 5. Dashboard queries per page", ""]
    if d.get("available"):
        L += [d.get("note", ""), "", "Each cell is one page's whole first-paint call (`PAGE_QUERIES[page](scope, filters)`: all its queries).", "",
              "| page | scope | first paint | cold p50 | cold p95 | warm p50 | warm p95 | filter change p50 | filter change p95 | cached p50 | calls |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in d["pages"]:
            if row.get("error"):
                L.append(f"| {row['page']} | {row['scope']} | error: {_flat(row['error'])} | | | | | | | | |")
                continue
            L.append(f"| {row['page']} | {row['scope']} | {_s(row.get('first_paint_ms'), 'ms')} | {_s(row.get('cold_p50_ms'), 'ms')} | "
                     f"{_s(row.get('cold_p95_ms'), 'ms')} | {_s(row.get('warm_p50_ms'), 'ms')} | {_s(row.get('warm_p95_ms'), 'ms')} | "
                     f"{_s(row.get('filter_change_p50_ms'), 'ms')} | {_s(row.get('filter_change_p95_ms'), 'ms')} | "
                     f"{_s(row.get('cached_p50_ms'), 'ms')} | {row.get('repeat')} |")
    else:
        L.append(_na(d or {"reason": "not run"}))
    lk = st.get("lookup") or {}
    L += ["", "## 6. Member lookup", ""]
    if lk.get("available"):
        L += [f"Via {lk.get('via')}; up to {lk.get('n')} random members each (stopped at a time budget per kind: "
              f"see n), one process, {lk.get('rows')} members in `restricted.member_pii`.", "",
              "| by | n | p50 | p95 | max | hits |", "|---|---|---|---|---|---|"]
        for k, v in lk["by"].items():
            L.append(f"| {k} | {v.get('n', lk.get('n'))} | {_s(v.get('p50_ms'), 'ms')} | {_s(v.get('p95_ms'), 'ms')} | "
                     f"{_s(v.get('max_ms'), 'ms')} | {v.get('hits')} |")
    else:
        L.append(_na(lk or {"reason": "not run"}))
    return "\n".join(L) + "\n"


def summary(res: dict) -> str:
    L = ["", f"=== bench {res['scale']} seed {res['seed']} {res['date']} ==="]
    for a, b, c in targets(res):
        L.append(f"- {a}\n    {b}  [{c}]")
    b = (res.get("steps") or {}).get("build") or {}
    if b.get("incremental_to_full") is not None:
        L.append(f"- incremental refresh/full rebuild {_s(b['incremental_to_full'], 'x')} "
                 f"(build part alone {_s(b.get('incremental_build_to_full_build'), 'x')}) over {len(b['months'])} months; "
                 f"incremental/floor {_s(b.get('incremental_to_floor'), 'x')}; full/floor {_s(b.get('full_to_floor'), 'x')}")
        if b.get("full_rebuild_12"):
            t = b["full_rebuild_12"]
            L.append(f"- incremental refresh/full rebuild of 12 months {_s(b.get('incremental_to_full_12'), 'x')} ({t['how']})")
    ing = (res.get("steps") or {}).get("ingest") or {}
    if ing.get("xlsx", {}).get("ratio"):
        L.append(f"- XLSX ingestion / fastest XLSX reader: {_s(ing['xlsx']['ratio'], 'x')}")
    return "\n".join(L)


def _verify_lines(v: dict | None) -> list[str]:
    """Section 4's check that the numbers are right (bench.engines.verify): both warehouses against the
    generator's ground truth, and the refresh against the full rebuild, table by table."""
    if not v:
        return []
    if not v.get("ok"):
        return ["", f"Verification: {_na(v)}"]
    r = v.get("result") or {}
    L = ["", "**Are the numbers right?** (`pipelines.generate.verify`, run on the two warehouses this step published)", ""]
    for name, label in (("refresh", "the incremental refresh"), ("full_rebuild", "the full rebuild")):
        t = r.get(f"truth_{name}")
        if t is None:
            continue
        bad = {k: n for k, n in t.items() if n}
        L.append(f"- Ground truth, {label}: " + (f"**all {len(t)} comparisons equal**" if not bad else
                 f"**{len(bad)} of {len(t)} comparisons differ**: " + "; ".join(f"{k}: {n} rows" for k, n in bad.items()))
                 + f" ({_s(r.get(f'truth_{name}_s'), 's')}).")
        for k, rows in (r.get(f"truth_{name}_first") or {}).items():
            L.append(f"  - {k}, first: {_flat('; '.join(rows))}")
    d = r.get("refresh_vs_full")
    if d is not None:
        diff = {k: ab for k, ab in d.items() if ab[0] or ab[1]}
        L.append(f"- Refresh vs full rebuild: " + (f"**all {len(d)} tables identical** (marts, restricted, per-person states)"
                 if not diff else f"**{len(diff)} of {len(d)} tables differ**: "
                 + "; ".join(f"{k}: {a} rows only in the refresh, {b} only in the rebuild" for k, (a, b) in diff.items()))
                 + f" ({_s(r.get('refresh_vs_full_s'), 's')}).")
    d = r.get("analyst_refresh_vs_full")
    if d is not None:
        diff = {k: ab for k, ab in d.items() if ab[0] or ab[1]}
        L.append(f"- Analysts' files (the refresh's brought up to date from the previous one, the rebuild's copied): "
                 + (f"**all {len(d)} tables identical**" if not diff else f"**{len(diff)} of {len(d)} tables differ**: "
                    + "; ".join(f"{k}: {a} rows only in the refresh, {b} only in the rebuild" for k, (a, b) in diff.items()))
                 + f" ({_s(r.get('analyst_refresh_vs_full_s'), 's')}).")
    return L
