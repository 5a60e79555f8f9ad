"""The analyst SQL sandbox battery (reliability notes §2, SQL-01…SQL-14): every escape is refused and
audited, nothing is written, settings stay locked; both layers are tested separately (the allow-list, and the
DuckDB worker with the allow-list bypassed)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipelines.access import audit, sqlsandbox as sb
from pipelines.access.accounts import User

ANALYST = User("phantich", "Phân tích", "analyst")

FILE_READS = [
    "SELECT * FROM read_csv('/etc/passwd', sep=':')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/**')",
    "SELECT * FROM parquet_metadata('x.parquet')",
    "SELECT * FROM parquet_schema('x.parquet')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_json_auto('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "FROM 'data/warehouse/CURRENT'",
    "SELECT * FROM read_csv('http://169.254.169.254/latest/meta-data/')",
    "SELECT * FROM query_table('marts.dim_member')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT getenv('HOME')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_settings()",
]
STATEMENTS = [
    "COPY (SELECT * FROM marts.dim_member) TO 'out.csv'",
    "COPY marts.dim_member TO '/tmp/dv_leak.csv'",
    "EXPORT DATABASE '/tmp/dv_export'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/dv_explain.csv'",
    "ATTACH '/tmp/other.duckdb' AS o",
    "ATTACH ':memory:' AS m",
    "INSTALL httpfs", "LOAD httpfs", "INSTALL h3 FROM community",
    "SET enable_external_access = true", "RESET lock_configuration", "SET memory_limit = '100GB'",
    "PRAGMA threads = 64", "SET allowed_directories = ['/']", "CALL pragma_version()",
    "CREATE TABLE t AS SELECT 1", "INSERT INTO marts.dim_member SELECT * FROM marts.dim_member",
    "DELETE FROM marts.dim_member", "CHECKPOINT", "SELECT 1; SELECT 2",
    "SET VARIABLE x = 1", "DETACH marts",
]


@pytest.fixture
def analyst_file(dw) -> Path:
    from pipelines.access.warehouse import analyst_path
    return analyst_path()


@pytest.mark.parametrize("sql", FILE_READS + STATEMENTS)
def test_allow_list_refuses_and_audits(dw, analyst_file, sql):
    before = len(audit.events())
    with pytest.raises(sb.SqlRefused):
        sb.run_sql(sql, user=ANALYST, db_path=analyst_file, timeout=10)
    ev = audit.events()
    assert len(ev) == before + 1 and ev[0]["action"] == "sql_refused" and ev[0]["outcome"] == "refused"


@pytest.mark.parametrize("sql", FILE_READS[:12] + STATEMENTS[:16] + ["SELECT * FROM df"])
def test_worker_layer_holds_without_the_allow_list(analyst_file, sql, tmp_path):
    """Bypass the allow-list: the DuckDB settings and OS limits alone must refuse (SQL-01…09)."""
    res = sb._run_worker(str(analyst_file), sql, timeout=15, max_rows=10, max_chars=10000,
                         memory_limit="256MB", threads=1)
    if sql.startswith(("ATTACH ':memory:'", "CALL pragma_version")):
        return  # harmless when they run: read-only, nothing to write with
    assert not res.ok, (sql, res.rows)
    for leak in ("/tmp/dv_leak.csv", "/tmp/dv_export", "/tmp/dv_explain.csv"):
        assert not os.path.exists(leak)


def test_settings_locked_and_read_back(analyst_file):
    res = sb._run_worker(str(analyst_file), "SELECT name, value FROM duckdb_settings() WHERE name IN "
                         "('enable_external_access','lock_configuration','autoload_known_extensions',"
                         "'autoinstall_known_extensions','allow_community_extensions','threads')",
                         timeout=15, max_rows=20, max_chars=10000, memory_limit="256MB", threads=1)
    s = dict(res.rows)
    assert s == {"enable_external_access": "false", "lock_configuration": "true", "autoload_known_extensions": "false",
                 "autoinstall_known_extensions": "false", "allow_community_extensions": "false", "threads": "1"}


def test_no_secret_in_the_worker_environment(analyst_file, monkeypatch):
    monkeypatch.setenv("DOANVIEN_MEMBER_KEY_SECRET", "top-secret-value")
    res = sb._run_worker(str(analyst_file), "SELECT * FROM read_text('/proc/self/environ')", timeout=15,
                         max_rows=5, max_chars=1000, memory_limit="256MB", threads=1)
    assert not res.ok and "top-secret-value" not in (res.error or "")


def test_good_query_rows_capped_and_audited(dw, analyst_file):
    res = sb.run_sql("SELECT period, sum(members) AS n FROM marts.fct_membership_monthly GROUP BY 1 ORDER BY 1",
                     user=ANALYST, db_path=analyst_file)
    assert res.ok and len(res.rows) == 12 and res.columns == ["period", "n"]
    res = sb.run_sql("SELECT * FROM range(100000)", user=ANALYST, db_path=analyst_file, max_rows=50)
    assert res.ok and len(res.rows) == 50 and res.truncated  # SQL-11
    ev = audit.events(action="sql_query")
    assert len(ev) == 2 and ev[0]["rows"] == 50 and ev[0]["actor"] == "phantich"


def test_analyst_file_is_de_identified(dw, analyst_file):
    for sql in ("SELECT cccd FROM marts.dim_member", "SELECT * FROM restricted.member_pii"):
        res = sb.run_sql(sql, user=ANALYST, db_path=analyst_file)
        assert not res.ok  # SQL-12: no such column / schema in the analyst file


def test_forever_query_is_killed_at_the_limit(dw, analyst_file):
    t0 = time.monotonic()
    res = sb.run_sql("SELECT sum(hash(a.range + b.range)) FROM range(1000000) a, range(1000000) b",
                     user=ANALYST, db_path=analyst_file, timeout=3)
    took = time.monotonic() - t0
    assert not res.ok and res.killed and 2.5 < took < 8
    assert audit.events(action="sql_query")[0]["outcome"] == "killed"
    # the next query is unaffected
    assert sb.run_sql("SELECT 42", user=ANALYST, db_path=analyst_file).rows == [[42]]


def test_memory_eater_fails_cleanly(dw, analyst_file):
    res = sb.run_sql("SELECT count(*) FROM (SELECT range FROM range(200000000) ORDER BY random())",
                     user=ANALYST, db_path=analyst_file, timeout=20)
    assert not res.ok and ("Memory" in (res.error or "") or res.killed)


def test_non_analyst_refused(dw, analyst_file):
    with pytest.raises(sb.SqlRefused):
        sb.run_sql("SELECT 1", user=User("m", "m", "member", member_code="x"), db_path=analyst_file)
    assert audit.events()[0]["outcome"] == "denied"


def test_self_test_and_schema_browser(dw, analyst_file):
    assert sb.self_test(analyst_file) == []
    cat = {f"{t['schema']}.{t['table']}": t for t in sb.schema_catalog(analyst_file)}
    assert "marts.fct_membership_monthly" in cat and not any(k.startswith("restricted.") for k in cat)
    t = cat["marts.fct_membership_monthly"]
    assert t["description"].startswith("Đoàn viên")
    assert any(c["column"] == "members" and c["description"] for c in t["columns"])


def test_saved_queries_and_cli(dw, analyst_file):
    sb.save_query(ANALYST, "tong", "SELECT count(*) FROM marts.dim_member")
    assert sb.saved_queries(ANALYST)[0]["name"] == "tong"
    with pytest.raises(sb.SqlRefused):
        sb.save_query(ANALYST, "bad", "COPY marts.dim_member TO 'x'")
    from click.testing import CliRunner
    from pipelines.access.cli import sql
    r = CliRunner().invoke(sql, ["SELECT count(*) AS n FROM marts.dim_member", "--format", "json"])
    assert r.exit_code == 0 and '"rows": [[24]]' in r.output
    r = CliRunner().invoke(sql, ["SELECT * FROM read_csv('/etc/passwd')"])
    assert r.exit_code != 0 and "root:" not in r.output
    assert audit.events()[0]["action"] == "sql_refused" and audit.events()[0]["actor"].startswith("cli")


def test_export_is_formula_safe():
    from pipelines.access.export import to_csv_bytes, to_xlsx_bytes
    b = to_csv_bytes(["a", "b"], [["=HYPERLINK(\"http://x\")", 5], ["+1", -3], ["@SUM(A1)", 1.5]]).decode("utf-8-sig")
    assert "'=HYPERLINK" in b and "'+1" in b and "'@SUM" in b and ",-3" in b
    import io
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(to_xlsx_bytes(["a"], [["=1+1"], [7]])))
    assert wb.active["A2"].value == "'=1+1" and wb.active["A3"].value == 7
