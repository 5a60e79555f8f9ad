"""The generator: registry -> members province by province -> branch files + ground truth.

Memory stays bounded at national scale because members are simulated and written one old province
(a "chunk") at a time; ground-truth tables are appended to Parquet files chunk by chunk.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .refdata import (LAST_FULL_MONTH, PUBLIC_EXIT_DATE, RESTRUCTURE_DATE, SCALES, dues_rule_for, month_end,
                      month_starts, months_between, rng_for, table)
from .registry import Registry, build_registry
from .simulate import (LEAVE_REASONS, OPEN, TRANSFER, Chunk, d2i, i2d_series, simulate_chunk)
from .writers import (CMND_COLUMN_SHARE, CMND_FILL_DOWN_SHARE, DEFECT_SCHEMA, OUTCOME, Style, choose_style,
                      finish_defects, garbage_bytes, write_file)

KINDS4 = ("roster", "dues", "services", "activities")
FILE_DEFECTS = ("superseded_version", "tcvn3_file", "wrong_kind_copy", "empty_file", "unreadable_file",
                "resent_identical")
TRANSFER_TEXT = "Chuyển sinh hoạt"
EPOCH = datetime(1970, 1, 1)

GT_SCHEMAS: dict[str, dict] = {
    "members": {"person_id": pl.Int64, "cccd": pl.String, "cmnd": pl.String, "cccd_from": pl.Date,
                "full_name": pl.String,
                "birth_date": pl.Date, "gender": pl.String, "ethnicity_code": pl.String, "bhxh_code": pl.String,
                "member_code": pl.String, "union_join_date": pl.Date, "insurance_salary": pl.Int64,
                "province_old_code": pl.String},
    "membership_monthly": {"period": pl.Date, "cdcs_code": pl.String, "members_true": pl.Int64,
                           "members_expected": pl.Int64, "is_carried_forward": pl.Boolean,
                           "branch_code": pl.String},
    "member_events": {"event_date": pl.Date, "period": pl.Date, "person_id": pl.Int64, "cdcs_code": pl.String,
                      "event_type": pl.String, "leave_reason_code": pl.String, "other_cdcs_code": pl.String,
                      "period_expected": pl.Date},
    "dues_monthly": {"period": pl.Date, "cdcs_code": pl.String, "members": pl.Int64, "salary_fund": pl.Int64,
                     "dues_expected": pl.Int64, "dues_collected": pl.Int64, "is_reported": pl.Boolean},
    "service_deliveries": {"period": pl.Date, "service_date": pl.Date, "person_id": pl.Int64,
                           "cdcs_code": pl.String, "program": pl.String, "amount": pl.Int64,
                           "is_reported": pl.Boolean},
    "activity_participation": {"period": pl.Date, "activity_date": pl.Date, "person_id": pl.Int64,
                               "cdcs_code": pl.String, "activity_type": pl.String, "activity_name": pl.String,
                               "is_reported": pl.Boolean},
    "recruitment_potential": {"period": pl.Date, "employer_code": pl.String, "insured_workers": pl.Int64,
                              "members": pl.Int64, "potential": pl.Int64, "has_cdcs": pl.Boolean,
                              "members_true": pl.Int64, "potential_true": pl.Int64},
    "submissions": {"branch_code": pl.String, "period": pl.Date, "kind": pl.String, "relpath": pl.String,
                    "received_at": pl.Datetime("us"), "expected_status": pl.String, "expected_reason": pl.String,
                    "format": pl.String, "encoding": pl.String, "data_rows": pl.Int64, "is_superseded": pl.Boolean,
                    "is_extra": pl.Boolean},
    "defects": {"defect_id": pl.Int64, **DEFECT_SCHEMA},
}

PROGRAMS = {  # code: (monthly probability per active member, min amount, max amount)
    "tet_sum_vay": (0.0, 500_000, 2_000_000), "mai_am": (0.00005, 30_000_000, 80_000_000),
    "tham_om": (0.004, 300_000, 1_000_000), "kho_khan": (0.002, 1_000_000, 3_000_000),
    "tu_van_phap_luat": (0.002, 0, 0), "hoc_bong": (0.001, 500_000, 2_000_000),
    "bua_com": (0.006, 30_000, 60_000), "chuyen_xe": (0.0, 300_000, 800_000),
}
ACTIVITY_NAMES = {
    "tap_huan": ["Tập huấn an toàn vệ sinh lao động", "Tập huấn kỹ năng số cho đoàn viên", "Bồi dưỡng pháp luật lao động"],
    "doi_thoai": ["Đối thoại định kỳ tại nơi làm việc", "Hội nghị người lao động"],
    "thi_dua": ["Phát động thi đua lao động sáng tạo", "Thi đua Đổi mới, sáng tạo, hiệu quả"],
    "van_hoa_the_thao": ["Giải bóng đá công nhân", "Hội thao chào mừng Tháng Công nhân", "Văn nghệ chào mừng ngày 8/3"],
    "thuong_luong_tap_the": ["Thương lượng thỏa ước lao động tập thể", "Thương lượng về tiền ăn giữa ca"],
}


class TruthWriter:
    """Appends polars frames to one Parquet file per ground-truth table (deterministic, bounded memory)."""

    def __init__(self, gt_dir: Path):
        self.dir = gt_dir
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.counts: dict[str, int] = {k: 0 for k in GT_SCHEMAS}

    def append(self, name: str, df: pl.DataFrame | None):
        schema = GT_SCHEMAS[name]
        if df is None:
            df = pl.DataFrame(schema=schema)
        df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
        tbl = df.to_arrow()
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.dir / f"{name}.parquet", tbl.schema, compression="zstd")
        if tbl.num_rows:
            self.writers[name].write_table(tbl)
        self.counts[name] += tbl.num_rows

    def close(self):
        for name in GT_SCHEMAS:
            if name not in self.writers:
                self.append(name, None)
        for w in self.writers.values():
            w.close()


@dataclass
class Plan:
    seed: int
    rate: float
    months: list[date]
    branch_valid: dict[str, list[bool]]
    submitted: dict[tuple[str, int], bool]
    forced: dict[tuple[str, int, str], set]
    arrival: dict[tuple[str, int], datetime]
    scale_name: str
    carry: set = field(default_factory=set)


def _ts(dt: datetime) -> float:
    return (dt - EPOCH).total_seconds()


def make_plan(reg: Registry, months: list[date], seed: int, rate: float, force_each: bool, scale_name: str) -> Plan:
    br = reg.branches.filter(pl.col("branch_code") != "BHXH")
    branch_valid: dict[str, list[bool]] = {}
    submitted, arrival = {}, {}
    for b, vf, vt in br.select("branch_code", "valid_from", "valid_to").iter_rows():
        v = [(vf <= month_end(m)) and (vt is None or vt >= m) for m in months]
        branch_valid[b] = v
        rng = rng_for(seed, "plan", b)
        miss = rng.random(len(months)) < rate
        late = rng.random(len(months)) < 0.12
        day = np.where(late, rng.integers(11, 26, len(months)), rng.integers(2, 10, len(months)))
        hour = rng.integers(1, 10, len(months))
        minute = rng.integers(0, 60, len(months))
        for k, m in enumerate(months):
            if not v[k]:
                continue
            protected = k == 0 or m in (date(2025, 6, 1), date(2025, 7, 1))
            submitted[(b, k)] = not (miss[k] and not protected)
            nm = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
            arrival[(b, k)] = datetime(nm.year, nm.month, int(day[k]), int(hour[k]), int(minute[k]))
    forced: dict[tuple[str, int, str], set] = {}
    if force_each:
        rng = rng_for(seed, "force")
        before = set(reg.cdcs.filter(~pl.col("is_public"))["parent_before"].to_list())
        after = set(reg.cdcs["parent_after"].drop_nulls().to_list())
        has_cdcs = {(b, k) for (b, k) in submitted if b in (before if months[k] < RESTRUCTURE_DATE else after)}
        cands = sorted((b, k) for (b, k), s in submitted.items()
                       if s and 1 <= k < max(2, len(months) - 1) and (b, k) in has_cdcs)
        order = rng.permutation(len(cands))
        picks = [cands[i] for i in order]
        for t, (b, k) in zip(FILE_DEFECTS, picks):
            forced.setdefault((b, k, "roster"), set()).add(t)
        if not any((not s) for s in submitted.values()) and len(picks) > len(FILE_DEFECTS):
            for b, k in picks[len(FILE_DEFECTS):]:
                if months[k] not in (date(2025, 6, 1), date(2025, 7, 1)):
                    submitted[(b, k)] = False
                    break
    return Plan(seed, rate, months, branch_valid, submitted, forced, arrival, scale_name)


NAME_PATTERNS = {
    "roster": ["Danh sách đoàn viên tháng {mm}-{yyyy}", "DS_doan_vien_T{mm}_{yyyy}", "{b}_{yyyy}{mm}_danhsach",
               "BC doan vien {mm}.{yyyy}"],
    "dues": ["Báo cáo đoàn phí tháng {mm}-{yyyy}", "doan_phi_{yyyy}{mm}", "{b}_doanphi_T{mm}"],
    "services": ["Danh sách hỗ trợ đoàn viên T{mm}-{yyyy}", "phuc_loi_{yyyy}{mm}", "{b} cham lo T{mm}"],
    "activities": ["Danh sách tham gia hoạt động T{mm}.{yyyy}", "hoat_dong_{yyyy}{mm}", "{b}_hoatdong_{mm}{yyyy}"],
    "insurance": ["BHXH_trich_xuat_don_vi_{yyyy}{mm}"],
}


def _file_name(rng, kind: str, b: str, m: date, ext: str) -> str:
    pats = NAME_PATTERNS[kind]
    p = pats[int(rng.integers(len(pats)))]
    return p.format(mm=f"{m.month:02d}", yyyy=m.year, b=b) + ext


def generate(scale_name: str, out: Path, seed: int = 42, start: date | None = None, months: int | None = None,
             defect_rate: float = 0.03, log=print) -> dict:
    t0 = time.time()
    scale = SCALES[scale_name]
    start = start or scale.start
    if months is None:
        months = scale.months if scale.months is not None else months_between(start, LAST_FULL_MONTH) + 1
    ms = month_starts(start, months)
    window_end = month_end(ms[-1])
    out = Path(out)
    for sub in ("inbox", "registry", "ground_truth"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir(parents=True)
    reg = build_registry(scale, seed, start)
    for name, df in (("units", reg.units), ("branches", reg.branches), ("employers", reg.employers)):
        df.write_parquet(out / "registry" / f"{name}.parquet", compression="zstd", statistics=False)
    log(f"registry: {reg.units.height} unit versions, {reg.cdcs.height} CĐCS, {reg.branches.height} branches")
    rate_mult = 4.0 if scale.force_each_defect else 1.0
    plan = make_plan(reg, ms, seed, defect_rate, scale.force_each_defect, scale_name)
    tw = TruthWriter(out / "ground_truth")
    state = {"defect_id": 0, "insurance": {k: [] for k in range(len(ms))}, "subs": []}
    # missing submissions (one defect row per branch-month)
    miss = sorted((b, k) for (b, k), s in plan.submitted.items() if not s)
    if miss:
        md = pl.DataFrame({"defect_type": "missing_submission", "relpath": None, "source_sheet": None,
                           "source_row": None, "column": None, "person_id": None,
                           "expected_outcome": OUTCOME["missing_submission"][0], "expected_rule": None,
                           "branch_code": [b for b, _ in miss], "period": [ms[k] for _, k in miss], "kind": None},
                          schema=DEFECT_SCHEMA)
        _append_defects(tw, state, md)
    olds = sorted(reg.cdcs["province_old_code"].unique().to_list())
    for o in olds:
        cd = reg.cdcs.filter(pl.col("province_old_code") == o)
        ch = simulate_chunk(scale, seed, o, cd, ms, window_end)
        _process_chunk(out, ch, reg, plan, scale, tw, state, window_end, defect_rate * rate_mult)
        log(f"  province {o}: {ch.persons.height:,} people, {len(ch.ep_person):,} episodes "
            f"({time.time() - t0:.0f}s)")
    _write_insurance(out, plan, scale, tw, state, reg)
    subs = pl.concat(state["subs"]).sort(["branch_code", "period", "kind", "received_at", "relpath"])
    tw.append("submissions", subs)
    tw.close()
    log(f"done in {time.time() - t0:.1f}s: " + ", ".join(f"{k}={v:,}" for k, v in tw.counts.items()))
    return {"months": [m.isoformat() for m in ms], "counts": tw.counts, "seconds": time.time() - t0}


def _append_defects(tw: TruthWriter, state: dict, df: pl.DataFrame | None):
    if df is None or df.height == 0:
        return
    df = df.sort(["relpath", "source_row", "defect_type", "column"], nulls_last=True)
    n0 = state["defect_id"]
    df = df.with_columns(pl.Series("defect_id", np.arange(n0 + 1, n0 + 1 + df.height, dtype=np.int64)))
    state["defect_id"] += df.height
    tw.append("defects", df)


def _sub_row(b, m, kind, relpath, received, status, reason, fmt, enc, rows, superseded=False, extra=False):
    return {"branch_code": b, "period": m, "kind": kind, "relpath": relpath, "received_at": received,
            "expected_status": status, "expected_reason": reason, "format": fmt, "encoding": enc,
            "data_rows": rows, "is_superseded": superseded, "is_extra": extra}


def _process_chunk(out: Path, ch: Chunk, reg: Registry, plan: Plan, scale, tw: TruthWriter, state: dict,
                   window_end: date, rate: float):
    ms = plan.months
    cd = ch.cdcs
    nc = cd.height
    codes = cd["cdcs_code"].to_numpy().astype(str)
    codes_s = cd["cdcs_code"]
    cnames = cd["cdcs_name"]
    pb = cd["parent_before"].to_numpy().astype(str)
    pa_ = cd["parent_after"].fill_null("").to_numpy().astype(str)
    founded = cd["founded"].cast(pl.Int32).to_numpy()
    endd = cd["end_date"].cast(pl.Int32).fill_null(2**31 - 1).to_numpy()
    is_public = cd["is_public"].to_numpy()
    persons = ch.persons
    P = persons.height
    salary = persons["insurance_salary"].to_numpy()
    female = (persons["gender"] == "F").to_numpy()
    restr = d2i(RESTRUCTURE_DATE)
    prev_end = np.full(nc, d2i(ms[0]) - 1, np.int64)
    E_ = len(ch.ep_person)
    listed_prev = np.zeros(E_, bool)
    first_counted = np.full(E_, -1, np.int64)   # month index an episode is first counted in (as sent)
    last_counted = np.full(E_, -1, np.int64)
    sub_hist = np.zeros((len(ms), nc), bool)
    leave_vi = {r["code"]: r["name_vi"] for r in table("leave_reasons.csv")}
    reason_text = np.array([leave_vi[c] for c in LEAVE_REASONS] + [TRANSFER_TEXT], dtype=object)
    prog_name = {r["code"]: r["name_vi"] for r in table("service_programs.csv")}
    act_name = {r["code"]: r["name_vi"] for r in table("activity_types.csv")}
    rng = rng_for(plan.seed, "chunk-months", ch.old_code)
    coverage = rng.uniform(0.55, 1.0, nc)
    emp_rows = reg.employers.filter(pl.col("province_old_code") == ch.old_code)
    # ---- members (once per chunk; events after the months, they need the counted units) ---------------
    tw.append("members", persons.select(
        "person_id", "cccd", "cmnd", "cccd_from", "full_name", "birth_date", "gender", "ethnicity_code", "bhxh_code",
        "member_code", pl.col("join_date").alias("union_join_date"), "insurance_salary",
        pl.lit(ch.old_code).alias("province_old_code")))
    for k, m in enumerate(ms):
        msd, med = d2i(m), d2i(month_end(m))
        ident = _ident_written(persons, m)
        parent = np.where(msd < restr, pb, pa_)
        parent_s = pl.Series("p", parent, dtype=pl.String)
        valid = (founded <= med) & (endd >= msd)
        sub = np.array([plan.submitted.get((p, k), False) if p else False for p in parent])
        active = (ch.ep_start <= med) & (ch.ep_end > med)
        act_idx = np.flatnonzero(active)
        mt = np.bincount(ch.ep_cdcs[act_idx], minlength=nc)
        sub_hist[k] = sub
        counted, listed_prev = _counted_as_sent(ch, codes, sub, med, prev_end, listed_prev)
        first_counted = np.where((first_counted < 0) & counted, k, first_counted)
        last_counted = np.where(counted, k, last_counted)
        me_exp = np.bincount(ch.ep_cdcs[counted], minlength=nc)
        vi = np.flatnonzero(valid)
        tw.append("membership_monthly", pl.DataFrame({
            "period": [m] * len(vi), "cdcs_code": codes[vi], "members_true": mt[vi], "members_expected": me_exp[vi],
            "is_carried_forward": ~sub[vi], "branch_code": parent[vi]}))
        # ---- roster rows --------------------------------------------------------------------------------
        inc = sub[ch.ep_cdcs] & (ch.ep_start <= med) & (ch.ep_end > prev_end[ch.ep_cdcs])
        ri = np.flatnonzero(inc)
        prev_end = np.where(sub, med, prev_end)
        left = ch.ep_end[ri] <= med
        pers = ch.ep_person[ri]
        roster = _roster_frame(persons, ident, pers, codes_s.gather(ch.ep_cdcs[ri]), parent_s.gather(ch.ep_cdcs[ri]),
                               np.where(left, ch.ep_end[ri], -1), np.where(left, ch.ep_reason[ri], -1),
                               reason_text, ch.ep_cdcs[ri])
        # self-check: the active rows of each reported CĐCS are exactly its true members
        chk = np.bincount(ch.ep_cdcs[ri[~left]], minlength=nc)
        assert np.array_equal(chk[sub & valid], mt[sub & valid]), "roster rows != members_true"
        # one person in two units: an added row in another branch's roster
        cand = np.flatnonzero(active & (ch.ep_start < msd) & sub[ch.ep_cdcs])
        n_conf = int(rng.binomial(len(cand), min(1.0, rate / 30))) if len(cand) else 0
        if plan.forced and k >= 1:
            n_conf = max(n_conf, 1)  # tiny: every month has one, so tests always see the case
        # never into a branch-month followed by a missing submission of that branch: carry-forward would
        # repeat the conflict row there, while members_expected only counts the sent rows
        if k + 1 < len(ms):
            nparent = np.where(d2i(ms[k + 1]) < restr, pb, pa_)
            next_ok = np.array([plan.submitted.get((p, k + 1), True) and plan.submitted.get((q, k + 1), True)
                                for p, q in zip(parent, nparent)], dtype=bool)
        else:
            next_ok = np.ones(nc, bool)
        okt = np.flatnonzero(valid & sub & ~is_public & next_ok)
        if n_conf and len(okt) > 1:
            pick = np.sort(rng.choice(cand, min(n_conf, len(cand)), replace=False))
            tgt = okt[rng.integers(0, len(okt), len(pick))]
            good = parent[tgt] != parent[ch.ep_cdcs[pick]]
            pick, tgt = pick[good], tgt[good]
            if len(pick):
                pp = ch.ep_person[pick]
                fake_join = np.minimum(ch.join_date[pp] + rng.integers(30, 720, len(pp)), med)
                extra = _roster_frame(persons, ident, pp, codes[tgt], parent[tgt], np.full(len(pp), -1),
                                      np.full(len(pp), -1), reason_text, tgt)
                extra = extra.with_columns(i2d_series("join_date", fake_join),
                                           pl.lit("person_in_two_units").alias("_defect"))
                roster = pl.concat([roster, extra])
        # ---- dues -----------------------------------------------------------------------------------------
        rate_m, cap = dues_rule_for(m)
        ac = ch.ep_cdcs[act_idx]
        sal = salary[ch.ep_person[act_idx]]
        per = np.minimum(np.round(rate_m * sal), cap).astype(np.int64)
        fund = np.bincount(ac, weights=sal, minlength=nc).astype(np.int64)
        dexp = np.bincount(ac, weights=per, minlength=nc).astype(np.int64)
        u = rng.random(nc)
        part = rng.uniform(0.3, 0.95, nc)
        dcol = np.where(u < 0.85, dexp, np.where(u < 0.95, np.round(dexp * part), 0)).astype(np.int64)
        dv = np.flatnonzero(valid & (parent != ""))
        tw.append("dues_monthly", pl.DataFrame({
            "period": [m] * len(dv), "cdcs_code": codes[dv], "members": mt[dv], "salary_fund": fund[dv],
            "dues_expected": dexp[dv], "dues_collected": dcol[dv], "is_reported": sub[dv]}))
        dues = pl.DataFrame({"cdcs_code": codes[dv], "cdcs_name": cnames.gather(dv), "members_count": mt[dv],
                             "salary_fund": fund[dv], "dues_expected": dexp[dv], "dues_collected": dcol[dv],
                             "_branch": parent[dv]}).filter(pl.Series(sub[dv]))
        dues = dues.with_columns(pl.lit(None, pl.Int64).alias("_person_id"), pl.lit(None, pl.String).alias("_defect"))
        # ---- services --------------------------------------------------------------------------------------
        svc = _services(rng, m, act_idx, ch, codes_s, parent_s, sub, persons, ident, prog_name)
        tw.append("service_deliveries", svc[0])
        # ---- activities ------------------------------------------------------------------------------------
        acts = _activities(rng, m, act_idx, ch, codes_s, parent_s, sub, persons, ident, act_name, nc)
        tw.append("activity_participation", acts[0])
        # ---- files ------------------------------------------------------------------------------------------
        frames = {"roster": roster, "dues": dues, "services": svc[1], "activities": acts[1]}
        parts = {kind: dict(((key[0], df) for key, df in f.partition_by("_branch", as_dict=True).items()))
                 if f.height else {} for kind, f in frames.items()}
        branches_here = sorted({p for p in parent if p and plan.submitted.get((p, k), False)})
        for b in branches_here:
            _write_branch_month(out, b, k, m, parts, plan, scale, tw, state, rate, reg)
        # ---- insurance rows (employers of this chunk) -----------------------------------------------------------
        fem_share = np.bincount(ac, weights=female[ch.ep_person[act_idx]], minlength=nc) / np.maximum(mt, 1)
        _insurance_rows(rng, k, m, cd, emp_rows, mt, me_exp, valid, is_public, coverage, fem_share, state)
    _events(ch, codes, tw, window_end, ms, sub_hist, first_counted, last_counted)


def _ident_written(persons: pl.DataFrame, m: date) -> pl.Series:
    """The identity number the files of month m write for each person: the CCCD, or a legacy member's CMND until
    the month their CCCD is written instead (cccd_from)."""
    use_cmnd = pl.col("cmnd").is_not_null() & (pl.col("cccd_from").is_null() | (pl.col("cccd_from") > m))
    return persons.select(pl.when(use_cmnd).then(pl.col("cmnd")).otherwise(pl.col("cccd")).alias("cccd"))["cccd"]


def _counted_as_sent(ch: Chunk, codes, sub, med: int, prev_end, listed_prev):
    """Which episodes a correct pipeline counts at this month's end, from the files as sent (CONTRACTS §5
    `members_expected`; the warehouse's rule, dbt_project/README.md): a CĐCS's roster is this month's when
    its branch sent one, else the last one sent (carry-forward: its members active at that roster's month end).
    A person listed active in two CĐCS (moved while the old unit's roster is carried forward) counts once:
    in the CĐCS where they were listed the month before, else the earliest roster join date (the union join
    date, the same in every row of a person), else the lowest CĐCS code. Returns (counted, listed) masks over
    the episodes; `listed` is next month's `listed_prev`."""
    t = np.where(sub, med, prev_end)[ch.ep_cdcs]
    listed = (ch.ep_start <= t) & (ch.ep_end > t)
    counted = listed.copy()
    li = np.flatnonzero(listed)
    per_person = np.bincount(ch.ep_person[li], minlength=ch.persons.height)
    ci = li[per_person[ch.ep_person[li]] > 1]
    if len(ci):
        two = np.isin(ch.ep_person, np.unique(ch.ep_person[ci]))
        pi = np.flatnonzero(listed_prev & two)
        prev = pl.DataFrame({"p": ch.ep_person[pi], "c": ch.ep_cdcs[pi]}).unique().with_columns(
            pl.lit(True).alias("was"))
        df = pl.DataFrame({"e": ci, "p": ch.ep_person[ci], "c": ch.ep_cdcs[ci], "code": codes[ch.ep_cdcs[ci]]})
        df = df.join(prev, on=["p", "c"], how="left").with_columns(pl.col("was").fill_null(False))
        df = df.sort(["p", "was", "code", "e"], descending=[False, True, False, False])
        losers = df.filter(pl.int_range(pl.len()).over("p") > 0)["e"].to_numpy()
        counted[losers] = False
    return counted, listed


def _roster_frame(persons, ident, pers, cdcs_codes, branches, leave_days, reasons, reason_text, cdcs_idx):
    leave = pl.Series("leave_date", leave_days.astype(np.int32)).cast(pl.Date)
    leave = pl.select(pl.when(pl.Series(leave_days < 0)).then(None).otherwise(leave)).to_series().alias("leave_date")
    ridx = np.where(reasons == TRANSFER, len(reason_text) - 1, np.maximum(reasons, 0))
    rtxt = pl.Series(reason_text.tolist(), dtype=pl.String).gather(ridx)
    rtxt = pl.select(pl.when(pl.Series(reasons < 0)).then(None).otherwise(rtxt)).to_series()
    g = persons[pers]
    return pl.DataFrame({
        "cdcs_code": cdcs_codes, "full_name": g["full_name"], "birth_date": g["birth_date"],
        "gender": g["gender"], "ethnicity": g["ethnicity_display"], "cccd": ident.gather(pers),
        "bhxh_code": g["bhxh_code"], "member_code": g["member_code"], "join_date": g["join_date"],
        "insurance_salary": g["insurance_salary"], "leave_date": leave,
        "leave_reason": rtxt.alias("leave_reason"), "_person_id": g["person_id"], "_cmnd": g["cmnd"],
        "_branch": branches, "_ci": cdcs_idx}).with_columns(pl.lit(None, pl.String).alias("_defect")).select(
        "cdcs_code", "full_name", "birth_date", "gender", "ethnicity", "cccd", "bhxh_code", "member_code",
        "join_date", "insurance_salary", "leave_date", "leave_reason", "_person_id", "_cmnd", "_defect", "_branch",
        "_ci")


def _period_expected(kind: str, e: np.ndarray, c: np.ndarray, p: np.ndarray, ch: Chunk, ends: np.ndarray,
                     sub_hist, first_counted, last_counted) -> np.ndarray:
    """Month index in which a correct pipeline reports an event, from the files as sent (-1: not within the
    window), following the warehouse's dating (dbt int_member_events): an event is seen when the counted CĐCS
    of the person changes (month M); it is dated back to its own month p when p lies in the window of months
    the unit's roster at M covers (after the unit's previous roster), else it stays at M. An exit seen while
    the old unit's roster is still carried forward (no leaver row yet) is dated M. Without carry-forward
    M = p. An episode never counted at a month end (joined and left within a month, or within months the unit
    did not send) is seen as a leaver row in the next roster the unit sends (dated back to p); a move never
    counted because the old unit's roster is carried forward to the end of the window is not seen. `ends`:
    month-end day of each month index."""
    n_m = sub_hist.shape[0]
    # sent_from[k, c]: the unit sends a roster in month k or later (within the window)
    sent_from = np.flip(np.logical_or.accumulate(np.flip(sub_hist, 0), 0), 0)
    entry = kind in ("join", "transfer_in")
    if entry:
        big_m = first_counted[e]
        late = big_m > p
        # never counted: seen only as a leaver row, in the first roster the unit sends from the month the
        # episode ends, when no roster it sent before lists the person as active (every month end inside the
        # episode fell in months the unit did not send); that roster covers month p, so the event is dated p.
        # A transfer_in is seen as one when the old unit's 'transfer' leaver row is there by then too.
        end_m = np.searchsorted(ends, ch.ep_end[e], side="left")  # month index of the end day (n_m: open)
        ended = end_m < n_m
        end_c = np.minimum(end_m, n_m - 1)
        sent_cum = np.vstack([np.zeros((1, sub_hist.shape[1]), np.int64), np.cumsum(sub_hist, 0)])
        listed = (sent_cum[end_c, c] - sent_cum[p, c]) > 0  # a roster sent in months p .. end_m - 1
        seen = ended & ~listed & sent_from[end_c, c]
        if kind == "transfer_in" and seen.any():
            first_sent = np.full((n_m + 1, sub_hist.shape[1]), n_m, np.int64)  # first month ≥ k the unit sends
            for k in range(n_m - 1, -1, -1):
                first_sent[k] = np.where(sub_hist[k], k, first_sent[k + 1])
            big_end = first_sent[end_c, c]
            o = ch.ep_other[e]
            seen &= (o >= 0) & (first_sent[p, np.maximum(o, 0)] <= big_end)
        out = np.where(big_m >= 0, p, np.where(seen, p, -1))
    else:
        big_m = last_counted[e] + 1
        late = last_counted[e] >= p
        out = np.where(late, -1, np.where(sent_from[p, c], p, -1))
        late &= big_m < n_m
    idx = np.flatnonzero(late)
    if len(idx):
        mm, cc, pp = big_m[idx], c[idx], p[idx]
        # the unit's last roster sent before M
        lsb = np.array([int(np.flatnonzero(sub_hist[:m_, c_])[-1]) if sub_hist[:m_, c_].any() else -1
                        for m_, c_ in zip(mm, cc)], np.int64)
        back = lsb < pp
        if not entry:
            back &= sub_hist[mm, cc]  # a leaver row in the roster of M (else an implied exit, dated M)
        out[idx] = np.where(back, pp, mm)
    return out


def _events(ch: Chunk, codes, tw: TruthWriter, window_end: date, ms: list[date], sub_hist, first_counted,
            last_counted):
    E = d2i(window_end)
    starts = np.array([d2i(m) for m in ms], np.int64)
    ends = np.array([d2i(month_end(m)) for m in ms], np.int64)
    parts = []
    j = np.flatnonzero(ch.ep_kind == 1)
    parts.append(("join", j, ch.ep_start[j], None, None))
    lv = np.flatnonzero((ch.ep_end <= E) & (ch.ep_reason >= 0) & (ch.ep_reason < TRANSFER))
    parts.append(("leave", lv, ch.ep_end[lv], np.array(LEAVE_REASONS, dtype=object)[ch.ep_reason[lv]], None))
    to = np.flatnonzero(ch.ep_reason == TRANSFER)
    parts.append(("transfer_out", to, ch.ep_end[to], None, codes[ch.ep_other[to]]))
    ti = np.flatnonzero(ch.ep_kind == 2)
    parts.append(("transfer_in", ti, ch.ep_start[ti], None, codes[ch.ep_other[ti]]))
    dfs = []
    for et, idx, d, reason, other in parts:
        n = len(idx)
        dd = i2d_series("event_date", d)
        pk = _period_expected(et, idx, ch.ep_cdcs[idx], np.searchsorted(starts, d, side="right") - 1, ch, ends,
                              sub_hist, first_counted, last_counted)
        pe = pl.Series("period_expected", starts[np.maximum(pk, 0)].astype(np.int32)).cast(pl.Date)
        pe = pl.select(pl.when(pl.Series(pk < 0)).then(None).otherwise(pe)).to_series().alias("period_expected")
        dfs.append(pl.DataFrame({
            "event_date": dd, "period": dd.dt.truncate("1mo"), "person_id": ch.persons["person_id"].gather(
                ch.ep_person[idx]), "cdcs_code": codes[ch.ep_cdcs[idx]], "event_type": [et] * n,
            "leave_reason_code": pl.Series(reason.tolist() if reason is not None else [None] * n, dtype=pl.String),
            "other_cdcs_code": pl.Series(other.tolist() if other is not None else [None] * n, dtype=pl.String),
            "period_expected": pe}))
    ev = pl.concat(dfs).sort(["event_date", "person_id", "event_type"])
    tw.append("member_events", ev)


def _services(rng, m, act_idx, ch, codes, parent, sub, persons, ident, prog_name):
    rows = []
    n = len(act_idx)
    me = month_end(m)
    for code, (p, lo, hi) in PROGRAMS.items():
        if code == "tet_sum_vay":
            p = 0.25 if m.month in (1, 2) else 0.0
        if code == "chuyen_xe":
            p = 0.03 if m.month in (1, 2) else 0.0
        if code == "hoc_bong" and m.month in (6, 8):
            p = 0.02
        if p <= 0 or n == 0:
            continue
        sel = act_idx[rng.random(n) < p]
        if not len(sel):
            continue
        amt = (np.round(rng.uniform(lo, hi, len(sel)) / 10_000) * 10_000).astype(np.int64)
        day = rng.integers(1, me.day + 1, len(sel))
        rows.append((code, sel, amt, day))
    schema_t = {"period": pl.Date, "service_date": pl.Date, "person_id": pl.Int64, "cdcs_code": pl.String,
                "program": pl.String, "amount": pl.Int64, "is_reported": pl.Boolean}
    if not rows:
        empty_t = pl.DataFrame(schema=schema_t)
        return empty_t, pl.DataFrame()
    code_s = np.concatenate([[c] * len(s) for c, s, _, _ in rows])
    sel = np.concatenate([s for _, s, _, _ in rows])
    amt = np.concatenate([a for _, _, a, _ in rows])
    day = np.concatenate([d for _, _, _, d in rows])
    ci = ch.ep_cdcs[sel]
    pers = ch.ep_person[sel]
    sdate = i2d_series("service_date", d2i(m) + day - 1)
    truth = pl.DataFrame({"period": [m] * len(sel), "service_date": sdate,
                          "person_id": persons["person_id"].gather(pers), "cdcs_code": codes.gather(ci),
                          "program": code_s, "amount": amt, "is_reported": sub[ci]}).sort(
        ["cdcs_code", "person_id", "program"])
    use_code = rng.random(len(sel)) < 0.15
    prog_disp = np.where(use_code, code_s, np.array([prog_name[c] for c in code_s], dtype=object))
    files = pl.DataFrame({"cdcs_code": codes.gather(ci), "full_name": persons["full_name"].gather(pers),
                          "cccd": ident.gather(pers), "program": prog_disp.astype(str), "service_date": sdate,
                          "amount": amt, "_person_id": persons["person_id"].gather(pers),
                          "_branch": parent.gather(ci)}).with_columns(pl.lit(None, pl.String).alias("_defect")
                         ).filter(pl.Series(sub[ci])).sort(["_branch", "cdcs_code", "service_date", "full_name"])
    return truth, files


def _activities(rng, m, act_idx, ch, codes, parent, sub, persons, ident, act_name, nc):
    types = list(ACTIVITY_NAMES)
    holds = rng.random(nc) < 0.25
    t_i = rng.integers(0, len(types), nc)
    n_i = rng.integers(0, 3, nc)
    day = rng.integers(1, month_end(m).day + 1, nc)
    q = rng.uniform(0.1, 0.45, nc)
    ci = ch.ep_cdcs[act_idx]
    sel = act_idx[holds[ci] & (rng.random(len(act_idx)) < q[ci])]
    ci = ch.ep_cdcs[sel]
    pers = ch.ep_person[sel]
    tcode = np.array(types, dtype=object)[t_i[ci]]
    aname = [ACTIVITY_NAMES[t][n % len(ACTIVITY_NAMES[t])] + f" tháng {m.month}/{m.year}"
             for t, n in zip(tcode, n_i[ci])] if len(sel) < 50_000 else None
    if aname is None:  # vectorised naming for big chunks
        base = pl.DataFrame({"t": tcode.astype(str), "n": n_i[ci]})
        lut = pl.DataFrame({"t": [t for t in types for _ in range(3)], "n": [i for _ in types for i in range(3)],
                            "nm": [ACTIVITY_NAMES[t][i % len(ACTIVITY_NAMES[t])] for t in types for i in range(3)]})
        aname = base.join(lut, on=["t", "n"], how="left", maintain_order="left")["nm"] + f" tháng {m.month}/{m.year}"
    adate = i2d_series("activity_date", d2i(m) + day[ci] - 1)
    truth = pl.DataFrame({"period": pl.Series([m] * len(sel), dtype=pl.Date), "activity_date": adate,
                          "person_id": persons["person_id"].gather(pers), "cdcs_code": codes.gather(ci),
                          "activity_type": pl.Series(tcode.tolist(), dtype=pl.String),
                          "activity_name": pl.Series(aname, dtype=pl.String), "is_reported": sub[ci]}).sort(
        ["cdcs_code", "person_id"])
    tdisp = np.array([act_name[t] for t in types], dtype=object)[t_i[ci]]
    files = pl.DataFrame({"cdcs_code": codes.gather(ci), "activity_type": pl.Series(tdisp.tolist(), dtype=pl.String),
                          "activity_name": pl.Series(aname, dtype=pl.String), "activity_date": adate,
                          "full_name": persons["full_name"].gather(pers), "cccd": ident.gather(pers),
                          "_person_id": persons["person_id"].gather(pers),
                          "_branch": parent.gather(ci)}).with_columns(pl.lit(None, pl.String).alias("_defect")
                         ).filter(pl.Series(sub[ci])).sort(["_branch", "cdcs_code", "full_name"])
    return truth, files


def _insurance_rows(rng, k, m, cd, emp_rows, mt, me_exp, valid, is_public, coverage, fem_share, state):
    ci_of = {c: i for i, c in enumerate(cd["cdcs_code"].to_list())}
    e = emp_rows
    has = e["cdcs_code"].is_not_null().to_numpy()
    idx = np.array([ci_of.get(c, -1) if c else -1 for c in e["cdcs_code"].to_list()])
    own = e["ownership_type"].to_numpy()
    base = e["base_workers"].to_numpy()
    noise = rng.uniform(0.97, 1.03, e.height)
    members_true = np.where(has, mt[np.maximum(idx, 0)], 0)
    members_exp = np.where(has, me_exp[np.maximum(idx, 0)], 0)
    cdcs_valid = has & valid[np.maximum(idx, 0)]
    insured = np.where(has, np.ceil(members_true / coverage[np.maximum(idx, 0)]),
                       np.round(base * noise)).astype(np.int64)
    insured = np.maximum(insured, members_true)
    fs = np.where(has, fem_share[np.maximum(idx, 0)], 0.45)
    women = np.minimum(insured, np.round(insured * np.clip(fs + rng.normal(0, 0.03, e.height), 0, 1))).astype(np.int64)
    keep = ~(np.isin(own, ["hcsn", "dvsn_100"]) & (m >= PUBLIC_EXIT_DATE)) & (insured > 0)
    members_exp = np.where(cdcs_valid, members_exp, 0)
    members_true = np.where(cdcs_valid, members_true, 0)
    df = pl.DataFrame({
        "employer_code": e["employer_code"], "employer_name": e["employer_name"],
        "province_new_code": e["province_new_code"], "industry_code": e["industry_code"],
        "ownership_type": e["ownership_type"], "insured_workers": insured, "insured_women": women,
        "members": members_exp, "members_true": members_true, "has_cdcs": cdcs_valid}).filter(pl.Series(keep))
    state["insurance"][k].append(df)


def _write_insurance(out: Path, plan: Plan, scale, tw: TruthWriter, state: dict, reg: Registry):
    for k, m in enumerate(plan.months):
        df = pl.concat(state["insurance"][k]).sort("employer_code")
        tw.append("recruitment_potential", df.select(
            pl.lit(m).alias("period"), "employer_code", "insured_workers", "members",
            (pl.col("insured_workers") - pl.col("members")).clip(0).alias("potential"), "has_cdcs",
            "members_true", (pl.col("insured_workers") - pl.col("members_true")).clip(0).alias("potential_true")))
        rng = rng_for(plan.seed, "file", "BHXH", k, "insurance")
        st = choose_style(rng, "insurance", df.height, scale.xlsx_share if scale.force_each_defect else 0.0,
                          scale.xlsx_max_rows, force_xlsx=scale.force_each_defect and k == 0)
        st.encoding = "utf-8" if st.encoding == "cp1258" else st.encoding
        ext = ".xlsx" if st.fmt == "xlsx" else ".csv"
        name = _file_name(rng, "insurance", "BHXH", m, ext)
        rel = f"inbox/BHXH/{m:%Y-%m}/insurance/{name}"
        nm = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
        arrival = datetime(nm.year, nm.month, 15, 2, 0)
        frame = df.select("employer_code", "employer_name", "province_new_code", "industry_code", "ownership_type",
                          "insured_workers", "insured_women").with_columns(
            pl.lit(None, pl.Int64).alias("_person_id"), pl.lit(None, pl.String).alias("_defect"))
        ctx = {"branch_code": "BHXH", "period": m, "kind": "insurance", "branch_name": "Bảo hiểm xã hội Việt Nam"}
        res = write_file(out, rel, "insurance", frame, st, rng, 0.0, _ts(arrival), ctx)
        _append_defects(tw, state, res.defects)
        state["subs"].append(pl.DataFrame([_sub_row("BHXH", m, "insurance", rel, arrival, "accepted", None,
                                                    res.fmt, res.encoding, res.data_rows)],
                                          schema=GT_SCHEMAS["submissions"]))


def _write_branch_month(out: Path, b: str, k: int, m: date, parts: dict, plan: Plan, scale, tw, state, rate, reg):
    base_arrival = plan.arrival[(b, k)]
    subs = []
    written: dict[str, tuple[str, bytes, str]] = {}
    for kind in KINDS4:
        frame = parts[kind].get(b)
        if frame is None or frame.height == 0:
            plan.carry.update(plan.forced.get((b, k, kind), set()))  # forced defects move to the next file
            continue
        frame = frame.drop([c for c in ("_branch", "_ci") if c in frame.columns])
        rng = rng_for(plan.seed, "file", b, k, kind)
        forced = plan.forced.get((b, k, kind), set())
        fl = {t: (t in forced) for t in FILE_DEFECTS}
        if kind == "roster" and plan.carry:  # a forced defect the earlier file could not carry
            for t in sorted(plan.carry):
                fl[t] = True
            plan.carry.clear()
        if not plan.forced:
            fl["superseded_version"] = kind == "roster" and rng.random() < plan.rate * 2
            fl["tcvn3_file"] = rng.random() < plan.rate
            fl["wrong_kind_copy"] = rng.random() < plan.rate / 2
            fl["empty_file"] = rng.random() < plan.rate / 3
            fl["unreadable_file"] = rng.random() < plan.rate / 3
            fl["resent_identical"] = not fl["superseded_version"] and rng.random() < plan.rate / 3
        if kind != "roster":
            fl["superseded_version"] = False
        st = choose_style(rng, kind, frame.height, scale.xlsx_share, scale.xlsx_max_rows,
                          force_csv=fl["tcvn3_file"])
        if fl["tcvn3_file"]:
            st.encoding = "tcvn3"
        if kind == "roster":  # an RNG of its own: the draws of every other choice stay as they were
            cm = rng_for(plan.seed, "cmnd_column", b, k)
            if cm.random() < scale.extra.get("cmnd_column_share", CMND_COLUMN_SHARE):
                st.cmnd_column = "before" if cm.random() < 0.5 else "after"
                st.cmnd_fill_down = scale.extra.get("cmnd_fill_down_share", CMND_FILL_DOWN_SHARE)
                st.cmnd_fill_seed = int(cm.integers(0, 2**31))
        ext = ".xlsx" if st.fmt == "xlsx" else ".csv"
        name = _file_name(rng, kind, b, m, ext)
        arrival = base_arrival + timedelta(minutes=int(rng.integers(0, 180)))
        ctx = {"branch_code": b, "period": m, "kind": kind, "branch_name": _branch_name(reg, b),
               "x_lower": bool(rng.random() < 0.5)}
        folder = f"inbox/{b}/{m:%Y-%m}/{kind}"
        if fl["superseded_version"]:
            # first version misses a few active members; the corrected file arrives later
            cand = np.flatnonzero((frame["leave_date"].is_null() & frame["_defect"].is_null()).to_numpy())
            if len(cand) < 2 and plan.forced:
                plan.carry.add("superseded_version")  # too small: the next roster file takes it
            if len(cand) >= 2:
                drop = rng.choice(cand, min(len(cand) - 1, int(rng.integers(1, 4))), replace=False)
                keep = np.ones(frame.height, bool)
                keep[drop] = False
                v1 = frame.filter(pl.Series(keep))
                rel1 = f"{folder}/{name}"
                r1 = write_file(out, rel1, kind, v1, st, rng_for(plan.seed, "v1", b, k), rate, _ts(arrival), ctx)
                _append_defects(tw, state, r1.defects)
                om = frame[np.sort(drop)]
                _append_defects(tw, state, finish_defects([
                    pl.DataFrame({"defect_type": ["superseded_version"], "source_row": [None], "column": [None],
                                  "person_id": [None]}, schema={"defect_type": pl.String, "source_row": pl.Int64,
                                                                "column": pl.String, "person_id": pl.Int64}),
                    pl.DataFrame({"defect_type": ["omitted_in_first_version"] * om.height,
                                  "source_row": [None] * om.height, "column": [None] * om.height,
                                  "person_id": om["_person_id"]}, schema={
                        "defect_type": pl.String, "source_row": pl.Int64, "column": pl.String,
                        "person_id": pl.Int64})], rel1, None, ctx))
                subs.append(_sub_row(b, m, kind, rel1, arrival, "accepted", None, r1.fmt, r1.encoding,
                                     r1.data_rows, superseded=True))
                stem, dot, e = name.rpartition(".")
                name = f"{stem} (sửa).{e}" if rng.random() < 0.5 else f"{stem}_lan2.{e}"
                arrival = _not_after_today(
                    arrival + timedelta(days=int(rng.integers(3, 16)), hours=int(rng.integers(0, 6))), m, arrival)
        rel = f"{folder}/{name}"
        res = write_file(out, rel, kind, frame, st, rng, rate, _ts(arrival), ctx)
        _append_defects(tw, state, res.defects)
        subs.append(_sub_row(b, m, kind, rel, arrival, "accepted", None, res.fmt, res.encoding, res.data_rows))
        written[kind] = (name, res.content, ext)
        early = base_arrival - timedelta(hours=1)
        if fl["empty_file"]:
            stem = name.rpartition(".")[0]
            rel_e = f"{folder}/{stem} (1){ext}"
            _extra_file(out, rel_e, b"", early - timedelta(hours=1))
            subs.append(_sub_row(b, m, kind, rel_e, early - timedelta(hours=1), "refused", "empty", st.fmt, None, 0,
                                 extra=True))
            _file_defect(tw, state, "empty_file", rel_e, ctx)
        if fl["unreadable_file"]:
            stem = name.rpartition(".")[0]
            rel_u = f"{folder}/{stem} - ban loi.xlsx"
            _extra_file(out, rel_u, garbage_bytes(rng, res.content if st.fmt == "xlsx" else None),
                        early - timedelta(hours=2))
            subs.append(_sub_row(b, m, kind, rel_u, early - timedelta(hours=2), "refused", "unreadable", "xlsx",
                                 None, 0, extra=True))
            _file_defect(tw, state, "unreadable_file", rel_u, ctx)
        if fl["resent_identical"]:
            stem = name.rpartition(".")[0]
            rel_r = f"{folder}/{stem} - Copy{ext}"
            t_r = _not_after_today(arrival + timedelta(hours=int(rng.integers(1, 48))), m, arrival)
            _extra_file(out, rel_r, res.content, t_r)
            subs.append(_sub_row(b, m, kind, rel_r, t_r, "duplicate", "duplicate_content", res.fmt, res.encoding,
                                 res.data_rows, extra=True))
            _file_defect(tw, state, "resent_identical", rel_r, ctx)
        if fl["wrong_kind_copy"]:
            others = [x for x in KINDS4 if x != kind]
            tk = others[int(rng.integers(len(others)))]
            rel_w = f"inbox/{b}/{m:%Y-%m}/{tk}/{name}"
            t_w = base_arrival - timedelta(hours=3)
            _extra_file(out, rel_w, res.content, t_w)
            subs.append(_sub_row(b, m, tk, rel_w, t_w, "refused", "wrong_kind", res.fmt, res.encoding,
                                 res.data_rows, extra=True))
            _file_defect(tw, state, "wrong_kind_copy", rel_w, {**ctx, "kind": tk})
    if subs:
        state["subs"].append(pl.DataFrame(subs, schema=GT_SCHEMAS["submissions"]))


_BNAMES: dict[int, dict] = {}
NOW = datetime(2026, 11, 28, 0, 0)  # "today" of the simulation (UTC); past periods never arrive after it


def _not_after_today(t: datetime, period: date, earlier: datetime) -> datetime:
    """A later arrival of a past period is kept before today (and still after `earlier`)."""
    if period <= LAST_FULL_MONTH and t >= NOW:
        return max(earlier + timedelta(minutes=30), NOW - timedelta(hours=6))
    return t


def _branch_name(reg: Registry, b: str) -> str:
    key = id(reg)
    if key not in _BNAMES:
        _BNAMES.clear()
        _BNAMES[key] = dict(reg.branches.select("branch_code", "branch_name").iter_rows())
    return _BNAMES[key].get(b, b)


def _extra_file(out: Path, rel: str, content: bytes, when: datetime):
    p = out / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    t = _ts(when)
    import os
    os.utime(p, (t, t))


def _file_defect(tw, state, dtype, rel, ctx):
    _append_defects(tw, state, finish_defects([pl.DataFrame(
        {"defect_type": [dtype], "source_row": [None], "column": [None], "person_id": [None]},
        schema={"defect_type": pl.String, "source_row": pl.Int64, "column": pl.String, "person_id": pl.Int64})],
        rel, None, ctx))
