"""Warehouse domain: the dbt project as assets (dagster-dbt), dbt tests as asset checks, and publication.

- One `DbtProject` (project_dir = repository root, profiles in `dbt_project/profiles`). Its manifest is
  prepared when definitions load if it is missing or older than the dbt files (`dbt parse`, in-process).
- One translator: models grouped by folder (staging / intermediate / marts / restricted), seeds in
  `reference`; the raw-zone sources map to the ingestion asset `raw_files`, the registry sources to
  `organisation_registry`, so dbt runs downstream of ingestion.
- Each run builds into its own file, `<data>/warehouse/build/<run_id>.duckdb` (a copy of the current
  version, or empty for a full refresh; `pipelines.warehouse.build`), and `publish_warehouse` publishes it.
  The build path derives from the run id, so steps in different processes agree on it.
- Single writer: both warehouse-writing steps are in the pool `doanvien_warehouse` (set its limit to 1 on
  the instance: `dagster instance concurrency set doanvien_warehouse 1`), the job runs them with the
  in-process executor, and the build code takes a file lock.
- `refresh_failed_cleanup` / `refresh_canceled_cleanup`: run status sensors that delete the prefetched base copy
  a failed or cancelled monthly_refresh left behind (unless another refresh is in flight).
"""

import contextlib
import fcntl
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from pipelines import config
from pipelines.defs.ingest import FULL_REFRESH_TAG, RAW_FILES, REFRESH_JOB_NAME, REGISTRY, raw_files
from pipelines.warehouse import build as wbuild

log = logging.getLogger(__name__)

WAREHOUSE_POOL = "doanvien_warehouse"
MODEL_GROUPS = ("staging", "intermediate", "marts", "restricted")
PUBLISH = dg.AssetKey("publish_warehouse")

dbt_project = DbtProject(
    project_dir=config.DBT_PROJECT_DIR,
    profiles_dir=config.DBT_PROFILES_DIR,
    target_path="target",
)


# ---------------------------------------------------------------- manifest

_DBT_INPUTS = ("dbt_project.yml", "dbt_project/models", "dbt_project/macros", "dbt_project/seeds",
               "dbt_project/snapshots", "dbt_project/tests", "dbt_project/profiles/profiles.yml",
               "packages.yml", "dependencies.yml")


def _newest_input_mtime(root: Path) -> float:
    newest = 0.0
    for rel in _DBT_INPUTS:
        p = root / rel
        if p.is_file():
            newest = max(newest, p.stat().st_mtime)
        elif p.is_dir():
            for dirpath, _dirs, files in os.walk(p):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, os.stat(dirpath).st_mtime)  # a deleted file changes its folder
    return newest


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    m = project.manifest_path
    return not m.exists() or m.stat().st_mtime < _newest_input_mtime(project.project_dir)


def parse_env() -> dict[str, str]:
    """The same env_var values a build uses (so dbt's partial parse stays valid between parse and build)."""
    return {
        "DOANVIEN_RAW_DIR": os.fspath(config.data_dir() / "raw"),
        "DOANVIEN_REGISTRY_DIR": os.fspath(config.data_dir() / "registry"),
        "DOANVIEN_QUARANTINE_DIR": os.fspath(config.data_dir() / "quarantine"),
        "DOANVIEN_REFERENCE_DIR": os.fspath(config.REFERENCE_DIR),
        "DBT_PROFILES_DIR": os.fspath(config.DBT_PROFILES_DIR),
        "DBT_PROJECT_DIR": os.fspath(config.DBT_PROJECT_DIR),
        "DOANVIEN_PERIODS": "",
    }


def prepare_manifest(project: DbtProject = dbt_project, force: bool = False) -> Path:
    """`dbt parse` (in-process) when the manifest is missing or older than the dbt files; one process at
    a time. If parsing fails and an older manifest exists, keep using it (with a warning)."""
    if not force and not manifest_is_stale(project):
        return project.manifest_path
    target = project.project_dir / project.target_path
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not force and not manifest_is_stale(project):
            return project.manifest_path  # another process parsed meanwhile
        env = {**parse_env(), "DOANVIEN_BUILD_DB": os.fspath(config.warehouse_dir() / "build" / "parse.duckdb")}
        res = wbuild.run_dbt(["parse", "--quiet"], env, target_path=target)
        if not res.success:
            msg = f"dbt parse failed: {wbuild.summarise_dbt_failure(res)}"
            if project.manifest_path.exists():
                log.warning("%s; using the previous manifest", msg)
            else:
                raise RuntimeError(msg)
        else:
            os.utime(project.manifest_path)  # parse may leave an unchanged manifest with its old mtime
    return project.manifest_path


# ---------------------------------------------------------------- translator

