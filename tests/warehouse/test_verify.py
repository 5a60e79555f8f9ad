"""pipelines.generate.verify.version_differences: two warehouse files compared table by table (the benchmark's
"refresh = full rebuild" check at national scale, and the incremental-restatement test on `tiny`)."""
from __future__ import annotations

import duckdb

from pipelines.generate import verify
from pipelines.generate.verify import version_differences


def _file(path, rows, extra=False):
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.t (k VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO marts.t VALUES (?, ?)", rows)
    con.execute("CREATE TABLE marts.same AS SELECT 1 AS x")
    if extra:  # a table only this file has
        con.execute("CREATE TABLE marts.extra AS SELECT * FROM range(4)")
    con.close()
    return path


def test_equal_tables_and_different_multisets(tmp_path):
    a = _file(tmp_path / "a.duckdb", [("x", 1), ("y", 2), ("y", 2)])
    b = _file(tmp_path / "b.duckdb", [("y", 2), ("x", 1), ("y", 2)])  # same rows, another order
    c = _file(tmp_path / "c.duckdb", [("x", 1), ("y", 2), ("z", None)])  # one duplicate fewer, one row more
    tables = [("marts", "t"), ("marts", "same"), ("marts", "missing")]
    assert version_differences(a, b, tables) == {"marts.t": (0, 0), "marts.same": (0, 0)}
    assert version_differences(a, c, tables) == {"marts.t": (1, 1), "marts.same": (0, 0)}
    assert version_differences(c, a, tables)["marts.t"] == (1, 1)
    d = _file(tmp_path / "d.duckdb", [("x", 1), ("y", 2), ("y", 2)], extra=True)  # a's rows, one table more
    both = [*tables, ("marts", "extra")]
    assert version_differences(a, d, both) == {"marts.t": (0, 0), "marts.same": (0, 0), "marts.extra": (0, 4)}
    assert version_differences(d, a, both)["marts.extra"] == (4, 0)


def test_tables_whose_columns_differ(tmp_path):
    """A table with a column the other file's has not differs in all its rows, unless the columns both have are
    asked for (an A/B of two versions of the code): then those are compared and the others listed."""
    a = _file(tmp_path / "a.duckdb", [("x", 1), ("y", 2)])
    b = _file(tmp_path / "b.duckdb", [("x", 1), ("y", 2)])
    con = duckdb.connect(str(b))
    con.execute("ALTER TABLE marts.t ADD COLUMN first_period DATE")
    con.close()
    tables = [("marts", "t"), ("marts", "same")]
    assert version_differences(a, b, tables) == {"marts.t": (2, 2), "marts.same": (0, 0)}
    assert verify.LAST_COLUMN_DIFFERENCES == {"marts.t": ([], ["first_period"])}
    assert version_differences(a, b, tables, common_columns=True) == {"marts.t": (0, 0), "marts.same": (0, 0)}
    c = _file(tmp_path / "c.duckdb", [("x", 1), ("y", 3)])
    assert version_differences(c, b, tables, common_columns=True)["marts.t"] == (1, 1)
    assert version_differences(a, a, tables) == {"marts.t": (0, 0), "marts.same": (0, 0)}
    assert verify.LAST_COLUMN_DIFFERENCES == {}
