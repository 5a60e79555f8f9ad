"""A failed load (rows_read != rows_accepted + rows_refused) fails the blocking check on raw_files: dbt and
publication do not run and the published version stays as it was (PL-01/PL-06). A refused file is a
warning only and never blocks the others."""
from __future__ import annotations

import types
from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs import ingest as ingest_defs
from pipelines.warehouse import serving


def fake_engine(reports):
    def pending_inbox_files(inbox=None):
        return [types.SimpleNamespace(path=Path(__file__), branch_code=r["branch_code"], period="2025-03",
                                      kind="roster", received_at=None) for r in reports]

    it = iter(reports)

    def ingest_file(path, *, branch_code, period, declared_kind, received_at=None, original_name=None):
        return dict(next(it))

    def ingest_batch(items, workers=None):
        return [ingest_file(p, branch_code=b, period=per, declared_kind=k, received_at=r)
                for p, b, per, k, r, *_ in items]

    return types.SimpleNamespace(pending_inbox_files=pending_inbox_files, ingest_file=ingest_file,
                                 ingest_batch=ingest_batch, declared_from_path=lambda p: (None, None, None))


def run_job(monkeypatch, reports):
    from pipelines.definitions import defs

    monkeypatch.setattr(ingest_defs, "_engine", lambda: fake_engine(reports))
    job = defs.resolve_job_def("monthly_refresh")
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2025-03", "dagster/asset_partition_range_end": "2025-03"},
    )


def _checks(result):
    return {e.event_specific_data.check_name: e.event_specific_data
            for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def test_broken_load_blocks_dbt_and_publication(data_root, monkeypatch):
    reports = [
        {"file_id": "a" * 16, "status": "accepted", "branch_code": "Q0101", "kind": "roster",
         "rows_read": 10, "rows_accepted": 7, "rows_refused": 2},  # 10 != 7 + 2
    ]
    result = run_job(monkeypatch, reports)
    checks = _checks(result)
    assert checks["raw_zone_reconciles"].passed is False
    assert not result.success
    executed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert executed == {"raw_files"}
    assert serving.current_version() is None
    assert not list((data_root / "warehouse").rglob("*.duckdb"))


def test_refused_file_warns_but_does_not_block(data_root, monkeypatch):
    reports = [
        {"file_id": "b" * 16, "status": "refused", "reason_code": "wrong_kind", "branch_code": "Q0101",
         "kind": "roster", "rows_read": 0, "rows_accepted": 0, "rows_refused": 0},
        {"file_id": "c" * 16, "status": "duplicate", "branch_code": "Q0202", "kind": "roster",
         "rows_read": 0, "rows_accepted": 0, "rows_refused": 0},
    ]
    from pipelines.defs.ingest import raw_files, reconcile_check, refused_check

    monkeypatch.setattr(ingest_defs, "_engine", lambda: fake_engine(reports))
    res = dg.materialize([raw_files], partition_key="2025-03", instance=dg.DagsterInstance.ephemeral())
    assert res.success
    checks = _checks(res)
    assert checks["raw_zone_reconciles"].passed
    assert checks["files_refused"].passed is False
    assert checks["files_refused"].severity == dg.AssetCheckSeverity.WARN
