"""A small hand-built *published* warehouse for the report-email tests.

Mart names from CONTRACTS §6; the organisation registry (`registry/units.parquet`, CONTRACTS §2) as the
access engineer's `Scope` reads it. Two provinces that never meet in one brief:

    TLD ─┬─ T01  LĐLĐ thành phố Hà Nội (province 01)  ─┬─ Q0101 ─ CS0000001, CS0000002
         │                                              └─ Q0102 ─ CS0000003, CS0000004
         ├─ T79  LĐLĐ Thành phố Hồ Chí Minh (79)       ─── Q7901 ─ CS0000005, CS0000006
         └─ N05  CĐ ngành Xây dựng (sector)             ─── C0501 ─ CS0000007 (located in province 01)

Months 2024-05 .. 2025-05 (no merger inside the window, so every unit is valid throughout).
`restricted.member_pii` holds personal data that must never reach an email.
"""
from __future__ import annotations

import datetime as dt
import random

import duckdb
import pandas as pd

UNITS = [
    # code, name, level, upper_level_type, parent, province_new, province_old
    ("TLD", "Tổng Liên đoàn Lao động Việt Nam", "confederation", None, None, None, None),
    ("T01", "Liên đoàn Lao động thành phố Hà Nội", "province_federation", None, "TLD", "01", "01"),
    ("T79", "Liên đoàn Lao động Thành phố Hồ Chí Minh", "province_federation", None, "TLD", "79", "79"),
    ("N05", "Công đoàn ngành Xây dựng Việt Nam", "sector_union", None, "TLD", None, None),
    ("Q0101", "LĐLĐ quận Ba Đình", "upper_level", "district", "T01", "01", "01"),
    ("Q0102", "LĐLĐ quận Hoàn Kiếm", "upper_level", "district", "T01", "01", "01"),
    ("Q7901", "LĐLĐ Quận Một Sài Gòn", "upper_level", "district", "T79", "79", "79"),
    ("C0501", "Công đoàn Tổng công ty Sông Đà", "upper_level", "corporation", "N05", "01", "01"),
    ("CS0000001", "CĐCS Công ty May Thăng Long", "cdcs", None, "Q0101", "01", "01"),
    ("CS0000002", "CĐCS Trường THPT Phan Đình Phùng", "cdcs", None, "Q0101", "01", "01"),
    ("CS0000003", "CĐCS Bệnh viện Việt Đức", "cdcs", None, "Q0102", "01", "01"),
    ("CS0000004", "=HYPERLINK(\"http://evil\";\"CĐCS Công ty Điện lực\")", "cdcs", None, "Q0102", "01", "01"),
    ("CS0000005", "CĐCS Công ty Xi măng Bến Nghé", "cdcs", None, "Q7901", "79", "79"),
    ("CS0000006", "CĐCS Chợ Bến Thành", "cdcs", None, "Q7901", "79", "79"),
    ("CS0000007", "CĐCS Công ty Sông Đà 9", "cdcs", None, "C0501", "01", "01"),
]
# base members per CĐCS (T79's are large and distinctive, so a leak would show)
BASE = {"CS0000001": 1200, "CS0000002": 85, "CS0000003": 2300, "CS0000004": 410,
        "CS0000005": 7771, "CS0000006": 5553, "CS0000007": 640}
