"""Report emails domain (owned by the report-email engineer): schedules and sensors that send the
monthly reports. Extend these lists; `pipelines/definitions.py` picks them up."""
from __future__ import annotations

assets: list = []
asset_checks: list = []
jobs: list = []
sensors: list = []
schedules: list = []
resources: dict = {}