class DoanvienDbtTranslator(DagsterDbtTranslator):
    """Groups models by folder; maps sources to the assets that write them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "source":
            source = dbt_resource_props.get("source_name")
            if source == "raw":
                return RAW_FILES
            if source == "registry":
                return REGISTRY
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        rtype = dbt_resource_props.get("resource_type")
        if rtype == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn") or []
        if rtype in ("model", "snapshot") and len(fqn) > 1:
            folder = fqn[1]
            return folder if folder in MODEL_GROUPS else "warehouse"
        return "warehouse"


translator = DoanvienDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_duplicate_source_asset_keys=True)
)


# ---------------------------------------------------------------- assets

class WarehouseBuildConfig(dg.Config):
    full_refresh: bool = False  # rebuild everything into an empty file instead of a copy of the current one


def _run_full_refresh(context, config: WarehouseBuildConfig) -> bool:
    tag = context.run.tags.get(FULL_REFRESH_TAG) if context.run else None
    return bool(config.full_refresh) or str(tag).lower() in ("1", "true", "yes")


def _manifest_has_nodes(manifest_path: Path) -> bool:
    import json

    try:
        nodes = json.loads(manifest_path.read_text(encoding="utf-8")).get("nodes", {})
    except (OSError, ValueError):
        return False
    return any(n.get("resource_type") in ("model", "seed", "snapshot") for n in nodes.values())


def _build_dbt_assets(manifest_path: Path):
    @dbt_assets(
        manifest=manifest_path,
        project=dbt_project,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
        name="doanvien_dbt",
    )
    def doanvien_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: WarehouseBuildConfig):
        """`dbt build` (models, seeds, snapshots, tests) into this run's own build file."""
        plan = wbuild.prepare_build(context.run_id, full_refresh=_run_full_refresh(context, config))
        context.log.info(
            f"building {'from empty' if plan.full_refresh else 'from a copy of ' + str(plan.base_version)} "
            f"into {plan.build_path}" + (f" (months {','.join(plan.periods)})" if plan.periods else "")
        )
        ok = False
        try:
            if os.environ.get("DOANVIEN_DBT_SUBPROCESS"):
                with wbuild.patched_environ(wbuild.dbt_env(plan)):
                    yield from dbt.cli(wbuild.dbt_build_args(plan), context=context).stream()
            else:
                yield from dbt_build_in_process(context, plan)
            ok = True
        finally:
            if not ok:  # a failed build publishes nothing and leaves nothing behind
                wbuild.discard_build(context.run_id)

    return doanvien_dbt


_RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})


def dbt_build_in_process(context: dg.AssetExecutionContext, plan: "wbuild.BuildPlan"):
    """`dbt build` through dbtRunner in this process (no second interpreter, no second import of dbt:
    measured-floor §7), its result events turned into Dagster events by dagster-dbt's own converter, so
    materialisations and dbt tests as asset checks are exactly those of `DbtCliResource.cli(...).stream()`.
    Honours a subset selection (the UI's "materialize selected") without dagster-dbt's temporary copy of
    the project directory (which here would be the whole repository)."""
    from dagster_dbt.asset_utils import (
        DAGSTER_DBT_EXCLUDE_METADATA_KEY,
        DAGSTER_DBT_SELECT_METADATA_KEY,
        DAGSTER_DBT_SELECTOR_METADATA_KEY,
        get_manifest_and_translator_from_dbt_assets,
        get_subset_selection_for_context,
    )
    from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
    from dbt_common.events.functions import msg_to_dict

    manifest, dbt_translator, project = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    selection_args, indirect = get_subset_selection_for_context(
        context=context, manifest=manifest,
        select=context.op.tags.get(DAGSTER_DBT_SELECT_METADATA_KEY),
        exclude=context.op.tags.get(DAGSTER_DBT_EXCLUDE_METADATA_KEY),
        selector=context.op.tags.get(DAGSTER_DBT_SELECTOR_METADATA_KEY),
        dagster_dbt_translator=dbt_translator,
        current_dbt_indirect_selection_env=os.environ.get("DBT_INDIRECT_SELECTION"),
    )
    raw_events: list[dict] = []
    errors: list[str] = []

    def on_event(msg) -> None:
        name = msg.info.name
        if name in _RESULT_EVENTS:
            raw_events.append(msg_to_dict(msg))
            context.log.info(msg.info.msg)
        elif msg.info.level == "error":
            errors.append(msg.info.msg)

    target = wbuild.dbt_target_path(context.run_id)
    env = wbuild.dbt_env(plan)
    if indirect:
        env["DBT_INDIRECT_SELECTION"] = indirect
    try:
        res = wbuild.run_dbt([*wbuild.dbt_build_args(plan), *selection_args], env, target_path=target,
                             callbacks=[on_event])
        known = set(manifest.get("nodes", {}))
        for raw in raw_events:
            uid = raw.get("data", {}).get("node_info", {}).get("unique_id")
            if uid not in known:  # the dbt project changed since definitions loaded: reload them to see it
                context.log.warning(f"{uid}: not in the loaded manifest; no Dagster event for it")
                continue
            event = DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={})
            yield from event.to_default_asset_events(
                manifest=manifest, dagster_dbt_translator=dbt_translator, context=context,
                target_path=target, project=project,
            )
    finally:
        wbuild.clean_dbt_target(target)
    if not res.success:
        detail = "; ".join(errors[:5]) or wbuild.summarise_dbt_failure(res)
        raise dg.Failure(description=f"dbt build failed, nothing is published: {detail}"[:4000])


