"""Đoàn viên số: the engine (plain Python, no Dagster or Streamlit imports outside `pipelines.defs`).

Sub-packages:
- `generate`  synthetic union data and its ground truth
- `ingest`    reading office files, normalising, validating, archive/raw/quarantine
- `warehouse` dbt build, atomic publish, read-only connections
- `access`    accounts, roles, scope, audit, SQL sandbox
- `reports`   exports, statutory report, email briefs
- `defs`      the Dagster door (assets, sensors, schedules, checks)
"""
