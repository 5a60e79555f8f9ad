"""What the parts of a diff-based monthly refresh would cost, measured on a copy of a published warehouse.

    python -m bench.refresh_blocks VERSION.duckdb MONTH PREVIOUS_MONTH

The refresh's per-person tables (int_member_roster_states, dim_member, member_pii, …) are rewritten whole every
month although ~95 % of people are written exactly as the month before (bench/README.md). A redesign would find
the people whose roster row changed and touch only them. This prints, on a copy of VERSION (the file itself is
never opened for writing; the copy is removed at the end):

- the month's current-roster rows (`int_roster_rows_monthly`, as the per-person models read them);
- a diff of MONTH against PREVIOUS_MONTH in SQL (each identity record's row hashed): how many rows are the same,
  and what finding them costs, through `int_roster_rows_monthly` (as the per-person models read the rows) and on
  the raw rows directly (each branch's current roster version, keyed by branch and identity record);
- rewriting a per-person table whole (what a refresh does now) against updating it in place: one date column for
  95 % of people (a "last month seen" column), a text column for 5 %, and deleting and inserting 5 % of the rows;
- rewriting a per-person table whole with its text compressed (DuckDB's DICT_FSST, the default) and uncompressed:
  time and size.

Heavy (copies an 8 GB file at national scale and runs for ~2 minutes): run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

ROW_COLUMNS = ("cdcs_code, full_name, birth_date, birth_date_precision, gender, ethnicity_code, bhxh_code, member_code, "
               "join_date, insurance_salary, leave_date, leave_reason_code, cmnd")


def measure(version: Path, month: str, previous: str, work_dir: Path | None = None) -> list[tuple[str, float, object]]:
    """[(step, seconds, result)] on a copy of `version` in `work_dir` (a temporary directory by default)."""
    out: list[tuple[str, float, object]] = []
    tmp = Path(tempfile.mkdtemp(prefix="refresh_blocks_", dir=work_dir))
    copy = tmp / "copy.duckdb"
    try:
        t = time.perf_counter()
        shutil.copyfile(version, copy)
        out.append(("copy the file", time.perf_counter() - t, None))
        con = duckdb.connect(str(copy))
        con.execute("SET threads = 2; SET memory_limit = '6GB'; SET preserve_insertion_order = false")

        def step(label: str, sql: str, params=(), fetch: bool = True) -> None:
            t0 = time.perf_counter()
            cur = con.execute(sql, list(params))
            res = cur.fetchall() if fetch else None
            out.append((label, time.perf_counter() - t0, res))

        rows = ("SELECT identity_record, hash({cols}) AS h FROM intermediate.int_roster_rows_monthly "
                "WHERE period = CAST(? AS DATE) AND NOT is_carried_forward")
        step("the month's current-roster rows", "SELECT count(*) FROM intermediate.int_roster_rows_monthly "
             "WHERE period = CAST(? AS DATE) AND NOT is_carried_forward", [month])
        step("diff against the month before in SQL (same rows, other rows)",
             f"WITH cur AS ({rows.format(cols=ROW_COLUMNS)}), prev AS ({rows.format(cols=ROW_COLUMNS)}) "
             "SELECT count(*) FILTER (WHERE p.h = c.h), count(*) FILTER (WHERE p.h IS DISTINCT FROM c.h) "
             "FROM cur AS c LEFT JOIN prev AS p USING (identity_record)", [month, previous])
        # the same diff on the raw zone directly (the month's directory of roster Parquet files, the path the staging
        # view reads), each branch's current roster version of each month only (int_roster_branch_months, a small
        # table). Through the staging view the same query ran out of memory at national scale (6 GB)
        view_sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'stg_raw__roster_rows'").fetchone()[0]
        roster_dir = re.search(r"'([^']*)/file_month=", view_sql).group(1)

        def raw(m: str) -> str:
            path = f"{roster_dir}/file_month={m[:7]}/*.parquet".replace("'", "''")
            return ("SELECT r.branch_code, coalesce(nullif(trim(r.cccd), ''), 'cmnd:' || nullif(trim(r.cmnd), '')) "
                    f"AS identity_record, hash({ROW_COLUMNS}) AS h FROM read_parquet('{path}') AS r "
                    "SEMI JOIN (SELECT source_file_id AS file_id FROM intermediate.int_roster_branch_months "
                    f"WHERE period = CAST('{m}' AS DATE) AND NOT is_carried_forward) AS f ON f.file_id = r.file_id")

        step("diff against the month before on the raw rows (same rows, other rows)",
             f"WITH cur AS ({raw(month)}), prev AS ({raw(previous)}) "
             "SELECT count(*) FILTER (WHERE p.h = c.h), count(*) FILTER (WHERE p.h IS DISTINCT FROM c.h) "
             "FROM cur AS c LEFT JOIN prev AS p USING (branch_code, identity_record)")
        for table, date_col, text_col in (("intermediate.int_member_roster_states", "r_last_period", "r_full_name"),
                                          ("marts.dim_member", "last_period", "status")):
            name = table.split(".")[1]
            step(f"{name}: rewrite whole (CREATE TABLE AS + CHECKPOINT)",
                 f"CREATE TABLE {table}_copy AS SELECT * FROM {table}; CHECKPOINT", fetch=False)
            step(f"{name}: update {date_col} for 95 % of people + CHECKPOINT",
                 f"UPDATE {table}_copy SET {date_col} = {date_col} + INTERVAL 1 MONTH "
                 f"WHERE hash(member_key) % 20 <> 0; CHECKPOINT", fetch=False)
            step(f"{name}: update {text_col} for 5 % of people + CHECKPOINT",
                 f"UPDATE {table}_copy SET {text_col} = {text_col} || ' ' WHERE hash(member_key) % 20 = 0; CHECKPOINT",
                 fetch=False)
            step(f"{name}: delete 5 % of the rows and insert them again + CHECKPOINT",
                 f"DELETE FROM {table}_copy WHERE hash(member_key) % 20 = 0; "
                 f"INSERT INTO {table}_copy SELECT * FROM {table} WHERE hash(member_key) % 20 = 0; CHECKPOINT",
                 fetch=False)
        # what the rewrites cost in string compression: DuckDB's DICT_FSST (its default for text) against none, the
        # time of a rewrite and the table's size (its distinct storage blocks, in MB)
        block_mb = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0] / 2**20
        for table in ("intermediate.int_member_roster_states", "restricted.member_pii", "marts.dim_member"):
            name = table.split(".")[1]
            for label, disabled in (("text compressed (DICT_FSST)", ""), ("text uncompressed", "dict_fsst")):
                con.execute(f"SET disabled_compression_methods = '{disabled}'")
                t0 = time.perf_counter()
                con.execute(f"CREATE TABLE {table}_c AS SELECT * FROM {table}; CHECKPOINT")
                secs = time.perf_counter() - t0
                blocks, methods = con.execute(
                    "SELECT count(DISTINCT block_id), string_agg(DISTINCT compression, ',' ORDER BY compression) "
                    "FILTER (WHERE segment_type = 'VARCHAR') "
                    f"FROM pragma_storage_info('{table}_c')").fetchone()
                # (MB, the compression methods its text segments were written with)
                out.append((f"{name}: rewrite whole, {label} (MB)", secs, [(round(blocks * block_mb, 1), methods)]))
                con.execute(f"DROP TABLE {table}_c; CHECKPOINT")
            con.execute("RESET disabled_compression_methods")
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("version", type=Path, help="a published warehouse file (versions/<version>.duckdb)")
    ap.add_argument("month", help="the refreshed month, YYYY-MM-01")
    ap.add_argument("previous", help="the month before, YYYY-MM-01")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the copy goes (default: the temp directory)")
    a = ap.parse_args(argv)
    for label, secs, res in measure(a.version, a.month, a.previous, a.work_dir):
        print(f"{secs:8.2f} s  {label}" + (f"  {res}" if res else ""), flush=True)


if __name__ == "__main__":
    main()
