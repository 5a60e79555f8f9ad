"""`doanvien ingest FILE… [--branch CODE] [--period YYYY-MM] [--kind KIND] [--json]`, `doanvien ingest --inbox` and
`doanvien ingest --workbook FILE_ID` (the branch workbook of a batch-ingested file, made on request).

Exit status 0 when every file was accepted (possibly with refused rows) or recognised as a duplicate,
1 when any file was refused (or failed). Branch/period/kind default from the inbox layout
`<data>/inbox/<branch>/<YYYY-MM>/<kind>/<file>`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

KIND_CHOICES = ["roster", "dues", "services", "activities", "insurance"]


def _summary(rep) -> str:
    head = {"accepted": "ĐÃ NHẬN", "refused": "TỪ CHỐI", "duplicate": "TRÙNG", "error": "LỖI"}.get(rep.status, rep.status)
    lines = [f"[{head}] {rep.original_name or rep.file_id} — đơn vị {rep.branch_code}, kỳ {rep.period}, loại {rep.kind}",
             f"  {rep.message_vi}"]
    if rep.status == "accepted":
        lines.append(f"  Số dòng: đọc {rep.rows_read}, hợp lệ {rep.rows_accepted}, bị từ chối {rep.rows_refused}")
        for rule, n in sorted(rep.counts_by_rule.items()):
            lines.append(f"    - {rule}: {n}")
        if rep.xlsx_report:
            lines.append(f"  Báo cáo chi tiết: {rep.xlsx_report}")
        elif getattr(rep, "xlsx_on_demand", False):
            lines.append(f"  Báo cáo chi tiết: doanvien ingest --workbook {rep.file_id}")
    return "\n".join(lines)


@click.command(name="ingest")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--branch", "branch", default=None, help="Branch code (default: from the inbox path).")
@click.option("--period", "period", default=None, help="Period YYYY-MM (default: from the inbox path).")
@click.option("--kind", "kind", type=click.Choice(KIND_CHOICES), default=None, help="Declared file kind.")
@click.option("--inbox", "inbox", is_flag=True, help="Ingest every pending file of <data>/inbox.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("--workbook", "workbook", default=None, metavar="FILE_ID",
              help="Print the path of a file's branch workbook (made now if a batch deferred it).")
def ingest(files, branch, period, kind, inbox, as_json, workbook):
    """Ingest branch files: archive, validate, load accepted rows to raw, refused rows to quarantine."""
    from pipelines.ingest.engine import branch_workbook, declared_from_path, ingest_file, ingest_inbox

    if workbook:
        path = branch_workbook(workbook)
        if path is None:
            click.echo(f"Không có báo cáo chi tiết cho tệp {workbook} (tệp không tồn tại, không được nhận, hoặc danh "
                       "sách dòng bị từ chối của tệp không còn đọc được: hãy nạp lại tệp gốc).", err=True)
            sys.exit(1)
        click.echo(str(path))
        sys.exit(0)
    if not files and not inbox:
        raise click.UsageError("give FILE… or --inbox")
    reports = []
    if inbox:
        reports += ingest_inbox()
    for f in files:
        b, p, k = declared_from_path(f)
        b, p, k = branch or b, period or p, kind or k
        if not (b and p and k):
            raise click.UsageError(f"{f}: --branch, --period and --kind are required outside the inbox layout")
        reports.append(ingest_file(f, branch_code=b, period=p, declared_kind=k))
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2, default=str))
    else:
        for r in reports:
            click.echo(_summary(r))
        if not reports:
            click.echo("Không có tệp mới trong hộp thư đến.")
    sys.exit(0 if all(r.status in ("accepted", "duplicate") for r in reports) else 1)
