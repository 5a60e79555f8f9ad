"""`doanvien generate`: write synthetic branch files, the organisation registry and the ground truth."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from pipelines.config import data_dir


def _month(ctx, param, value):
    if value is None:
        return None
    try:
        y, m = value.split("-")
        return date(int(y), int(m), 1)
    except Exception:
        raise click.BadParameter("use YYYY-MM, e.g. 2025-04")


@click.command(name="generate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scale", type=click.Choice(["tiny", "small", "national"]), default="small", show_default=True,
              help="tiny: a few hundred members in two merging provinces, 2025-04..2025-08 (seconds, for tests). "
                   "small: two provinces, ~50,000 members, 2024-07 through 2026-10 (for the demo). "
                   "national: 12 million members, ~127,000 grassroots unions (for benchmarks).")
@click.option("--start", callback=_month, default=None, metavar="YYYY-MM",
              help="First month to simulate. Default: 2025-04 (tiny), 2024-07 (small), 2026-10 (national).")
@click.option("--months", type=click.IntRange(1, 120), default=None,
              help="How many months. Default: 5 (tiny), through 2026-10 (small), 1 (national).")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Random seed. The same seed gives byte-identical files.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data root to write into (default: DOANVIEN_DATA_DIR, else ./data). Its inbox/, registry/ "
                   "and ground_truth/ folders are replaced.")
@click.option("--defect-rate", type=click.FloatRange(0, 0.5), default=0.03, show_default=True,
              help="How often files and rows carry the defects real offices make (0 = clean files).")
@click.option("--quiet", is_flag=True, help="Print only the summary line.")
def generate(scale, start, months, seed, out, defect_rate, quiet):
    """Generate realistic synthetic union data: what ~2,000 branches send every month, and the truth.

    \b
    Writes, under the data root:
      registry/      units (with the 2025 restructuring), branches, employers
      inbox/<branch>/<YYYY-MM>/<kind>/<file>   rosters, dues, services, activities (.xlsx/.csv),
                     and the social-insurance extract from branch BHXH; file times = arrival times
      ground_truth/  the true state and every injected defect with the outcome a correct pipeline reaches
    See docs/GENERATOR.md for every table and column.
    """
    from .engine import generate as run

    out = (out or data_dir()).resolve()
    log = (lambda *a, **k: None) if quiet else (lambda msg: click.echo(msg))
    res = run(scale, out, seed=seed, start=start, months=months, defect_rate=defect_rate, log=log)
    click.echo(f"generated {scale} ({res['months'][0]}..{res['months'][-1]}) into {out} in {res['seconds']:.1f}s")
