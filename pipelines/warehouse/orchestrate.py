"""Run the Dagster job `monthly_refresh` in this process (what `doanvien refresh` and the tests call).

The job is the one the Dagster UI and the sensors launch; running it in-process avoids a daemon and the
per-step process start-up (measured-floor §7). With DAGSTER_HOME set the run is recorded in that instance
(visible in the UI), otherwise in a temporary instance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

JOB_NAME = "monthly_refresh"


@dataclass
class RefreshOutcome:
    success: bool
    run_id: str
    version: str | None = None
    path: str | None = None
    ingest: dict = field(default_factory=dict)
    assets_materialized: int = 0
    materialized_keys: set[str] = field(default_factory=set)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    error: str | None = None
    build: str | None = None  # how the build ran (build.describe_build): incremental from which month, or full and why
    notices: list[str] = field(default_factory=list)  # BuildPlan.notices: inputs set aside, for the operator

    def summary(self, seconds: float | None = None) -> str:
        t = f" ({seconds:.1f} s)" if seconds is not None else ""
        lines = []
        if self.success:
            lines.append(f"Làm mới xong / refresh done{t}: phiên bản / version {self.version}")
            lines.append(f"  kho / warehouse: {self.path}")
            if self.build:
                lines.append(f"  cách dựng / build: {self.build}")
            for n in self.notices:
                lines.append(f"  lưu ý / notice: {n}")
        else:
            lines.append(f"Làm mới thất bại, không công bố gì / refresh failed, nothing published{t}")
            if self.error:
                lines.append(f"  lỗi / error: {self.error}")
        if self.ingest:
            i = self.ingest
            lines.append(
                f"  tệp / files: {i.get('files', 0)} (nhận / accepted {i.get('accepted', 0)}, "
                f"từ chối / refused {i.get('refused', 0)}, trùng / duplicate {i.get('duplicate', 0)}); "
                f"dòng / rows accepted {i.get('rows_accepted', 0)}, refused {i.get('rows_refused', 0)}"
            )
        lines.append(
            f"  tài sản / assets materialised: {self.assets_materialized}; kiểm tra / checks passed "
            f"{self.checks_passed}, warnings {len(self.checks_warned)}, failed {len(self.checks_failed)}"
        )
        for c in self.checks_failed[:10]:
            lines.append(f"    FAILED {c}")
        for c in self.checks_warned[:10]:
            lines.append(f"    warn   {c}")
        lines.append(f"  run id: {self.run_id}")
        return "\n".join(lines)


def _instance():
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def refresh_tags(full_refresh: bool) -> dict[str, str]:
    """Run tags: the partition range of the months present in the inbox (the raw_files asset ingests the
    pending files of those months), and the full-refresh flag."""
    from pipelines.defs.ingest import inbox_periods, monthly_partitions
    from pipelines.defs.warehouse import FULL_REFRESH_TAG

    tags: dict[str, str] = {}
    if full_refresh:
        tags[FULL_REFRESH_TAG] = "true"
    first, last = monthly_partitions.get_first_partition_key(), monthly_partitions.get_last_partition_key()
    periods = [p for p in inbox_periods() if first <= p <= last]
    if periods:
        tags["dagster/asset_partition_range_start"] = periods[0]
        tags["dagster/asset_partition_range_end"] = periods[-1]
    return tags


def run_monthly_refresh(full_refresh: bool = False, *, instance=None) -> RefreshOutcome:
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.defs.warehouse import PUBLISH
    from pipelines.warehouse import serving

    from pipelines.warehouse import build as wbuild

    job = defs.resolve_job_def(JOB_NAME)
    instance = instance or _instance()
    with serving.writer_lock(timeout=None):
        if not full_refresh:  # the copy the build starts from, made while the inbox is ingested
            wbuild.prefetch_base_copy()
        # the console shows warnings and errors only (DOANVIEN_LOG_LEVEL=DEBUG|INFO for more); every event is
        # still recorded in the instance's event log (the Dagster UI) and summarised by the caller
        log_level = os.environ.get("DOANVIEN_LOG_LEVEL", "WARNING").upper()
        try:
            result = job.execute_in_process(instance=instance, tags=refresh_tags(full_refresh),
                                            raise_on_error=False,
                                            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})
        finally:
            wbuild.discard_prefetch()  # not taken (a run that failed before building): nothing left behind

    out = RefreshOutcome(success=result.success, run_id=result.run_id)
    for ev in result.all_events:
        if ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = ev.event_specific_data.materialization
            if mat.asset_key.to_user_string() not in out.materialized_keys:
                out.assets_materialized += 1
                out.materialized_keys.add(mat.asset_key.to_user_string())
            md = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            if mat.asset_key == PUBLISH:
                out.version, out.path, out.build = md.get("version"), md.get("path"), md.get("build") or None
                out.notices = [n for n in (md.get("notices") or "").split("\n") if n]
            elif mat.asset_key == dg.AssetKey("raw_files"):
                out.ingest = {k: md.get(k) for k in ("files", "accepted", "refused", "duplicate", "crashed",
                                                      "rows_accepted", "rows_refused")}
        elif ev.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            e = ev.event_specific_data
            name = f"{e.asset_key.to_user_string()}:{e.check_name}"
            if e.passed:
                out.checks_passed += 1
            elif e.severity == dg.AssetCheckSeverity.WARN:
                out.checks_warned.append(name)
            else:
                out.checks_failed.append(name)
        elif ev.event_type == dg.DagsterEventType.STEP_FAILURE and out.error is None:
            err = ev.event_specific_data.error
            out.error = f"{ev.step_key}: {err.message.strip().splitlines()[0] if err else 'failed'}"[:500]
    if out.success and out.version is None:
        out.success = False
        out.error = out.error or "the run finished without publishing a version"
    return out
