"""Throughput of `ingest_file` against DuckDB's raw `read_csv` on the same file, in the same process.

    DOANVIEN_INGEST_GX=off .venv/bin/python -m pipelines.ingest.perf 10000 50000 200000 [--profile]
    .venv/bin/python -m pipelines.ingest.perf --national bench/cache/national-42/data [--sample 300] [--fmt csv]

`--national DATA`: the same evenly spread sample of a generated inbox's month as `bench/` uses (N files per
format), ingested through `engine.ingest_batch` (worker processes, GX pooled, as the benchmark and the
Dagster asset do) into a temporary data root
whose registry is a symlink to DATA's, against DuckDB `read_csv(all_varchar)` (CSV) or fastexcel (XLSX) of the
same files in the same process; prints both times, the ratio, the engine's own timings summed over files.

Each size: a synthetic roster CSV (Vietnamese names with both tone styles, ~1 % defective rows) is written
to a temporary data root with a small registry; DuckDB `read_csv(all_varchar=true)` into an in-memory table
is timed on it, then `ingest_file` (read, archive, normalise, validate, raw/quarantine/ledger/JSON/xlsx
writes). Reports rows/s and the ratio ingest_time / duckdb_time (best of `--repeat`, default 3).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

HDR = ["STT", "Mã CĐCS", "Họ và tên", "Ngày sinh", "Giới tính", "Dân tộc", "Số CMND/CCCD", "Mã số BHXH",
       "Ngày vào CĐ", "Lương đóng BHXH", "Ngày thôi sinh hoạt", "Lý do thôi sinh hoạt"]
_FAM = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"]
_MID = ["Văn", "Thị", "Hữu", "Đức", "Ngọc", "Minh", "Thanh", "Quốc", "Xuân"]
_GIV = ["Hoà", "Hòa", "Thuỷ", "Thủy", "Khoẻ", "Hương", "Lan", "Nam", "Tuấn", "Hùng", "Dũng", "Quý", "Loan",
        "Hoàn", "Anh", "Trang", "Ngọc", "Phương", "Thảo", "Yến", "Oanh", "Duy", "Huy", "Khánh"]
_ETH = ["Kinh"] * 20 + ["Tày", "Thái", "Mường", "HMông", "Khmer", "Nùng"]


def make_csv(path: Path, n: int, seed: int = 1, n_units: int = 40) -> None:
    rnd = random.Random(seed)
    units = [f"CS{i:07d}" for i in range(1, n_units + 1)]
    lines = ["LIÊN ĐOÀN LAO ĐỘNG QUẬN 1", "DANH SÁCH ĐOÀN VIÊN THÁNG 03/2025", "", ",".join(HDR)]
    for i in range(n):
        male = rnd.random() < 0.5
        y = rnd.randint(1965, 2004)
        name = f"{rnd.choice(_FAM)} {rnd.choice(_MID)} {rnd.choice(_GIV)}"
        cccd = f"0{rnd.choice(['01', '79', '48', '31'])}{(y // 100 - 19) * 2 + (0 if male else 1)}{y % 100:02d}{i:06d}"
        leave, reason = "", ""
        if rnd.random() < 0.02:
            leave, reason = "15/03/2025", rnd.choice(["Nghỉ hưu", "Chuyển sinh hoạt", "Nghỉ việc"])
        row = [str(i + 1), rnd.choice(units), name, f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{y}",
               "Nam" if male else "Nữ", rnd.choice(_ETH), cccd, f"79{rnd.randint(10**7, 10**8 - 1)}",
               f"01/{rnd.randint(1, 12):02d}/{max(y + 20, 2000) if y + 20 < 2025 else 2024}",
               f"\"{rnd.randint(40, 200) * 100_000:,}\"", leave, reason]
        r = rnd.random()
        if r < 0.003:
            row[6] = row[6][:8] + "X"          # cccd layout
        elif r < 0.006:
            row[3] = "31/02/1990"              # invalid date
        elif r < 0.008:
            row[2] = ""                        # required missing
        lines.append(",".join(row))
    lines.append("Tổng cộng,,,,,,,,,,,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def setup_root(root: Path, n_units: int = 40) -> None:
    import polars as pl
    reg = root / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    units = ["Q0101"] + [f"CS{i:07d}" for i in range(1, n_units + 1)]
    pl.DataFrame({"unit_code": units, "level": ["upper_level"] + ["cdcs"] * n_units,
                  "parent_code": ["T01"] + ["Q0101"] * n_units, "valid_from": [dt.date(2020, 1, 1)] * len(units),
                  "valid_to": [None] * len(units)}, schema_overrides={"valid_to": pl.Date}).write_parquet(
        reg / "units.parquet")
    pl.DataFrame({"branch_code": ["Q0101"], "valid_from": [dt.date(2020, 1, 1)], "valid_to": [None]},
                 schema_overrides={"valid_to": pl.Date}).write_parquet(reg / "branches.parquet")


def _national_sample(data: Path, fmt: str, n: int, month: str | None) -> tuple[str, list[Path]]:
    files = sorted(f for f in (data / "inbox").glob("*/*/*/*") if f.is_file())
    months = sorted({f.relative_to(data / "inbox").parts[1] for f in files})
    month = month or months[-1]
    files = [f for f in files if f.relative_to(data / "inbox").parts[1] == month and f.suffix.lower() == f".{fmt}"]
    if n and len(files) > n:  # the benchmark's deterministic, evenly spread sample
        step = len(files) / n
        files = [files[int(i * step)] for i in range(n)]
    return month, files


def _floor(fmt: str, files: list[Path]) -> tuple[float, int]:
    t = time.perf_counter()
    rows = 0
    if fmt == "csv":
        import duckdb
        con = duckdb.connect()
        opts = "all_varchar=true, header=false, null_padding=true, strict_mode=false"
        for i, p in enumerate(files):
            for extra in ("", ", encoding='latin-1'", ", ignore_errors=true"):
                try:
                    con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv(?, {opts}{extra})", [str(p)])
                except duckdb.Error:
                    continue
                rows += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
                break
        con.close()
    else:
        import fastexcel
        for p in files:
            try:
                rows += fastexcel.read_excel(str(p)).load_sheet(0, header_row=None).to_arrow().num_rows
            except Exception:  # noqa: BLE001
                pass
    return time.perf_counter() - t, rows


def national(data: Path, fmt: str, n: int, month: str | None, profile: bool) -> None:
    from collections import Counter

    from pipelines.ingest import engine
    month, files = _national_sample(data, fmt, n, month)
    base = Path(tempfile.mkdtemp(prefix="ingest-national-"))
    try:
        root = base / "data"
        root.mkdir()
        (root / "registry").symlink_to((data / "registry").resolve(), target_is_directory=True)
        os.environ["DOANVIEN_DATA_DIR"] = str(root)
        fl_s, fl_rows = _floor(fmt, files)
        if profile:
            import cProfile
            pr = cProfile.Profile()
            pr.enable()
        t, c0 = time.perf_counter(), time.process_time()
        from pipelines.ingest.batch import ingest_batch
        items = [(p, *p.relative_to(data / "inbox").parts[:3], dt.datetime.fromtimestamp(p.stat().st_mtime))
                 for p in sorted(files, key=lambda p: (p.stat().st_mtime, str(p)))]
        reps = ingest_batch(items)
        el, cpu = time.perf_counter() - t, time.process_time() - c0
        if profile:
            import pstats
            pr.disable()
            pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
        tim: Counter = Counter()
        for r in reps:
            tim.update({k: v for k, v in r.timings.items()})
        st = Counter(r.status for r in reps)
        read = sum(r.rows_read for r in reps)
        acc = sum(r.rows_accepted for r in reps)
        print(f"{fmt} month {month}: {len(files)} files; floor {'duckdb read_csv' if fmt == 'csv' else 'fastexcel'} "
              f"{fl_s:.2f} s ({fl_rows} rows); engine {el:.2f} s wall, {cpu:.2f} s CPU ({dict(st)}, read {read}, "
              f"accepted {acc}, refused {sum(r.rows_refused for r in reps)}); ratio {el / fl_s:.2f}x")
        print("engine timings summed: " + ", ".join(f"{k} {v:.2f}" for k, v in tim.most_common()))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", nargs="*", type=int, default=[10_000, 50_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--national", type=Path, help="a generated data root (bench/cache/national-42/data)")
    ap.add_argument("--sample", type=int, default=300, help="--national: files per format (0 = all)")
    ap.add_argument("--fmt", choices=["csv", "xlsx"], default="csv")
    ap.add_argument("--month", default=None, help="--national: YYYY-MM (default: the latest)")
    a = ap.parse_args()
    if a.national:
        return national(a.national, a.fmt, a.sample, a.month, a.profile)
    os.environ.setdefault("DOANVIEN_INGEST_GX", "off")
    import duckdb
    import polars as pl  # noqa: F401  (import outside the timed calls)

    from pipelines.ingest import engine
    base = Path(tempfile.mkdtemp(prefix="ingest-perf-"))
    try:
        src = base / "src"
        src.mkdir()
        # warm-up: imports and first-call costs out of the measurement
        os.environ["DOANVIEN_DATA_DIR"] = str(base / "warm")
        setup_root(base / "warm")
        make_csv(src / "warm.csv", 200, seed=99)
        engine.ingest_file(src / "warm.csv", branch_code="Q0101", period="2025-03", declared_kind="roster",
                           received_at=dt.datetime(2025, 4, 5))
        print(f"{'rows':>8} {'MB':>6} {'duckdb s':>9} {'ingest s':>9} {'rows/s':>9} {'duck rows/s':>11} {'ratio':>6}"
              "  split")
        for n in a.sizes:
            p = src / f"roster_{n}.csv"
            make_csv(p, n, seed=n)
            best_d = best_i = float("inf")
            rep = None
            for k in range(a.repeat):
                t = time.perf_counter()
                con = duckdb.connect()
                con.execute(f"create table t as select * from read_csv('{p}', all_varchar=true, header=false, "
                            "null_padding=true)")
                con.close()
                best_d = min(best_d, time.perf_counter() - t)
                root = base / f"root_{n}_{k}"
                setup_root(root)
                os.environ["DOANVIEN_DATA_DIR"] = str(root)
                if a.profile and k == 0:
                    import cProfile
                    import pstats
                    pr = cProfile.Profile()
                    pr.enable()
                t = time.perf_counter()
                rep = engine.ingest_file(p, branch_code="Q0101", period="2025-03", declared_kind="roster",
                                         received_at=dt.datetime(2025, 4, 5))
                el = time.perf_counter() - t
                if a.profile and k == 0:
                    pr.disable()
                    pstats.Stats(pr).sort_stats("cumulative").print_stats(35)
                if el < best_i:
                    best_i, best_rep = el, rep
                shutil.rmtree(root, ignore_errors=True)
            assert rep.status == "accepted", rep.message_vi
            assert rep.rows_read == n, (rep.rows_read, n)
            mb = p.stat().st_size / 1e6
            split = {k: v for k, v in best_rep.timings.items()}
            print(f"{n:>8} {mb:>6.1f} {best_d:>9.3f} {best_i:>9.3f} {n / best_i:>9.0f} {n / best_d:>11.0f} "
                  f"{best_i / best_d:>6.2f}  {split} refused={rep.rows_refused}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