MONTHS = [dt.date(2024 + (4 + i) // 12, (4 + i) % 12 + 1, 1) for i in range(13)]  # 2024-05 .. 2025-05
LATEST = MONTHS[-1]
PII_NAME = "Nguyễn Thị Bímật"
PII_CCCD = "001190012345"
PII_BIRTH = dt.date(1990, 3, 17)


def unit_row(code):
    for u in UNITS:
        if u[0] == code:
            return u
    raise KeyError(code)


def lineage(cdcs):
    """(upper_unit_code, top_unit_code, province_new_code) of a CĐCS."""
    u = unit_row(cdcs)
    up = unit_row(u[4])
    return up[0], up[4], u[5]


def write_registry(root):
    reg = root / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame([{
        "unit_code": c, "unit_name": n, "level": lvl, "upper_level_type": ult, "parent_code": p,
        "province_old_code": po, "province_new_code": pn, "sector_code": "05" if c in ("N05", "C0501", "CS0000007") else None,
        "ownership_type": "ngoai_nn" if lvl == "cdcs" else None, "industry_code": "C" if lvl == "cdcs" else None,
        "employer_code": None, "valid_from": dt.date(2020, 1, 1), "valid_to": None} for c, n, lvl, ult, p, pn, po in UNITS])
    df["valid_to"] = pd.Series([None] * len(df), dtype="object")
    df.to_parquet(reg / "units.parquet", index=False)


def membership_rows(seed=7):
    rnd = random.Random(seed)
    rows = []
    for cs, base in BASE.items():
        members = base
        up, top, prov = lineage(cs)
        for i, m in enumerate(MONTHS):
            joins = rnd.randint(0, max(1, base // 40))
            leaves = rnd.randint(0, max(1, base // 50))
            if cs == "CS0000003" and m == LATEST:
                leaves += 400  # a sharp drop in the latest month
            members = members + joins - leaves
            rows.append({"period": m, "cdcs_code": cs, "upper_unit_code": up, "top_unit_code": top,
                         "province_new_code": prov, "members": members, "joins": joins, "leaves": leaves,
                         "transfers_in": 0, "transfers_out": 0, "is_carried_forward": False})
    return pd.DataFrame(rows)


def build(con: duckdb.DuckDBPyConnection):
    for s in ("marts", "restricted"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    mm = membership_rows()
    con.register("mm", mm)
    con.execute("CREATE TABLE marts.fct_membership_monthly AS SELECT period::DATE AS period, * EXCLUDE (period) FROM mm")
    units = pd.DataFrame([{"unit_code": c, "unit_name": n, "level": lvl, "parent_code": p, "province_new_code": pn,
                           "province_old_code": po, "valid_from": dt.date(2020, 1, 1), "valid_to": None}
                          for c, n, lvl, _ult, p, pn, po in UNITS])
    con.register("uu", units)
    con.execute("CREATE TABLE marts.dim_union_unit AS SELECT * REPLACE (valid_from::DATE AS valid_from,"
                " valid_to::DATE AS valid_to) FROM uu")
    # dues: everyone pays ~all except CS0000004 (arrears); 1 % of an average salary of 8,000,000
    dues = mm[["period", "cdcs_code", "upper_unit_code", "top_unit_code", "province_new_code", "members"]].copy()
    dues["dues_expected"] = dues["members"] * 80_000
    dues["dues_collected"] = [int(e * (0.5 if c == "CS0000004" else 0.97)) for e, c in
                              zip(dues["dues_expected"], dues["cdcs_code"])]
    dues = dues.rename(columns={"members": "members_count"})
    con.register("dd", dues)
    con.execute("CREATE TABLE marts.fct_dues_monthly AS SELECT period::DATE AS period, * EXCLUDE (period) FROM dd")
    # services: a few deliveries per CĐCS and month (member_key only, de-identified)
    rnd = random.Random(3)
    sv = []
    for r in mm.itertuples():
        for k in range(rnd.randint(0, 3)):
            sv.append({"service_date": r.period + dt.timedelta(days=3 + k), "period": r.period, "cdcs_code": r.cdcs_code,
                       "upper_unit_code": r.upper_unit_code, "top_unit_code": r.top_unit_code,
                       "province_new_code": r.province_new_code, "program": "tham_om", "amount": 500_000,
                       "member_key": f"k{rnd.randint(0, 10**9):09d}"})
    con.register("sv", pd.DataFrame(sv))
    con.execute("CREATE TABLE marts.fct_service_deliveries AS SELECT service_date::DATE AS service_date,"
                " period::DATE AS period, * EXCLUDE (service_date, period) FROM sv")
    # submissions: every branch sends every month, except Q0102 for the latest month
    subm = []
    for m in MONTHS:
        for b in ("Q0101", "Q0102", "Q7901", "C0501"):
            if b == "Q0102" and m == LATEST:
                continue
            subm.append({"branch_code": b, "period": m, "kind": "roster", "file_id": f"{b}{m:%Y%m}".lower(),
                         "status": "accepted", "received_at": dt.datetime(m.year, m.month, 5, 9)})
    con.register("sb", pd.DataFrame(subm))
    con.execute("CREATE TABLE marts.fct_submissions AS SELECT period::DATE AS period, * EXCLUDE (period) FROM sb")
    ref = [{"file_id": "q0101202505", "branch_code": "Q0101", "period": LATEST, "source_row": 10 + i,
            "rule": "cccd_layout", "column_name": "cccd"} for i in range(3)]
    ref += [{"file_id": "q7901202505", "branch_code": "Q7901", "period": LATEST, "source_row": 7,
             "rule": "date_invalid", "column_name": "birth_date"}]
    con.register("rf", pd.DataFrame(ref))
    con.execute("CREATE TABLE marts.dq_refused_rows AS SELECT period::DATE AS period, * EXCLUDE (period) FROM rf")
    # statutory report (unit x report date), one row per CĐCS
    st = []
    for r in mm[mm["period"] == LATEST].itertuples():
        st.append({"unit_code": r.cdcs_code, "unit_name": unit_row(r.cdcs_code)[1], "report_date": dt.date(2025, 5, 31),
                   "cdcs_code": r.cdcs_code, "upper_unit_code": r.upper_unit_code, "top_unit_code": r.top_unit_code,
                   "province_new_code": r.province_new_code, "members": r.members,
                   "women_members": r.members // 2, "new_members_6m": 30})
    con.register("st", pd.DataFrame(st))
    con.execute("CREATE TABLE marts.mart_statutory_report AS SELECT report_date::DATE AS report_date,"
                " * EXCLUDE (report_date) FROM st")
    con.execute("CREATE TABLE restricted.member_pii AS SELECT ? AS full_name, ? AS cccd, ?::DATE AS birth_date,"
                " 9500000 AS insurance_salary, 'CS0000001' AS cdcs_code", [PII_NAME, PII_CCCD, PII_BIRTH])
    for t in ("mm", "uu", "dd", "sv", "sb", "rf", "st"):
        con.unregister(t)


def publish(root, run_id: str = "fixture"):
    """Write the registry and publish the fixture warehouse under the data root `root`
    (DOANVIEN_DATA_DIR must point to it)."""
    from pipelines.warehouse import serving

    write_registry(root)
    path = serving.build_dir() / f"{run_id}.duckdb"
    con = duckdb.connect(str(path))
    build(con)
    serving.checkpoint_and_close(con, path)
    version = serving.new_version_id(run_id)
    serving.stamp_version(path, version, run_id)
    return serving.publish(path, version=version, run_id=run_id)
