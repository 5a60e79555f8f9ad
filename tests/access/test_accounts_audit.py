"""Accounts (argon2, lockout, sessions, import, CLI) and the append-only audit log."""
from __future__ import annotations

import sqlite3
import time

import pytest
from click.testing import CliRunner

from pipelines.access import accounts, audit
from pipelines.access.appdb import AUDIT_DB, ACCOUNTS_DB
from pipelines import config


def test_password_hash_and_sessions(data_root):
    u = accounts.create_user("cb.xa", display_name="Cán bộ", role="upper_official", unit_code="X08001",
                             password="mot-mat-khau-dai")
    with sqlite3.connect(config.app_dir() / ACCOUNTS_DB) as con:
        h = con.execute("SELECT password_hash FROM users").fetchone()[0]
    assert h.startswith("$argon2id$") and "mot-mat-khau-dai" not in h
    user, token = accounts.login("CB.XA ", "mot-mat-khau-dai")
    assert user == u and accounts.session_user(token).username == "cb.xa"
    accounts.logout(token)
    assert accounts.session_user(token) is None
    _, token2 = accounts.login("cb.xa", "mot-mat-khau-dai")
    accounts.set_role("cb.xa", "cdcs_official", "CS0000002")  # a role change shows at the next rerun (ST-05)
    assert accounts.session_user(token2).role == "cdcs_official"
    accounts.set_active("cb.xa", False)
    assert accounts.session_user(token2) is None
    with pytest.raises(accounts.LoginFailed):
        accounts.login("cb.xa", "mot-mat-khau-dai")  # disabled


def test_session_expiry(data_root, monkeypatch):
    accounts.create_user("a1", display_name="A", role="analyst", password="0123456789ab")
    _, token = accounts.login("a1", "0123456789ab")
    real = time.time
    monkeypatch.setattr(accounts.time, "time", lambda: real() + accounts.SESSION_IDLE_S + 5)
    assert accounts.session_user(token) is None


def test_lockout_after_repeated_failures(data_root):
    accounts.create_user("victim", display_name="V", role="analyst", password="dung-mat-khau-1")
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(accounts.LoginFailed) as e:
            accounts.login("victim", "sai-mat-khau")
        assert not isinstance(e.value, accounts.AccountLocked)
    with pytest.raises(accounts.AccountLocked):
        accounts.login("victim", "dung-mat-khau-1")  # even the right password, while locked
    assert accounts.lockout_remaining("victim") > 0
    # unknown users are locked out the same way and get the same message as a wrong password
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(accounts.LoginFailed) as e:
            accounts.login("nobody", "x")
        assert str(e.value).startswith("Tên đăng nhập hoặc mật khẩu không đúng")
    with pytest.raises(accounts.AccountLocked):
        accounts.login("nobody", "x")
    accounts.set_password("victim", "mat-khau-moi-123")  # an admin reset clears the lockout
    assert accounts.login("victim", "mat-khau-moi-123")[0].username == "victim"


def test_validation(data_root):
    with pytest.raises(accounts.AccountError):
        accounts.create_user("x", display_name="x", role="upper_official", password="0123456789")  # no unit
    with pytest.raises(accounts.AccountError):
        accounts.create_user("m1", display_name="x", role="member", password="0123456789")  # no member link
    with pytest.raises(accounts.AccountError):
        accounts.create_user("short", display_name="x", role="analyst", password="short")
    with pytest.raises(accounts.AccountError):
        accounts.create_user("../etc", display_name="x", role="analyst", password="0123456789")


def test_oidc_email_mapping(data_root):
    accounts.create_user("ld", display_name="L", role="national_leader", unit_code="TLD", password=None,
                         email="LanhDao@congdoan.vn")
    assert accounts.user_for_oidc("lanhdao@congdoan.vn").username == "ld"
    assert accounts.user_for_oidc("lanhdao@congdoan.vn", email_verified=False) is None
    assert accounts.user_for_oidc("other@x.vn") is None
    with pytest.raises(accounts.LoginFailed):
        accounts.login("ld", "")  # an OIDC-only account has no password