def _load_dbt_assets():
    try:
        manifest = prepare_manifest()
    except Exception as exc:  # no manifest at all: keep the rest of the code location loadable
        log.error("dbt assets not loaded: %s", exc)
        return None
    if not _manifest_has_nodes(manifest):
        return None
    return _build_dbt_assets(manifest)


doanvien_dbt = _load_dbt_assets()
dbt_asset_keys = list(doanvien_dbt.keys) if doanvien_dbt is not None else []


@dg.asset(
    key=PUBLISH,
    deps=dbt_asset_keys or [RAW_FILES],
    group_name="serving",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    description=(
        "Publishes this run's build: CHECKPOINT, no .wal, analyst copy (marts only), read-only smoke queries, "
        "then the atomic flip of <data>/warehouse/CURRENT. Readers use pipelines.warehouse.serving.connect()."
    ),
)
def publish_warehouse(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    if doanvien_dbt is None:
        # no dbt models yet: nothing to build; publish an empty, stamped warehouse so readers have a pointer
        wbuild.prepare_build(context.run_id, full_refresh=True)
    plan = wbuild.BuildPlan.load(context.run_id)
    version = wbuild.finish_and_publish(context.run_id, extra={"dagster_run_id": context.run_id})
    return dg.MaterializeResult(metadata={
        "build_mode": "full" if plan.full_refresh else "incremental",
        "restated_months": ",".join(plan.periods or []),
        "full_refresh_reason_code": plan.full_refresh_reason_code or "",
        "build": wbuild.describe_build(plan.full_refresh, plan.periods, plan.full_refresh_reason_code),
        "notices": "\n".join(plan.notices),
        "version": version.version,
        "path": version.path,
        "analyst_path": version.analyst_path or "",
        "published_at": version.published_at,
    })


monthly_refresh_job = dg.define_asset_job(
    REFRESH_JOB_NAME,
    selection=dg.AssetSelection.assets(raw_files, publish_warehouse)
    | (dg.AssetSelection.assets(doanvien_dbt) if doanvien_dbt is not None else dg.AssetSelection.assets()),
    executor_def=dg.in_process_executor,
    description="The monthly refresh end to end: ingest the inbox, dbt build into a new file, publish it. "
                "`doanvien refresh` runs this same job in-process.",
)

warehouse_build_job = dg.define_asset_job(
    "warehouse_build",
    selection=dg.AssetSelection.assets(publish_warehouse)
    | (dg.AssetSelection.assets(doanvien_dbt) if doanvien_dbt is not None else dg.AssetSelection.assets()),
    executor_def=dg.in_process_executor,
    description="dbt build + publish, without ingestion.",
)

assets = [a for a in (doanvien_dbt, publish_warehouse) if a is not None]
asset_checks: list = []
jobs = [monthly_refresh_job, warehouse_build_job]


# ---------------------------------------------------------------- after a failed or cancelled refresh

_IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def discard_prefetch_after(context: dg.RunStatusSensorContext) -> dg.SkipReason:
    """A monthly_refresh run that failed or was cancelled after its raw_files step leaves the prefetched copy of
    the current version (~9 GB at national) for a build that never came: delete it now (the next build would have
    after a day), unless another refresh is in flight (its build may be about to take the copy)."""
    from pipelines.warehouse import build as wbuild

    run = context.dagster_run
    if run.job_name != REFRESH_JOB_NAME:
        return dg.SkipReason(f"{run.job_name} is not {REFRESH_JOB_NAME}")
    others = [r for r in context.instance.get_runs(filters=dg.RunsFilter(job_name=REFRESH_JOB_NAME,
                                                                          statuses=_IN_FLIGHT))
              if r.run_id != run.run_id]
    if others:
        return dg.SkipReason(f"prefetched copy kept: refresh run {others[0].run_id} is in flight")
    removed = wbuild.discard_prefetch()
    return dg.SkipReason(f"discarded {len(removed)} prefetched copy(ies) left by run {run.run_id}" if removed
                         else f"run {run.run_id} left no prefetched copy")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.FAILURE, monitored_jobs=[monthly_refresh_job],
                      name="refresh_failed_cleanup", minimum_interval_seconds=60,
                      description="Delete the prefetched base copy a failed monthly_refresh left behind")
def refresh_failed_cleanup(context: dg.RunStatusSensorContext):
    return discard_prefetch_after(context)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, monitored_jobs=[monthly_refresh_job],
                      name="refresh_canceled_cleanup", minimum_interval_seconds=60,
                      description="Delete the prefetched base copy a cancelled monthly_refresh left behind")
def refresh_canceled_cleanup(context: dg.RunStatusSensorContext):
    return discard_prefetch_after(context)


sensors: list = [refresh_failed_cleanup, refresh_canceled_cleanup]
schedules: list = []


def _dbt_executable() -> str:
    """The dbt of this interpreter's environment (PATH may not include the venv when run as .venv/bin/python)."""
    here = Path(sys.executable).parent / "dbt"
    return os.fspath(here) if here.exists() else (shutil.which("dbt") or "dbt")


resources = {"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())}
