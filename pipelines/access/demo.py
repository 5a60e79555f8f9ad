"""Demo accounts on real units and a real member of the current data (`doanvien users demo-accounts`).

The passwords below are public (docs/ACCESS.md): never run this on a production data root
(refused when DOANVIEN_PRODUCTION=1).
"""
from __future__ import annotations

import datetime as dt
import os

from pipelines.access import accounts
from pipelines.access.scope import load_registry

DEMO = {
    "admin": ("QuanTri@2025", "admin", "Quản trị hệ thống (demo)"),
    "lanhdao": ("LanhDao@2025", "national_leader", "Lãnh đạo Tổng Liên đoàn (demo)"),
    "lanhdao.tinh": ("LanhDaoTinh@2025", "province_leader", "Lãnh đạo LĐLĐ tỉnh (demo)"),
    "canbo.xa": ("CanBoXa@2025", "upper_official", "Cán bộ CĐ xã/phường (demo)"),
    "canbo.cdcs": ("CanBoCS@2025", "cdcs_official", "Cán bộ CĐCS (demo)"),
    "phantich": ("PhanTich@2025", "analyst", "Chuyên viên phân tích (demo)"),
    "doanvien": ("DoanVien@2025", "member", "Đoàn viên (demo)"),
}


def _open(u, today) -> bool:
    return u.valid_from <= today and (u.valid_to is None or u.valid_to >= today)


def pick_units(today: dt.date | None = None) -> dict:
    """A merged province's federation, one of its commune/ward unions with the most CĐCS, one CĐCS there."""
    reg = load_registry()
    if not reg:
        raise RuntimeError("Chưa có sổ đăng ký đơn vị / no unit registry: run `doanvien generate` first")
    latest = max((u.valid_from for u in reg), default=dt.date.today())
    today = today or max(dt.date.today(), latest)
    open_units = [u for u in reg if _open(u, today)]
    feds = [u for u in open_units if u.level == "province_federation"]
    if not feds:
        raise RuntimeError("Không có LĐLĐ tỉnh trong sổ đăng ký / no provincial federation in the registry")
    olds: dict[str, set] = {}
    for u in reg:
        if u.level == "province_federation" and u.province_new:
            olds.setdefault(u.province_new, set()).add(u.code)
    children: dict[str, list] = {}
    for u in open_units:
        if u.parent:
            children.setdefault(u.parent, []).append(u)

    def n_cdcs(code):
        return sum(1 for c in children.get(code, []) if c.level == "cdcs")

    def uppers(fed):
        return [c for c in children.get(fed.code, []) if c.level == "upper_level"]

    def total_cdcs(f):
        return sum(n_cdcs(x.code) for x in uppers(f))

    # a federation that has CĐCS in this data first (the small data set covers one or two provinces only),
    # then the one merged from the most old provinces
    fed = max(feds, key=lambda f: (total_cdcs(f) > 0, len(olds.get(f.province_new, ())), total_cdcs(f), f.code))
    ups = sorted(uppers(fed), key=lambda x: (x.code[0] != "X", -n_cdcs(x.code), x.code))
    upper = ups[0] if ups else None
    cdcs_list = sorted([c for c in children.get(upper.code, []) if c.level == "cdcs"], key=lambda c: c.code) \
        if upper else []
    return {"province": fed, "upper": upper, "cdcs": cdcs_list}


def _pick_member(cdcs_codes: list[str]) -> tuple[str | None, str | None, str | None]:
    """(member_key, member_code, cdcs_code) of an active member of one of these CĐCS, from the warehouse."""
    try:
        from pipelines.access.lookup import _current_unit_sql
        from pipelines.access.warehouse import connect_full, table_columns
        with connect_full() as con:
            cur_sql, _ = _current_unit_sql(con)
            pii = set(table_columns(con, "restricted", "member_pii"))
            mc = "p.member_code" if "member_code" in pii else "NULL"
            for code in cdcs_codes:
                r = con.execute(f"WITH cur AS ({cur_sql}) SELECT p.member_key, {mc} FROM restricted.member_pii p "
                                "JOIN cur USING (member_key) WHERE cur.cdcs_code = ? ORDER BY p.member_key LIMIT 1",
                                [code]).fetchone()
                if r:
                    return r[0], r[1], code
    except Exception:  # noqa: BLE001 - no warehouse yet
        return None, None, None
    return None, None, None


def create_demo_accounts() -> list[dict]:
    if os.environ.get("DOANVIEN_PRODUCTION") == "1":
        raise RuntimeError("DOANVIEN_PRODUCTION=1: demo accounts refused")
    picks = pick_units()
    fed, upper, cdcs_list = picks["province"], picks["upper"], picks["cdcs"]
    member_key, member_code, member_cdcs = _pick_member([c.code for c in cdcs_list])
    cdcs_code = member_cdcs or (cdcs_list[0].code if cdcs_list else None)
    links = {
        "admin": (None, None, None, ""),
        "lanhdao": ("TLD", None, None, "toàn quốc / whole country"),
        "lanhdao.tinh": (fed.code, None, None, f"{fed.name}"),
        "canbo.xa": (upper.code if upper else None, None, None, upper.name if upper else ""),
        "canbo.cdcs": (cdcs_code, None, None, next((c.name for c in cdcs_list if c.code == cdcs_code), "")),
        "phantich": (None, None, None, "marts, SQL"),
        "doanvien": (None, member_key, member_code, f"đoàn viên của / member of {cdcs_code}"),
    }
    out = []
    for username, (password, role, name) in DEMO.items():
        unit, mkey, mcode, note = links[username]
        if role in accounts.UNIT_ROLES and not unit:
            continue
        if role == "member" and not (mkey or mcode):
            note = "chưa tạo: cần kho dữ liệu / not created: run `doanvien refresh` first"
            out.append({"username": username, "password": "-", "role": role, "link": "-", "note": note})
            continue
        accounts.create_user(username, display_name=name, role=role, password=password,
                             unit_code=unit if role in accounts.UNIT_ROLES or role == "national_leader" else None,
                             member_key=mkey, member_code=mcode, replace_existing=True)
        out.append({"username": username, "password": password, "role": role,
                    "link": unit or mcode or (mkey[:12] + "…" if mkey else "-"), "note": note})
    return out
