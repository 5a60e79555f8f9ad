"""`doanvien refresh`, `doanvien build`, `doanvien warehouse-path`.

`refresh` runs the Dagster job `monthly_refresh` in-process (the same job the Dagster UI and sensors run):
ingest the inbox, dbt build into a new file, publish it. `build` is dbt build + publish only (no Dagster,
dbt in-process). `warehouse-path` prints the current published file for analysts' own tools.
"""
from __future__ import annotations

import json
import os
import sys
import time

import click


@click.command(help=(
    "Làm mới kho dữ liệu hằng tháng / run the monthly refresh: ingest the new files in the inbox, "
    "build the warehouse into a new DuckDB file (dbt), check it and publish it. Runs the Dagster job "
    "`monthly_refresh` in this process. Readers keep using the previous version until the new one is published."
))
@click.option("--full-refresh", is_flag=True, help="Rebuild every month from the raw zone instead of "
              "starting from a copy of the current warehouse.")
def refresh(full_refresh: bool) -> None:
    t0 = time.perf_counter()
    from pipelines.warehouse.orchestrate import run_monthly_refresh

    outcome = run_monthly_refresh(full_refresh=full_refresh)
    click.echo(outcome.summary(time.perf_counter() - t0))
    if not outcome.success:
        sys.exit(1)


@click.command(help=(
    "Dựng và công bố kho dữ liệu / dbt build + publish only (no ingestion): build the warehouse from the "
    "raw zone into a new file and publish it if every check passes."
))
@click.option("--full-refresh", is_flag=True, help="Start from an empty file instead of a copy of the current one.")
def build(full_refresh: bool) -> None:
    t0 = time.perf_counter()
    from pipelines.warehouse.build import build_and_publish

    try:
        v = build_and_publish(full_refresh=full_refresh, lock_timeout=None)
    except Exception as exc:
        click.echo(f"Dựng kho thất bại, không công bố gì / build failed, nothing published: {exc}", err=True)
        sys.exit(1)
    from pipelines.warehouse.build import LAST_BUILD

    click.echo(
        f"Đã công bố phiên bản / published version {v.version} in {time.perf_counter() - t0:.1f} s\n  {v.path}"
        + (f"\n  cách dựng / build: {LAST_BUILD['build']}" if LAST_BUILD.get("build") else "")
        + "".join(f"\n  lưu ý / notice: {n}" for n in LAST_BUILD.get("notices", "").split("\n") if n)
    )


@click.command(name="warehouse-path", help=(
    "In đường dẫn tệp kho dữ liệu hiện hành / print the path of the current published warehouse file "
    "(open it read-only, e.g. `duckdb -readonly $(doanvien warehouse-path --analyst)`)."
))
@click.option("--analyst", is_flag=True, help="The de-identified analyst copy (schema `marts` only).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole pointer record as JSON.")
def warehouse_path(analyst: bool, as_json: bool) -> None:
    from pipelines.warehouse import serving

    v = serving.current_version()
    if v is None:
        click.echo("Chưa có kho dữ liệu nào được công bố / no warehouse published yet (run `doanvien refresh`).",
                   err=True)
        sys.exit(1)
    if as_json:
        click.echo(v.to_json())
        return
    click.echo(os.fspath(serving.warehouse_path(analyst=analyst)))
