"""Compare a built warehouse with the generator's ground truth (issue 4's "done when"), and two published
versions with each other (a month-by-month refresh against a full rebuild of the same data).

The generator (`doanvien generate`) writes what a correct pipeline must report into `<root>/ground_truth/`.
Each comparison is a function `(con, root) -> list of mismatching rows` in `COMPARISONS` (`con`: a DuckDB
connection to a full warehouse file). Used by the tests (tests/warehouse/test_marts_ground_truth.py on `tiny`,
test_marts_truth_data.py on any data root) and by the benchmark (`bench/run.py`, at `national` scale), and from
the command line on a refreshed data root:

    .venv/bin/python -m pipelines.generate.verify /tmp/x/data            # the published version
    .venv/bin/python -m pipelines.generate.verify /tmp/x/data A.duckdb B.duckdb   # and A == B, table by table

Only aggregates are compared and printed (per month, CĐCS, province, employer or file): no person-level row.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines import config


def _mismatches(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def gt(root: Path, table: str) -> str:
    return f"read_parquet('{root}/ground_truth/{table}.parquet')"


def members_per_month_and_unit(con, root: Path) -> list[tuple]:
    return _mismatches(con, f"""
        SELECT coalesce(a.period, b.period), coalesce(a.cdcs_code, b.cdcs_code), a.members_expected, b.members,
               a.is_carried_forward, b.is_carried_forward
        FROM (SELECT * FROM {gt(root, 'membership_monthly')} WHERE members_expected > 0) a
        FULL JOIN (SELECT * FROM marts.fct_membership_monthly WHERE members > 0) b
          ON a.period = b.period AND a.cdcs_code = b.cdcs_code
        WHERE a.members_expected IS DISTINCT FROM b.members
           OR coalesce(a.is_carried_forward, false) <> coalesce(b.is_carried_forward, false)
        ORDER BY 1, 2""")


def members_per_province(con, root: Path, col: str) -> list[tuple]:
    # the truth's CĐCS placed with the registry version in force at the month's end, independently of dbt
    return _mismatches(con, f"""
        WITH units AS (
            SELECT u.unit_code, u.valid_from, u.valid_to,
                   coalesce(u.province_new_code, p.new_code) AS province_new_code,
                   coalesce(u.province_old_code,
                            last_value(u.province_old_code IGNORE NULLS) OVER (
                                PARTITION BY u.unit_code ORDER BY u.valid_from
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS province_old_code
            FROM read_parquet('{root}/registry/units.parquet') u
            LEFT JOIN read_csv('{config.REFERENCE_DIR / "provinces_2025.csv"}', all_varchar = true) p
              ON p.old_code = u.province_old_code
            WHERE u.level = 'cdcs'),
        placed AS (
            SELECT m.period, m.members_expected, u.{col} AS code
            FROM {gt(root, 'membership_monthly')} m
            JOIN units u ON u.unit_code = m.cdcs_code AND u.valid_from <= last_day(m.period)
            QUALIFY row_number() OVER (PARTITION BY m.period, m.cdcs_code ORDER BY u.valid_from DESC) = 1),
        truth AS (SELECT period, code, sum(members_expected) AS members FROM placed GROUP BY ALL),
        truth2 AS (SELECT period, code, sum(members) AS members FROM truth GROUP BY ALL HAVING sum(members) > 0),
        ours AS (SELECT period, {col} AS code, sum(members) AS members FROM marts.fct_membership_monthly
                 GROUP BY ALL HAVING sum(members) > 0)
        SELECT * FROM truth2 FULL JOIN ours USING (period, code)
        WHERE truth2.members IS DISTINCT FROM ours.members ORDER BY 1, 2""")


def events_by_type_and_reason(con, root: Path) -> list[tuple]:
    """The truth lists real events with `period_expected`, the month a correct pipeline reports each one from
    the files as sent (an event in a month whose roster was carried forward is seen with the next roster and
    dated back into its month; a move while the old unit's roster is carried forward is seen when the person's
    counted unit changes; null: not seen within the window). Every CĐCS-month is compared, carried ones too."""
    return _mismatches(con, f"""
        WITH e AS (SELECT period_expected AS period, cdcs_code, event_type, coalesce(leave_reason_code, '') AS r,
                          count(*) AS n
                   FROM {gt(root, 'member_events')} WHERE period_expected IS NOT NULL GROUP BY ALL),
             o AS (SELECT period, cdcs_code, event_type, coalesce(leave_reason_code, '') AS r, count(*) AS n
                   FROM marts.fct_member_events GROUP BY ALL)
        SELECT * FROM e FULL JOIN o USING (period, cdcs_code, event_type, r) WHERE e.n IS DISTINCT FROM o.n
        ORDER BY 1, 2, 3""")


def dues(con, root: Path) -> list[tuple]:
    """Where the branch reported dues for the month (the truth's dues of an unreported month are the true
    ones, which a carried-forward roster cannot know)."""
    return _mismatches(con, f"""
        SELECT * FROM (SELECT * FROM {gt(root, 'dues_monthly')} WHERE is_reported) a
        LEFT JOIN marts.fct_dues_monthly b USING (period, cdcs_code)
        WHERE a.members IS DISTINCT FROM b.members OR a.salary_fund IS DISTINCT FROM b.salary_fund
           OR a.dues_expected IS DISTINCT FROM b.dues_expected
           OR (a.is_reported AND a.dues_collected IS DISTINCT FROM b.dues_collected)""")


def services(con, root: Path) -> list[tuple]:
    return _mismatches(con, f"""
        WITH e AS (SELECT period, cdcs_code, program, count(*) n, sum(amount) s FROM {gt(root, 'service_deliveries')}
                   WHERE is_reported GROUP BY ALL),
             o AS (SELECT period, cdcs_code, program_code AS program, count(*) n, sum(amount) s
                   FROM marts.fct_service_deliveries GROUP BY ALL)
        SELECT * FROM e FULL JOIN o USING (period, cdcs_code, program) WHERE e.n IS DISTINCT FROM o.n
           OR e.s IS DISTINCT FROM o.s""")


def activities(con, root: Path) -> list[tuple]:
    return _mismatches(con, f"""
        WITH e AS (SELECT period, cdcs_code, activity_type, count(*) n FROM {gt(root, 'activity_participation')}
                   WHERE is_reported GROUP BY ALL),
             o AS (SELECT period, cdcs_code, activity_type, count(*) n FROM marts.fct_activity_participation
                   GROUP BY ALL)
        SELECT * FROM e FULL JOIN o USING (period, cdcs_code, activity_type) WHERE e.n IS DISTINCT FROM o.n""")


def recruitment_potential(con, root: Path) -> list[tuple]:
    return _mismatches(con, f"""
        SELECT * FROM {gt(root, 'recruitment_potential')} a FULL JOIN marts.fct_recruitment_potential b
          USING (period, employer_code)
        WHERE a.insured_workers IS DISTINCT FROM b.insured_workers OR a.members IS DISTINCT FROM b.members
           OR a.potential IS DISTINCT FROM b.potential OR a.has_cdcs IS DISTINCT FROM b.has_cdcs""")


def submissions(con, root: Path) -> list[tuple]:
    """Every received file has its expected status, duplicates included (a duplicate arrival has a ledger row
    of its own, status duplicate, CONTRACTS §4); every row of fct_submissions is a file the generator wrote
    or a missing submission; every missing submission shows as not_submitted."""
    bad = _mismatches(con, f"""
        SELECT 'status', t.branch_code, t.period, t.kind, t.relpath, t.expected_status, t.is_superseded, s.status,
               s.is_superseded
        FROM {gt(root, 'submissions')} t
        LEFT JOIN marts.fct_submissions s
          ON s.branch_code = t.branch_code AND s.period = t.period AND s.kind = t.kind AND s.received_at = t.received_at
        WHERE (s.status IS DISTINCT FROM t.expected_status
               OR (t.expected_status = 'accepted' AND s.is_superseded IS DISTINCT FROM t.is_superseded))""")
    bad += _mismatches(con, f"""
        SELECT 'extra', s.branch_code, s.period, s.kind, s.status, s.received_at FROM marts.fct_submissions s
        WHERE s.status <> 'not_submitted' AND NOT EXISTS (
            SELECT 1 FROM {gt(root, 'submissions')} t WHERE s.branch_code = t.branch_code AND s.period = t.period
               AND s.kind = t.kind AND s.received_at = t.received_at AND s.status = t.expected_status)""")
    bad += _mismatches(con, f"""
        SELECT 'not shown as not_submitted', d.branch_code, d.period FROM {gt(root, 'defects')} d
        WHERE d.defect_type = 'missing_submission'
          AND NOT EXISTS (SELECT 1 FROM marts.fct_submissions s WHERE s.branch_code = d.branch_code
                          AND s.period = d.period AND s.kind = coalesce(d.kind, 'roster')
                          AND s.status = 'not_submitted')""")
    return bad


COMPARISONS = {
    "members per month and CĐCS": members_per_month_and_unit,
    "members per province (34)": lambda con, root: members_per_province(con, root, "province_new_code"),
    "members per province (63)": lambda con, root: members_per_province(con, root, "province_old_code"),
    "joins, leaves by reason, transfers": events_by_type_and_reason,
    "dues expected and collected": dues,
    "services": services,
    "activities": activities,
    "recruitment potential": recruitment_potential,
    "submissions": submissions,
}


# What a month-by-month build must give exactly as a full rebuild does: every mart, the restricted tables and the
# per-person states kept month by month.
MART_TABLES = ("dim_member", "dim_union_unit", "dim_province", "dim_date", "fct_membership_monthly",
               "fct_member_events", "fct_dues_monthly", "fct_service_deliveries", "fct_activity_participation",
               "fct_recruitment_potential", "fct_submissions", "mart_membership_cube", "mart_statutory_report",
               "dq_member_conflicts", "dq_refused_rows")
COMPARED_TABLES = (*(("marts", t) for t in MART_TABLES),
                   ("restricted", "member_pii"), ("restricted", "member_history"),
                   ("restricted", "member_search"), ("restricted", "member_search_tokens"),
                   ("restricted", "member_search_words"),
                   ("intermediate", "int_member_month_states"), ("intermediate", "int_member_roster_states"),
                   ("intermediate", "int_identity_variants"), ("intermediate", "int_membership_episodes"),
                   ("intermediate", "int_member_keys"))

# Tables compared through a query rather than as stored ({db}: the file's catalog prefix). The member search's
# name_rank numbers differ between a search kept up to date and one built from nothing (a rank placed between two
# others, dbt macros/member_search.sql); what must agree is the order they give: the people with their place in it,
# and each posting with its person. int_member_keys' two flags say what changed since the warehouse a build started
# from (every record is new on a build from nothing), so the records, keys and first months are compared.
COMPARED_AS = {
    ("intermediate", "int_member_keys"):
        "SELECT * EXCLUDE (is_new_record, previous_member_key) FROM {db}intermediate.int_member_keys",
    ("restricted", "member_search"):
        "SELECT row_number() OVER (ORDER BY name_rank) AS position, * EXCLUDE (name_rank) "
        "FROM {db}restricted.member_search",
    ("restricted", "member_search_tokens"):
        "SELECT t.token, s.member_key, t.name_search, t.cdcs_code FROM {db}restricted.member_search_tokens AS t "
        "JOIN {db}restricted.member_search AS s USING (name_rank)",
}


def _connect(db_path: str | Path):
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    con.execute("SET enable_progress_bar = false")
    return con


def truth_mismatches(db_path: str | Path, root: str | Path) -> dict[str, list[tuple]]:
    """{comparison: mismatching rows} of one full warehouse file against `root`'s ground truth."""
    con = _connect(db_path)
    try:
        return {name: f(con, Path(root)) for name, f in COMPARISONS.items()}
    finally:
        con.close()


# {schema.table: (columns only A has, columns only B has)} of the last version_differences call's tables whose columns
# differ (their other columns were compared)
LAST_COLUMN_DIFFERENCES: dict[str, tuple[list[str], list[str]]] = {}


def version_differences(db_a: str | Path, db_b: str | Path, tables=COMPARED_TABLES,
                        common_columns: bool = False) -> dict[str, tuple[int, int]]:
    """{schema.table: (rows of A not in B, rows of B not in A)} (multisets) for every table of `tables` present
    in either file (a table only one file has counts all its rows as different; one neither has is left out);
    (0, 0) everywhere = the same content. Each table is first compared by its row count and the sum of its rows'
    hashes (one scan each side); only a table whose fingerprints differ is counted row by row (EXCEPT ALL both
    ways, which costs ~10x more on the 12 M-row tables of a national warehouse). A table whose columns differ
    counts all its rows as different, unless `common_columns` (an A/B of two versions of the code, one with a
    column the other has not: `python -m pipelines.generate.verify`), which compares the columns both have and
    lists the others in LAST_COLUMN_DIFFERENCES."""
    LAST_COLUMN_DIFFERENCES.clear()
    con = _connect(db_a)
    try:
        con.execute(f"ATTACH '{str(db_b).replace(chr(39), chr(39) * 2)}' AS other (READ_ONLY)")
        have = {(s, t, d) for s, t, d in con.execute(
            "SELECT schema_name, table_name, database_name FROM duckdb_tables()").fetchall()}
        a_db = con.execute("SELECT current_database()").fetchone()[0]
        out = {}
        for schema, table in tables:
            a, b = f'"{schema}"."{table}"', f'other."{schema}"."{table}"'
            if (schema, table) in COMPARED_AS:
                a, b = (f"({COMPARED_AS[(schema, table)].format(db=db)})" for db in ("", "other."))
            in_a, in_b = (schema, table, a_db) in have, (schema, table, "other") in have
            if not (in_a and in_b):
                if in_a or in_b:
                    n = con.execute(f"SELECT count(*) FROM {a if in_a else b}").fetchone()[0]
                    out[f"{schema}.{table}"] = (n, 0) if in_a else (0, n)
                continue
            ca, cb = ([r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {x}").fetchall()] for x in (a, b))
            if ca != cb:
                LAST_COLUMN_DIFFERENCES[f"{schema}.{table}"] = ([c for c in ca if c not in cb],
                                                                [c for c in cb if c not in ca])
                if not common_columns:
                    out[f"{schema}.{table}"] = tuple(con.execute(f"SELECT count(*) FROM {x}").fetchone()[0]
                                                     for x in (a, b))
                    continue
                common = ", ".join(f'"{c}"' for c in ca if c in cb)
                a, b = (f"(SELECT {common} FROM {x})" for x in (a, b))
            fa, fb = (con.execute(f"SELECT count(*), sum(hash(t)) FROM {x} AS t").fetchone() for x in (a, b))
            if fa == fb:
                out[f"{schema}.{table}"] = (0, 0)
                continue
            out[f"{schema}.{table}"] = con.execute(
                f"SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})), "
                f"(SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}))").fetchone()
        return out
    finally:
        con.close()


def analyst_differences(db_a: str | Path, db_b: str | Path) -> dict[str, tuple[int, int]] | None:
    """`version_differences` of the analysts' files of two published full files (`<version>.analyst.duckdb`
    beside `<version>.duckdb`), over every table of the first but its version stamp: an incremental refresh
    brings the previous analysts' file up to date, a full build copies every table, and the two must agree.
    None when either has no analysts' file."""
    from pipelines.warehouse.serving import analyst_path_for

    a, b = (analyst_path_for(p) for p in (db_a, db_b))
    if not (a.exists() and b.exists()):
        return None
    con = _connect(a)
    try:
        tables = [tuple(r) for r in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND (schema_name, table_name) <> ('meta', 'warehouse_version') ORDER BY 1, 2").fetchall()]
    finally:
        con.close()
    return version_differences(a, b, tables)


def published_db(root: str | Path) -> Path:
    """The full warehouse file the CURRENT pointer of data root `root` names."""
    root = Path(root)
    cur = json.loads((root / "warehouse" / "CURRENT").read_text())
    path = Path(cur["path"])
    return path if path.is_absolute() else root / "warehouse" / path


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    db = Path(argv[1]) if len(argv) > 1 else published_db(root)
    bad = 0
    for name, rows in truth_mismatches(db, root).items():
        bad += bool(rows)
        print(f"{name:40s} {'equal' if not rows else f'{len(rows)} mismatching rows'}")
        for r in rows[:15]:
            print("   ", r)
    if len(argv) > 2:
        for t, (a, b) in version_differences(db, Path(argv[2]), common_columns=True).items():
            bad += bool(a or b)
            print(f"{t:45s} {'equal' if not (a or b) else f'{a} rows only in the first, {b} only in the second'}")
            if t in LAST_COLUMN_DIFFERENCES:
                only_a, only_b = LAST_COLUMN_DIFFERENCES[t]
                print(f"    (compared without the columns only the first has: {only_a or '-'}; only the second: "
                      f"{only_b or '-'})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
