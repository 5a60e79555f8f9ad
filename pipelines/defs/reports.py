"""Report emails domain (owned by the report-email engineer): schedules and sensors that send the
briefs. `pipelines/definitions.py` picks up these lists.

- `send_reports` job: one op that calls `pipelines.reports.delivery.send_reports(cadence, period)`;
  safe to run any number of times (the delivery ledger sends at most once per subscription and period).
- schedules (Asia/Ho_Chi_Minh): weekly Monday 07:00, monthly on the 12th 07:00 (the previous month),
  semi-annual statutory on 5 June and 5 December 07:00 (report dates 31/5 and 30/11), and
  `reports_retry` every 15 minutes for failed deliveries whose back-off has passed.
- `reports_after_monthly_refresh`: a run status sensor; after each successful `monthly_refresh` run it
  requests the monthly brief of the latest published month (run_key = that month, so one request per month
  however many refreshes; a re-run of the month sends nothing twice anyway).
"""
# no `from __future__ import annotations`: Dagster reads the op's config annotation at definition time
import datetime as dt

import dagster as dg

from pipelines.defs.ingest import REFRESH_JOB_NAME
from pipelines.reports.periods import TIMEZONE, default_key


class SendReportsConfig(dg.Config):
    cadence: str = "monthly"
    period: str = ""           # empty: the period a run today reports on
    retry_only: bool = False   # only retry failed deliveries that are due


@dg.op(description="Send the briefs of one cadence and period (at most once per subscription and period).")
def send_reports_op(context: dg.OpExecutionContext, config: SendReportsConfig) -> dict:
    from pipelines.reports.delivery import retry_due, send_reports

    if config.retry_only:
        summaries = retry_due()
    else:
        summaries = [send_reports(config.cadence, config.period or None)]
    out = {}
    for s in summaries:
        context.log.info(s.line())
        out[f"{s.cadence}:{s.period}"] = s.as_dict()
    failed = sum(len(s.failed) + len(s.unknown) for s in summaries)
    if failed:
        context.log.warning(f"{failed} deliveries failed or are in doubt; see `doanvien reports deliveries`")
    return out


@dg.job(name="send_reports", description="Report emails (Báo cáo qua email)", tags={"domain": "reports"})
def send_reports_job():
    send_reports_op()


def _request(cadence: str, when: dt.datetime) -> dg.RunRequest:
    period = default_key(cadence, when.date())
    return dg.RunRequest(run_key=f"{cadence}:{period}",
                         run_config={"ops": {"send_reports_op": {"config": {"cadence": cadence, "period": period}}}},
                         tags={"reports/cadence": cadence, "reports/period": period})


def _local(context: dg.ScheduleEvaluationContext) -> dt.datetime:
    from zoneinfo import ZoneInfo

    t = context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc)
    return t.astimezone(ZoneInfo(TIMEZONE))


@dg.schedule(cron_schedule="0 7 * * 1", job=send_reports_job, execution_timezone=TIMEZONE,
             name="reports_weekly", description="Weekly brief, Mondays 07:00")
def reports_weekly(context: dg.ScheduleEvaluationContext):
    return _request("weekly", _local(context))


@dg.schedule(cron_schedule="0 7 12 * *", job=send_reports_job, execution_timezone=TIMEZONE,
             name="reports_monthly", description="Monthly brief of the previous month, the 12th at 07:00")
def reports_monthly(context: dg.ScheduleEvaluationContext):
    return _request("monthly", _local(context))


@dg.schedule(cron_schedule="0 7 5 6,12 *", job=send_reports_job, execution_timezone=TIMEZONE,
             name="reports_semiannual", description="Semi-annual statutory brief, 5 June and 5 December 07:00")
def reports_semiannual(context: dg.ScheduleEvaluationContext):
    return _request("semiannual", _local(context))


@dg.schedule(cron_schedule="*/15 * * * *", job=send_reports_job, execution_timezone=TIMEZONE,
             name="reports_retry", description="Retry failed report deliveries whose back-off has passed")
def reports_retry(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(run_config={"ops": {"send_reports_op": {"config": {"retry_only": True}}}},
                         tags={"reports/cadence": "retry"})


def latest_month_key():
    from pipelines.reports.figures import latest_period

    try:
        p = latest_period()
    except Exception:  # noqa: BLE001 - nothing published yet
        return None
    return f"{p:%Y-%m}" if p else None


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=send_reports_job,
                      name="reports_after_monthly_refresh", minimum_interval_seconds=60,
                      description="Send the monthly brief after each successful monthly_refresh")
def reports_after_monthly_refresh(context: dg.RunStatusSensorContext):
    if context.dagster_run.job_name != REFRESH_JOB_NAME:
        return dg.SkipReason(f"{context.dagster_run.job_name} is not {REFRESH_JOB_NAME}")
    period = latest_month_key()
    if period is None:
        return dg.SkipReason("no published membership data")
    return dg.RunRequest(run_key=f"monthly:{period}",
                         run_config={"ops": {"send_reports_op": {"config": {"cadence": "monthly", "period": period}}}},
                         tags={"reports/cadence": "monthly", "reports/period": period,
                               "reports/after_run": context.dagster_run.run_id})


assets: list = []
asset_checks: list = []
jobs: list = [send_reports_job]
sensors: list = [reports_after_monthly_refresh]
schedules: list = [reports_weekly, reports_monthly, reports_semiannual, reports_retry]
resources: dict = {}
REPORT_DEFS: list = [*jobs, *sensors, *schedules]
