"""Dagster definitions split by domain (ingest, warehouse, reports); `pipelines/definitions.py` joins them
into the code location's one `Definitions`."""
