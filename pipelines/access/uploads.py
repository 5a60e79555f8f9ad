"""Branch uploads from the app (`dashboards/app_pages/tai_len.py`): scope check, a server-generated file name,
immediate validation by the ingestion engine, then the inbox.

The uploaded name is untrusted text: it is passed to the engine as `original_name` (which sanitises it for
the ledger) and shown back escaped, never used as a path. The bytes are written under
`<data>/app/uploads/<branch>/<generated>`; when the engine accepts the file it is moved to
`<data>/inbox/<branch>/<YYYY-MM>/<kind>/<generated>` where the Dagster sensor picks it up (the engine knows
the content by its hash, so the sensor's pass is a no-op `duplicate`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from pipelines import config
from pipelines.access import audit
from pipelines.access.appdb import accounts_db
from pipelines.access.scope import ScopeError, month_start, scope_for

UPLOAD_KINDS = ("roster", "dues", "services", "activities")
UPLOAD_ROLES = ("province_leader", "upper_official")
ALLOWED_SUFFIXES = (".xlsx", ".xls", ".csv", ".parquet")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
BRANCH_RE = re.compile(r"^[A-Z0-9]{2,12}$")


@dataclass
class UploadResult:
    upload_id: int
    stored_name: str
    status: str
    message_vi: str
    report: dict
    inbox_path: str | None
    xlsx_report: str | None
    json_report: str | None


def branches_for(user, period=None) -> list[dict]:
    """Branches (upper-level unions that send files) inside the user's scope: [{'branch_code', 'branch_name'}]."""
    if user is None or user.role not in UPLOAD_ROLES:
        return []
    s = scope_for(user, period)
    out: dict[str, str] = {}
    p = config.data_dir() / "registry" / "branches.parquet"
    if p.exists():
        import pyarrow.parquet as pq
        for r in pq.read_table(p).to_pylist():
            code = r.get("branch_code")
            if code and code != "BHXH" and s.allows_unit(code):
                vt = r.get("valid_to")
                if vt is None or (hasattr(vt, "year") and vt >= s.period):
                    out[code] = r.get("branch_name") or code
    else:  # no branch list: the upper-level units in scope
        from pipelines.access.scope import unit_name
        for code in sorted(s.upper_codes | ({user.unit_code} if user.role == "upper_official" and
                                              s.allows_unit(user.unit_code) else set())):
            out[code] = unit_name(code)
    return [{"branch_code": k, "branch_name": v} for k, v in sorted(out.items())]


def generated_name(period: dt.date, kind: str, original_name: str) -> str:
    suffix = Path(str(original_name or "").replace("\\", "/").split("/")[-1]).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        suffix = ".bin"
    return f"{period:%Y%m}-{kind}-{uuid.uuid4().hex[:16]}{suffix}"


def _report_dict(rep) -> dict:
    if is_dataclass(rep):
        return asdict(rep)
    if isinstance(rep, dict):
        return dict(rep)
    return {k: getattr(rep, k) for k in dir(rep) if not k.startswith("_") and not callable(getattr(rep, k))}


