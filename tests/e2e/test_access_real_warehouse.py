"""Member self-service and the official lookup on the REAL warehouse (tiny generated data taken through
`doanvien refresh`: dbt's `restricted.member_pii`, `restricted.member_history` and `marts.*`), through the
real Tra cứu page under AppTest. Figures are compared with independent SQL on the published file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
PASSWORD = "Kiem-thu-that-2025"


@pytest.fixture(scope="module")
def real_root(request, tmp_path_factory) -> Path:
    """A private copy of the published warehouse (accounts are written; the shared fixture stays clean).
    `DOANVIEN_E2E_REAL_DATA=<data root with a published warehouse>` reuses one already built (read only)."""
    import os
    given = os.environ.get("DOANVIEN_E2E_REAL_DATA")
    tiny_published = Path(given) if given else request.getfixturevalue("tiny_published")
    root = tmp_path_factory.mktemp("realdw") / "data"
    root.mkdir()
    for sub in ("warehouse", "registry"):
        shutil.copytree(tiny_published / sub, root / sub)
    (root / "app").mkdir()
    secret = tiny_published / "app" / "member_key.secret"
    if secret.exists():
        shutil.copy2(secret, root / "app" / secret.name)
    ptr = root / "warehouse" / "CURRENT"
    rec = json.loads(ptr.read_text())
    for k in ("path", "analyst_path"):
        if rec.get(k):
            rec[k] = rec[k].replace(str(tiny_published), str(root))
    ptr.write_text(json.dumps(rec))
    return root


@pytest.fixture
def env(real_root, monkeypatch):
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(real_root))
    from argon2 import PasswordHasher

    from pipelines.access import accounts
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    yield real_root, con
    con.close()


def _page(user):
    from streamlit.testing.v1 import AppTest

    from pipelines.access import accounts
    at = AppTest.from_file(str(REPO / "dashboards" / "app_pages" / "tra_cuu.py"), default_timeout=90)
    at.session_state["_dv_session_token"] = accounts.create_session(user)
    return at


def _texts(at) -> str:
    """Every text shown, Markdown escapes removed."""
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "error", "warning", "info", "title")
                     for e in getattr(at, kind)).replace("\\", "")


def _frame(at, column):
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    return None


def test_member_sees_own_record_and_official_finds_by_name_without_accents(env):
    root, con = env
    from pipelines.access import accounts, audit, lookup

    # the member with the richest record: history, dues, services and activities
    key = con.execute(
        "SELECT p.member_key FROM restricted.member_pii p "
        "JOIN restricted.member_history h USING (member_key) "
        "JOIN marts.dim_member d ON d.member_key = p.member_key AND d.is_active "
        "LEFT JOIN (SELECT member_key, count(*) n FROM marts.fct_service_deliveries GROUP BY 1) s USING (member_key) "
        "LEFT JOIN (SELECT member_key, count(*) n FROM marts.fct_activity_participation GROUP BY 1) a USING (member_key) "
        "GROUP BY p.member_key ORDER BY (any_value(s.n) IS NOT NULL)::INT + (any_value(a.n) IS NOT NULL)::INT DESC, "
        "count(*) DESC, p.member_key LIMIT 1").fetchone()[0]
    name, code, cdcs, cccd, join_date = con.execute(
        "SELECT full_name, member_code, cdcs_code, cccd, join_date FROM restricted.member_pii WHERE member_key = ?",
        [key]).fetchone()
    cur_cdcs = con.execute("SELECT cdcs_code FROM marts.dim_member WHERE member_key = ?", [key]).fetchone()[0]
    member = accounts.create_user("dv.that", display_name="Đoàn viên", role="member", password=PASSWORD,
                                  member_key=key, replace_existing=True)

    at = _page(member).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    text = _texts(at)
    assert name in text and code in text and cur_cdcs in text
    assert cccd not in text and lookup.mask_cccd(cccd) in text  # own CCCD masked on screen
    assert str(join_date) in text

    def q(sql):
        return con.execute(sql, [key]).fetchall()

    events = _frame(at, "event_type")
    n_events = q("SELECT count(*) FROM marts.fct_member_events WHERE member_key = ?")[0][0]
    assert (0 if events is None else len(events)) == n_events
    dues = _frame(at, "dues_due")
    hist = q("SELECT period, dues_due FROM restricted.member_history WHERE member_key = ? ORDER BY period")
    assert dues is not None and len(dues) == len(hist) > 0
    assert [int(x) for x in dues["dues_due"]] == [int(d) for _, d in hist]
    services = _frame(at, "program_code")
    s_n, s_amount = q("SELECT count(*), coalesce(sum(amount), 0) FROM marts.fct_service_deliveries "
                      "WHERE member_key = ?")[0]
    assert (0 if services is None else len(services)) == s_n
    if s_n:
        assert int(services["amount"].sum()) == int(s_amount)
    acts = _frame(at, "activity_type")
    a_n = q("SELECT count(*) FROM marts.fct_activity_participation WHERE member_key = ?")[0][0]
    assert (0 if acts is None else len(acts)) == a_n
    assert s_n + a_n > 0  # the chosen member really exercises services/activities
    assert audit.events(actor="dv.that", action="view_own_record")[0]["member_key"] == key

    # a correction request reaches the officials of the member's CĐCS
    rid = lookup.submit_correction(member, "full_name", "Tên viết sai dấu")
    official = accounts.create_user("cb.cs.that", display_name="Cán bộ CĐCS", role="cdcs_official",
                                    unit_code=cur_cdcs, password=PASSWORD, replace_existing=True)
    assert rid in {r["id"] for r in lookup.list_corrections(official)}

    # an upper-level official searches by name without accents, within their scope, CCCD masked
    upper = con.execute("SELECT upper_unit_code FROM marts.dim_member WHERE member_key = ?", [key]).fetchone()[0]
    searcher = (accounts.create_user("cb.tren.that", display_name="Cán bộ cấp trên", role="upper_official",
                                     unit_code=upper, password=PASSWORD, replace_existing=True)
                if upper else official)
    plain = lookup.fold(name)
    assert plain != name.lower() or name.isascii()
    at = _page(searcher).run()
    at.text_input(key="tc_q").set_value(plain.upper())
    next(b for b in at.button if b.label == "Tìm").click()
    at.run()
    hits = _frame(at, "CCCD")
    assert hits is not None and name in set(hits["Họ tên"]), _texts(at)
    expect_cccd = cccd if searcher.role == "cdcs_official" else lookup.mask_cccd(cccd)
    assert expect_cccd in set(hits["CCCD"])
    in_scope = {r[0] for r in con.execute(
        "SELECT cdcs_code FROM marts.dim_member WHERE " + ("upper_unit_code = ?" if upper else "cdcs_code = ?"),
        [upper or cur_cdcs]).fetchall()}
    assert set(hits["CĐCS"]) <= in_scope
    ev = audit.events(actor=searcher.username, action="search_members")
    assert ev and ev[0]["detail"] and cccd not in json.dumps(ev[0], default=str)
