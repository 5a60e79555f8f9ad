"""A small, hand-made data root for the access tests: a registry whose tree changes on 1 July 2025, and a
published warehouse (full + analyst file, through the real `pipelines.warehouse.serving.publish`) with the
marts and restricted tables the access code reads. Names include HTML/script to test escaping.

The oracle `visible_cdcs(unit, period)` is written independently of `pipelines.access.scope` (from the
PARENTS tables below), so the property tests compare two implementations.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import duckdb

D0 = dt.date(2024, 1, 1)
MERGER = dt.date(2025, 7, 1)
PRE_END = dt.date(2025, 6, 30)
PUBLIC_END = dt.date(2025, 5, 31)
PERIODS = [dt.date(2025, m, 1) for m in range(1, 13)]
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'

# upper-level and top units: code -> (name, level, upper_type, parent, province_old, province_new, from, to)
UNITS = {
    "TLD": ("Tổng Liên đoàn Lao động Việt Nam", "confederation", None, None, None, None, D0, None),
    "T01": ("LĐLĐ Thành phố Hà Nội", "province_federation", None, "TLD", "01", "01", D0, None),
    "T02": ("LĐLĐ tỉnh Hà Giang", "province_federation", None, "TLD", "02", "08", D0, PRE_END),
    "T08": ("LĐLĐ tỉnh Tuyên Quang", "province_federation", None, "TLD", "08", "08", D0, None),
    "N05": ("Công đoàn Công Thương Việt Nam", "sector_union", None, "TLD", None, None, D0, None),
    "Q0101": ("LĐLĐ quận Ba Đình", "upper_level", "district", "T01", "01", "01", D0, PRE_END),
    "X01001": ("CĐ phường Ba Đình", "upper_level", "commune_ward", "T01", "01", "01", MERGER, None),
    "Q0201": ("LĐLĐ huyện Vị Xuyên " + XSS, "upper_level", "district", "T02", "02", "08", D0, PRE_END),
    "Q0801": ("LĐLĐ thành phố Tuyên Quang", "upper_level", "district", "T08", "08", "08", D0, PRE_END),
    "K0801": ("CĐ các KCN tỉnh Tuyên Quang", "upper_level", "industrial_zone", "T08", "08", "08", D0, PRE_END),
    "X08001": ("CĐ phường Minh Xuân", "upper_level", "commune_ward", "T08", "08", "08", MERGER, None),
    "X08002": ("CĐ xã Vị Xuyên", "upper_level", "commune_ward", "T08", "08", "08", MERGER, None),
    "C0501": ("CĐ Tổng công ty Thép", "upper_level", "corporation", "N05", None, "08", D0, None),
}
# CĐCS: code -> (name, parent before the merger, parent after (None: closed), province_old, province_new, to)
CDCS = {
    "CS0000001": ("CĐCS Công ty May Hà Giang", "Q0201", "X08002", "02", "08", None),
    "CS0000002": ("CĐCS Trường THPT Chuyên " + XSS, "Q0801", "X08001", "08", "08", None),
    "CS0000003": ("CĐCS Công ty Xi măng", "Q0801", "X08002", "08", "08", None),
    "CS0000004": ("CĐCS Công ty Điện tử KCN", "K0801", "X08001", "08", "08", None),
    "CS0000005": ("CĐCS Sở Tài chính Hà Giang", "Q0201", None, "02", "08", PUBLIC_END),
    "CS0000006": ("CĐCS Công ty Bánh kẹo Hà Nội", "Q0101", "X01001", "01", "01", None),
    "CS0000007": ("CĐCS Nhà máy Thép Tuyên Quang", "C0501", "C0501", "08", "08", None),
    "CS0000008": ("CĐCS Bệnh viện tư Hà Nội", "Q0101", "X01001", "01", "01", None),
}
FIRST_NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Hoàng Đức Em",
               "Vũ Thị Giang", "Đặng Quốc Huy", "Bùi Thị Hòa"]

PASSWORDS = {r: f"Test-{r}-pass1" for r in ("admin", "national_leader", "province_leader", "upper_official",
                                              "cdcs_official", "analyst", "member")}


def parent_of(cdcs: str, period: dt.date) -> str | None:
    name, before, after, _po, _pn, to = CDCS[cdcs]
    if period < MERGER:
        return before
    return before if to is not None else after  # a closed CĐCS keeps its last version


def top_of(unit: str, period: dt.date) -> str:
    u = UNITS[unit]
    return unit if u[1] in ("province_federation", "sector_union") else u[3]


def cdcs_exists(cdcs: str, period: dt.date) -> bool:
    to = CDCS[cdcs][5]
    return to is None or period <= to


def _valid(unit: str, period: dt.date) -> bool:
    vf, vt = UNITS[unit][6], UNITS[unit][7]
    return vf <= period and (vt is None or vt >= period)


def visible_cdcs(unit: str, period: dt.date) -> set[str]:
    """Oracle: the CĐCS an official of `unit` may see for `period` (rules of docs/ACCESS.md)."""
    if unit == "TLD":
        return set(CDCS)
    if unit in CDCS:
        return {unit}
    _name, level, _t, _parent, _po, pnew, vf, vt = UNITS[unit]
    if vt is not None and period > vt:
        return set()
    if period < vf:  # before the unit existed: the CĐCS that are its own at its start
        return {c for c in CDCS if parent_of(c, vf) == unit and cdcs_exists(c, vf)}
    out = set()
    for c in CDCS:
        up = parent_of(c, period)
        if not (cdcs_exists(c, period) or _valid(up, period)):
            continue
        if level == "upper_level":
            if up == unit:
                out.add(c)
            continue
        top = top_of(up, period)
        host = level == "province_federation" and UNITS[unit][4] == pnew  # the new province keeps its code
        if top == unit or (host and UNITS[top][1] == "province_federation"
                           and UNITS[top][5] == pnew and _valid(top, period)):
            out.add(c)
    return out


def _member_key(cccd: str) -> str:
    return hashlib.md5(("test-secret" + cccd).encode()).hexdigest()


def members() -> list[dict]:
    out = []
    i = 0
    for c in sorted(CDCS):
        for j in range(3):
            i += 1
            cccd = f"0{(i % 9) + 1:02d}0{90 + j}{i:06d}"[:12].ljust(12, "0")
            name = FIRST_NAMES[i % len(FIRST_NAMES)]
            if c == "CS0000002" and j == 0:
                name = "Ngô " + XSS
            out.append({"member_key": _member_key(cccd), "member_code": f"DV{i:08d}", "full_name": name,
                        "cccd": cccd, "birth_date": dt.date(1980 + i % 20, 1 + i % 12, 1 + i % 27),
                        "gender": "F" if i % 2 else "M", "cdcs_code": c, "join_date": dt.date(2020, 1 + i % 12, 1),
                        "insurance_salary": 6_000_000 + 500_000 * i})
    return out


def fold(s: str) -> str:
    from pipelines.access.lookup import fold as f
    return f(s)


def _age_band(birth_year: int, year: int = 2025) -> str:
    """The band dbt's age_band macro gives in the fixture's latest year (what member_pii.age_band holds)."""
    age = year - birth_year
    return ("under_30" if age < 30 else "30_39" if age < 40 else "40_49" if age < 50 else "50_59" if age < 60
            else "60_plus")


def build(root: Path) -> dict:
    """Write registry, ledger and a published warehouse under the data root `root` (DOANVIEN_DATA_DIR)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.environ["DOANVIEN_DATA_DIR"] = str(root)
    (root / "registry").mkdir(parents=True, exist_ok=True)
    rows = []
    for code, (name, level, ut, parent, po, pn, vf, vt) in UNITS.items():
        rows.append(dict(unit_code=code, unit_name=name, level=level, upper_level_type=ut, parent_code=parent,
                         province_old_code=po, province_new_code=pn, sector_code="05" if code in ("N05", "C0501") else None,
                         ownership_type=None, industry_code=None, employer_code=None, valid_from=vf, valid_to=vt))
    for code, (name, before, after, po, pn, to) in CDCS.items():
        common = dict(unit_code=code, unit_name=name, level="cdcs", upper_level_type=None, province_old_code=po,
                      province_new_code=pn, sector_code=None, ownership_type="fdi", industry_code="C",
                      employer_code="E" + code[2:])
        if to is not None:
            rows.append(dict(common, parent_code=before, valid_from=D0, valid_to=to))
        elif before == after:
            rows.append(dict(common, parent_code=before, valid_from=D0, valid_to=None))
        else:
            rows.append(dict(common, parent_code=before, valid_from=D0, valid_to=PRE_END))
            rows.append(dict(common, parent_code=after, valid_from=MERGER, valid_to=None))
    pq.write_table(pa.Table.from_pylist(rows), root / "registry" / "units.parquet")

    # ledger (raw/files) for upload history
    (root / "raw" / "files").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([dict(
        file_id="a" * 16, sha256="a" * 64, branch_code="X08001", period=dt.date(2025, 9, 1), kind="roster",
        detected_kind="roster", original_name="ds " + XSS + ".xlsx", received_at=dt.datetime(2025, 10, 2, 8),
        status="refused", reason_code="wrong_kind", message_vi="Sai loại tệp", rows_read=10, rows_accepted=0,
        rows_refused=10, format="xlsx", encoding=None, ingested_at=dt.datetime(2025, 10, 2, 8, 1))]),
        root / "raw" / "files" / ("a" * 16 + ".parquet"))

    from pipelines.warehouse import serving
    build_path = serving.build_dir() / "test.duckdb"
    if build_path.exists():
        build_path.unlink()
    con = duckdb.connect(str(build_path))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA restricted")
    # the real mart's column names (marts.dim_union_unit: unit_level, not the registry's level)
    con.execute("CREATE TABLE marts.dim_union_unit AS SELECT * RENAME (level AS unit_level), "
                "valid_to IS NULL AS is_current FROM read_parquet(?)", [str(root / "registry" / "units.parquet")])
    con.execute("COMMENT ON TABLE marts.dim_union_unit IS 'Đơn vị công đoàn (SCD2) / union units'")
    mrows, cube, evs, svc, act, dues, mm = [], {}, [], [], [], [], []
    ms = members()
    for p in PERIODS:
        for c in CDCS:
            if not cdcs_exists(c, p):
                continue
            up = parent_of(c, p)
            top = top_of(up, p)
            n = sum(1 for m in ms if m["cdcs_code"] == c)
            mrows.append((p, c, up, top, CDCS[c][4], CDCS[c][3], n))
            k = (p, CDCS[c][4], top, up)
            cube[k] = cube.get(k, 0) + n
            dues.append((p, c, up, top, CDCS[c][4], n * 60_000, n * 50_000))
    for m in ms:
        c = m["cdcs_code"]
        evs.append((m["member_key"], m["join_date"], m["join_date"].replace(day=1), "join", c, None, None))
        for p in PERIODS:
            if cdcs_exists(c, p):
                mm.append((m["member_key"], p, c, m["insurance_salary"]))
        svc.append((m["member_key"], dt.date(2025, 2, 3), dt.date(2025, 2, 1), "tet_sum_vay", 500_000, c,
                    parent_of(c, dt.date(2025, 2, 1)), top_of(parent_of(c, dt.date(2025, 2, 1)), dt.date(2025, 2, 1)),
                    CDCS[c][4]))
        act.append((m["member_key"], dt.date(2025, 3, 8), dt.date(2025, 3, 1), "van_hoa_the_thao",
                    "Hội thao 8/3 " + ("<b>x</b>" if c == "CS0000002" else ""), c))
    con.execute("CREATE TABLE marts.fct_membership_monthly (period DATE, cdcs_code VARCHAR, upper_unit_code VARCHAR, "
                "top_unit_code VARCHAR, province_new_code VARCHAR, province_old_code VARCHAR, members INTEGER)")
    con.executemany("INSERT INTO marts.fct_membership_monthly VALUES (?,?,?,?,?,?,?)", mrows)
    con.execute("COMMENT ON TABLE marts.fct_membership_monthly IS 'Đoàn viên theo tháng × CĐCS'")
    con.execute("COMMENT ON COLUMN marts.fct_membership_monthly.members IS 'Số đoàn viên cuối tháng'")
    con.execute("CREATE TABLE marts.mart_membership_cube (period DATE, province_new_code VARCHAR, top_unit_code VARCHAR, "
                "upper_unit_code VARCHAR, members INTEGER)")
    con.executemany("INSERT INTO marts.mart_membership_cube VALUES (?,?,?,?,?)", [(*k, v) for k, v in cube.items()])
    con.execute("CREATE TABLE marts.fct_dues_monthly (period DATE, cdcs_code VARCHAR, upper_unit_code VARCHAR, "
                "top_unit_code VARCHAR, province_new_code VARCHAR, dues_expected BIGINT, dues_collected BIGINT)")
    con.executemany("INSERT INTO marts.fct_dues_monthly VALUES (?,?,?,?,?,?,?)", dues)
    # dim_member, member_pii and member_history with the real warehouse's columns (dbt marts/restricted)
    con.execute("CREATE TABLE marts.dim_member (member_key VARCHAR, gender VARCHAR, birth_year INTEGER, "
                "cdcs_code VARCHAR, is_active BOOLEAN, status VARCHAR, first_join_date DATE)")
    con.executemany("INSERT INTO marts.dim_member VALUES (?,?,?,?,?,?,?)",
                    [(m["member_key"], m["gender"], m["birth_date"].year, m["cdcs_code"], True, "active",
                      m["join_date"]) for m in ms])
    con.execute("CREATE TABLE marts.fct_member_events (member_key VARCHAR, event_date DATE, period DATE, "
                "event_type VARCHAR, cdcs_code VARCHAR, leave_reason_code VARCHAR, other_cdcs_code VARCHAR)")
    con.executemany("INSERT INTO marts.fct_member_events VALUES (?,?,?,?,?,?,?)", evs)
    con.execute("CREATE TABLE marts.fct_service_deliveries (member_key VARCHAR, service_date DATE, period DATE, "
                "program_code VARCHAR, amount BIGINT, cdcs_code VARCHAR, upper_unit_code VARCHAR, "
                "top_unit_code VARCHAR, province_new_code VARCHAR)")
    con.executemany("INSERT INTO marts.fct_service_deliveries VALUES (?,?,?,?,?,?,?,?,?)", svc)
    con.execute("CREATE TABLE marts.fct_activity_participation (member_key VARCHAR, activity_date DATE, "
                "period DATE, activity_type VARCHAR, activity_name VARCHAR, cdcs_code VARCHAR)")
    con.executemany("INSERT INTO marts.fct_activity_participation VALUES (?,?,?,?,?,?)", act)
    con.execute("CREATE TABLE restricted.member_pii (member_key VARCHAR, cccd VARCHAR, full_name VARCHAR, "
                "name_search VARCHAR, birth_date DATE, gender VARCHAR, member_code VARCHAR, cdcs_code VARCHAR, "
                "insurance_salary BIGINT, join_date DATE, status VARCHAR, age_band VARCHAR)")
    con.executemany("INSERT INTO restricted.member_pii VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(m["member_key"], m["cccd"], m["full_name"], fold(m["full_name"]), m["birth_date"],
                      m["gender"], m["member_code"], m["cdcs_code"], m["insurance_salary"], m["join_date"], "active",
                      _age_band(m["birth_date"].year)) for m in ms])
    con.execute("CREATE TABLE restricted.member_history (member_key VARCHAR, period DATE, cdcs_code VARCHAR, "
                "is_carried_forward BOOLEAN, insurance_salary BIGINT, dues_due BIGINT)")
    con.executemany("INSERT INTO restricted.member_history VALUES (?,?,?,?,?,?)",
                    [(k, p, c, False, sal, min(round((0.01 if p < MERGER else 0.005) * sal), 234_000))
                     for k, p, c, sal in mm])
    con.close()
    serving.stamp_version(build_path, "20260101T000000Z-test", "test")
    analyst = serving.build_dir() / "test.analyst.duckdb"
    serving.make_analyst_copy(build_path, analyst)
    v = serving.publish(build_path, version="20260101T000000Z-test", run_id="test", analyst_build_path=analyst)
    return {"version": v, "members": ms}
