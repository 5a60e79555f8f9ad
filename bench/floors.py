"""The floors: what DuckDB (or the fastest XLSX reader here) costs on the same files, in the same run.

Each function runs inside a fresh child process (`bench.proc.run_callable`) and returns what it read.
No validation, no mapping: these are the raw costs the engines are compared with.
"""
from __future__ import annotations


def duckdb_read_csv(files: list[str]) -> dict:
    """DuckDB `read_csv` of each CSV file into an in-memory table, every column VARCHAR.

    header=false so a title row above the table is read as data rather than breaking the sniffer;
    delimiter sniffed (`,` or `;`); a file that is not UTF-8 (Windows-1258) is read as latin-1
    (DuckDB 2.0 has no Windows-1258 decoder offline), which still reads every byte.
    """
    import duckdb

    con = duckdb.connect()
    rows = failed = 0
    fallbacks = {"latin-1": 0, "ignore_errors": 0}
    opts = "all_varchar=true, header=false, null_padding=true, strict_mode=false"
    attempts = [("", None), (", encoding='latin-1'", "latin-1"), (", ignore_errors=true", "ignore_errors")]
    for i, path in enumerate(files):
        for extra, label in attempts:
            try:
                con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv(?, {opts}{extra})", [path])
            except duckdb.Error:
                continue
            if label:
                fallbacks[label] += 1
            rows += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
            break
        else:
            failed += 1
    con.close()
    return {"files": len(files), "rows": rows, "failed": failed, "fallbacks": fallbacks}


def xlsx_polars(files: list[str]) -> dict:
    """`polars.read_excel` (calamine through fastexcel) of the first sheet, no header, strings only."""
    import polars as pl

    rows = failed = 0
    for path in files:
        try:
            df = pl.read_excel(path, has_header=False, infer_schema_length=0)
            rows += df.height
        except Exception:  # noqa: BLE001 - a file the reader cannot open is counted, not hidden
            failed += 1
    return {"files": len(files), "rows": rows, "failed": failed}


def xlsx_fastexcel(files: list[str]) -> dict:
    """fastexcel `load_sheet(0, header_row=None).to_arrow()` of the first sheet."""
    import fastexcel

    rows = failed = 0
    for path in files:
        try:
            tbl = fastexcel.read_excel(path).load_sheet(0, header_row=None).to_arrow()
            rows += tbl.num_rows
        except Exception:  # noqa: BLE001
            failed += 1
    return {"files": len(files), "rows": rows, "failed": failed}


def build_floor(data_dir: str, months: list[str], db_path: str) -> dict:
    """One plain DuckDB SQL script in one process: load the months' accepted roster rows from the raw zone
    (the build's own input: raw/roster/file_month=<YYYY-MM>/<file_id>.parquet, the latest accepted version per
    branch × period, from the ledger raw/files/) into a fresh .duckdb file, and compute the main monthly aggregate
    (members at month end per month × CĐCS × province × gender) with the unit registry."""
    import glob
    import os

    import duckdb

    if os.path.exists(db_path):
        os.remove(db_path)
    # loose ledger rows and compacted segments (pipelines.ingest.ledger); a row seen twice is the same row
    ledger = glob.glob(os.path.join(data_dir, "raw", "files", "**", "*.parquet"), recursive=True)
    if not ledger:
        raise FileNotFoundError("no ledger in raw/files/ (nothing ingested)")
    periods = [f"{m}-01" for m in months]
    con = duckdb.connect(db_path)
    ids = [(r[0], r[1]) for r in con.execute(
        """SELECT file_id, strftime(period::DATE, '%Y-%m') FROM read_parquet(?, union_by_name=true)
           WHERE kind = 'roster' AND status = 'accepted' AND period::DATE IN (SELECT unnest(?::DATE[]))
           QUALIFY row_number() OVER (PARTITION BY branch_code, period ORDER BY received_at DESC) = 1""",
        [ledger, periods]).fetchall()]
    files = [p for p in (os.path.join(data_dir, "raw", "roster", f"file_month={m}", f"{i}.parquet") for i, m in ids)
             if os.path.exists(p)]
    if not files:
        raise FileNotFoundError("no accepted roster file for " + ",".join(months))
    units = os.path.join(data_dir, "registry", "units.parquet")
    con.execute("CREATE TABLE roster AS SELECT * FROM read_parquet(?, union_by_name=true)", [files])
    con.execute(f"""
        CREATE TABLE members_monthly AS
        SELECT r.period::DATE AS period, r.cdcs_code, u.province_new_code, r.gender, count(*) AS members
        FROM roster r
        LEFT JOIN read_parquet('{units}') u
          ON u.unit_code = r.cdcs_code
         AND last_day(r.period::DATE) >= u.valid_from
         AND (u.valid_to IS NULL OR last_day(r.period::DATE) <= u.valid_to)
        WHERE r.leave_date IS NULL OR r.leave_date > last_day(r.period::DATE)
        GROUP BY ALL""")
    con.execute("CHECKPOINT")
    rows = con.execute("SELECT count(*) FROM roster").fetchone()[0]
    cells, members = con.execute("SELECT count(*), sum(members) FROM members_monthly").fetchone()
    con.close()
    return {"files": len(files), "roster_rows": rows, "aggregate_rows": cells, "members": int(members or 0)}
