"""Every mart figure equals the generator's ground truth (CONTRACTS §5) on `tiny` data.

generate (`doanvien generate --scale tiny`) → ingest (`pipelines.ingest.engine.ingest_inbox`) →
`dbt build` (in-process, one invocation) → compare, then one incremental run that restates the last month
and must leave every mart unchanged.

Compared: members at month end per CĐCS (`members_expected`, carry-forward flag) and per province in the 34-
and 63-province views; joins, leaves by reason and transfers per month and CĐCS; dues (members, salary fund,
expected, collected where reported); services and activities (reported rows); recruitment potential; the
status of every received file.

Each comparison is a function `(con, root) -> list of mismatching rows` in `COMPARISONS`, shared with
`test_marts_truth_data.py`, which runs them on an existing data root (e.g. `small`).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_marts_handmade import MART_TABLES, dbt  # noqa: E402  (shared in-process dbt runner)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny_gt")
    root = base / "data"
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(root)}
    subprocess.run([sys.executable, "-m", "pipelines.cli", "generate", "--scale", "tiny", "--seed", "7",
                    "--out", str(root), "--quiet"], check=True, env=env, cwd=REPO)
    code = ("from pipelines.ingest.engine import ingest_inbox; ingest_inbox()")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
    db = base / "tiny.duckdb"
    dbt(["build", "--exclude", "tag:heavy"], db, root, base / "target")
    return root, db


def _con(db):
    import duckdb

    return duckdb.connect(str(db), read_only=True)


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
            LEFT JOIN read_csv('{REPO}/data/reference/provinces_2025.csv', all_varchar = true) p
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


@pytest.mark.parametrize("name", list(COMPARISONS))
def test_mart_equals_ground_truth(tiny, name):
    root, db = tiny
    con = _con(db)
    try:
        assert COMPARISONS[name](con, root) == []
    finally:
        con.close()


def test_duplicates_are_in_submissions(tiny):
    root, db = tiny
    con = _con(db)
    try:
        n = con.execute("SELECT count(*) FROM marts.fct_submissions WHERE status = 'duplicate'").fetchone()[0]
        want = con.execute(f"SELECT count(*) FROM {gt(root, 'submissions')} WHERE expected_status = 'duplicate'"
                           ).fetchone()[0]
        assert n == want > 0
    finally:
        con.close()


def test_incremental_restatement_of_the_last_month_changes_nothing(tiny, tmp_path):
    import shutil

    import duckdb

    root, db = tiny
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(db), read_only=True)
    last = con.execute("SELECT strftime(max(period), '%Y-%m') FROM marts.fct_membership_monthly").fetchone()[0]
    con.close()
    dbt(["build", "--resource-type", "model", "--vars", f'{{"periods": "{last}"}}'], copy, root, tmp_path / "t")
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(f"ATTACH '{copy}' AS inc (READ_ONLY)")
        for t in MART_TABLES:
            diff = con.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM marts.{t} EXCEPT ALL "
                               f"SELECT * FROM inc.marts.{t})) + (SELECT count(*) FROM (SELECT * FROM inc.marts.{t} "
                               f"EXCEPT ALL SELECT * FROM marts.{t}))").fetchone()[0]
            assert diff == 0, t
    finally:
        con.close()