def _inside(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    try:
        rp = Path(path).resolve()
        return str(rp) if rp.is_relative_to(root.resolve()) and rp.exists() else None
    except (OSError, ValueError):
        return None


def handle_upload(user, *, branch_code: str, period, kind: str, original_name: str, data: bytes,
                  page: str = "tai_len") -> UploadResult:
    """Validate an upload now and route it; raises ScopeError / ValueError (audited) when refused up front."""
    p = month_start(period)
    if user is None or user.role not in UPLOAD_ROLES:
        audit.record_for(user, "denied", page=page, detail={"what": "upload"}, outcome="denied")
        raise ScopeError("Vai trò này không tải tệp lên được / this role may not upload")
    branch_code = (branch_code or "").strip().upper()
    allowed = {b["branch_code"] for b in branches_for(user, p)}
    if not BRANCH_RE.match(branch_code) or branch_code not in allowed:
        audit.record_for(user, "denied", page=page, outcome="denied",
                         detail={"what": "upload", "branch_code": branch_code[:20]})
        raise ScopeError("Đơn vị ngoài phạm vi / branch outside your scope")
    if kind not in UPLOAD_KINDS:
        raise ValueError("Loại báo cáo không hợp lệ / unknown kind")
    if p > month_start(dt.date.today()):
        raise ValueError("Kỳ báo cáo ở tương lai / the period is in the future")
    if not data:
        raise ValueError("Tệp rỗng / empty file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"Tệp quá lớn (tối đa {MAX_UPLOAD_BYTES // 2**20} MB) / file too large")
    shown_name = str(original_name or "")[:255]
    stored = generated_name(p, kind, shown_name)
    staging = config.app_dir() / "uploads" / branch_code
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / stored
    with open(path, "xb") as fh:
        fh.write(data)
    sha = hashlib.sha256(data).hexdigest()
    from pipelines.ingest.engine import ingest_file

    rep = ingest_file(path, branch_code=branch_code, period=f"{p:%Y-%m}", declared_kind=kind,
                      original_name=shown_name)
    report = _report_dict(rep)
    status = str(report.get("status") or "error")
    inbox_path = None
    if status == "accepted":
        dest_dir = config.inbox_dir() / branch_code / f"{p:%Y-%m}" / kind
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / stored
        os.replace(path, dest)
        inbox_path = str(dest)
    else:
        try:
            path.unlink()  # the engine archived the bytes by hash; the staging copy is not needed
        except OSError:
            pass
    xlsx = _inside(report.get("xlsx_report"), config.reports_dir())
    js = _inside(report.get("json_report"), config.reports_dir())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with accounts_db() as db:
        cur = db.execute(
            "INSERT INTO uploads (username, branch_code, period, kind, original_name, stored_name, sha256, size, "
            "status, file_id, report_json, report_xlsx, inbox_path, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [user.username, branch_code, f"{p:%Y-%m}", kind, shown_name, stored, sha, len(data), status,
             report.get("file_id"), js, xlsx, inbox_path, now])
        uid = cur.lastrowid
    audit.record_for(user, "upload", page=page, outcome=status,
                     detail={"branch_code": branch_code, "period": f"{p:%Y-%m}", "kind": kind,
                             "file_id": report.get("file_id"), "stored_name": stored,
                             "rows_read": report.get("rows_read"), "rows_refused": report.get("rows_refused")})
    return UploadResult(upload_id=uid, stored_name=stored, status=status, message_vi=str(report.get("message_vi") or ""),
                        report=json.loads(json.dumps(report, default=str)), inbox_path=inbox_path,
                        xlsx_report=xlsx, json_report=js)


def upload_history(user, period=None, limit: int = 500) -> list[dict]:
    """Files received from the user's branches (the ingest ledger, `pipelines.ingest.ledger`), newest first."""
    from pipelines.ingest import ledger

    branches = {b["branch_code"] for b in branches_for(user, period)}
    if not branches:
        return []
    files = ledger.paths(config.data_dir() / "raw")
    if not files:
        return []
    import duckdb
    con = duckdb.connect()
    try:
        cols = ("file_id, branch_code, period, kind, original_name, received_at, status, reason_code, message_vi, "
                "rows_read, rows_accepted, rows_refused")
        ph = ", ".join("?" * len(branches))
        rows = con.execute(
            f"SELECT {cols} FROM read_parquet(?, union_by_name = true) WHERE branch_code IN ({ph}) "
            # a row seen twice (read while the ledger was being compacted) once
            "QUALIFY row_number() OVER (PARTITION BY file_id ORDER BY ingested_at DESC) = 1 ORDER BY received_at DESC LIMIT ?", [[str(f) for f in files], *sorted(branches), int(limit)]).fetchall()
        names = [c.strip() for c in cols.split(",")]
    finally:
        con.close()
    return [dict(zip(names, r)) for r in rows]


def history_workbook(user, file_id: str, *, page: str = "tai_len") -> Path | None:
    """`history_workbook_or_reason`'s workbook alone."""
    return history_workbook_or_reason(user, file_id, page=page)[0]


def history_workbook_or_reason(user, file_id: str, *, page: str = "tai_len",
                               lang: str = "vi") -> tuple[Path | None, str | None]:
    """The branch workbook (its own rows with the error column) of an accepted file in the user's upload
    history: made on request by the ingestion engine when a batch deferred it. A file outside the user's
    branches is refused (None, audited as denied); every download is audited. Without a workbook, the second
    item is the message (in `lang`) saying why: not accepted, original no longer archived,
    refused rows no longer readable … (`engine.WORKBOOK_UNAVAILABLE`)."""
    from pipelines.ingest.engine import branch_workbook_message, branch_workbook_or_reason
    row = next((h for h in upload_history(user) if h["file_id"] == file_id), None)
    if row is None:
        audit.record_for(user, "denied", page=page, outcome="denied",
                         detail={"what": "branch_workbook", "file_id": str(file_id)[:32]})
        return None, branch_workbook_message("unknown", lang)
    path, reason, n = branch_workbook_or_reason(file_id) if row["status"] == "accepted" else (None, "not_accepted", None)
    audit.record_for(user, "export", page=page, outcome="ok" if path else "none",
                     detail={"what": "branch_workbook", "file_id": file_id, "branch_code": row["branch_code"],
                             **({"reason": reason} if reason else {})})
    return path, (branch_workbook_message(reason, lang, n) if reason else None)

