"""`doanvien`: the command line. A thin door onto the engine: every command calls the same
functions the Dagster assets and the Streamlit pages call.

Sub-commands live beside their domain (`pipelines/<domain>/cli.py`) and are imported only when used,
so `doanvien generate` does not pay for importing dbt or Dagster.
"""
from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "generate": "pipelines.generate.cli:generate",
    "ingest": "pipelines.ingest.cli:ingest",
    "refresh": "pipelines.warehouse.cli:refresh",
    "build": "pipelines.warehouse.cli:build",
    "warehouse-path": "pipelines.warehouse.cli:warehouse_path",
    "users": "pipelines.access.cli:users",
    "sql": "pipelines.access.cli:sql",
    "reports": "pipelines.reports.cli:reports",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:  # a door not built yet
            @click.command(name=name, help=f"(not available: {exc})")
            def _missing():
                raise click.ClickException(f"'{name}' is not available: {exc}")
            return _missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Đoàn viên số: the trade union member data warehouse.

    Data lives under DOANVIEN_DATA_DIR (default ./data). Typical monthly cycle:
    branches' files arrive in the inbox, `doanvien refresh` ingests and validates them,
    builds the warehouse and publishes it for the app.
    """


if __name__ == "__main__":
    main()
