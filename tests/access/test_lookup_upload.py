"""Member lookups (own record, official search in scope, masking, audit, corrections) and uploads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import access_fixture as wf
from pipelines.access import audit, lookup, uploads
from pipelines.access.accounts import User


def _member(cdcs, i=0):
    return [m for m in wf.members() if m["cdcs_code"] == cdcs][i]


def test_own_record(users):
    rec = lookup.own_record(users["member"])
    m = _member("CS0000002")
    assert rec["member_code"] == m["member_code"] and rec["cdcs_code"] == "CS0000002"
    assert rec["cccd"] == m["cccd"][:3] + "*****" + m["cccd"][-4:]
    assert rec["history"]["events"][0]["event_type"] == "join"
    assert len(rec["history"]["dues"]) == 12 and rec["history"]["dues"][0]["dues_due"] > 0
    assert rec["history"]["services"] and rec["history"]["activities"]
    ev = audit.events(action="view_own_record")
    assert ev[0]["member_key"] == m["member_key"] and m["cccd"] not in str(audit.events())


def test_search_accent_insensitive_and_scoped(users):
    up = users["upper_official"]  # X08001: CS0000002 and CS0000004
    hits = lookup.search_members(up, "hoang duc EM")
    assert hits and all(h.cdcs_code in {"CS0000002", "CS0000004"} for h in hits)
    allh = lookup.search_members(users["national_leader"], "Hoàng Đức Em")
    assert len(allh) > len(hits)
    assert all("*****" in h.cccd for h in allh)  # masked for leaders
    other = _member("CS0000006")  # Hà Nội, outside X08001
    assert lookup.search_members(up, other["cccd"]) == []
    assert lookup.search_members(up, other["member_code"]) == []
    with pytest.raises(lookup.LookupError_):
        lookup.member_detail(up, other["member_key"])
    assert audit.events()[0]["action"] == "denied" and audit.events()[0]["member_key"] == other["member_key"]
    cs = users["cdcs_official"]
    mine = lookup.search_members(cs, _member("CS0000002", 1)["cccd"])
    assert len(mine) == 1 and mine[0].cccd == _member("CS0000002", 1)["cccd"]  # CĐCS official: full CCCD
    rec = lookup.member_detail(up, _member("CS0000004")["member_key"])
    assert rec["cdcs_code"] == "CS0000004"
    ev = audit.events(action="view_member")
    assert ev[0]["actor"] == up.username and ev[0]["member_key"] == _member("CS0000004")["member_key"]
    assert ev[0]["page"] == "tra_cuu"


@pytest.mark.parametrize("role", ["analyst", "admin", "member"])
def test_roles_without_person_access(users, role):
    with pytest.raises(lookup.LookupError_):
        lookup.search_members(users[role], "nguyen")
    with pytest.raises(lookup.LookupError_):
        lookup.member_detail(users[role], _member("CS0000002")["member_key"])


def test_corrections_flow(users):
    rid = lookup.submit_correction(users["member"], "birth_date", "Ngày sinh đúng là 01/02/1985 <b>x</b>")
    assert [r["id"] for r in lookup.list_corrections(users["upper_official"], status="open")] == [rid]
    assert lookup.list_corrections(users["cdcs_official"], status="open")
    outsider = User("hn", "hn", "upper_official", unit_code="X01001")
    assert lookup.list_corrections(outsider) == []
    with pytest.raises(PermissionError):
        lookup.resolve_correction(outsider, rid, "no")
    lookup.resolve_correction(users["cdcs_official"], rid, "Đã sửa")
    assert lookup.list_corrections(users["member"])[0]["status"] == "resolved"


def test_mask():
    assert lookup.mask_cccd("001234561234") == "001*****1234"
    assert lookup.fold("Nguyễn Đức HÒA") == "nguyen duc hoa"


def test_upload_scope_and_traversal_name(users, dw, monkeypatch):
    import types
    seen = {}

    def fake_ingest(path, *, branch_code, period, declared_kind, original_name=None, **kw):
        seen.update(path=str(path), original_name=original_name)
        return types.SimpleNamespace(status="accepted", file_id="f" * 16, message_vi="ok", rows_read=1,
                                     rows_accepted=1, rows_refused=0, json_report=None, xlsx_report=None,
                                     counts_by_rule={})

    import pipelines.ingest.engine as engine
    monkeypatch.setattr(engine, "ingest_file", fake_ingest)
    up = users["upper_official"]
    assert [b["branch_code"] for b in uploads.branches_for(up)] == ["X08001"]
    res = uploads.handle_upload(up, branch_code="X08001", period="2025-09-01", kind="roster",
                                original_name="../../../etc/passwd.csv", data=b"a,b\n1,2\n")
    assert "/" not in res.stored_name and ".." not in res.stored_name and res.stored_name.endswith(".csv")
    assert res.inbox_path.startswith(str(dw / "inbox" / "X08001" / "2025-09" / "roster"))
    assert seen["original_name"] == "../../../etc/passwd.csv" and "app/uploads/X08001/" in seen["path"]
    assert not (dw / "etc").exists()
    with pytest.raises(PermissionError):
        uploads.handle_upload(up, branch_code="X01001", period="2025-09-01", kind="roster",
                              original_name="x.csv", data=b"a")
    with pytest.raises(PermissionError):
        uploads.handle_upload(users["cdcs_official"], branch_code="X08001", period="2025-09-01", kind="roster",
                              original_name="x.csv", data=b"a")
    assert audit.events()[0]["action"] == "denied"
    hist = uploads.upload_history(up)
    assert hist and hist[0]["branch_code"] == "X08001"
    assert uploads.upload_history(User("hn", "hn", "upper_official", unit_code="X01001")) == []


def test_upload_with_real_engine(users, dw):
    up = users["upper_official"]
    res = uploads.handle_upload(up, branch_code="X08001", period="2025-09-01", kind="dues",
                                original_name="..\\..\\bad<script>.csv", data="cdcs_code,x\nCS0000002,1\n".encode())
    assert res.status in ("accepted", "refused", "duplicate")
    assert "<" not in res.stored_name and "\\" not in res.stored_name
    assert not list(dw.rglob("bad<script>*"))


def test_lookups_reuse_the_open_version_and_pick_up_a_new_one(users, dw):
    """One idle connection per published version stays open in the process (the next lookups only attach to
    it); a newly published version is read at the next call, and only the newest two stay held."""
    import shutil

    import duckdb

    from pipelines.access import warehouse
    from pipelines.warehouse import serving

    nat = users["national_leader"]
    m = _member("CS0000004")
    assert [h.member_key for h in lookup.search_members(nat, m["cccd"])] == [m["member_key"]]
    first = str(serving.warehouse_path())
    assert first in warehouse._HELD
    assert lookup.search_members(nat, "ten moi phat hanh") == []
    for i, name in enumerate(("Tên Mới Phát Hành", "Tên Thứ Ba")):
        build = serving.build_dir() / f"next{i}.duckdb"
        shutil.copyfile(serving.warehouse_path(), build)
        con = duckdb.connect(str(build))
        con.execute("UPDATE restricted.member_pii SET full_name = ?, name_search = ? WHERE member_key = ?",
                    [name, wf.fold(name), m["member_key"]])
        con.execute("CHECKPOINT")
        con.close()
        version = f"2026010{i + 2}T000000Z-test"
        serving.stamp_version(build, version, "test")
        analyst = serving.build_dir() / f"next{i}.analyst.duckdb"
        serving.make_analyst_copy(build, analyst)
        serving.publish(build, version=version, run_id="test", analyst_build_path=analyst)
        hits = lookup.search_members(nat, wf.fold(name))
        assert [(h.member_key, h.full_name) for h in hits] == [(m["member_key"], name)]
    assert len(warehouse._HELD) == 2
    assert first not in warehouse._HELD and str(serving.warehouse_path()) in warehouse._HELD
    assert lookup.search_members(nat, "ten moi phat hanh") == []
    # scope, masking and audit as before, on the new version
    up = users["upper_official"]
    assert [h.cdcs_code for h in lookup.search_members(up, "ten thu ba")] == ["CS0000004"]
    assert lookup.search_members(up, _member("CS0000006")["cccd"]) == []
    assert all("*****" in h.cccd for h in lookup.search_members(nat, "ten thu ba"))
    assert audit.verify_chain() == (True, None)
    assert len(audit.events(action="search_members")) == 8


def test_error_workbook_from_the_history_is_scoped_and_made_on_request(users, dw, monkeypatch):
    """An accepted file of the branch's history gets its error workbook on request (made again from the archive
    when it is not there, as for batch-ingested files); another branch's official gets nothing (audited)."""
    import datetime as _dt

    import openpyxl

    monkeypatch.setenv("DOANVIEN_INGEST_GX", "off")
    up = users["upper_official"]
    csv = ("Mã CĐCS,Họ và tên,Ngày sinh,Giới tính,Số CCCD,Ngày vào công đoàn\n"
           "CS0000002,Nguyễn Văn Tải,15/03/1990,Nam,008090123456,01/09/2015\n"
           "CS0000004,Lê Văn Sai,02/11/1995,Nam,12345,10/05/2020\n")
    res = uploads.handle_upload(up, branch_code="X08001", period=_dt.date.today().replace(day=1), kind="roster",
                                original_name="ds.csv", data=csv.encode())
    assert res.status == "accepted", res.message_vi
    fid = res.report["file_id"]
    Path(res.xlsx_report).unlink()  # as a batch leaves it: deferred
    path = uploads.history_workbook(up, fid)
    assert path is not None and path.exists()
    rows = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(values_only=True))
    assert any(r[-1] and "cccd" in str(r[-1]).lower() for r in rows[1:]), rows  # the refused row has its reason
    other = User("hn", "hn", "upper_official", unit_code="X01001")
    assert uploads.history_workbook(other, fid) is None
    assert audit.events()[0]["action"] == "denied"
    # without a workbook the page says which reason holds: here the original is gone from the archive
    path.unlink()
    from pipelines import config
    for arc in config.archive_dir().rglob(f"{res.report['sha256']}.*"):
        arc.unlink()
    got, why = uploads.history_workbook_or_reason(up, fid)
    assert got is None and "Tệp gốc không còn trong kho lưu trữ" in why and "gửi lại" in why
    assert "original file is no longer archived" in uploads.history_workbook_or_reason(up, fid, lang="en")[1]
    assert json.loads(audit.events()[0]["detail"])["reason"] == "original_missing"  # audited with its reason


