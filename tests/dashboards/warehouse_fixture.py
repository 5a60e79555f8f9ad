"""A small hand-built warehouse with the contract's mart names (docs/CONTRACTS.md §6), published through
`pipelines.warehouse.serving` exactly as a real build is. Used by the dashboard tests and the browser test
until (and beside) the real `doanvien refresh` warehouse.

Two new provinces (01 Hà Nội; 08 Tuyên Quang = old 02 Hà Giang + old 08 Tuyên Quang), one sector union
(N02), district/industrial-zone unions until 30/06/2025, commune unions from 01/07/2025, a corporation
union throughout, 12 CĐCS (two public-sector ones end 31/05/2025, one founded 09/2025), about a thousand
synthetic members, months 07/2024 to 12/2025. Every table is derived from one member panel, so the
tables agree with one another.

    python tests/dashboards/warehouse_fixture.py DATA_DIR    # publish into DATA_DIR/warehouse
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import sys
from pathlib import Path

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MERGER = dt.date(2025, 7, 1)
EXIT = dt.date(2025, 6, 1)
PERIODS = [dt.date(2024 + (6 + i) // 12, (6 + i) % 12 + 1, 1) for i in range(18)]  # 2024-07 .. 2025-12
REPORT_DATES = [dt.date(2024, 11, 30), dt.date(2025, 5, 31), dt.date(2025, 11, 30)]

TOP = {  # code: (name, level, province_new, province_old, valid_from, valid_to)
    "T01": ("Liên đoàn Lao động thành phố Hà Nội", "province_federation", "01", "01", None, None),
    "T02": ("Liên đoàn Lao động tỉnh Hà Giang", "province_federation", "08", "02", None, dt.date(2025, 6, 30)),
    "T08": ("Liên đoàn Lao động tỉnh Tuyên Quang", "province_federation", "08", "08", None, None),
    "N02": ("Công đoàn Giáo dục Việt Nam", "sector_union", None, None, None, None),
}
UPPER = {  # code: (name, type, parent, province_new, province_old, valid_from, valid_to)
    "Q0101": ("LĐLĐ quận Ba Đình", "district", "T01", "01", "01", None, dt.date(2025, 6, 30)),
    "K0101": ("Công đoàn các KCN Hà Nội", "industrial_zone", "T01", "01", "01", None, dt.date(2025, 6, 30)),
    "X01001": ("Công đoàn phường Ba Đình", "commune_ward", "T01", "01", None, MERGER, None),
    "X01002": ("Công đoàn xã Quang Minh", "commune_ward", "T01", "01", None, MERGER, None),
    "Q0201": ("LĐLĐ thành phố Hà Giang", "district", "T02", "08", "02", None, dt.date(2025, 6, 30)),
    "Q0801": ("LĐLĐ thành phố Tuyên Quang", "district", "T08", "08", "08", None, dt.date(2025, 6, 30)),
    "X08001": ("Công đoàn phường Minh Xuân", "commune_ward", "T08", "08", None, MERGER, None),
    "C0201": ("Công đoàn Tổng công ty Giáo dục", "corporation", "N02", None, None, None, None),
}
# code: (name, province_new, province_old, ownership, industry, parent before, parent after, size,
#        valid_from, valid_to, dues_paid_share)
CDCS = {
    "CS0000001": ("CĐCS Công ty TNHH Điện tử Sao Mai", "01", "01", "fdi", "C", "Q0101", "X01001", 180, None, None, 0.97),
    "CS0000002": ("CĐCS Công ty CP Thương mại Hồng Hà", "01", "01", "ngoai_nn", "G", "Q0101", "X01001", 90, None, None, 0.9),
    "CS0000003": ("CĐCS Công ty TNHH May Thăng Long", "01", "01", "fdi", "C", "K0101", "X01002", 220, None, None, 1.0),
    "CS0000004": ("CĐCS Văn phòng UBND quận Ba Đình", "01", "01", "hcsn", "O", "Q0101", None, 60, None, dt.date(2025, 5, 31), 1.0),
    "CS0000005": ("CĐCS Công ty Vận tải Thủ Đô", "01", "01", "dnnn", "H", "K0101", "X01002", 120, None, None, 0.8),
    "CS0000006": ("CĐCS Công ty CP Nông sản Hà Giang", "08", "02", "ngoai_nn", "A", "Q0201", "X08001", 70, None, None, 0.85),
    "CS0000007": ("CĐCS Hợp tác xã Chè Tân Trào", "08", "08", "htx", "A", "Q0801", "X08001", 40, None, None, 0.0),
    "CS0000008": ("CĐCS Bệnh viện Đa khoa Tuyên Quang", "08", "08", "dvsn_100", "Q", "Q0801", None, 80, None, dt.date(2025, 5, 31), 1.0),
    "CS0000009": ("CĐCS Trường Đại học Sư phạm (tự chủ)", "01", "01", "dvsn_khac", "P", "C0201", "C0201", 110, None, None, 0.95),
    "CS0000010": ("CĐCS Nhà xuất bản Giáo dục Tuyên Quang", "08", "08", "dnnn", "D", "C0201", "C0201", 50, None, None, 0.9),
    "CS0000011": ("CĐCS Công ty TNHH Xây dựng Quang Minh", "01", "01", "ngoai_nn", "F", None, "X01002", 35,
                  dt.date(2025, 9, 1), None, 1.0),
    "CS0000012": ("CĐCS Công ty TNHH Phần mềm Nhỏ", "01", "01", "fdi", "J", "Q0101", "X01001", 6, None, None, 1.0),
}
RATE_BEFORE, RATE_AFTER, CAP = 0.01, 0.005, 234_000
BRANCH_OVERRIDES = {("Q0201", dt.date(2025, 3, 1)): "missing", ("Q0801", dt.date(2025, 4, 1)): "late",
                    ("X08001", dt.date(2025, 9, 1)): "refused_then_late", ("X01002", dt.date(2025, 12, 1)): "missing",
                    ("K0101", dt.date(2025, 1, 1)): "late"}
AGE_BANDS = [(0, 29, "under_30"), (30, 39, "30_39"), (40, 49, "40_49"), (50, 59, "50_59"), (60, 200, "60_plus")]


def month_end(p: dt.date) -> dt.date:
    nxt = dt.date(p.year + (p.month == 12), p.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def age_band(birth_year: int, p: dt.date) -> str:
    age = p.year - birth_year
    return next(b for lo, hi, b in AGE_BANDS if lo <= age <= hi)


def cdcs_valid(code: str, p: dt.date) -> bool:
    c = CDCS[code]
    return (c[8] is None or c[8] <= month_end(p)) and (c[9] is None or c[9] >= p)


def cdcs_attrs(code: str, p: dt.date) -> dict:
    name, pn, po, own, ind, before, after, *_ = CDCS[code]
    upper = after if p >= MERGER else before
    top = UPPER[upper][2] if upper else None
    return {"cdcs_code": code, "upper_unit_code": upper, "top_unit_code": top, "province_new_code": pn,
            "province_old_code": po, "ownership_type": own, "industry_code": ind}


def build_members(seed: int = 7):
    """Member episodes: (member_key, cdcs, gender, birth_year, ethnicity, salary, join, leave, reason,
    transfer_to)."""
    rng = random.Random(seed)
    eps = []
    n = 0
    for code, c in CDCS.items():
        size = c[7]
        start = c[8] or dt.date(2015, 1, 1)
        for _ in range(int(size * 1.15)):
            n += 1
            key = hashlib.md5(f"fixture-{n}".encode()).hexdigest()
            gender = "F" if rng.random() < (0.62 if c[3] in ("fdi", "dvsn_100") else 0.45) else "M"
            by = rng.randint(1966, 2005)
            eth = "01" if rng.random() < (0.9 if c[1] == "01" else 0.55) else rng.choice(["02", "03", "07", "08"])
            salary = rng.randint(5_000_000, 30_000_000)
            if rng.random() < 0.2:
                join = dt.date(2024, 7, 1) + dt.timedelta(days=rng.randint(0, 540))
            else:
                join = start + dt.timedelta(days=rng.randint(0, 400)) if c[8] else dt.date(2010 + rng.randint(0, 13), rng.randint(1, 12), 1)
            join = max(join, start)
            leave, reason, to = None, None, None
            if c[9] is not None:
                leave, reason = EXIT, "public_sector_exit"
            elif rng.random() < 0.12:
                leave = dt.date(2024, 7, 1) + dt.timedelta(days=rng.randint(0, 540))
                reason = rng.choice(["retired", "job_change", "job_change", "resigned", "died", "other"])
                if leave <= join:
                    leave, reason = None, None
            if code == "CS0000002" and leave is None and rng.random() < 0.08:  # transfers CS2 -> CS3
                leave = dt.date(2025, rng.choice([2, 8, 10]), 15)
                if leave > join:
                    reason, to = "transfer", "CS0000003"
                else:
                    leave = None
            eps.append(dict(member_key=key, cdcs=code, gender=gender, birth_year=by, ethnicity=eth,
                            salary=salary, join=join, leave=leave, reason=reason, to=to))
            if to:
                eps.append(dict(member_key=key, cdcs=to, gender=gender, birth_year=by, ethnicity=eth,
                                salary=salary, join=leave, leave=None, reason=None, to=None, from_=code))
    return eps


def active(ep, p: dt.date) -> bool:
    me = month_end(p)
    return ep["join"] <= me and (ep["leave"] is None or ep["leave"] > me) and cdcs_valid(ep["cdcs"], p)


def build_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed + 1)
    eps = build_members(seed)
    # --- panel: one row per member-episode x month active
    panel = []
    for ep in eps:
        for p in PERIODS:
            if active(ep, p):
                panel.append({**cdcs_attrs(ep["cdcs"], p), "period": p, "member_key": ep["member_key"],
                              "gender": ep["gender"], "age_band": age_band(ep["birth_year"], p),
                              "ethnicity_code": ep["ethnicity"],
                              "ethnic_group": "kinh" if ep["ethnicity"] == "01" else "minority",
                              "salary": ep["salary"]})
    panel = pd.DataFrame(panel)
    # --- events
    events = []
    for ep in eps:
        if PERIODS[0] <= ep["join"] <= month_end(PERIODS[-1]):
            p = ep["join"].replace(day=1)
            et = "transfer_in" if ep.get("from_") else "join"
            events.append({**cdcs_attrs(ep["cdcs"], p), "event_date": ep["join"], "period": p,
                           "member_key": ep["member_key"], "gender": ep["gender"],
                           "age_band": age_band(ep["birth_year"], p), "event_type": et,
                           "leave_reason_code": None, "other_cdcs_code": ep.get("from_")})
        if ep["leave"] and PERIODS[0] <= ep["leave"] <= month_end(PERIODS[-1]):
            p = ep["leave"].replace(day=1)
            attrs_p = p if ep["reason"] != "public_sector_exit" else dt.date(2025, 5, 1)
            tr = ep["reason"] == "transfer"
            events.append({**cdcs_attrs(ep["cdcs"], attrs_p), "event_date": ep["leave"], "period": p,
                           "member_key": ep["member_key"], "gender": ep["gender"],
                           "age_band": age_band(ep["birth_year"], p),
                           "event_type": "transfer_out" if tr else "leave",
                           "leave_reason_code": None if tr else ep["reason"], "other_cdcs_code": ep["to"]})
    events = pd.DataFrame(events)
    # --- membership monthly (per CĐCS, including valid CĐCS with no member)
    ev_counts = events.groupby(["period", "cdcs_code", "event_type"]).size().unstack(fill_value=0)
    mm = []
    for code in CDCS:
        for p in PERIODS:
            if not cdcs_valid(code, p):
                continue
            sub = panel[(panel.cdcs_code == code) & (panel.period == p)]
            e = ev_counts.loc[(p, code)] if (p, code) in ev_counts.index else {}
            mm.append({"period": p, **cdcs_attrs(code, p), "members": len(sub),
                       "women": int((sub.gender == "F").sum()),
                       "ethnic_minority_members": int((sub.ethnicity_code != "01").sum()) if len(sub) else 0,
                       "joins": int(e.get("join", 0)), "leaves": int(e.get("leave", 0)),
                       "transfers_in": int(e.get("transfer_in", 0)), "transfers_out": int(e.get("transfer_out", 0)),
                       "is_carried_forward": False})
    mm = pd.DataFrame(mm)
    cube_dims = ["period", "province_new_code", "province_old_code", "top_unit_code", "upper_unit_code",
                 "ownership_type", "industry_code", "gender", "age_band", "ethnic_group"]
    cube = panel.groupby(cube_dims, dropna=False).size().reset_index(name="members")
    # --- dues
    dues = []
    for code in CDCS:
        share = CDCS[code][10]
        for p in PERIODS:
            if not cdcs_valid(code, p):
                continue
            sub = panel[(panel.cdcs_code == code) & (panel.period == p)]
            rate = RATE_BEFORE if p < MERGER else RATE_AFTER
            expected = int(sum(min(round(rate * s), CAP) for s in sub.salary))
            collected = int(round(expected * share * (1 if rng.random() > 0.1 else 0.7)))
            dues.append({"period": p, **cdcs_attrs(code, p), "members_count": len(sub),
                         "salary_fund": int(sub.salary.sum()), "dues_expected": expected,
                         "dues_collected": collected})
    dues = pd.DataFrame(dues)
    # --- services and activities (row level, de-identified)
    programs = ["tet_sum_vay", "mai_am", "tham_om", "kho_khan", "tu_van_phap_luat", "hoc_bong", "bua_com", "chuyen_xe"]
    svc, act = [], []
    for row in panel.itertuples(index=False):
        if rng.random() < 0.06:
            prog = "tet_sum_vay" if row.period.month in (1, 2) and rng.random() < 0.7 else rng.choice(programs)
            d = row.period + dt.timedelta(days=rng.randint(0, 27))
            svc.append({"service_date": d, "period": row.period, "member_key": row.member_key,
                        **{k: getattr(row, k) for k in ("cdcs_code", "upper_unit_code", "top_unit_code",
                                                        "province_new_code", "ownership_type", "industry_code")},
                        "gender": row.gender, "age_band": row.age_band, "program_code": prog,
                        "amount": rng.choice([200_000, 500_000, 1_000_000, 2_000_000, 50_000_000 if prog == "mai_am" else 300_000])})
        if rng.random() < 0.08:
            d = row.period + dt.timedelta(days=rng.randint(0, 27))
            act.append({"activity_date": d, "period": row.period, "member_key": row.member_key,
                        **{k: getattr(row, k) for k in ("cdcs_code", "upper_unit_code", "top_unit_code",
                                                        "province_new_code", "ownership_type", "industry_code")},
                        "gender": row.gender, "age_band": row.age_band,
                        "activity_type": rng.choice(["tap_huan", "doi_thoai", "thi_dua", "van_hoa_the_thao",
                                                     "thuong_luong_tap_the"])})
    svc, act = pd.DataFrame(svc), pd.DataFrame(act)
    # --- recruitment potential (employer x month)
    rec = []
    extra_employers = [("E1001", "Công ty TNHH Cơ khí Đông Anh", "01", "C", "ngoai_nn", 340),
                       ("E1002", "Công ty TNHH Logistics Nội Bài", "01", "H", "fdi", 520),
                       ("E1003", "Công ty CP Khoáng sản Hàm Yên", "08", "B", "ngoai_nn", 150),
                       ("E1004", "Công ty TNHH Du lịch Na Hang", "08", "I", "ngoai_nn", 45)]
    for p in PERIODS:
        for i, code in enumerate(CDCS, start=1):
            if not cdcs_valid(code, p):
                continue
            a = cdcs_attrs(code, p)
            members = int(mm[(mm.cdcs_code == code) & (mm.period == p)].members.iloc[0])
            workers = int(members * (1.1 + (i % 4) * 0.15)) + 3
            rec.append({"period": p, "employer_code": f"E{i:04d}", "employer_name": CDCS[code][0].replace("CĐCS ", ""),
                        "province_new_code": a["province_new_code"], "industry_code": a["industry_code"],
                        "ownership_type": a["ownership_type"], "insured_workers": workers,
                        "insured_women": workers // 2, "members": members, "potential": workers - members,
                        "has_cdcs": True, "upper_unit_code": a["upper_unit_code"],
                        "top_unit_code": a["top_unit_code"]})
        for code, name, prov, ind, own, w in extra_employers:
            rec.append({"period": p, "employer_code": code, "employer_name": name, "province_new_code": prov,
                        "industry_code": ind, "ownership_type": own, "insured_workers": w, "insured_women": w // 3,
                        "members": 0, "potential": w, "has_cdcs": False,
                        "upper_unit_code": None, "top_unit_code": None})
    rec = pd.DataFrame(rec)
    # --- submissions and refused rows
    subs, refused = [], []
    nfile = 0
    rules = [("cccd_layout", "cccd", "Số CCCD phải có đúng 12 chữ số", "The CCCD must have exactly 12 digits"),
             ("date_invalid", "birth_date", "Ngày sinh không hợp lệ", "Invalid birth date"),
             ("gender_invalid", "gender", "Giới tính phải là Nam hoặc Nữ", "Gender must be Nam or Nữ"),
             ("required_missing", "full_name", "Thiếu họ và tên", "Full name is missing")]
    for code, u in UPPER.items():
        for p in PERIODS:
            vf, vt = u[5], u[6]
            if (vf and vf > p) or (vt and vt < p):
                continue
            mode = BRANCH_OVERRIDES.get((code, p), "on_time")
            deadline = dt.datetime(p.year + (p.month == 12), p.month % 12 + 1, 10, 23, 59)
            if mode == "missing":  # the real mart has a 'not_submitted' row per expected, missing file
                subs.append({"branch_code": code, "period": p, "kind": "roster", "file_id": None,
                             "received_at": None, "deadline": deadline.date(), "status": "not_submitted",
                             "reason_code": None, "rows_read": None, "rows_accepted": None, "rows_refused": None,
                             "is_late": None, "upper_unit_code": code, "top_unit_code": u[2],
                             "province_new_code": u[3]})
                continue
            versions = [("refused", True), ("accepted", True)] if mode == "refused_then_late" else \
                [("accepted", mode == "late")]
            for status, late in versions:
                nfile += 1
                fid = hashlib.sha256(f"f{nfile}".encode()).hexdigest()[:16]
                rows_read = int(panel[(panel.upper_unit_code == code) & (panel.period == p)].shape[0]) + 2
                refused_n = rows_read if status == "refused" else (nfile % 3)
                rcv = deadline + dt.timedelta(days=3 if late else -4, hours=nfile % 7)
                subs.append({"branch_code": code, "period": p, "kind": "roster", "file_id": fid,
                             "received_at": rcv, "deadline": deadline.date(), "status": status,
                             "reason_code": "unreadable" if status == "refused" else None,
                             "rows_read": rows_read, "rows_accepted": rows_read - refused_n,
                             "rows_refused": refused_n, "is_late": late,
                             "upper_unit_code": code, "top_unit_code": u[2], "province_new_code": u[3]})
                for j in range(min(refused_n, 5)):
                    rule = rules[(nfile + j) % len(rules)]
                    refused.append({"file_id": fid, "branch_code": code, "period": p, "kind": "roster",
                                    "source_sheet": "Danh sách", "source_row": 5 + j * 7, "rule_code": rule[0],
                                    "column_name": rule[1], "message_vi": rule[2], "message_en": rule[3],
                                    "upper_unit_code": code, "top_unit_code": u[2], "province_new_code": u[3]})
            # a dues file too, always on time
            nfile += 1
            subs.append({"branch_code": code, "period": p, "kind": "dues",
                         "file_id": hashlib.sha256(f"f{nfile}".encode()).hexdigest()[:16],
                         "received_at": dt.datetime(p.year + (p.month == 12), p.month % 12 + 1, 5, 9),
                         "deadline": deadline.date(), "status": "accepted",
                         "reason_code": None, "rows_read": 4, "rows_accepted": 4, "rows_refused": 0, "is_late": False,
                         "upper_unit_code": code, "top_unit_code": u[2], "province_new_code": u[3]})
    subs, refused = pd.DataFrame(subs), pd.DataFrame(refused)
    # --- units (SCD2)
    units = [{"unit_code": "TLD", "unit_name": "Tổng Liên đoàn Lao động Việt Nam", "level": "confederation",
              "upper_level_type": None, "parent_code": None, "province_old_code": None, "province_new_code": None,
              "valid_from": dt.date(1929, 7, 28), "valid_to": None, "top_unit_code": None, "upper_unit_code": None,
              "cdcs_code": None}]
    for code, (name, level, pn, po, vf, vt) in TOP.items():
        units.append({"unit_code": code, "unit_name": name, "level": level, "upper_level_type": None,
                      "parent_code": "TLD", "province_old_code": po, "province_new_code": pn,
                      "valid_from": vf or dt.date(2000, 1, 1), "valid_to": vt, "top_unit_code": code,
                      "upper_unit_code": None, "cdcs_code": None})
    for code, (name, typ, parent, pn, po, vf, vt) in UPPER.items():
        units.append({"unit_code": code, "unit_name": name, "level": "upper_level", "upper_level_type": typ,
                      "parent_code": parent, "province_old_code": po, "province_new_code": pn,
                      "valid_from": vf or dt.date(2000, 1, 1), "valid_to": vt, "top_unit_code": parent,
                      "upper_unit_code": code, "cdcs_code": None})
    for code, c in CDCS.items():
        vf, vt = c[8] or dt.date(2005, 1, 1), c[9]
        spans = []
        if c[5] and vf < MERGER:
            spans.append((c[5], vf, min(vt, dt.date(2025, 6, 30)) if vt else dt.date(2025, 6, 30)))
        if c[6] and (vt is None or vt >= MERGER):
            spans.append((c[6], max(vf, MERGER), vt))
        for parent, f_, t_ in spans:
            units.append({"unit_code": code, "unit_name": c[0], "level": "cdcs", "upper_level_type": None,
                          "parent_code": parent, "province_old_code": c[2], "province_new_code": c[1],
                          "valid_from": f_, "valid_to": t_, "top_unit_code": UPPER[parent][2],
                          "upper_unit_code": parent, "cdcs_code": code})
    units = pd.DataFrame(units).rename(columns={"level": "unit_level"})
    units["ownership_type"] = units["unit_code"].map(lambda c: CDCS[c][3] if c in CDCS else None)
    units["industry_code"] = units["unit_code"].map(lambda c: CDCS[c][4] if c in CDCS else None)
    # --- statutory report (columns of the real mart): nation, level 2 and level 3 units x report date
    stat = []
    for rd in REPORT_DATES:
        p = rd.replace(day=1)
        half_start = dt.date(rd.year - (rd.month == 5), 12 if rd.month == 5 else 6, 1)
        pr = panel[panel.period == p]
        evr = events[(events.period >= half_start) & (events.period <= p)]
        mmr = mm[mm.period == p]
        cands = [("TLD", "nation", None)] + [(c, "level_2", "top_unit_code") for c in TOP] + \
                [(c, "level_3", "upper_unit_code") for c in UPPER]
        for code, lvl, col in cands:
            sel = (lambda d: d) if col is None else (lambda d, col=col, code=code: d[d[col] == code])
            if len(sel(mmr)) == 0:
                continue
            u = units[units.unit_code == code].iloc[-1]
            members = sel(pr)
            stat.append({"report_id": f"{code}@{rd}", "unit_level": lvl, "unit_code": code,
                         "unit_name": u.unit_name, "report_date": rd, "report_period": p, "window_start": half_start,
                         "top_unit_code": None if code == "TLD" else u.top_unit_code,
                         "upper_unit_code": u.upper_unit_code if lvl == "level_3" else None,
                         "province_new_code": None if code == "TLD" else u.province_new_code,
                         "members": len(members), "women": int((members.gender == "F").sum()),
                         "ethnic_minority_members": int((members.ethnicity_code != "01").sum()),
                         "new_members": int((sel(evr).event_type == "join").sum()),
                         "leavers": int((sel(evr).event_type == "leave").sum()),
                         "transfers_in": int((sel(evr).event_type == "transfer_in").sum()),
                         "transfers_out": int((sel(evr).event_type == "transfer_out").sum()),
                         "cdcs_count": int((sel(mmr).members > 0).sum()),
                         "new_cdcs": int(sum(1 for c in sel(mmr).cdcs_code.unique()
                                             if CDCS[c][8] and half_start <= CDCS[c][8] <= rd))})
    stat = pd.DataFrame(stat)
    # --- provinces, dates, members
    prov = pd.read_csv(REPO / "data/reference/provinces_2025.csv", dtype=str)
    dim_province = pd.concat([
        prov.drop_duplicates("new_code").assign(province_code=lambda d: d.new_code, province_name=lambda d: d.new_name,
                                                 kind="new")[["province_code", "province_name", "kind", "new_code"]],
        prov.assign(province_code=lambda d: d.old_code, province_name=lambda d: d.old_name,
                    kind="old")[["province_code", "province_name", "kind", "new_code"]]])
    dim_date = pd.DataFrame({"date": pd.date_range("2024-07-01", "2025-12-31").date})
    dim_date["period"] = [d.replace(day=1) for d in dim_date["date"]]
    # --- identity conflicts (columns of the real dq_member_conflicts): every 97th person-month, types in turn
    from pipelines.analytics.labels import CONFLICT_CODES
    conflicts = []
    picks = panel.sort_values(["period", "member_key"]).iloc[::97]
    for i, row in enumerate(picks.itertuples(index=False)):
        ctype = CONFLICT_CODES[i % len(CONFLICT_CODES)]
        other = next((c for c in CDCS if c != row.cdcs_code and cdcs_valid(c, row.period)), None) \
            if ctype == "active_in_two_units" else None
        conflicts.append({"conflict_id": f"C{i:04d}", "conflict_type": ctype, "member_key": row.member_key,
                          "period": row.period, "cdcs_code": row.cdcs_code, "other_cdcs_code": other,
                          "variant_count": 2, "top_unit_code": row.top_unit_code,
                          "upper_unit_code": row.upper_unit_code, "province_new_code": row.province_new_code})
    conflicts = pd.DataFrame(conflicts)
    dim_member = pd.DataFrame([{"member_key": e["member_key"], "gender": e["gender"], "birth_year": e["birth_year"],
                                "ethnicity_code": e["ethnicity"]} for e in eps]).drop_duplicates("member_key")
    return {"dim_province": dim_province, "dim_union_unit": units, "dim_date": dim_date, "dim_member": dim_member,
            "fct_membership_monthly": mm, "mart_membership_cube": cube, "fct_member_events": events,
            "fct_dues_monthly": dues, "fct_service_deliveries": svc, "fct_activity_participation": act,
            "fct_service_deliveries_repeated": repeated_rows(svc),
            "fct_activity_participation_repeated": repeated_rows(act),
            "fct_recruitment_potential": rec, "fct_submissions": subs, "dq_refused_rows": refused,
            "mart_statutory_report": stat, "dq_member_conflicts": conflicts}


def repeated_rows(fact: pd.DataFrame) -> pd.DataFrame:
    """The fact's rows whose member_key occurs more than once in it (dbt: fct_*_repeated in marts/services)."""
    n = fact.groupby("member_key")["member_key"].transform("size")
    return fact[fact["member_key"].notna() & (n > 1)].reset_index(drop=True)


