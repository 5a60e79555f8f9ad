"""Where an incremental build and publish spends its time, phase by phase, on a data root; then rolled back.

    DOANVIEN_DATA_DIR=ROOT python -m bench.refresh_phases [--label L] [--same-code] [--keep] [--json FILE]
                                                          [--top N] [--save-copy FILE]

The data root must have a published version (the base) and, normally, files ingested after it (the month to
refresh). This runs what the monthly refresh runs after ingestion (`build.build_and_publish(full_refresh=False)`,
the base copied first as the refresh's prefetch does while files are ingested: timed apart, it is hidden behind
ingestion there) and prints, besides the whole build's wall time:

- each phase: preparing the build file, dbt (its models' and tests' node times summed, and the slowest nodes),
  releasing dbt's connection, the lookup indexes made on the finished file, the analysts' file brought up to date,
  the smoke checks and the publication;
- the peak RSS of this process and the sizes of the files it published.

Then readers are pointed back at the base version and the version just published is deleted (unless `--keep`), so
the same month can be rebuilt again: an A/B of two variants of the dbt project or the build code is two runs on
one root, the machine otherwise quiet. `--same-code` builds incrementally even when the dbt project differs from
the one the base was built with (the build would otherwise run in full, `build.prepare_build`): only for a
variant whose tables keep the base's meaning, and never for a version anyone reads. `--save-copy FILE` keeps the
published warehouse file at FILE (a hard link, or a copy across file systems) before it is deleted, so the two
variants' results can be compared afterwards: `python -m pipelines.generate.verify ROOT A B` (every compared table
of A against B, and A against the ground truth).

Heavy at national scale (a whole monthly build: ~6–9 minutes on the reference machine); run it on a quiet machine.
Findings: bench/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

# (module attribute, label) of the phases timed: the functions `build_and_publish` and `finish_and_publish` call
BUILD_PHASES = ("prepare_build", "run_dbt", "release_dbt_duckdb", "settle_dbt_database", "set_lookup_indexes",
                "member_key_changes", "finish_and_publish")
SERVING_PHASES = ("stamp_version", "analyst_windows", "make_analyst_copy", "smoke_check", "publish")


@contextlib.contextmanager
def _timed(module, names: tuple[str, ...], prefix: str, into: dict[str, float]):
    """Wrap module.<name> for each name so that its calls add their wall time to into[prefix + name]."""
    saved = {n: getattr(module, n) for n in names}

    def wrap(name, f):
        @functools.wraps(f)
        def w(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                into[prefix + name] = into.get(prefix + name, 0.0) + time.perf_counter() - t
        return w

    try:
        for n, f in saved.items():
            setattr(module, n, wrap(n, f))
        yield
    finally:
        for n, f in saved.items():
            setattr(module, n, f)


def measure(label: str = "", *, same_code: bool = False, keep: bool = False, top: int = 20,
            save_copy: Path | None = None) -> dict:
    """One incremental build and publish of the data root (DOANVIEN_DATA_DIR) from its current version, timed by
    phase; then rolled back to that version (the new one deleted) unless `keep`. `save_copy`: where to keep the
    published warehouse file (its analysts' file is not kept)."""
    from pipelines.access import accounts
    from pipelines.warehouse import build, serving

    base = serving.current_version()
    if base is None:
        raise SystemExit("nothing published in this data root: build it first (doanvien refresh)")
    phases: dict[str, float] = {}
    saved_fingerprint = build.warehouse_code_fingerprint
    if same_code:
        recorded = build.version_fingerprint(serving.warehouse_path())
        build.warehouse_code_fingerprint = lambda: recorded
    published = None
    try:
        t = time.perf_counter()
        build.prefetch_base_copy()
        build.finish_prefetch()
        phases["base copy (prefetched; hidden behind ingestion in a refresh)"] = time.perf_counter() - t
        with _timed(build, BUILD_PHASES, "", phases), _timed(serving, SERVING_PHASES, "serving.", phases), \
                _timed(accounts, ("follow_member_key_changes",), "accounts.", phases):
            t = time.perf_counter()
            published = build.build_and_publish(full_refresh=False)
            wall = time.perf_counter() - t
        nodes = list(build.LAST_NODE_TIMINGS)
        sizes = {Path(p).name: Path(p).stat().st_size for p in (published.path, published.analyst_path) if p}
    finally:
        build.warehouse_code_fingerprint = saved_fingerprint
        if published is not None and save_copy is not None:
            _save(Path(published.path), save_copy)
        if published is not None and not keep:
            serving.rollback(base.version)
            for p in (published.path, published.analyst_path):
                if p:
                    with contextlib.suppress(FileNotFoundError):
                        Path(p).unlink()
            with contextlib.suppress(FileNotFoundError):
                (serving.versions_dir() / f"{published.version}.json").unlink()
    models = [(n, s) for n, s in nodes if n.startswith("model.")]
    return {
        "label": label, "base_version": base.version, "version": published.version, "kept": keep,
        "build": build.LAST_BUILD.get("build"),
        "wall_s": round(wall, 2),
        "phases_s": {k: round(v, 2) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
        "dbt_models_s": round(sum(s for _, s in models), 2),
        "dbt_tests_s": round(sum(s for n, s in nodes if not n.startswith("model.")), 2),
        "dbt_nodes": len(nodes),
        "slowest_nodes": [(n, round(s, 2)) for n, s in nodes[:top]],
        "file_bytes": sizes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _save(src: Path, dest: Path) -> None:
    """`src` at `dest`: a hard link (instant, no space) or, across file systems, a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="")
    ap.add_argument("--same-code", action="store_true",
                    help="build incrementally even if the dbt project changed since the base version")
    ap.add_argument("--keep", action="store_true", help="leave the new version published (no rollback)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    ap.add_argument("--top", type=int, default=20, help="how many of the slowest dbt nodes to list (default 20)")
    ap.add_argument("--save-copy", type=Path, default=None,
                    help="keep the published warehouse file here (to compare two variants' results afterwards)")
    args = ap.parse_args(argv)
    res = measure(args.label, same_code=args.same_code, keep=args.keep, top=args.top, save_copy=args.save_copy)
    text = json.dumps(res, indent=1, ensure_ascii=False)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
