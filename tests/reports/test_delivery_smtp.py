"""Report emails through a real SMTP server on loopback (aiosmtpd): arrival, scoped figures equal to the
warehouse, attachment and images valid, no personal data, at most once, retries, refused recipients."""
from __future__ import annotations

import datetime as dt
import io
import re

import duckdb
import pytest

from pipelines.reports import subscriptions as S
from pipelines.reports.delivery import retry_due, send_reports

MONTH = "2025-09"
P = dt.date(2025, 9, 1)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def warehouse_sql(sql, params=()):
    """Independent expected values: plain SQL on the published file (not the query layer)."""
    from pipelines.warehouse import serving

    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchone()[0]
    finally:
        con.close()


def parts(msg):
    """(text, html, [png bytes], xlsx bytes) of a received message."""
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    pngs = [p.get_content() for p in msg.walk() if p.get_content_type() == "image/png"]
    xlsx = [p.get_content() for p in msg.walk() if p.get_content_type() == XLSX]
    return text, html, pngs, xlsx[0]


def xlsx_cells(data: bytes) -> dict[str, list[list]]:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def headline(cells, label):
    for row in cells["Số liệu chính"][1:]:
        if row[0] == label:
            return row[1]
    raise KeyError(label)


def test_briefs_arrive_scoped_valid_and_exactly_once(smtp, accounts):
    smtp.start()
    s08 = S.subscribe("lanhdao.t08", "T08", "monthly", "vi")
    s01 = S.subscribe("lanhdao.t01", "T01", "monthly", "vi")
    s_ext = S.subscribe("Chu.Tich@UBND-tinh.test", "X08001", "monthly", "en")

    summary = send_reports("monthly", MONTH)
    assert sorted(summary.sent) == sorted([s08.id, s01.id, s_ext.id]), summary.line()
    assert len(smtp.handler.messages) == 3
    for addr in ("lanhdao.t08@congdoan.test", "lanhdao.t01@congdoan.test", "chu.tich@ubnd-tinh.test"):
        assert len(smtp.handler.to(addr)) == 1, addr

    m = smtp.handler.to("lanhdao.t08@congdoan.test")[0].msg
    assert m["Subject"] == "[Đoàn viên số] Báo cáo tháng 09/2025 – Liên đoàn Lao động tỉnh Tuyên Quang"
    assert m["To"] == "lanhdao.t08@congdoan.test"  # one recipient per message: no one sees another address
    text, html, pngs, xlsx = parts(m)

    # figures equal the warehouse for T08's scope (independent SQL)
    members = warehouse_sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE top_unit_code = 'T08'"
                            " AND period = ?", [P])
    joins = warehouse_sql("SELECT count(*) FROM marts.fct_member_events WHERE top_unit_code = 'T08' AND period = ?"
                          " AND event_type = 'join'", [P])
    leaves = warehouse_sql("SELECT count(*) FROM marts.fct_member_events WHERE top_unit_code = 'T08' AND period = ?"
                           " AND event_type = 'leave'", [P])
    collected = warehouse_sql("SELECT sum(dues_collected) FROM marts.fct_dues_monthly WHERE top_unit_code = 'T08'"
                              " AND period = ?", [P])
    expected = warehouse_sql("SELECT sum(dues_expected) FROM marts.fct_dues_monthly WHERE top_unit_code = 'T08'"
                             " AND period = ?", [P])
    cells = xlsx_cells(xlsx)  # opens with openpyxl
    assert headline(cells, "Đoàn viên") == members
    assert headline(cells, "Kết nạp mới") == joins
    assert headline(cells, "Ra khỏi tổ chức") == leaves
    assert headline(cells, "Đã thu") == collected
    assert headline(cells, "Phải thu") == expected
    from pipelines.analytics.i18n import fmt_int, fmt_pct
    assert f"Đoàn viên: {fmt_int(members, 'vi')}" in text
    assert fmt_int(members, "vi") in html and fmt_pct(collected / expected, 1, "vi") in html

    # nothing outside the scope: another province's name and units, a sector union's CĐCS in the same
    # province, and the national total
    national = warehouse_sql("SELECT sum(members) FROM marts.fct_membership_monthly WHERE period = ?", [P])
    everything = text + html + repr(cells)
    for outside in ("Hà Nội", "Ba Đình", "Sao Mai", "Thăng Long", "Nhà xuất bản Giáo dục", "Giáo dục Việt Nam"):
        assert outside not in everything, outside
    assert f"Đoàn viên: {fmt_int(national, 'vi')}" not in text

    # three inline charts, referenced by cid, valid PNGs
    assert len(pngs) == 3
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == 3
    related = {p["Content-ID"].strip("<>") for p in m.walk() if p.get_content_type() == "image/png"}
    assert set(cids) == related
    from PIL import Image
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        img = Image.open(io.BytesIO(png))
        img.verify()
        assert img.size[0] >= 600

    # the English brief of an external leader, scoped to one upper-level union
    ext = smtp.handler.to("chu.tich@ubnd-tinh.test")[0].msg
    assert ext["Subject"].startswith("[Đoàn viên số] Monthly report, September 2025")

    # a re-run (schedule and sensor both firing, or an operator) sends nothing new
    again = send_reports("monthly", MONTH)
    assert again.sent == [] and sorted(again.already_done) == sorted([s08.id, s01.id, s_ext.id])
    assert len(smtp.handler.messages) == 3
    log = S.deliveries_log(period=MONTH)
    assert {r["status"] for r in log} == {"sent"} and len(log) == 3
    assert all(r["message_id"] and r["transport"] == "smtp" for r in log)