def test_import_officials_and_cli(data_root, tmp_path):
    f = tmp_path / "canbo.csv"
    f.write_text("Tên đăng nhập;Họ và tên;Vai trò;Mã đơn vị;Email\n"
                 "cb1;Nguyễn Văn A;upper_official;X08001;a@x.vn\ncb2;Trần B;cdcs_official;CS0000002;\n",
                 encoding="utf-8-sig")
    from pipelines.access.cli import users
    r = CliRunner().invoke(users, ["import", str(f)])
    assert r.exit_code == 0, r.output
    assert {u.username for u in accounts.list_users()} == {"cb1", "cb2"}
    bad = tmp_path / "bad.csv"
    bad.write_text("username,display_name,role,unit_code\ncb3,C,upper_official,\n", encoding="utf-8")
    r = CliRunner().invoke(users, ["import", str(bad)])
    assert r.exit_code != 0 and "cb3" not in {u.username for u in accounts.list_users()}
    r = CliRunner().invoke(users, ["create-admin", "root", "--generate"])
    assert r.exit_code == 0 and "password" in r.output
    r = CliRunner().invoke(users, ["create-admin", "root2", "--generate"])
    assert r.exit_code != 0  # only the first admin
    r = CliRunner().invoke(users, ["reset-password", "cb1"])
    assert r.exit_code == 0 and accounts.get_user("cb1").must_change_password
    r = CliRunner().invoke(users, ["list"])
    assert "cb1" in r.output and "$argon2" not in r.output


def test_audit_is_append_only_and_chained(data_root):
    audit.record("a", "view_member", member_key="k1", detail={"q": "CCCD 001234567890"})
    audit.record("b", "sql_query", detail="SELECT 1")
    rows = audit.events()
    assert len(rows) == 2 and "001234567890" not in str(rows) and "001*****7890" in str(rows)
    assert audit.verify_chain() == (True, None)
    con = sqlite3.connect(config.app_dir() / AUDIT_DB)
    for stmt in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.DatabaseError):
            con.execute(stmt)
    # tampering around the triggers is detected by the chain
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("UPDATE audit_log SET actor = 'x' WHERE id = 1")
    con.commit()
    con.close()
    assert audit.verify_chain() == (False, 1)


def test_audit_writer_shared_across_threads_and_processes(data_root):
    """The process keeps one audit connection: writes from threads and from another process all chain, and a
    log file removed under it is noticed (a new file, a new chain)."""
    import os
    import subprocess
    import sys
    import threading

    from pipelines.access import appdb

    audit.record("a", "login")
    errors = []

    def write(i):
        try:
            for j in range(10):
                audit.record(f"t{i}", "search_members", detail={"j": j})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(data_root)}
    subprocess.run([sys.executable, "-c", "from pipelines.access import audit; audit.record('other', 'login')"],
                   check=True, env=env, cwd=config.REPO_ROOT)
    audit.record("a", "logout")  # chains onto the other process's record
    rows = audit.events(limit=100)
    assert len(rows) == 43 and rows[0]["actor"] == "a" and rows[1]["actor"] == "other"
    assert audit.verify_chain() == (True, None)
    path = config.app_dir() / AUDIT_DB
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.unlink(f"{path}{suffix}")
    audit.record("a", "login")
    assert [r["actor"] for r in audit.events()] == ["a"] and audit.verify_chain() == (True, None)
    assert appdb._AUDIT_WRITER["key"][2] == appdb._file_id(path)


def test_member_accounts_follow_a_rekeyed_person(data_root, tmp_path):
    """A build that re-keys a person (a legacy CMND linked to its CCCD person) re-points the member accounts
    linked by member_key, once (no chain within one build); a person split in two is left for an administrator."""
    import duckdb

    from pipelines.warehouse.build import member_key_changes

    for name, key in (("m.cmnd", "k_cmnd"), ("m.split", "k_split"), ("m.other", "k_other"), ("m.chain", "k_new")):
        accounts.create_user(name, display_name=name, role="member", member_key=key, password="0123456789ab")
    db = tmp_path / "build.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA intermediate")
    con.execute("CREATE TABLE intermediate.int_member_key_changes AS SELECT * FROM (VALUES "
                "('cmnd:1', 'k_cmnd', 'k_new'), ('cmnd:2', 'k_split', 'k_a'), ('cmnd:3', 'k_split', 'k_b'), "
                "('cmnd:4', 'k_new', 'k_newer')) AS t(identity_record, previous_member_key, member_key)")
    con.close()
    changes = member_key_changes(db)
    assert sorted(changes) == [("k_cmnd", "k_new"), ("k_new", "k_newer"), ("k_split", "k_a"), ("k_split", "k_b")]
    assert accounts.follow_member_key_changes(changes) == {"followed": 2, "split": 1}
    got = {u.username: u.member_key for u in accounts.list_users("member")}
    assert got == {"m.cmnd": "k_new", "m.split": "k_split", "m.other": "k_other", "m.chain": "k_newer"}
    duckdb.connect(str(tmp_path / "no-table.duckdb")).close()  # a version built before the table existed
    assert member_key_changes(tmp_path / "no-table.duckdb") == []
