"""The dbt warehouse on a small hand-made raw zone whose every figure is known by construction.

The raw zone is written here directly (registry + raw/ + quarantine/ Parquet, CONTRACTS §2 and §4), so
this test does not depend on the generator or on ingestion. It covers the tricky cases one by one:
supersede and duplicates, carry-forward of a month a branch did not submit, a transfer paired from a
'transfer' leaver row, the 1 June 2025 public-sector exit without leaver rows, a legacy CMND linked to its
CCCD person, a person active in two CĐCS in one month, one CCCD with two people, the 1 July 2025
reparenting and province merger, dues under the rule of each month, services (health-related rows keep no
member key), activities, recruitment potential, submissions (late, superseded, refused, not submitted).

Then: `dbt build` (full), and a month-by-month incremental build gives identical marts.

    python tests/warehouse/test_marts_handmade.py DIR   # write the raw zone into DIR (for development)
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.generate import verify
from pipelines.ingest.engine import RAW_SCHEMA, write_raw_schema_templates

REPO = Path(__file__).resolve().parents[2]
D = dt.date
MERGER = D(2025, 7, 1)
PRE_END = D(2025, 6, 30)
PUBLIC_END = D(2025, 5, 31)
D0 = D(2020, 1, 1)
PERIODS = [D(2025, m, 1) for m in range(4, 9)]  # 2025-04 .. 2025-08
SECRET = "test-secret-handmade"

UNIT_COLS = ["unit_code", "unit_name", "level", "upper_level_type", "parent_code", "province_old_code",
             "province_new_code", "sector_code", "ownership_type", "industry_code", "employer_code",
             "valid_from", "valid_to"]


def _units() -> list[dict]:
    rows = []

    def u(code, name, level, ult, parent, po, pn, frm, to, sector=None, own=None, ind=None, emp=None):
        rows.append(dict(zip(UNIT_COLS, [code, name, level, ult, parent, po, pn, sector, own, ind, emp, frm, to])))

    u("TLD", "Tổng Liên đoàn", "confederation", None, None, None, None, D0, None)
    u("T01", "LĐLĐ Hà Nội", "province_federation", None, "TLD", "01", "01", D0, None)
    u("T02", "LĐLĐ Hà Giang", "province_federation", None, "TLD", "02", "08", D0, PRE_END)
    u("T08", "LĐLĐ Tuyên Quang", "province_federation", None, "TLD", "08", "08", D0, None)
    u("N02", "Công đoàn Giáo dục Việt Nam", "sector_union", None, "TLD", None, None, D0, None, sector="N02")
    u("Q0101", "LĐLĐ quận Ba Đình", "upper_level", "district", "T01", "01", "01", D0, PRE_END)
    u("Q0201", "LĐLĐ TP Hà Giang", "upper_level", "district", "T02", "02", "08", D0, PRE_END)
    u("X01001", "CĐ phường Ba Đình", "upper_level", "commune_ward", "T01", None, "01", MERGER, None)
    u("X08001", "CĐ phường Hà Giang 1", "upper_level", "commune_ward", "T08", None, "08", MERGER, None)
    u("C0201", "CĐ Tổng công ty Giáo dục", "upper_level", "corporation", "N02", None, None, D0, None, sector="N02")
    # CĐCS: reparented on 1 July 2025 (new version), CS0000003 is public sector and closes on 31 May 2025
    u("CS0000001", "CĐCS Công ty May", "cdcs", None, "Q0101", "01", "01", D0, PRE_END, own="fdi", ind="C", emp="E001")
    u("CS0000001", "CĐCS Công ty May", "cdcs", None, "X01001", "01", "01", MERGER, None, own="fdi", ind="C", emp="E001")
    u("CS0000002", "CĐCS Công ty Chè", "cdcs", None, "Q0201", "02", "08", D0, PRE_END, own="ngoai_nn", ind="A", emp="E002")
    u("CS0000002", "CĐCS Công ty Chè", "cdcs", None, "X08001", None, "08", MERGER, None, own="ngoai_nn", ind="A", emp="E002")
    u("CS0000003", "CĐCS Sở Tài chính", "cdcs", None, "Q0101", "01", "01", D0, PUBLIC_END, own="hcsn", ind="O")
    u("CS0000004", "CĐCS Trường Tư thục", "cdcs", None, "C0201", "01", "01", D0, None, sector="N02", own="ngoai_nn",
      ind="P", emp="E004")
    return rows


BRANCHES = [
    ("Q0101", "LĐLĐ quận Ba Đình", "01", D0, PRE_END),
    ("Q0201", "LĐLĐ TP Hà Giang", "08", D0, PRE_END),
    ("X01001", "CĐ phường Ba Đình", "01", MERGER, None),
    ("X08001", "CĐ phường Hà Giang 1", "08", MERGER, None),
    ("C0201", "CĐ Tổng công ty Giáo dục", None, D0, None),
    ("BHXH", "Bảo hiểm xã hội Việt Nam", None, D0, None),
]


def cccd(n: int, gender: str = "M", year: int = 1985) -> str:
    g = {"M": 0, "F": 1}[gender] + (2 if year >= 2000 else 0)
    return f"001{g}{year % 100:02d}{n:06d}"


# people: key -> (full_name, birth_date, gender, ethnicity, cccd, cmnd, salary)
PEOPLE = {
    f"P{i}": (f"Nguyễn Văn Người {i}", D(1985, 1, i), "M" if i % 2 else "F", "01" if i != 4 else "02",
              cccd(i, "M" if i % 2 else "F"), None, 6_000_000 + 1_000 * i)
    for i in range(1, 15)
}
# P3 and P10 have only a legacy CMND until June, then the CCCD: one person each (see rosters())
# P14: a CMND-only person with no CCCD anywhere (own key)
P8_CMND = "888777666"
PEOPLE["P14"] = ("Trần Thị Cũ", D(1970, 5, 5), "F", "01", None, "012345678", 5_500_000)
PEOPLE["P1"] = PEOPLE["P1"][:6] + (30_000_000,)  # above the cap at 1 %, below it at 0.5 %
P5_NEW_NAME = "Nguyễn Văn Nguyên 5"


def member_row(p, cdcs, join=D(2015, 1, 1), leave=None, reason=None, use_cmnd=None, name=None, salary=None,
               with_cmnd=None, birth=None):
    """One roster row of person p; use_cmnd = a legacy CMND written instead of the CCCD, with_cmnd = beside it."""
    full_name, birth_date, gender, eth, cc, cm, sal = PEOPLE[p]
    if use_cmnd:
        cc, cm = None, use_cmnd
    if with_cmnd:
        cm = with_cmnd
    return dict(cdcs_code=cdcs, full_name=name or full_name, birth_date=birth or birth_date, birth_date_precision="day",
                gender=gender, ethnicity_code=eth, cccd=cc, cmnd=cm, bhxh_code=None, member_code=f"MC{p}",
                join_date=join, join_date_precision="day", insurance_salary=salary or sal,
                leave_date=leave, leave_reason_code=reason)


def rosters() -> dict[tuple[str, dt.date], list[dict]]:
    """(branch, period) -> roster rows of the *current* file version."""
    out: dict[tuple[str, dt.date], list[dict]] = {}
    for per in PERIODS:
        b1 = "Q0101" if per < MERGER else "X01001"
        b2 = "Q0201" if per < MERGER else "X08001"
        # P3: a legacy CMND only until June, the CCCD from July (the CMND is then linked: month by month, a
        # pure re-key of the months already built)
        # P5: the branch corrects his name from July on (same CCCD, birth date and gender): one person, whose
        # details take the new name; a July run must recompute his accent-free search name, not keep the stored one
        r1 = [member_row(p, "CS0000001", use_cmnd="111222333" if p == "P3" and per < MERGER else None,
                         name=P5_NEW_NAME if p == "P5" and per >= MERGER else None)
              for p in ("P1", "P2", "P3", "P4", "P5")]
        if per >= D(2025, 5, 1):
            r1.append(member_row("P6", "CS0000001", join=D(2025, 5, 10)))       # join in May
        if per < D(2025, 6, 1):
            r1.append(member_row("P7", "CS0000001"))
        elif per == D(2025, 6, 1):
            r1.append(member_row("P7", "CS0000001", leave=D(2025, 6, 20), reason="retired"))  # leave in June
        # P8: a legacy CMND only until June too, the CCCD from July: the May transfer's events are stored under the
        # CMND key, and the July re-key must give them the ids a build from nothing gives (fct_member_events.event_id)
        if per == D(2025, 4, 1):
            r1.append(member_row("P8", "CS0000001", use_cmnd=P8_CMND))
        elif per == D(2025, 5, 1):
            r1.append(member_row("P8", "CS0000001", leave=D(2025, 5, 15), reason="transfer",
                                 use_cmnd=P8_CMND))  # transfer out
        if per < PUBLIC_END:  # CS0000003 (public sector) is in the roster until May, then gone
            r1 += [member_row("P9", "CS0000003"), member_row("P13", "CS0000003")]
        if per >= D(2025, 7, 1):
            r1.append(member_row("P11", "CS0000001", join=D(2025, 6, 3)))
        if per == D(2025, 6, 1):
            r1.append(member_row("P11", "CS0000001", join=D(2025, 6, 3)))  # joins in June
        out[(b1, per)] = r1
        # branch 2: P8 arrives in May (transfer in). P10: a legacy CMND only until June, with a mistyped birth date
        # (so it matches no one), the CCCD alone in July, both in one row in August: the August file merges two
        # people the months already built kept apart (month by month, every month from April is restated)
        r2 = [member_row("P12", "CS0000002")]
        if per < MERGER:
            r2.append(member_row("P10", "CS0000002", use_cmnd="987654321", birth=D(1985, 10, 1)))
        else:
            r2.append(member_row("P10", "CS0000002", with_cmnd="987654321" if per == D(2025, 8, 1) else None))
        if per >= D(2025, 5, 1):
            r2.append(member_row("P8", "CS0000002", join=D(2025, 5, 15), use_cmnd=P8_CMND if per < MERGER else None))
        r2.append(member_row("P14", "CS0000002"))
        out[(b2, per)] = r2
        # corporation branch: P4 is also active here in June, P11 in July (two units in one month);
        # in August one CCCD (P12's) shows up with a different person
        r3 = []
        if per == D(2025, 6, 1):
            # P4 also listed here in June with an earlier join date: counted where she was in May (CS0000001). The
            # July run restates from June, so "where was she in May" comes from the stored May rows
            r3.append(member_row("P4", "CS0000004", join=D(2010, 1, 1)))
        if per == D(2025, 7, 1):
            r3.append(member_row("P11", "CS0000004"))
        if per == D(2025, 8, 1):
            r3.append(member_row("P12", "CS0000004", name="Lê Văn Khác"))
        if r3:
            out[("C0201", per)] = r3
    # Q0201 did not send June 2025: June is carried forward from May
    del out[("Q0201", D(2025, 6, 1))]
    return out


LEDGER_TYPES = {"file_id": pa.string(), "sha256": pa.string(), "branch_code": pa.string(), "period": pa.date32(),
                "kind": pa.string(), "detected_kind": pa.string(), "original_name": pa.string(),
                "received_at": pa.timestamp("us"), "status": pa.string(), "reason_code": pa.string(),
                "message_vi": pa.string(), "rows_read": pa.int64(), "rows_accepted": pa.int64(),
                "rows_refused": pa.int64(), "format": pa.string(), "encoding": pa.string(),
                "ingested_at": pa.timestamp("us")}


def _write(path: Path, rows: list[dict], types: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(list(types.items()))
    table = pa.Table.from_pylist([{k: r.get(k) for k in types} for r in rows], schema=schema)
    pq.write_table(table, path)


class RawZone:
    """Writes files the way ingestion does: a ledger row per received version, accepted rows per kind."""

    def __init__(self, root: Path):
        self.root = root
        self.ledger: list[dict] = []

    def file(self, branch, period, kind, rows, *, received=None, status="accepted", reason=None, refused=0,
             ingested=None, write_rows=True) -> str:
        nxt = (period.replace(day=28) + dt.timedelta(days=5)).replace(day=1)
        received = received or dt.datetime.combine(nxt, dt.time(9)) + dt.timedelta(days=2)
        fid = hashlib.sha256(f"{branch}|{period}|{kind}|{received}|{status}".encode()).hexdigest()[:16]
        self.ledger.append(dict(
            file_id=fid, sha256=fid * 4, branch_code=branch, period=period, kind=kind, detected_kind=kind,
            original_name=f"{kind}_{branch}_{period:%Y%m}.xlsx", received_at=received, status=status,
            reason_code=reason, message_vi=None, rows_read=len(rows) + refused,
            rows_accepted=len(rows) if status == "accepted" else 0,
            rows_refused=refused if status == "accepted" else len(rows) + refused,
            format="xlsx", encoding=None, ingested_at=ingested or received + dt.timedelta(minutes=5)))
        if status == "accepted" and write_rows:
            full = [dict(r, file_id=fid, branch_code=branch, period=period, source_sheet="Sheet1",
                         source_row=i + 2, received_at=received, flags=[]) for i, r in enumerate(rows)]
            # the exact schema ingestion writes (the warehouse reads raw rows without union_by_name)
            path = self.root / "raw" / kind / f"file_month={period:%Y-%m}" / f"{fid}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            schema = RAW_SCHEMA[kind]
            pl.DataFrame([{k: r.get(k) for k in schema} for r in full], schema=schema).write_parquet(path)
        return fid

    def finish(self) -> None:
        write_raw_schema_templates(self.root / "raw")  # as every build does (migrate_raw_layout)
        for row in self.ledger:
            _write(self.root / "raw" / "files" / f"{row['file_id']}.parquet", [row], LEDGER_TYPES)
        # what a compaction interrupted between writing its segment and deleting the loose rows leaves: every
        # ledger row twice (the build compacts again, so three times); stg_raw__files keeps one per file_id
        _write(self.root / "raw" / "files" / "segments" / "00000000T000000000000Z-leftover.parquet", self.ledger,
               LEDGER_TYPES)


def write_registry(root: Path) -> None:
    _write(root / "registry" / "units.parquet", _units(),
           {c: (pa.date32() if c in ("valid_from", "valid_to") else pa.string()) for c in UNIT_COLS})
    _write(root / "registry" / "branches.parquet",
           [dict(zip(["branch_code", "branch_name", "province_new_code", "valid_from", "valid_to"], b),
                 email=f"{b[0].lower()}@example.vn") for b in BRANCHES],
           {"branch_code": pa.string(), "branch_name": pa.string(), "province_new_code": pa.string(),
            "email": pa.string(), "valid_from": pa.date32(), "valid_to": pa.date32()})


CORRECTION_RECEIVED = dt.datetime(2025, 9, 20, 8)
CORRECTED_SALARY_P5 = 9_000_000


def build_raw_zone(root: Path, upto: dt.date | None = None, correction: bool = False,
                   late_rosters: list[tuple[str, dt.date, list[dict], dt.datetime]] = (),
                   extra_files: list[tuple[str, dt.date, str, list[dict]]] = ()) -> None:
    """The whole raw zone (registry, ledger, rows, quarantine); `upto` keeps only files of periods <= upto
    (and received before the correction); `correction` adds a late corrected May roster of Q0101 (P5's
    salary changes), received on 20/09/2025; `late_rosters` adds other late roster versions
    (branch, period, rows, received)."""
    import shutil

    for sub in ("raw", "quarantine", "registry"):
        shutil.rmtree(root / sub, ignore_errors=True)
    write_registry(root)
    z = RawZone(root)
    keep = (lambda per: upto is None or per <= upto)
    for branch, per, rows, received in late_rosters:
        z.file(branch, per, "roster", rows, received=received)
    if correction:
        rows = [dict(r, insurance_salary=CORRECTED_SALARY_P5) if r["member_code"] == "MCP5" else r
                for r in rosters()[("Q0101", D(2025, 5, 1))]]
        z.file("Q0101", D(2025, 5, 1), "roster", rows, received=CORRECTION_RECEIVED)
    for (branch, per), rows in sorted(rosters().items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if not keep(per):
            continue
        if (branch, per) == ("Q0101", D(2025, 4, 1)):
            # a first version with a wrong salary, superseded two days later by the one below
            bad = [dict(r, insurance_salary=1) for r in rows]
            z.file(branch, per, "roster", bad, received=dt.datetime(2025, 5, 3, 8))
            qfid = z.file(branch, per, "roster", rows, received=dt.datetime(2025, 5, 5, 8), refused=2)
            # the loose file, and the same rows in a segment, as a compaction cut short leaves them
            # (stg_raw__refused_rows keeps them once: dq_refused_rows' unique refused_row_id test)
            refused_rows = [
                dict(file_id=qfid, source_sheet="Sheet1", source_row=40, rule="cccd_layout", column="cccd",
                     value="12345", message_vi="Số CCCD sai", message_en="Bad CCCD"),
                dict(file_id=qfid, source_sheet="Sheet1", source_row=41, rule="date_invalid",
                     column="birth_date", value="31/02/1990", message_vi="Ngày sai", message_en="Bad date")]
            for qpath in (root / "quarantine" / f"{qfid}.parquet",
                          root / "quarantine" / "segments" / "00000000T000000000000Z-leftover.parquet"):
                _write(qpath, refused_rows,
                       {"file_id": pa.string(), "source_sheet": pa.string(), "source_row": pa.int64(),
                        "rule": pa.string(), "column": pa.string(), "value": pa.string(),
                        "message_vi": pa.string(), "message_en": pa.string()})
            continue
        received = dt.datetime(2025, 9, 15, 10) if (branch, per) == ("X01001", D(2025, 8, 1)) else None
        z.file(branch, per, "roster", rows, received=received)
        if (branch, per) == ("Q0101", D(2025, 5, 1)):
            z.file(branch, per, "roster", rows, status="duplicate", reason="duplicate_content",
                   received=dt.datetime(2025, 6, 4, 8))
    for per in PERIODS:
        if not keep(per):
            continue
        b1 = "Q0101" if per < MERGER else "X01001"
        b2 = "Q0201" if per < MERGER else "X08001"
        # dues reports: 100,000 collected per CĐCS and month (CS0000003 only while it exists)
        d1 = [dict(cdcs_code="CS0000001", cdcs_name="", members_count=7, salary_fund=0, dues_expected=0,
                   dues_collected=100_000)]
        if per < D(2025, 6, 1):
            d1.append(dict(cdcs_code="CS0000003", members_count=2, salary_fund=0, dues_expected=0,
                           dues_collected=100_000))
        z.file(b1, per, "dues", d1)
        if per != D(2025, 6, 1):
            z.file(b2, per, "dues", [dict(cdcs_code="CS0000002", members_count=4, salary_fund=0, dues_expected=0,
                                          dues_collected=100_000)])
        z.file("BHXH", per, "insurance", [
            dict(employer_code="E001", employer_name="Công ty May", province_new_code="01", industry_code="C",
                 ownership_type="fdi", insured_workers=20, insured_women=12),
            dict(employer_code="E002", employer_name="Công ty Chè", province_new_code="08", industry_code="A",
                 ownership_type="ngoai_nn", insured_workers=3, insured_women=1),
            dict(employer_code="E004", employer_name="Trường Tư thục", province_new_code="01", industry_code="P",
                 ownership_type="ngoai_nn", insured_workers=10, insured_women=8),
            dict(employer_code="E999", employer_name="Công ty chưa có CĐ", province_new_code="01",
                 industry_code="C", ownership_type="fdi", insured_workers=50, insured_women=30)])
    if keep(D(2025, 4, 1)):
        z.file("Q0201", D(2025, 4, 1), "roster", [member_row("P12", "CS0000002")], status="refused",
               reason="unreadable", received=dt.datetime(2025, 5, 2, 8))
        z.file("Q0101", D(2025, 4, 1), "activities", [
            dict(cdcs_code="CS0000001", activity_type="tap_huan", activity_name="Tập huấn ATVSLĐ",
                 activity_date=D(2025, 4, 20), full_name=PEOPLE[p][0], cccd=PEOPLE[p][4]) for p in ("P1", "P2")])
    if keep(D(2025, 5, 1)):
        z.file("Q0101", D(2025, 5, 1), "services", [
            dict(cdcs_code="CS0000001", full_name=PEOPLE["P1"][0], cccd=PEOPLE["P1"][4], program="tet_sum_vay",
                 service_date=D(2025, 5, 2), amount=500_000),
            dict(cdcs_code="CS0000001", full_name=PEOPLE["P2"][0], cccd=PEOPLE["P2"][4], program="tham_om",
                 service_date=D(2025, 5, 9), amount=300_000)])
    if keep(D(2025, 7, 1)):
        z.file("X08001", D(2025, 7, 1), "services", [
            dict(cdcs_code="CS0000002", full_name=PEOPLE["P8"][0], cccd=PEOPLE["P8"][4], program="hoc_bong",
                 service_date=D(2025, 7, 20), amount=1_000_000)])
    for branch, per, kind, rows in extra_files:
        z.file(branch, per, kind, rows)
    z.finish()
    (root / "quarantine").mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------------------------------------------ dbt runs
DBT_ARGS = ["--project-dir", str(REPO), "--profiles-dir", str(REPO / "dbt_project" / "profiles")]


def dbt(args: list[str], db: Path, root: Path, target: Path, periods: str = "", state: Path | None = None) -> None:
    """One in-process dbt invocation (dbtRunner) against build file `db` and raw zone `root`, the months to restate
    in DOANVIEN_PERIODS (as the pipeline passes them). As the pipeline does (pipelines.warehouse.build), dbt reaches
    `db` through one path per raw zone (a hard link, `<root>/../dbt/warehouse.duckdb`) and keeps one target
    directory there, so the runs on one raw zone after the first parse only what changed (~6 s each); `target`
    receives the run's log. `state` puts that link and target elsewhere (a raw zone shared read-only with other
    tests, e.g. `tiny_published`)."""
    import duckdb
    from dbt.cli.main import dbtRunner

    state = state or root.parent / "dbt"
    state.mkdir(parents=True, exist_ok=True)
    link = state / "warehouse.duckdb"
    link.unlink(missing_ok=True)
    if not db.exists():
        duckdb.connect(str(db)).close()
    os.link(db, link)
    target.mkdir(parents=True, exist_ok=True)
    env = {"DOANVIEN_BUILD_DB": str(link), "DOANVIEN_RAW_DIR": str(root / "raw"),
           "DOANVIEN_REGISTRY_DIR": str(root / "registry"), "DOANVIEN_QUARANTINE_DIR": str(root / "quarantine"),
           "DOANVIEN_MEMBER_KEY_SECRET": SECRET, "DBT_PROJECT_DIR": str(REPO), "DOANVIEN_PERIODS": periods,
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = dbtRunner().invoke([*args, *DBT_ARGS, "--target-path", str(state / "target"), "--log-path", str(target)])
    finally:
        _release_duckdb()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        assert not Path(f"{link}.wal").exists()  # dbt's DuckDB checkpointed into `db` when it closed
        link.unlink(missing_ok=True)
    assert res.success, f"dbt {' '.join(args)} failed: {res.exception or res.result}"
    return res


def _release_duckdb() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    if env is not None:
        try:
            env.close()
        except Exception:
            pass
        DuckDBConnectionManager._ENV = None


def key_of(identity: str) -> str:
    return hashlib.sha256(f"{SECRET}|{identity}".encode()).hexdigest()[:32]


MART_TABLES = list(verify.MART_TABLES)

# counted members per period and CĐCS, by construction (see rosters())
COUNTED = {
    D(2025, 4, 1): {"CS0000001": ["P1", "P2", "P3", "P4", "P5", "P7", "P8"], "CS0000002": ["P12", "P10", "P14"],
                    "CS0000003": ["P9", "P13"]},
    D(2025, 5, 1): {"CS0000001": ["P1", "P2", "P3", "P4", "P5", "P6", "P7"],
                    "CS0000002": ["P12", "P10", "P8", "P14"], "CS0000003": ["P9", "P13"]},
    D(2025, 6, 1): {"CS0000001": ["P1", "P2", "P3", "P4", "P5", "P6", "P11"],
                    "CS0000002": ["P12", "P10", "P8", "P14"]},
}
COUNTED[D(2025, 7, 1)] = COUNTED[D(2025, 8, 1)] = COUNTED[D(2025, 6, 1)]


def dues_due(person: str, period: dt.date) -> int:
    salary = PEOPLE[person][6]
    if person == "P5" and period == D(2025, 5, 1):
        salary = CORRECTED_SALARY_P5
    rate = 0.01 if period < MERGER else 0.005
    return min(round(salary * rate), 234_000)


KEY_CHANGES: dict[str, list[tuple]] = {}  # month of the incremental run -> its int_member_key_changes
CHANGES_SQL = "SELECT identity_record, is_pure_rename, first_period FROM intermediate.int_member_key_changes"
ORPHANS: dict[str, int] = {}  # month of the incremental run -> stored rows whose member_key no person has
ORPHANS_SQL = " + ".join(
    # (the intermediate tables hold the key as a UUID, the marts as its 32 hex digits)
    f"(SELECT count(*) FROM {t} WHERE member_key IS NOT NULL AND replace(CAST(member_key AS VARCHAR), '-', '') "
    f"NOT IN (SELECT member_key FROM marts.dim_member))"
    for t in ("intermediate.int_member_unit_months", "intermediate.int_member_events", "marts.fct_member_events",
              "restricted.member_history", "marts.fct_service_deliveries", "marts.fct_activity_participation"))
ORPHANS_SQL = f"SELECT {ORPHANS_SQL}"
JULY: dict[str, Path] = {}  # the month-by-month build after July, and a full build of the raw zone as of July


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """A: one full `dbt build` of the final raw zone. B: the same months built month by month
    (full run to June, incremental July, then August together with a late correction of May)."""
    base = tmp_path_factory.mktemp("handmade")
    root = base / "data"
    full_db, inc_db = base / "full.duckdb", base / "incremental.duckdb"
    JULY.update(incremental=base / "incremental-2025-07.duckdb", full=base / "full-2025-07.duckdb")
    # no data tests (faster); unit tests too, so they also compile on an incremental run (`periods` set)
    run = ["build", "--resource-type", "seed", "--resource-type", "model", "--resource-type", "unit_test"]
    build_raw_zone(root, upto=D(2025, 6, 1))
    dbt(run, inc_db, root, base / "t_inc")
    build_raw_zone(root, upto=D(2025, 7, 1))
    # July restates from June (Q0201 did not send June: carried forward from May), events look one month back:
    # no model may open April's raw files (raw_file_month_floor), so they are unreadable during this run
    with unreadable_raw_month(root, "2025-04"):
        dbt(run, inc_db, root, base / "t_inc", periods="2025-07")
        # the data tests of the raw-rows views and of the monthly tables check the restated months only (their
        # `where: restated:...`, macros/incremental.sql): they open no April file either, and pass
        dbt(["test", "--select", "stg_raw__roster_rows stg_raw__dues_reports stg_raw__service_deliveries "
             "stg_raw__activity_participations fct_member_events fct_service_deliveries fct_activity_participation "
             "member_history"], inc_db, root, base / "t_inc", periods="2025-07")
    KEY_CHANGES["2025-07"] = sorted(_q(inc_db, CHANGES_SQL))
    ORPHANS["2025-07"] = _q(inc_db, ORPHANS_SQL)[0][0]
    # July's incremental result, and a full build of the same raw zone: compared on their own (August's run
    # restates from April, the first month, so comparing only the final files would not see a July error)
    shutil.copy(inc_db, JULY["incremental"])
    dbt(run, JULY["full"], root, base / "t_full_july")
    build_raw_zone(root, correction=True)
    dbt(run, inc_db, root, base / "t_inc", periods="2025-05-01,2025-08-01")
    KEY_CHANGES["2025-08"] = sorted(_q(inc_db, CHANGES_SQL))
    dbt(["build"], full_db, root, base / "t_full")  # models, data tests and unit tests
    return full_db, inc_db


@contextlib.contextmanager
def unreadable_raw_month(root: Path, month: str):
    """Every raw rows file of `month` (raw/<kind>/file_month=<month>/) replaced by bytes that are not Parquet
    for the duration of the block: a query that opens one fails. Restored afterwards."""
    files = sorted((root / "raw").glob(f"*/file_month={month}/*.parquet"))
    assert files, f"no raw file in {month}"
    saved = {f: f.read_bytes() for f in files}
    try:
        for f in files:
            f.write_bytes(b"not a parquet file")
        yield
    finally:
        for f, data in saved.items():
            f.write_bytes(data)


def _q(db: Path, sql: str, params=None) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_members_per_month_unit_and_province(builds):
    full, _ = builds
    got = {(p, c): (m, cf) for p, c, m, cf in _q(full, "SELECT period, cdcs_code, members, is_carried_forward "
                                                         "FROM marts.fct_membership_monthly WHERE members > 0")}
    want = {(p, c): (len(people), (p, c) == (D(2025, 6, 1), "CS0000002"))
            for p, units in COUNTED.items() for c, people in units.items()}
    assert got == want
    # 34-province view (before the merger too) and 63-province view
    new = dict(((p, pv), n) for p, pv, n in _q(full, "SELECT period, province_new_code, sum(members) "
                                                       "FROM marts.fct_membership_monthly GROUP BY ALL"))
    old = dict(((p, pv), n) for p, pv, n in _q(full, "SELECT period, province_old_code, sum(members) "
                                                       "FROM marts.fct_membership_monthly GROUP BY ALL"))
    for p, units in COUNTED.items():
        in01 = len(units.get("CS0000001", [])) + len(units.get("CS0000003", []))
        assert new[(p, "01")] == old[(p, "01")] == in01
        assert new[(p, "08")] == old[(p, "02")] == len(units["CS0000002"])
    cube = dict(((p, pv), n) for p, pv, n in _q(full, "SELECT period, province_new_code, sum(members) "
                                                        "FROM marts.mart_membership_cube GROUP BY ALL"))
    assert cube == {k: v for k, v in new.items() if v}
    # the CĐCS is reparented on 1 July 2025: district union then commune union, T01 throughout
    scope = dict(((p, c), (t, u)) for p, c, t, u in _q(full, "SELECT period, cdcs_code, top_unit_code, "
                                                             "upper_unit_code FROM marts.fct_membership_monthly"))
    assert scope[(D(2025, 6, 1), "CS0000001")] == ("T01", "Q0101")
    assert scope[(D(2025, 7, 1), "CS0000001")] == ("T01", "X01001")
    assert scope[(D(2025, 6, 1), "CS0000002")] == ("T02", "Q0201")
    assert scope[(D(2025, 7, 1), "CS0000002")] == ("T08", "X08001")


@pytest.mark.slow
def test_events_joins_leaves_by_reason_transfers(builds):
    full, _ = builds
    got = sorted(_q(full, "SELECT period, event_type, cdcs_code, coalesce(leave_reason_code, ''), "
                          "coalesce(other_cdcs_code, ''), event_date, member_key FROM marts.fct_member_events"))
    k = {p: key_of(PEOPLE[p][4]) for p in ("P6", "P7", "P8", "P9", "P11", "P13")}
    want = sorted([
        (D(2025, 5, 1), "join", "CS0000001", "", "", D(2025, 5, 10), k["P6"]),
        (D(2025, 5, 1), "transfer_in", "CS0000002", "", "CS0000001", D(2025, 5, 15), k["P8"]),
        (D(2025, 5, 1), "transfer_out", "CS0000001", "", "CS0000002", D(2025, 5, 15), k["P8"]),
        (D(2025, 6, 1), "join", "CS0000001", "", "", D(2025, 6, 3), k["P11"]),
        (D(2025, 6, 1), "leave", "CS0000001", "retired", "", D(2025, 6, 20), k["P7"]),
        (D(2025, 6, 1), "leave", "CS0000003", "public_sector_exit", "", D(2025, 6, 1), k["P9"]),
        (D(2025, 6, 1), "leave", "CS0000003", "public_sector_exit", "", D(2025, 6, 1), k["P13"]),
    ])
    assert got == want
    flows = dict(((p, c), r) for p, c, *r in _q(full, "SELECT period, cdcs_code, joins, leaves, leaves_retired, "
                                                        "leaves_public_sector_exit, transfers_in, transfers_out "
                                                        "FROM marts.fct_membership_monthly"))
    assert flows[(D(2025, 5, 1), "CS0000001")] == [1, 0, 0, 0, 0, 1]
    assert flows[(D(2025, 6, 1), "CS0000003")] == [0, 2, 0, 2, 0, 0]


@pytest.mark.slow
def test_identity_keys_and_conflicts(builds):
    full, _ = builds
    keys = {r[0] for r in _q(full, "SELECT member_key FROM marts.dim_member")}
    want = {key_of(PEOPLE[f"P{i}"][4]) for i in range(1, 14)} | {key_of("cmnd:012345678")}
    assert keys == want  # P3's and P10's CMND rows belong to their CCCD person; P14 keeps a CMND key
    res = dict(_q(full, "SELECT identity_record, resolution FROM intermediate.int_member_keys "
                        "WHERE record_type = 'cmnd'"))
    assert res == {"cmnd:111222333": "cmnd_linked", "cmnd:987654321": "cmnd_same_row", "cmnd:012345678": "cmnd_only",
                   f"cmnd:{P8_CMND}": "cmnd_linked"}
    pii = dict((c, (cc, cm)) for c, cc, cm in _q(full, "SELECT member_key, cccd, cmnd FROM restricted.member_pii"))
    assert pii[key_of(PEOPLE["P10"][4])] == (PEOPLE["P10"][4], "987654321")
    assert pii[key_of("cmnd:012345678")] == (None, "012345678")
    names = dict(_q(full, "SELECT member_key, name_search FROM restricted.member_pii"))
    assert names[key_of("cmnd:012345678")] == "tran thi cu"
    # member_pii's current CĐCS, status and age band are dim_member's (computed from the same per-person states by
    # the same macros, not joined to it): a member lookup reads them from member_pii alone
    for db in (full, JULY["incremental"]):
        n, differ, both = _q(db, "SELECT count(*), count(*) FILTER (WHERE p.cdcs_code IS DISTINCT FROM d.cdcs_code "
                                 "OR p.status IS DISTINCT FROM d.status OR p.age_band IS DISTINCT FROM d.age_band), "
                                 "count(p.member_key) + count(d.member_key) FROM restricted.member_pii p "
                                 "FULL JOIN marts.dim_member d ON d.member_key = p.member_key")[0]
        assert n > 10 and differ == 0 and both == 2 * n, (db.name, n, differ, both)
    # P5's corrected name (July on) is his name now, in the full build, after July built on June's stored state,
    # and after August; the member search finds him by the new name only
    for db in (full, JULY["incremental"], JULY["full"], builds[1]):
        assert _q(db, "SELECT full_name, name_search FROM restricted.member_pii WHERE member_key = ?",
                  [key_of(PEOPLE["P5"][4])]) == [(P5_NEW_NAME, "nguyen van nguyen 5")], db.name
        hits = _q(db, "SELECT t.token, s.member_key FROM restricted.member_search_tokens t JOIN restricted.member_search s "
                      "USING (name_rank) WHERE s.member_key = ?", [key_of(PEOPLE["P5"][4])])
        assert sorted(t for t, _ in hits) == ["5", "nguyen", "van"], db.name
    conflicts = sorted(_q(full, "SELECT conflict_type, period, cdcs_code, coalesce(other_cdcs_code, ''), member_key "
                                "FROM marts.dq_member_conflicts"))
    assert conflicts == sorted([
        ("active_in_two_units", D(2025, 6, 1), "CS0000004", "CS0000001", key_of(PEOPLE["P4"][4])),
        ("active_in_two_units", D(2025, 7, 1), "CS0000004", "CS0000001", key_of(PEOPLE["P11"][4])),
        ("active_in_two_units", D(2025, 8, 1), "CS0000004", "CS0000002", key_of(PEOPLE["P12"][4])),
        ("cccd_two_people", D(2025, 4, 1), "CS0000002", "", key_of(PEOPLE["P12"][4])),
        # the corrected name is two ways of writing one CCCD: one key, and a row for a data steward to confirm
        ("cccd_two_people", D(2025, 4, 1), "CS0000001", "", key_of(PEOPLE["P5"][4])),
    ])
    # the key is a UUID where the per-person models work on it, its 32-digit text where analysts and the app read it
    types = {(s_, t, d) for s_, t, d in _q(full, "SELECT table_schema, table_name, data_type FROM "
                                                 "information_schema.columns WHERE column_name = 'member_key'")}
    assert {d for s_, t, d in types if s_ == "intermediate"} == {"UUID"}, types
    assert {d for s_, t, d in types if s_ in ("marts", "restricted")} == {"VARCHAR"}, types
    assert {t for s_, t, _ in types if s_ == "marts"} >= {"dim_member", "fct_member_events", "dq_member_conflicts",
                                                          "fct_service_deliveries", "fct_activity_participation"}
    # marts are de-identified: no CCCD, name, birth date or salary columns
    cols = {r[0] for r in _q(full, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts'")}
    assert not cols & {"cccd", "cmnd", "full_name", "name_search", "birth_date", "insurance_salary",
                       "ethnicity_code", "bhxh_code", "member_code"}
    # the secret is nowhere in the warehouse
    for schema, table, column in _q(full, "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                                          "WHERE data_type = 'VARCHAR' AND table_schema IN "
                                          "('marts', 'restricted', 'intermediate', 'reference')"):
        n = _q(full, f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains("{column}", ?)', [SECRET])[0][0]
        assert n == 0, (schema, table, column)


@pytest.mark.slow
def test_dues_services_activities_recruitment(builds):
    full, _ = builds
    dues = {(p, c): (m, e, col) for p, c, m, e, col in _q(full, "SELECT period, cdcs_code, members, dues_expected, "
                                                                 "dues_collected FROM marts.fct_dues_monthly")}
    for p, units in COUNTED.items():
        for c, people in units.items():
            collected = None if (p, c) == (D(2025, 6, 1), "CS0000002") else 100_000
            assert dues[(p, c)] == (len(people), sum(dues_due(x, p) for x in people), collected), (p, c)
    svc = sorted(_q(full, "SELECT period, program_code, amount, member_key IS NULL, is_health_related "
                          "FROM marts.fct_service_deliveries"))
    assert svc == [(D(2025, 5, 1), "tet_sum_vay", 500_000, False, False),
                   (D(2025, 5, 1), "tham_om", 300_000, True, True),
                   (D(2025, 7, 1), "hoc_bong", 1_000_000, False, False)]
    act = _q(full, "SELECT period, activity_type, count(*), count(DISTINCT member_key) "
                   "FROM marts.fct_activity_participation GROUP BY ALL")
    assert act == [(D(2025, 4, 1), "tap_huan", 2, 2)]
    rec = dict(((p, e), r) for p, e, *r in _q(full, "SELECT period, employer_code, insured_workers, members, "
                                                      "potential, has_cdcs FROM marts.fct_recruitment_potential"))
    assert rec[(D(2025, 4, 1), "E001")] == [20, 7, 13, True]
    assert rec[(D(2025, 4, 1), "E002")] == [3, 3, 0, True]
    assert rec[(D(2025, 4, 1), "E004")] == [10, 0, 10, True]
    assert rec[(D(2025, 4, 1), "E999")] == [50, 0, 50, False]


@pytest.mark.slow
def test_submissions_and_refused_rows(builds):
    full, _ = builds
    rows = _q(full, "SELECT branch_code, period, kind, submission_status, is_late FROM marts.fct_submissions")
    by = {}
    for b, p, k, st, late in rows:
        by.setdefault((b, p, k), []).append((st, late))
    assert sorted(by[("Q0101", D(2025, 4, 1), "roster")]) == [("accepted", False), ("superseded", False)]
    # the late correction (received 20/09) is the current version, and late
    assert sorted(by[("Q0101", D(2025, 5, 1), "roster")]) == [("accepted", True), ("duplicate", False),
                                                             ("superseded", False)]
    assert by[("Q0201", D(2025, 6, 1), "roster")] == [("not_submitted", False)]
    assert ("refused", False) in by[("Q0201", D(2025, 4, 1), "roster")]
    assert by[("X01001", D(2025, 8, 1), "roster")] == [("accepted", True)]
    refused = _q(full, "SELECT rule_code, source_row FROM marts.dq_refused_rows ORDER BY source_row")
    assert refused == [("cccd_layout", 40), ("date_invalid", 41)]
    cols = {r[0] for r in _q(full, "SELECT column_name FROM information_schema.columns "
                                   "WHERE table_schema = 'marts' AND table_name = 'dq_refused_rows'")}
    assert "value" not in cols and "raw_value" not in cols


@pytest.mark.slow
def test_statutory_report(builds):
    full, _ = builds
    rep = {(lvl, u): r for lvl, u, *r in _q(full, "SELECT unit_level, unit_code, members, new_members, transfers_in, "
                                                   "cdcs_count FROM marts.mart_statutory_report "
                                                   "WHERE report_date = DATE '2025-05-31'")}
    assert rep[("nation", "TLD")] == [13, 1, 1, 3]
    assert rep[("level_2", "T01")] == [9, 1, 0, 2]
    assert rep[("level_3", "Q0201")] == [4, 0, 1, 1]


@pytest.mark.slow
def test_incremental_month_by_month_equals_full_rebuild(builds):
    full, inc = builds
    # July linked P3's and P8's CMNDs to their CCCDs, seen for the first time (pure re-keys of April–June: P8's May
    # transfer events keep their figures and take the ids of the new key); August's row with P10's CMND beside his
    # CCCD merged two people already built (April–July restated)
    assert KEY_CHANGES == {"2025-07": [("cmnd:111222333", True, D(2025, 4, 1)), (f"cmnd:{P8_CMND}", True, D(2025, 4, 1))],
                           "2025-08": [("cmnd:987654321", False, D(2025, 4, 1))]}
    assert ORPHANS == {"2025-07": 0}  # April–June rows of P3 re-keyed in place (rekey_stored_rows)
    assert_same_tables(full, inc)
    # after July alone (restated from June: stored April–May summaries combined with the restated months)
    assert_same_tables(JULY["full"], JULY["incremental"])



@pytest.mark.slow
def test_restated_where_checks_the_restated_months_and_only_them(builds, tmp_path):
    """A data test with `where: restated:period` (fct_member_events' not_null on event_date) on an incremental run
    (periods 2025-07, restated from June): a null in a restated month fails it; the same null in May, a month
    this run did not write, is not read (it was checked when May was built)."""
    import duckdb

    root = JULY["incremental"].parent / "data"
    for month, fails in ((D(2025, 7, 1), True), (D(2025, 5, 1), False)):
        db = tmp_path / f"events-{month:%m}.duckdb"
        shutil.copyfile(JULY["incremental"], db)
        con = duckdb.connect(str(db))
        assert con.execute("UPDATE marts.fct_member_events SET event_date = NULL WHERE event_id = "
                           "(SELECT min(event_id) FROM marts.fct_member_events WHERE period = ?) RETURNING 1",
                           [month]).fetchall() == [(1,)]
        con.close()
        _data_tests_fail(["test", "--select", "fct_member_events,test_name:not_null"], db, root, tmp_path, fails)


def _data_tests_fail(run: list[str], db: Path, root: Path, tmp_path: Path, fails: bool) -> None:
    """Run the data tests `run` selects on `db` as the July incremental run (periods 2025-07): they must fail
    (`fails`) or pass."""
    if fails:
        with pytest.raises(AssertionError, match="failed"):
            dbt(run, db, root, tmp_path / "t", periods="2025-07")
    else:
        dbt(run, db, root, tmp_path / "t", periods="2025-07")


def test_variants_key_check_reads_the_variants_this_run_wrote(builds, tmp_path):
    """int_identity_variants' key check (`written_from_column: first_period`) on an incremental run (periods 2025-07):
    a variant written in July that repeats a stored one fails it, and so does one that repeats another July variant;
    two equal stored variants (both first written before July) are not read: they were checked when written."""
    import duckdb

    root = JULY["incremental"].parent / "data"
    variants = "intermediate.int_identity_variants"
    cases = {
        # (rows inserted: a copy of a variant, with its first month set to ...), the check fails
        "stored_repeated_in_july": (f"SELECT * REPLACE (DATE '2025-07-01' AS first_period) FROM {variants} "
                                    "WHERE first_period < DATE '2025-07-01' LIMIT 1", True),
        "july_repeated_in_july": (f"SELECT * FROM {variants} WHERE first_period = DATE '2025-07-01' LIMIT 1", True),
        "stored_repeated_before_july": (f"SELECT * FROM {variants} WHERE first_period < DATE '2025-07-01' LIMIT 1",
                                        False),
    }
    run = ["test", "--select", "int_identity_variants,test_name:unique_combination_of_columns"]
    dbt(run, JULY["incremental"], root, tmp_path / "t", periods="2025-07")  # as built: passes
    for name, (rows, fails) in cases.items():
        db = tmp_path / f"variants-{name}.duckdb"
        shutil.copyfile(JULY["incremental"], db)
        con = duckdb.connect(str(db))
        assert con.execute(f"INSERT INTO {variants} {rows} RETURNING 1").fetchall() == [(1,)], name
        con.close()
        _data_tests_fail(run, db, root, tmp_path, fails)


def test_records_rows_read_cccd_and_cmnd_records_of_all_history(builds, tmp_path):
    """macros/member_states.sql `member_states_records_rows` (the roster rows of all history of a few people, for a
    per-person state re-read after a merge): for a list of CCCD and CMND identity records it gives exactly the rows
    of int_roster_rows_monthly with those records, whether the list is written into the query (a few records) or
    matched through a temporary table (more than inline_max)."""
    root = JULY["incremental"].parent / "data"
    db = tmp_path / "records.duckdb"
    shutil.copyfile(JULY["incremental"], db)
    records = [r[0] for r in _q(db, "(SELECT identity_record FROM intermediate.int_member_keys WHERE identity_record "
                                     "LIKE 'cmnd:%' ORDER BY 1 LIMIT 2) UNION ALL (SELECT identity_record FROM "
                                     "intermediate.int_member_keys WHERE identity_record NOT LIKE 'cmnd:%' ORDER BY 1 "
                                     "LIMIT 2)")]
    assert sum(r.startswith("cmnd:") for r in records) == 2 and len(records) == 4, records
    # CCCDs alone too: a list of digits only, read back through dbt's run_query, must keep its leading zeros
    cccds = [r for r in records if not r.startswith("cmnd:")]
    assert any(c.startswith("0") for c in cccds), cccds
    row_key = "file_id || ':' || source_sheet || ':' || source_row || ':' || period"
    for chosen in (records, cccds):
        listed = ", ".join(f"'{r}'" for r in chosen)
        expected = sorted(r[0] for r in _q(db, f"SELECT {row_key} FROM intermediate.int_roster_rows_monthly "
                                               f"WHERE identity_record IN ({listed})"))
        assert expected
        for inline_max in (2000, 0):
            sql = (f"select {row_key} as k from {{{{ member_states_records_rows(\"select unnest([{listed}]) as "
                   f"identity_record\", 'doanvien_test_records', inline_max={inline_max}) }}}} as r")
            res = dbt(["show", "--inline", sql, "--limit", "-1"], db, root, tmp_path / "t", periods="2025-07")
            got = sorted(str(row[0]) for row in res.result.results[0].agate_table.rows)
            assert got == expected, (chosen, inline_max)


def test_a_merge_before_the_window_restates_only_those_peoples_earlier_months(builds, tmp_path):
    """August's run (periods May and August) merged P10's CMND person, first seen in April, into his CCCD person:
    restate_bounds gives w = May (the corrected month) and k = April. April is restated for int_restated_people only:
    P10's two keys (merged) and the others counted in his CĐCS in April (co_member). Every April row of the July
    build is marked; after August's run on that copy the marks are gone from those people's rows only (a build that
    restated April for everyone would clear them all), and their April rows equal the full build's."""
    import duckdb

    root = JULY["incremental"].parent / "data"
    full, _ = builds
    db = tmp_path / "august.duckdb"
    shutil.copyfile(JULY["incremental"], db)
    april = D(2025, 4, 1)
    marked = {"intermediate.int_member_unit_months": "insurance_salary", "restricted.member_history": "dues_due"}
    con = duckdb.connect(str(db))
    for table, column in marked.items():
        assert con.execute(f"UPDATE {table} SET {column} = -1 WHERE period = ? RETURNING 1", [april]).fetchall()
    con.close()
    dbt(["build", "--resource-type", "seed", "--resource-type", "model"], db, root, tmp_path / "t",
        periods="2025-05-01,2025-08-01")

    changes = _q(db, "SELECT previous_member_key, member_key FROM intermediate.int_member_key_changes "
                     "WHERE NOT is_pure_rename")
    assert len(changes) == 1, changes
    merged = {str(k) for k in changes[0]}
    people = dict(_q(db, "SELECT CAST(member_key AS VARCHAR), reason FROM intermediate.int_restated_people"))
    co_members = {str(k) for (k,) in _q(db, "SELECT member_key FROM intermediate.int_member_unit_months "
                                            "WHERE period = ? AND cdcs_code = 'CS0000002'", [april])} - merged
    assert len(co_members) == 2  # P12 and P14 (P10 is the merged person)
    assert people == {**{k: "merged" for k in merged}, **{k: "co_member" for k in co_members}}
    for table, column in marked.items():
        key = "CAST(member_key AS VARCHAR)" if table.startswith("intermediate") else "member_key"
        rewritten = {str(k) for (k,) in _q(db, f"SELECT {key} FROM {table} WHERE period = ? AND {column} <> -1",
                                            [april])}
        keys = {k if table.startswith("intermediate") else k.replace("-", "") for k in merged}
        assert rewritten and rewritten <= keys, (table, rewritten, keys)
        assert _q(db, f"SELECT count(*) FROM {table} WHERE period = ? AND {column} = -1", [april])[0][0] > 5, table
        # and the merged person's April rows are right
        con = duckdb.connect(str(full), read_only=True)
        try:
            con.execute(f"ATTACH '{db}' AS inc (READ_ONLY)")
            for a, b in (("", "inc."), ("inc.", "")):
                assert con.execute(f"SELECT count(*) FROM (SELECT * FROM {a}{table} WHERE period = ? AND {key} IN "
                                   f"(SELECT unnest(?)) EXCEPT ALL SELECT * FROM {b}{table})",
                                   [april, sorted(keys)]).fetchone()[0] == 0, (table, a)
        finally:
            con.close()


@pytest.mark.slow
def test_a_merge_months_before_the_window_equals_a_full_rebuild(builds, tmp_path):
    """The same raw zone without May's correction: August's run (periods 2025-08 only) merges P10's two people, both
    first seen in April, so restate_bounds gives k = April and w = August, and April to July are restated for
    int_restated_people only: P10's two keys and everyone counted in his CĐCS (P12, P14, and P8, who moved there by
    transfer in May: his transfer_in is recomputed by int_member_events' second part). Run on two copies of the July
    build: on one, every table then equals a full build of that zone; on the other, every row of April to July is
    marked first, and afterwards exactly the restated people's rows have lost the mark."""
    import duckdb

    root = tmp_path / "data"
    # and a June services file of Q0201 with a row of P10's CMND (not in the July build, whose month it is not: it
    # comes in as one of the merged person's rows of k .. w - 1, which a full build keys to him as well)
    p10_service = dict(cdcs_code="CS0000002", full_name=PEOPLE["P10"][0], cmnd="987654321", program="hoc_bong",
                       service_date=D(2025, 6, 10), amount=700_000)
    build_raw_zone(root, extra_files=[("Q0201", D(2025, 6, 1), "services", [p10_service])])
    run = ["build", "--resource-type", "seed", "--resource-type", "model"]
    months = [D(2025, 4, 1), D(2025, 7, 1)]
    people = "SELECT member_key FROM intermediate.int_restated_people"
    merged = people + " WHERE reason = 'merged'"
    text = "SELECT replace(CAST(member_key AS VARCHAR), '-', '') FROM ({}) AS p"
    marked = {  # table: (column, mark, the rows restated in those months)
        "intermediate.int_member_unit_months": ("insurance_salary", "-1", f"member_key IN ({merged})"),
        "restricted.member_history": ("dues_due", "-1", f"member_key IN ({text.format(merged)})"),
        "intermediate.int_member_events": ("event_date", "DATE '1900-01-01'", f"member_key IN ({people})"),
        "marts.fct_member_events": ("event_date", "DATE '1900-01-01'", f"member_key IN ({text.format(people)})"),
        # P10's CĐCS (COUNTED)
        "marts.fct_dues_monthly": ("salary_fund", "-1", "cdcs_code = 'CS0000002'"),
        "marts.fct_service_deliveries": ("amount", "-1", f"member_key IN ({text.format(merged)})"),
        # (P10 has none: every row keeps its mark)
        "marts.fct_activity_participation": ("activity_name", "'marked'", f"member_key IN ({text.format(merged)})"),
    }
    has_none = {"marts.fct_activity_participation"}
    db, marks_db, full = tmp_path / "incremental.duckdb", tmp_path / "marked.duckdb", tmp_path / "full.duckdb"
    shutil.copyfile(JULY["incremental"], db)
    shutil.copyfile(JULY["incremental"], marks_db)
    con = duckdb.connect(str(marks_db))
    for table, (column, mark, _) in marked.items():
        assert con.execute(f"UPDATE {table} SET {column} = {mark} WHERE period BETWEEN ? AND ? RETURNING 1",
                           months).fetchall(), table
    con.close()
    for target in (db, marks_db):
        dbt(run, target, root, tmp_path / "t", periods="2025-08")
    assert sorted(_q(db, CHANGES_SQL)) == [("cmnd:987654321", False, D(2025, 4, 1))]
    reasons = sorted(r for (r,) in _q(db, "SELECT reason FROM intermediate.int_restated_people"))
    assert reasons == ["co_member"] * 3 + ["merged"] * 2, reasons
    dbt(run, full, root, tmp_path / "t_full")
    assert_same_tables(full, db)
    for table, (column, mark, restated) in marked.items():
        counts = _q(marks_db, f"SELECT count(*) FILTER ({restated}), count(*) FILTER (NOT ({restated})), "
                              f"count(*) FILTER (({column} IS NOT DISTINCT FROM {mark}) = ({restated})) "
                              f"FROM {table} WHERE period BETWEEN ? AND ?", months)[0]
        assert (counts[0] == 0 if table in has_none else counts[0] > 0) and counts[1] > 0 and counts[2] == 0, \
            (table, counts)


def test_a_month_after_a_branchs_gap_restates_the_snapshots_of_that_month_only(builds, tmp_path):
    """July's run (periods 2025-07): Q0201 did not send June (carried forward from May), so events seen in its July
    roster may be dated into June, and the event models (int_member_events, fct_member_events,
    fct_membership_monthly) restate June and July (restate_bounds, dated). The month snapshots
    (monthly_restatement(dated=false)) stand on the roster carried into each month, which July's roster does not
    change: they restate July only. Run again on a copy of the July build with every June and July row marked (a
    mark of its own per table): the snapshots keep June's marks and lose July's, the event models lose both."""
    import duckdb

    root = tmp_path / "data"
    build_raw_zone(root, upto=D(2025, 7, 1))
    db = tmp_path / "july.duckdb"
    shutil.copyfile(JULY["incremental"], db)
    june, july = D(2025, 6, 1), D(2025, 7, 1)
    # table: (column, its mark)
    july_only = {"intermediate.int_member_unit_months": ("insurance_salary", "-1"),
                 "restricted.member_history": ("dues_due", "-2"),
                 "marts.fct_dues_monthly": ("salary_fund", "-3"),
                 "marts.fct_recruitment_potential": ("members", "-4")}
    june_and_july = {"intermediate.int_member_events": ("event_date", "DATE '1900-01-01'"),
                     "marts.fct_member_events": ("event_date", "DATE '1901-01-01'"),
                     "marts.fct_membership_monthly": ("women", "-5")}
    con = duckdb.connect(str(db))
    for table, (column, mark) in {**july_only, **june_and_july}.items():
        for month in (june, july):
            assert con.execute(f"UPDATE {table} SET {column} = {mark} WHERE period = ? RETURNING 1",
                               [month]).fetchall(), (table, month)
    con.close()
    dbt(["build", "--resource-type", "seed", "--resource-type", "model"], db, root, tmp_path / "t", periods="2025-07")

    def marked(table: str, column: str, mark: str, month: dt.date) -> int:
        return _q(db, f"SELECT count(*) FROM {table} WHERE period = ? AND {column} = {mark}", [month])[0][0]

    for table, (column, mark) in july_only.items():
        assert marked(table, column, mark, june) > 0 and marked(table, column, mark, july) == 0, table
    for table, (column, mark) in june_and_july.items():
        assert marked(table, column, mark, june) == 0 and marked(table, column, mark, july) == 0, table


@pytest.mark.slow
def test_episodes_kept_in_place_follow_entries_without_events_and_moved_boundaries(tmp_path, monkeypatch):
    """int_membership_episodes is kept in place: an incremental run replaces the episodes of the people its
    restated months can affect only (macros/episodes.sql). Two people only two of those rules find, built to June
    and then refreshed with July: P15 is first seen in July in a CĐCS nobody was counted in in June (an entry
    without an event: int_member_unit_months), and P2 was missing from Q0101's June roster, whose late corrected
    version (with P2) arrives with July (no event in the restated months; the stored episode closed in May is a
    boundary in the window). The refresh must equal a full build of the same files."""
    import duckdb

    mod = sys.modules[__name__]
    base_rosters = mod.rosters
    monkeypatch.setitem(PEOPLE, "P15", ("Phạm Văn Mới", D(1990, 2, 2), "M", "01", cccd(15), None, 7_000_000))

    def rosters():
        out = base_rosters()
        for per in (D(2025, 7, 1), D(2025, 8, 1)):
            out.setdefault(("C0201", per), []).append(member_row("P15", "CS0000004"))
        out[("Q0101", D(2025, 6, 1))] = [r for r in out[("Q0101", D(2025, 6, 1))] if r["member_code"] != "MCP2"]
        return out

    monkeypatch.setattr(mod, "rosters", rosters)
    late = [("Q0101", D(2025, 6, 1), base_rosters()[("Q0101", D(2025, 6, 1))], dt.datetime(2025, 8, 3, 9))]
    root, inc_db, full_db = tmp_path / "data", tmp_path / "inc.duckdb", tmp_path / "full.duckdb"
    run = ["build", "--resource-type", "seed", "--resource-type", "model"]
    build_raw_zone(root, upto=D(2025, 6, 1))
    dbt(run, inc_db, root, tmp_path / "t_inc")
    build_raw_zone(root, upto=D(2025, 7, 1), late_rosters=late)
    dbt(run, inc_db, root, tmp_path / "t_inc", periods="2025-06,2025-07")
    dbt(run, full_db, root, tmp_path / "t_full")
    assert_same_tables(full_db, inc_db)
    con = duckdb.connect(str(inc_db), read_only=True)
    try:
        got = {p: con.execute("SELECT start_event_type, valid_to, first_period, last_period, months, is_current "
                              "FROM intermediate.int_membership_episodes "
                              "WHERE replace(CAST(member_key AS VARCHAR), '-', '') = ?",
                              [key_of(PEOPLE[p][4])]).fetchall() for p in ("P2", "P15")}
    finally:
        con.close()
    assert got == {"P2": [("opening", None, D(2025, 4, 1), D(2025, 7, 1), 4, True)],
                   "P15": [("opening", None, D(2025, 7, 1), D(2025, 7, 1), 1, True)]}


@pytest.mark.slow
def test_member_keys_kept_in_place_drop_a_record_a_correction_removes(tmp_path, monkeypatch):
    """int_member_keys is kept in place: an incremental run writes only the CMND records and the CCCD records
    first written in its restated months (macros/member_keys.sql). Q0101's June roster first wrote P2 with a
    mistyped CCCD, a record seen nowhere else; its corrected version arrives with July. The refresh restating June
    must drop that record, as a full build of the same files never has it, and keep every other record's key
    and first month (P5, renamed from July, keeps the record first written in April)."""
    mod = sys.modules[__name__]
    base_rosters = mod.rosters
    typo = cccd(98)

    def rosters():
        out = base_rosters()
        out[("Q0101", D(2025, 6, 1))] = [dict(r, cccd=typo) if r["member_code"] == "MCP2" else r
                                         for r in out[("Q0101", D(2025, 6, 1))]]
        return out

    monkeypatch.setattr(mod, "rosters", rosters)
    late = [("Q0101", D(2025, 6, 1), base_rosters()[("Q0101", D(2025, 6, 1))], dt.datetime(2025, 8, 3, 9))]
    root, inc_db, full_db = tmp_path / "data", tmp_path / "inc.duckdb", tmp_path / "full.duckdb"
    run = ["build", "--resource-type", "seed", "--resource-type", "model"]
    keys_sql = "SELECT identity_record, first_period, is_new_record FROM intermediate.int_member_keys " \
               "WHERE identity_record IN (?, ?, ?)"
    build_raw_zone(root, upto=D(2025, 6, 1))
    dbt(run, inc_db, root, tmp_path / "t_inc")
    assert {r[0]: r[1:] for r in _q(inc_db, keys_sql, [typo, cccd(2, "F"), cccd(5)])} == {
        typo: (D(2025, 6, 1), True), cccd(2, "F"): (D(2025, 4, 1), True), cccd(5): (D(2025, 4, 1), True)}
    build_raw_zone(root, upto=D(2025, 7, 1), late_rosters=late)
    dbt(run, inc_db, root, tmp_path / "t_inc", periods="2025-06,2025-07")
    dbt(run, full_db, root, tmp_path / "t_full")
    assert_same_tables(full_db, inc_db)
    # the typo's record is gone; the others kept, their flags cleared (they were in the file the run started from)
    assert {r[0]: r[1:] for r in _q(inc_db, keys_sql, [typo, cccd(2, "F"), cccd(5)])} == {
        cccd(2, "F"): (D(2025, 4, 1), False), cccd(5): (D(2025, 4, 1), False)}


def assert_same_tables(full: Path, inc: Path) -> None:
    import duckdb

    con = duckdb.connect(str(full), read_only=True)
    try:
        con.execute(f"ATTACH '{inc}' AS inc (READ_ONLY)")
        for schema, tables in (("marts", MART_TABLES), ("restricted", ["member_pii", "member_history"]),
                               ("intermediate", ["int_member_month_states", "int_member_roster_states", "int_identity_variants", "int_membership_episodes",
                                                 "int_member_keys"])):
            for t in tables:
                # int_member_keys' flags say what changed since the file a build started from (verify.COMPARED_AS)
                cols = "* EXCLUDE (is_new_record, previous_member_key)" if t == "int_member_keys" else "*"
                a_minus_b = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {schema}.{t} EXCEPT ALL "
                                        f"SELECT {cols} FROM inc.{schema}.{t})").fetchone()[0]
                b_minus_a = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM inc.{schema}.{t} EXCEPT ALL "
                                        f"SELECT {cols} FROM {schema}.{t})").fetchone()[0]
                assert (a_minus_b, b_minus_a) == (0, 0), f"{schema}.{t} differs between full and incremental ({inc.name})"
    finally:
        con.close()


if __name__ == "__main__":  # pragma: no cover
    build_raw_zone(Path(sys.argv[1]), correction="--correction" in sys.argv)