PII_12 = re.compile(r"(?<!\d)\d{12}(?!\d)")
DATE_RE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{4}-\d{2}-\d{2}\b")


def test_no_personal_data_in_any_message(smtp, accounts):
    smtp.start()
    S.subscribe("tld", "TLD", "monthly", "vi")
    S.subscribe("lanhdao.t01", "T01", "semiannual", "en")
    S.subscribe("canbo.x01001", "CS0000001", "monthly", "vi")
    assert send_reports("monthly", MONTH).sent
    assert send_reports("semiannual", "2025-05-31").sent
    assert len(smtp.handler.messages) == 3
    keys = set()
    from pipelines.warehouse import serving
    con = duckdb.connect(str(serving.warehouse_path()), read_only=True)
    keys = {r[0] for r in con.execute("SELECT member_key FROM marts.dim_member").fetchall()}
    con.close()
    for rec in smtp.handler.messages:
        text, html, pngs, xlsx = parts(rec.msg)
        cells = xlsx_cells(xlsx)
        blob = text + html + " ".join(str(v) for rows in cells.values() for r in rows for v in r if v is not None)
        assert not PII_12.search(blob), "a 12-digit identifier"
        blob = re.sub(r"\bcccd_(layout|lossy|birth_mismatch|restored)\b", "", blob)  # rule codes, not data
        for word in ("cccd", "CCCD", "ngày sinh", "birth", "salary", "lương", "member_key"):
            assert word not in blob, word
        assert not any(k in blob for k in keys if k), "a member key"
        # the only dates are report periods and publication times, never a birth date (members are adults)
        for d in DATE_RE.findall(text + html):
            year = int(d[:4]) if "-" in d else int(d[-4:])
            assert year >= 2024, d
        # raw bytes too (base64 parts decoded above; headers here)
        assert not PII_12.search(rec.raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace"))


def test_refused_recipient_does_not_block_the_others(smtp, accounts):
    smtp.start()
    smtp.handler.refuse["lanhdao.t01@congdoan.test"] = "550 5.1.1 mailbox unavailable"
    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    b = S.subscribe("lanhdao.t01", "T01", "monthly")
    c = S.subscribe("tld", "TLD", "monthly")
    summary = send_reports("monthly", MONTH)
    assert sorted(summary.sent) == sorted([a.id, c.id]) and summary.refused == [b.id]
    assert len(smtp.handler.messages) == 2
    rows = {r["subscription_id"]: r for r in S.deliveries_log(period=MONTH)}
    assert rows[b.id]["status"] == "refused" and rows[b.id]["smtp_code"] == 550
    # a permanent refusal is not retried automatically, and the others are not resent
    send_reports("monthly", MONTH)
    retry_due()
    assert len(smtp.handler.messages) == 2


def test_partial_refusal_dict_is_checked(smtp, wh):
    """smtplib returns (does not raise) the refused recipients when only some are refused."""
    from email.message import EmailMessage

    from pipelines.reports.transport import SmtpSettings, SmtpTransport

    smtp.start()
    smtp.handler.refuse["b@x.test"] = "550 5.1.1 no such user"
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "t", "bao-cao@doanvien.test", "a@x.test"
    msg.set_content("x")
    t = SmtpTransport(SmtpSettings.from_env())
    res = t.send(msg, ["a@x.test", "b@x.test", "c@x.test"])
    t.close()
    assert res.accepted == ["a@x.test", "c@x.test"]
    assert res.refused["b@x.test"][0] == 550
    assert smtp.handler.messages[0].rcpt_tos == ["a@x.test", "c@x.test"]


def test_transient_refusal_is_retried_later_exactly_once(smtp, accounts):
    smtp.start()
    smtp.handler.refuse["lanhdao.t08@congdoan.test"] = "450 4.2.1 try again later"
    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    summary = send_reports("monthly", MONTH)
    assert summary.failed == [a.id] and not smtp.handler.messages
    row = S.deliveries_log(period=MONTH)[0]
    assert row["status"] == "failed" and row["smtp_code"] == 450 and row["next_attempt_at"]
    assert row["attempts"] == 3  # retried with back-off inside the run
    del smtp.handler.refuse["lanhdao.t08@congdoan.test"]
    assert retry_due() == []  # not due yet: the back-off is respected
    send_reports("monthly", MONTH)  # an explicit re-run retries it now
    send_reports("monthly", MONTH)
    assert len(smtp.handler.messages) == 1


def test_server_down_then_up_sends_exactly_once(smtp, accounts):
    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    b = S.subscribe("tld", "TLD", "monthly", "en")
    # the server is not running: every attempt is refused at connect
    summary = send_reports("monthly", MONTH)
    assert sorted(summary.failed) == sorted([a.id, b.id])
    rows = S.deliveries_log(period=MONTH)
    assert {r["status"] for r in rows} == {"failed"}
    assert all(r["attempts"] == 3 and "cannot reach" in r["last_error"] for r in rows)
    attempts = S.attempts_log(rows[0]["id"])
    assert [x["outcome"] for x in attempts].count("transient_error") == 3
    # the server comes up; the retry schedule runs when the back-off has passed
    smtp.start()
    with S.connect() as con:
        con.execute("UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
    out = retry_due()
    assert sorted(out[0].sent) == sorted([a.id, b.id])
    assert len(smtp.handler.messages) == 2
    # and nothing more, however often it runs
    retry_due()
    send_reports("monthly", MONTH)
    assert len(smtp.handler.messages) == 2
    assert {r["status"] for r in S.deliveries_log(period=MONTH)} == {"sent"}


def test_recipients_are_resolved_at_send_time(smtp, accounts):
    from pipelines.access import accounts as A

    smtp.start()
    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    b = S.subscribe("canbo.x01001", "X01001", "monthly")
    c = S.subscribe("lanhdao.t01@congdoan.test", "T01", "monthly")  # by address, but it is an account's
    A.set_active("lanhdao.t08", False)                      # disabled
    A.set_role("canbo.x01001", "upper_official", "X08001")  # moved to another unit
    A.set_active("lanhdao.t01", False)
    summary = send_reports("monthly", MONTH)
    assert sorted(summary.skipped) == sorted([a.id, b.id, c.id]) and not smtp.handler.messages
    reasons = {r["subscription_id"]: r["last_error"] for r in S.deliveries_log(period=MONTH)}
    assert reasons[a.id] == "account disabled"
    assert "outside the account's scope" in reasons[b.id]
    # reinstated: the next run delivers (a skip never counts as sent)
    A.set_active("lanhdao.t08", True)
    summary = send_reports("monthly", MONTH)
    assert summary.sent == [a.id]
    assert [m.rcpt_tos for m in smtp.handler.messages] == [["lanhdao.t08@congdoan.test"]]


def test_unknown_outcome_is_never_resent_automatically(wh, accounts):
    """The connection drops after the body went out: maybe delivered, so not resent (at most once)."""
    from pipelines.reports.delivery import resolve
    from pipelines.reports.transport import SendResult, UnknownOutcome

    class Flaky:
        name, sender, calls = "smtp", "bao-cao@doanvien.test", 0

        def send(self, msg, to, name=""):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise UnknownOutcome("connection lost after the message was sent")
            return SendResult(accepted=list(to))

        def close(self):
            pass

    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    assert send_reports("monthly", MONTH, transport=Flaky()).unknown == [a.id]
    assert send_reports("monthly", MONTH, transport=Flaky()).already_done == [a.id]
    assert retry_due(transport=Flaky()) == []
    assert Flaky.calls == 1
    d = S.deliveries_log(period=MONTH)[0]
    assert d["status"] == "unknown"
    resolve(d["id"], "mark-sent", actor="admin")
    assert S.deliveries_log(period=MONTH)[0]["status"] == "sent"


def test_no_data_for_the_period_records_nothing(smtp, accounts):
    smtp.start()
    S.subscribe("lanhdao.t08", "T08", "monthly")
    summary = send_reports("monthly", "2026-03")
    assert summary.waiting_for_data and not S.deliveries_log() and not smtp.handler.messages


@pytest.mark.parametrize("security", ["starttls"])
def test_no_plaintext_fallback_when_starttls_is_missing(smtp, accounts, monkeypatch, security):
    smtp.start()
    monkeypatch.setenv("DOANVIEN_SMTP_SECURITY", security)
    a = S.subscribe("lanhdao.t08", "T08", "monthly")
    summary = send_reports("monthly", MONTH)
    assert summary.failed == [a.id] and not smtp.handler.messages
    assert "STARTTLS" in S.deliveries_log()[0]["last_error"]
