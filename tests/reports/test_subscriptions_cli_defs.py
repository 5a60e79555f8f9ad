"""Subscriptions (validation, own-only cancel), the CLI, the .eml outbox, the app page, Dagster defs, charts."""
from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.reports import periods as P
from pipelines.reports import subscriptions as S

REPO = Path(__file__).resolve().parents[2]


def test_subscription_validation_and_own_cancel(wh, accounts):
    s = S.subscribe("lanhdao.t08", "T08", "monthly")
    assert s.recipient_kind == "account"
    e = S.subscribe("lanhdao.t01@congdoan.test", "T01", "weekly", "en")
    assert e.recipient_kind == "email"
    with pytest.raises(ValueError):
        S.subscribe("lanhdao.t08", "T08", "monthly")  # one active per recipient, unit, cadence
    for bad in ("x@y.test\r\nBcc: evil@x.test", "nobody-here", "a b@c.test"):
        with pytest.raises(ValueError):
            S.subscribe(bad, "T01", "monthly")
    for bad_unit in ("T1", "'; DROP TABLE x", "CS12"):
        with pytest.raises(ValueError):
            S.subscribe("lanhdao.t08", bad_unit, "weekly")
    with pytest.raises(PermissionError):
        S.cancel(s.id, actor="lanhdao.t01", actor_email="lanhdao.t01@congdoan.test")
    S.cancel(e.id, actor="lanhdao.t01", actor_email="lanhdao.t01@congdoan.test")  # their own, by address
    assert [x.id for x in S.list_subscriptions(recipients=["lanhdao.t01", "lanhdao.t01@congdoan.test"])] == []
    assert S.cancel(s.id, actor="admin", is_admin=True).active is False


def test_periods():
    assert P.default_key("monthly", dt.date(2025, 6, 12)) == "2025-05"
    assert P.default_key("monthly", dt.date(2025, 1, 12)) == "2024-12"
    assert P.default_key("weekly", dt.date(2025, 6, 2)) == "2025-W23"
    assert P.default_key("semiannual", dt.date(2025, 6, 5)) == "2025-05-31"
    assert P.default_key("semiannual", dt.date(2025, 12, 5)) == "2025-11-30"
    assert P.default_key("semiannual", dt.date(2026, 3, 1)) == "2025-11-30"
    for cad, bad in (("monthly", "2025-13"), ("weekly", "2025-23"), ("semiannual", "2025-06-30")):
        with pytest.raises(ValueError):
            P.parse(cad, bad)


def test_outbox_when_no_smtp_and_cli(wh, accounts):
    from pipelines.reports.cli import reports

    r = CliRunner()
    out = r.invoke(reports, ["subscribe", "lanhdao.t08", "T08", "--cadence", "monthly"])
    assert out.exit_code == 0, out.output
    out = r.invoke(reports, ["subscribe", "lanhdao.t01", "T01", "--cadence", "monthly", "--lang", "en"])
    assert out.exit_code == 0, out.output
    out = r.invoke(reports, ["send", "monthly", "--period", "2025-09"])
    assert out.exit_code == 0, out.output
    assert "sent 2" in out.output
    emls = sorted((wh / "outbox").rglob("*.eml"))
    assert len(emls) == 2
    msg = message_from_bytes(emls[0].read_bytes(), policy=default_policy)
    assert msg["Subject"].startswith("[Đoàn viên số]") and msg.get_body(preferencelist=("html",)) is not None
    out = r.invoke(reports, ["send", "monthly", "--period", "2025-09"])
    assert "sent 0" in out.output and "already done 2" in out.output
    assert len(sorted((wh / "outbox").rglob("*.eml"))) == 2
    out = r.invoke(reports, ["deliveries"])
    assert out.exit_code == 0 and out.output.count("sent") >= 2
    # a leader sees only their own
    out = r.invoke(reports, ["list", "--as", "lanhdao.t08", "--json"])
    assert '"T08"' in out.output and '"T01"' not in out.output
    out = r.invoke(reports, ["cancel", "2", "--as", "lanhdao.t08"])
    assert out.exit_code != 0 and "own" in out.output
    out = r.invoke(reports, ["cancel", "1", "--as", "lanhdao.t08"])
    assert out.exit_code == 0, out.output
    out = r.invoke(reports, ["preview", "TLD", "--period", "2025-09", "--out", str(wh / "p.eml")])
    assert out.exit_code == 0, out.output and (wh / "p.eml").exists()


def test_app_page_admin_and_leader(wh, accounts):
    from streamlit.testing.v1 import AppTest

    from dashboards import auth
    from pipelines.access import accounts as A

    S.subscribe("lanhdao.t08", "T08", "monthly")
    S.subscribe("lanhdao.t01", "T01", "monthly")
    admin = A.create_user("quantri", display_name="Quản trị", role="admin", password="mat-khau-dai-12345")
    page = str(REPO / "dashboards" / "app_pages" / "bao_cao_email.py")

    at = AppTest.from_file(page, default_timeout=60)
    at.session_state[auth.TOKEN_KEY] = A.create_session(admin)
    at.run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert set(shown["Đơn vị"]) == {"T08", "T01"}

    at = AppTest.from_file(page, default_timeout=60)
    at.session_state[auth.TOKEN_KEY] = A.create_session(accounts["lanhdao.t08"])
    at.run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert set(shown["Đơn vị"]) == {"T08"}  # a leader sees only their own


def test_dagster_schedules_and_sensor(wh):
    import dagster as dg
    from zoneinfo import ZoneInfo

    from pipelines.defs import reports as R

    crons = {s.name: (s.cron_schedule, s.execution_timezone) for s in R.schedules}
    assert crons["reports_weekly"] == ("0 7 * * 1", "Asia/Ho_Chi_Minh")
    assert crons["reports_monthly"] == ("0 7 12 * *", "Asia/Ho_Chi_Minh")
    assert crons["reports_semiannual"] == ("0 7 5 6,12 *", "Asia/Ho_Chi_Minh")
    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    req = R.reports_monthly(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 10, 12, 7, tzinfo=hcm)))
    assert req.run_key == "monthly:2025-09"
    assert req.run_config["ops"]["send_reports_op"]["config"] == {"cadence": "monthly", "period": "2025-09"}
    req = R.reports_semiannual(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 6, 5, 7, tzinfo=hcm)))
    assert req.run_key == "semiannual:2025-05-31"
    assert R.latest_month_key() == "2025-12"  # what the sensor requests after a successful monthly_refresh
    assert R.reports_after_monthly_refresh.name in {s.name for s in R.sensors}


def test_charts_render_vietnamese():
    from pipelines.reports import charts

    charts.check_vietnamese_font("Đoàn viên mới – Kết nạp, ra khỏi tổ chức; Đoàn phí đã thu ở Quảng Ngãi")
    png = charts.members_trend(["T01/2025", "T02/2025"], [10, 12], "Số đoàn viên cuối tháng")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