def test_point_lookups_are_answered_by_the_lookup_indexes(users, dw, monkeypatch):
    """A member's own record, an official's search by CCCD and by member code, and the current unit are read
    through the ART indexes made at publish time (`build.set_lookup_indexes`, the key as a UUID and the CCCD
    as a number: `serving.lookup_expression`), not by scanning 12 M rows: each lookup query, run again under
    EXPLAIN ANALYZE on a version carrying the indexes, reads its table by an index scan."""
    import contextlib
    import re
    import shutil

    from pipelines.warehouse import serving
    from pipelines.warehouse.build import set_lookup_indexes

    version = "20260102T000000Z-indexed"
    build = serving.build_dir() / f"{version}.duckdb"
    shutil.copyfile(serving.warehouse_path(), build)
    made = set(set_lookup_indexes(build, present=True))
    # dim_member has no index: a lookup reads the current unit, status and age band from member_pii
    assert {"ix_member_pii_cccd", "ix_member_pii_member_key"} <= made and "ix_dim_member_member_key" not in made
    serving.stamp_version(build, version, "test")
    analyst = serving.build_dir() / f"{version}.analyst.duckdb"
    serving.make_analyst_copy(build, analyst)
    serving.publish(build, version=version, run_id="test", analyst_build_path=analyst)

    seen: list[tuple[str, list]] = []

    class Recording:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, params=None):
            seen.append((sql, list(params or [])))
            return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

        def __getattr__(self, name):
            return getattr(self._con, name)

    real = lookup.connect_full

    @contextlib.contextmanager
    def recording_connect():
        with real() as con:
            yield Recording(con)

    monkeypatch.setattr(lookup, "connect_full", recording_connect)
    m = _member("CS0000002")
    nat = users["national_leader"]
    assert lookup.own_record(users["member"])["member_code"] == m["member_code"]
    assert [h.member_key for h in lookup.search_members(nat, m["cccd"])] == [m["member_key"]]
    assert [h.member_key for h in lookup.search_members(nat, m["member_code"])] == [m["member_key"]]
    assert lookup.member_detail(nat, m["member_key"])["member_code"] == m["member_code"]

    # every read of member_pii or dim_member by these lookups is an index scan (a search's hits take their
    # current unit from member_pii itself: no semi-join of their keys to dim_member, which scanned 12 M keys)
    n = 0
    with real() as con:
        for sql, params in seen:
            if "restricted.member_pii" not in sql and "marts.dim_member" not in sql:
                continue
            plan = "\n".join(r[1] for r in con.execute("EXPLAIN ANALYZE " + sql, params).fetchall())
            scans = re.findall(r"Table: \S*?\.(\w+\.\w+)\s*│\s*\n│\s*Type: ([A-Za-z ]+?)\s*│", plan)
            for table, kind in scans:
                if table in ("restricted.member_pii", "marts.dim_member"):
                    assert kind == "Index Scan", (sql, scans)
                    n += 1
    assert n >= 3, n  # own record: its member_pii row; searches: cccd, code; detail: unit, row
    # and none reads dim_member, which has no index: the unit, status and age band are member_pii's
    assert not [sql for sql, _ in seen if "marts.dim_member" in sql]
    rec = lookup.member_detail(nat, m["member_key"])
    assert (rec["status"], rec["age_band"]) == ("active", wf._age_band(m["birth_date"].year)), rec

    # the member code's index is on DuckDB's hash: a reader whose DuckDB hashes differently (the probe the build
    # stored disagrees) matches the code itself, and still finds the member
    from pipelines.warehouse.serving import HASH_PROBE_TABLE, lookup_hash_ok

    with real() as con:
        assert lookup_hash_ok(con)
    version2 = "20260103T000000Z-otherhash"
    build2 = serving.build_dir() / f"{version2}.duckdb"
    shutil.copyfile(serving.warehouse_path(), build2)
    import duckdb

    con = duckdb.connect(str(build2))
    con.execute(f"UPDATE {HASH_PROBE_TABLE} SET value = value + 1")
    con.close()
    serving.stamp_version(build2, version2, "test")
    analyst2 = serving.build_dir() / f"{version2}.analyst.duckdb"
    serving.make_analyst_copy(build2, analyst2)
    serving.publish(build2, version=version2, run_id="test", analyst_build_path=analyst2)
    seen.clear()
    assert [h.member_key for h in lookup.search_members(nat, m["member_code"])] == [m["member_key"]]
    with real() as con:  # the answer is kept with the version this process holds open: read once, not per search
        from pipelines.access import warehouse as access_wh

        assert access_wh.lookup_hash_ok(con) is False and access_wh._version_of(con).hash_ok is False
        assert not lookup_hash_ok(con)
        sql = next(s for s, _ in seen if "member_code" in s and "restricted.member_pii" in s)
        assert "hash(" not in sql, sql
