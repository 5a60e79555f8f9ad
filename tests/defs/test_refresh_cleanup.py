"""A monthly_refresh run that fails or is cancelled after ingestion leaves the prefetched copy of the current
version (`build.prefetch_base_copy`, ~9 GB at national) for a build that never came: the run status sensors
`refresh_failed_cleanup` / `refresh_canceled_cleanup` delete it, unless another refresh is in flight."""
from __future__ import annotations

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from pipelines.defs.ingest import REFRESH_JOB_NAME


@dg.op
def _boom():
    raise RuntimeError("boom")


@dg.job
def _failing():
    _boom()


def _context(instance, run, sensor_name="refresh_failed_cleanup"):
    result = _failing.execute_in_process(instance=instance, raise_on_error=False)
    return dg.build_run_status_sensor_context(sensor_name=sensor_name, dagster_instance=instance,
                                             dagster_run=run, dagster_event=result.get_run_failure_event())


def test_a_failed_or_cancelled_refresh_leaves_no_prefetched_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DOANVIEN_DATA_DIR", str(tmp_path))
    from pipelines.defs import warehouse as wdefs
    from pipelines.warehouse import serving

    d = serving.build_dir()
    d.mkdir(parents=True, exist_ok=True)
    copy = d / "prefetch-20261101T000000Z-abc.duckdb"
    copy.write_bytes(b"a finished prefetched copy")
    other_build = d / "run-123.duckdb"  # another run's build file: never touched
    other_build.write_bytes(b"x")
    failed = DagsterRun(job_name=REFRESH_JOB_NAME, run_id="failed-run", status=dg.DagsterRunStatus.FAILURE)

    # a failed run of another job: nothing to do
    with dg.DagsterInstance.ephemeral() as instance:
        other_job = DagsterRun(job_name="ingest_files", run_id="x", status=dg.DagsterRunStatus.FAILURE)
        res = wdefs.refresh_failed_cleanup(_context(instance, other_job))
        assert copy.exists() and "is not monthly_refresh" in res.skip_message

    # another refresh in flight may be about to take the copy: kept
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_run(DagsterRun(job_name=REFRESH_JOB_NAME, run_id="running", status=dg.DagsterRunStatus.STARTED))
        res = wdefs.refresh_failed_cleanup(_context(instance, failed))
        assert copy.exists() and "in flight" in res.skip_message

    with dg.DagsterInstance.ephemeral() as instance:
        res = wdefs.refresh_failed_cleanup(_context(instance, failed))
        assert not copy.exists() and other_build.exists()
        assert "discarded 1" in res.skip_message
        copy.write_bytes(b"again")
        cancelled = DagsterRun(job_name=REFRESH_JOB_NAME, run_id="cancelled", status=dg.DagsterRunStatus.CANCELED)
        res = wdefs.refresh_canceled_cleanup(_context(instance, cancelled, "refresh_canceled_cleanup"))
        assert not copy.exists() and "discarded 1" in res.skip_message
        res = wdefs.refresh_failed_cleanup(_context(instance, failed))
        assert "left no prefetched copy" in res.skip_message


def test_the_cleanup_sensors_watch_the_monthly_refresh():
    from pipelines.definitions import defs

    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs}
    for name in ("refresh_failed_cleanup", "refresh_canceled_cleanup"):
        assert isinstance(sensors[name], dg.RunStatusSensorDefinition)
    # what the daemon filters on before the body runs (no public accessor in this Dagster version)
    assert [j.name for j in sensors["refresh_failed_cleanup"]._monitored_jobs] == ["monthly_refresh"]
    assert [j.name for j in sensors["refresh_canceled_cleanup"]._monitored_jobs] == ["monthly_refresh"]
    assert sensors["refresh_failed_cleanup"]._run_status == dg.DagsterRunStatus.FAILURE
    assert sensors["refresh_canceled_cleanup"]._run_status == dg.DagsterRunStatus.CANCELED