_DATE_COLS = {"period", "event_date", "service_date", "activity_date", "valid_from", "valid_to", "report_date", "date",
              "deadline", "report_period", "window_start"}


def write_registry(data_root: Path, units: pd.DataFrame) -> None:
    """`<data>/registry/units.parquet` as the generator writes it (CONTRACTS §2), from the fixture's units."""
    reg = units.rename(columns={"unit_level": "level"})[
        ["unit_code", "unit_name", "level", "upper_level_type", "parent_code", "province_old_code",
         "province_new_code", "ownership_type", "industry_code", "valid_from", "valid_to"]].copy()
    reg["sector_code"] = [c if str(c).startswith("N") else None for c in reg["unit_code"]]
    reg["employer_code"] = None
    for c in ("valid_from", "valid_to"):
        reg[c] = pd.to_datetime(reg[c]).dt.date
    (data_root / "registry").mkdir(parents=True, exist_ok=True)
    reg.to_parquet(data_root / "registry" / "units.parquet", index=False)


def write_duckdb(path: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> None:
    con = duckdb.connect(os.fspath(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for name, df in tables.items():
            con.register("src_df", df)
            casts = ", ".join(
                f'CAST("{c}" AS DATE) AS "{c}"' if c in _DATE_COLS else f'"{c}"' for c in df.columns)
            con.execute(f'CREATE TABLE marts."{name}" AS SELECT {casts} FROM src_df')
            con.unregister("src_df")
        con.execute("FORCE CHECKPOINT")
    finally:
        con.close()


def publish_fixture(data_root: str | os.PathLike, seed: int = 7):
    """Build the fixture and publish it under `data_root` (sets DOANVIEN_DATA_DIR for the call)."""
    os.environ["DOANVIEN_DATA_DIR"] = os.fspath(data_root)
    from pipelines.warehouse import serving

    tables = build_tables(seed)
    write_registry(Path(data_root), tables["dim_union_unit"])
    run_id = f"fixture{seed}"
    version = serving.new_version_id(run_id)
    build = serving.build_dir() / f"{run_id}.duckdb"
    if build.exists():
        build.unlink()
    write_duckdb(build, tables)
    serving.stamp_version(build, version, run_id, {"source": "tests/dashboards/warehouse_fixture.py"})
    return serving.publish(build, version=version, run_id=run_id, required_schemas=("marts", "meta"))


if __name__ == "__main__":
    v = publish_fixture(Path(sys.argv[1] if len(sys.argv) > 1 else "data").resolve())
    print(v.to_json())
