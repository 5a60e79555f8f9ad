"""The Dagster code location of Đoàn viên số: exactly one `Definitions`, joined from the domain modules in
`pipelines/defs/` (ingest, warehouse, reports).

    dagster definitions validate -m pipelines.definitions
    dagster dev -m pipelines.definitions
"""
from __future__ import annotations

import dagster as dg

from pipelines.defs import ingest, reports, warehouse

DOMAINS = (ingest, warehouse, reports)

defs = dg.Definitions(
    assets=[a for d in DOMAINS for a in d.assets],
    asset_checks=[c for d in DOMAINS for c in d.asset_checks],
    jobs=[j for d in DOMAINS for j in d.jobs],
    sensors=[s for d in DOMAINS for s in d.sensors],
    schedules=[s for d in DOMAINS for s in d.schedules],
    resources={k: v for d in DOMAINS for k, v in getattr(d, "resources", {}).items()},
    # every run (jobs, sensor runs, ad-hoc materialisations in the UI) executes its steps in one process:
    # no per-step interpreter start-up, and at most one step writes the build file at a time
    executor=dg.in_process_executor,
)
