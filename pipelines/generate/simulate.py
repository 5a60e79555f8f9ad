"""Members and their membership episodes for one old province (a chunk), vectorised with numpy/polars.

An *episode* is one stay of one person in one CĐCS: [start, end). `start` is the union join date (first
episode) or the transfer date (transfer_in); `end` is the leave or transfer date (exclusive: the person is
not active on `end`), or open. A person is active at date d when start <= d < end.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from . import names as N
from .refdata import (PUBLIC_EXIT_DATE, REGION_I_OLD, RESTRUCTURE_DATE, MIN_WAGE, Scale, ethnic_groups,
                      provinces, rng_for)

D0 = date(1970, 1, 1).toordinal()
OPEN = 2**31 - 1
LEAVE_REASONS = ("retired", "job_change", "resigned", "died", "public_sector_exit", "other")
R_PUBLIC = LEAVE_REASONS.index("public_sector_exit")
TRANSFER = 99  # reason code of a transfer_out
ANNUAL_JOIN_RATE = 0.075
ANNUAL_LEAVE_RATE = 0.07
TRANSFER_SHARE = 0.10
LEGACY_CMND_SHARE = 0.004
# a legacy member's roster row switches to the CCCD once the office learns it (CMNDs stopped being valid on
# 31/12/2024, Law on Identification 2023): the chance, each month of the window after the first
CCCD_UPDATE_MONTHLY = 0.05
A_CCCD = 389_711
A_BHXH = 7_654_321


def d2i(d: date) -> int:
    return d.toordinal() - D0


def i2d_series(name: str, arr: np.ndarray) -> pl.Series:
    return pl.Series(name, arr.astype(np.int32)).cast(pl.Date)


@dataclass
class Chunk:
    old_code: str
    slot: int                    # 0..62, index of the old code among the 63 (CCCD uniqueness)
    cdcs: pl.DataFrame           # CĐCS of this chunk (registry working columns) + local index `ci`
    persons: pl.DataFrame        # person attributes (display-ready)
    ep_person: np.ndarray        # local person index
    ep_cdcs: np.ndarray          # local CĐCS index
    ep_start: np.ndarray         # int days
    ep_end: np.ndarray           # int days (OPEN if none)
    ep_reason: np.ndarray        # -1 open, 0..5 LEAVE_REASONS, 99 transfer
    ep_kind: np.ndarray          # 0 initial (joined before window), 1 join in window, 2 transfer_in
    ep_other: np.ndarray         # for transfers: CĐCS index at the other end (-1)
    join_date: np.ndarray        # per person: union join date (int days)


def legacy_cmnds(old_code: str, n: int, offset: int) -> pl.Series:
    """The 9-digit CMNDs of a province's n people (only legacy members keep theirs): the old province's code, then
    7 digits unique within it (7,919 is prime to 10^7, so n ≤ 10^7 numbers never repeat). Unique nationwide, as
    real CMNDs are (their first digits name the issuing province); a prefix shared by several provinces ("1" + the
    code's last digit) gave two people one CMND at national scale."""
    num = (np.arange(n, dtype=np.int64) * 7_919 + offset) % 10_000_000
    return pl.Series("c", [old_code] * n) + pl.Series(num).cast(pl.String).str.zfill(7)


def _cccd_updates(scale: Scale, seed: int, old_code: str, legacy: np.ndarray, months: list[date]) -> pl.Series:
    """The first month whose roster writes a legacy member's CCCD instead of the CMND (null: none in the window):
    each month after the window's first with probability CCCD_UPDATE_MONTHLY (its own random stream, so the rest
    of the data stays as it was). The warehouse must keep the person one member across the switch (a CMND-only
    record linked to its CCCD person by name, birth date, gender and BHXH code: a pure re-key of the months built
    before). `tiny` (every defect forced): at least one such member per chunk that has a legacy member."""
    rr = rng_for(seed, "cccd-update", old_code)
    p = scale.extra.get("cccd_update_monthly", CCCD_UPDATE_MONTHLY)
    k = rr.geometric(p, legacy.shape[0]) if legacy.shape[0] else np.zeros(0, np.int64)
    if scale.force_each_defect and len(months) > 2 and legacy.any():
        li = np.flatnonzero(legacy)
        if not (k[li] < len(months)).any():
            k[li[0]] = 2
    upd = legacy & (k < len(months))
    first = pl.Series(months, dtype=pl.Date).gather(np.minimum(k, len(months) - 1))
    return pl.select(pl.when(pl.Series(upd)).then(first)
                     .otherwise(None)).to_series().alias("cccd_from")


def simulate_chunk(scale: Scale, seed: int, old_code: str, cdcs: pl.DataFrame, months: list[date],
                   window_end: date) -> Chunk:
    rng = rng_for(seed, "chunk", old_code)
    join_rate = scale.extra.get("join_rate", ANNUAL_JOIN_RATE)
    leave_rate = scale.extra.get("leave_rate", ANNUAL_LEAVE_RATE)
    transfer_share = scale.extra.get("transfer_share", TRANSFER_SHARE)
    olds = sorted(r["old_code"] for r in provinces())
    slot = olds.index(old_code)
    cdcs = cdcs.with_row_index("ci").with_columns(pl.col("ci").cast(pl.Int64))
    nc = cdcs.height
    S, E = d2i(months[0]), d2i(window_end)
    exit_d, restr = d2i(PUBLIC_EXIT_DATE), d2i(RESTRUCTURE_DATE)
    size0 = cdcs["size0"].to_numpy()
    is_public = cdcs["is_public"].to_numpy()
    founded = cdcs["founded"].cast(pl.Int32).to_numpy()
    own = cdcs["ownership_type"].to_numpy()
    pb = cdcs["parent_before"].to_numpy()
    pa = cdcs["parent_after"].fill_null("").to_numpy()

    # ---- initial members and joiners -------------------------------------------------------------------
    valid0 = ~is_public | (S < exit_d)
    n0 = np.where(valid0, size0, 0)
    ep_cdcs0 = np.repeat(np.arange(nc), n0)
    N0 = ep_cdcs0.shape[0]
    j_cdcs, j_date = [], []
    w_all = size0.astype(float)
    for m in months:
        ms, me = d2i(m), d2i(date.fromordinal(_next_month(m).toordinal() - 1))
        J = int(rng.poisson(max(N0, 50) * join_rate / 12))
        if J == 0:
            continue
        w = w_all * (~is_public if ms >= exit_d else np.ones(nc, bool))
        dd = rng.integers(ms, me + 1, J)
        j_cdcs.append(rng.choice(nc, J, p=w / w.sum()))
        j_date.append(dd)
    j_cdcs = np.concatenate(j_cdcs) if j_cdcs else np.zeros(0, np.int64)
    j_date = np.concatenate(j_date) if j_date else np.zeros(0, np.int64)
    P = N0 + j_cdcs.shape[0]
    first_cdcs = np.concatenate([ep_cdcs0, j_cdcs])

    # ---- person attributes ------------------------------------------------------------------------------
    own_p = own[first_cdcs]
    p_f = np.where(own_p == "fdi", 0.65, np.where(np.isin(own_p, ["dnnn", "nghiep_doan"]), 0.38, 0.5))
    female = rng.random(P) < p_f
    age0 = np.clip(rng.normal(38, 10, N0), 18.2, 61.5)
    ageJ = np.clip(rng.normal(28, 7, P - N0), 18.2, 55)
    birth = np.empty(P, np.int64)
    birth[:N0] = S - (age0 * 365.25).astype(np.int64)
    birth[N0:] = j_date - (ageJ * 365.25).astype(np.int64)
    join = np.empty(P, np.int64)
    lo = np.maximum.reduce([birth[:N0] + int(18 * 365.25) + 1, founded[ep_cdcs0], np.full(N0, S - 30 * 365)])
    lo = np.minimum(lo, S - 1)
    join[:N0] = lo + (rng.random(N0) * (S - lo)).astype(np.int64)
    join[:N0] = np.minimum(join[:N0], S - 1)
    join[N0:] = j_date
    birth_dates = birth.astype("datetime64[D]")
    byear = birth_dates.astype("datetime64[Y]").astype(np.int64) + 1970

    # names
    fam, pf = N.weighted(N.FAMILY)
    mm, pm = N.weighted(N.MIDDLE_M)
    mf, pff = N.weighted(N.MIDDLE_F)
    fam_i = rng.choice(len(fam), P, p=pf)
    mid_m = rng.choice(len(mm), P, p=pm)
    mid_f = rng.choice(len(mf), P, p=pff)
    giv_m = rng.integers(len(N.GIVEN_M), size=P)
    giv_f = rng.integers(len(N.GIVEN_F), size=P)
    second_mid = rng.random(P) < 0.12
    s_fam = pl.Series(fam).gather(fam_i)
    s_mid = pl.select(pl.when(pl.Series(female)).then(pl.Series(mf).gather(mid_f))
                      .otherwise(pl.Series(mm).gather(mid_m))).to_series()
    s_mid2 = pl.select(pl.when(pl.Series(female)).then(pl.Series(N.GIVEN_F).gather(rng.integers(len(N.GIVEN_F), size=P)))
                       .otherwise(pl.Series(N.GIVEN_M).gather(rng.integers(len(N.GIVEN_M), size=P)))).to_series()
    s_giv = pl.select(pl.when(pl.Series(female)).then(pl.Series(N.GIVEN_F).gather(giv_f))
                      .otherwise(pl.Series(N.GIVEN_M).gather(giv_m))).to_series()
    # ethnicity
    eg = ethnic_groups()
    codes = [r["code"] for r in eg]
    w = np.array([N.ETHNIC_WEIGHTS.get(c, 0.001) for c in codes])
    eth_i = rng.choice(len(codes), P, p=w / w.sum())
    display = []
    for r in eg:
        al = [a for a in r["aliases"].split("|") if a]
        display.append([r["name"]] + al)
    # 10 % of people with an alias spelling written in files
    use_alias = rng.random(P) < 0.10
    alias_pick = rng.integers(0, 8, P)
    n_alias = np.array([len(d) - 1 for d in display])
    k = np.where(use_alias & (n_alias[eth_i] > 0), 1 + alias_pick % np.maximum(n_alias[eth_i], 1), 0)
    flat = [x for d in display for x in d]
    offs = np.cumsum([0] + [len(d) for d in display])[:-1]
    eth_disp = pl.Series(flat).gather(offs[eth_i] + k)
    # CCCD: 0 + old code of birth registration, gender/century digit, YY, 6 digits unique per bucket
    prov_codes = np.array(olds)
    own_birth = rng.random(P) < 0.5
    birth_prov = np.where(own_birth, old_code, prov_codes[rng.integers(0, 63, P)])
    century = (byear >= 2000).astype(np.int64)
    g = century * 2 + female.astype(np.int64)
    yy = byear % 100
    bucket = birth_prov.astype(np.int64) * 1000 + g * 100 + yy
    order = np.argsort(bucket, kind="stable")
    sb = bucket[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sb)) + 1]
    rank_sorted = np.arange(P) - np.repeat(starts, np.diff(np.r_[starts, P]))
    rank = np.empty(P, np.int64)
    rank[order] = rank_sorted
    # a bucket's 10^6 numbers: [0, 700000) for people registered in the chunk's own province (only this
    # chunk uses them), [700000, 10^6) shared by the 63 chunks for people born elsewhere (stride 63).
    home = birth_prov == old_code
    v = np.where(home, rank, 700_000 + rank * 63 + slot)
    if P and (rank[home].max(initial=0) >= 700_000 or v.max() >= 1_000_000):
        raise RuntimeError("CCCD bucket overflow; lower the chunk size")
    off = (bucket.astype(np.uint64) * np.uint64(2654435761) + np.uint64(seed)) % np.uint64(1_000_000)
    rnd6 = (v * A_CCCD + off.astype(np.int64)) % 1_000_000
    cccd = (pl.Series(birth_prov).str.zfill(3) + pl.Series(g).cast(pl.String)
            + pl.Series(yy).cast(pl.String).str.zfill(2) + pl.Series(rnd6).cast(pl.String).str.zfill(6))
    # a few legacy members known only by a 9-digit CMND
    legacy = np.zeros(P, bool)
    legacy_share = scale.extra.get("legacy_cmnd_share", LEGACY_CMND_SHARE)
    legacy[:N0] = (rng.random(N0) < legacy_share) & (join[:N0] < d2i(date(2015, 1, 1)))
    cmnd = legacy_cmnds(old_code, P, int(rng.integers(0, 10_000_000)))
    cccd_from = _cccd_updates(scale, seed, old_code, legacy, months)
    person_id = int(old_code) * 100_000_000 + np.arange(P, dtype=np.int64)
    bhxh = pl.Series((person_id * A_BHXH + 1_234_567) % 10_000_000_000).cast(pl.String).str.zfill(10)
    floor = MIN_WAGE[1] if old_code in REGION_I_OLD else MIN_WAGE[3]
    extra = np.exp(np.log(2_500_000) + 0.65 * rng.standard_normal(P))
    extra = np.where(own_p == "nghiep_doan", extra * 0.2, np.where(own_p == "fdi", extra * 1.2, extra))
    salary = (np.round((floor + extra) / 1000) * 1000).astype(np.int64)
    join_year = (join.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970)
    member_code = (pl.Series(["SYN"] * P) + pl.Series([old_code] * P) + pl.Series(join_year).cast(pl.String)
                   + pl.Series(np.arange(P)).cast(pl.String).str.zfill(7))
    persons = pl.DataFrame({
        "person_id": person_id,
        # a legacy member's CCCD is known (and written on rosters) from cccd_from on; null: never in the window
        "cccd": pl.select(pl.when(pl.Series(legacy) & cccd_from.is_null()).then(None).otherwise(cccd)).to_series(),
        "cmnd": pl.select(pl.when(pl.Series(legacy)).then(cmnd).otherwise(None)).to_series(),
        "cccd_from": cccd_from,
        "full_name": pl.select(pl.concat_str([s_fam, pl.lit(" "), s_mid, pl.when(pl.Series(second_mid))
                                              .then(pl.lit(" ") + s_mid2).otherwise(pl.lit("")), pl.lit(" "),
                                              s_giv])).to_series(),
        "birth_date": i2d_series("birth_date", birth),
        "gender": np.where(female, "F", "M"),
        "ethnicity_code": pl.Series(codes).gather(eth_i),
        "ethnicity_display": eth_disp,
        "bhxh_code": bhxh,
        "member_code": member_code,
        "insurance_salary": salary,
        "join_date": i2d_series("join_date", join),
        "birth_year": byear,
    })

    # ---- episodes ---------------------------------------------------------------------------------------
    ep_person = np.arange(P)
    ep_cdcs = first_cdcs.copy()
    ep_start = join.copy()
    ep_kind = np.r_[np.zeros(N0, np.int8), np.ones(P - N0, np.int8)]
    base = np.maximum(ep_start, S)
    T = np.ceil(rng.exponential(365.25 / leave_rate, P)).astype(np.int64) + 1
    ep_end = np.where(base + T <= E, base + T, OPEN)
    ep_reason = np.full(P, -1, np.int16)
    ep_other = np.full(P, -1, np.int64)
    # public-sector exit on 01/06/2025
    pub = is_public[ep_cdcs] & (ep_start < exit_d) & (ep_end > exit_d) & (S <= exit_d) & (exit_d <= E)
    pub_ended_before = is_public[ep_cdcs] & (ep_end <= exit_d)
    ep_end = np.where(pub, exit_d, ep_end)
    ep_reason = np.where(pub, R_PUBLIC, ep_reason)
    ends = (ep_end != OPEN) & ~pub
    # transfers: to a non-public CĐCS of another branch (parent at the transfer date)
    nonpub = np.flatnonzero(~is_public)
    tr = ends & (rng.random(P) < transfer_share) & (len(nonpub) > 1)
    tr_idx = np.flatnonzero(tr)
    if len(tr_idx):
        wnp = size0[nonpub].astype(float)
        tgt = nonpub[rng.choice(len(nonpub), len(tr_idx), p=wnp / wnp.sum())]
        d = ep_end[tr_idx]
        src_par = np.where(d < restr, pb[ep_cdcs[tr_idx]], pa[ep_cdcs[tr_idx]])
        tgt_par = np.where(d < restr, pb[tgt], pa[tgt])
        same = (src_par == tgt_par) | (tgt == ep_cdcs[tr_idx])
        if same.any():
            tgt2 = nonpub[rng.choice(len(nonpub), int(same.sum()), p=wnp / wnp.sum())]
            tgt[same] = tgt2
            tgt_par = np.where(d < restr, pb[tgt], pa[tgt])
            same = (src_par == tgt_par) | (tgt == ep_cdcs[tr_idx])
        keep = ~same & (tgt_par != "")
        tr_idx, tgt = tr_idx[keep], tgt[keep]
    tr = np.zeros(P, bool)
    tr[tr_idx] = True
    ep_reason = np.where(tr, TRANSFER, ep_reason)
    ep_other = np.where(tr, -1, ep_other)
    # regular leave reasons
    reg = ends & ~tr
    age_end = (ep_end - birth[ep_person]) / 365.25
    old_enough = np.where(female[ep_person], age_end >= 55.5, age_end >= 60.5)
    r = rng.choice([1, 2, 3, 5], P, p=[0.68, 0.2, 0.03, 0.09])
    r = np.where(old_enough & (rng.random(P) < 0.85), 0, r)
    ep_reason = np.where(reg, r, ep_reason)
    del pub_ended_before
    # transfer_in episodes
    if len(tr_idx):
        n_t = len(tr_idx)
        t_start = ep_end[tr_idx]
        T2 = np.ceil(rng.exponential(365.25 / leave_rate, n_t)).astype(np.int64) + 1
        t_end = np.where(t_start + T2 <= E, t_start + T2, OPEN)
        pers = ep_person[tr_idx]
        age2 = (t_end - birth[pers]) / 365.25
        old2 = np.where(female[pers], age2 >= 55.5, age2 >= 60.5)
        r2 = rng.choice([1, 2, 3, 5], n_t, p=[0.68, 0.2, 0.03, 0.09])
        r2 = np.where(old2 & (rng.random(n_t) < 0.85), 0, r2)
        t_reason = np.where(t_end != OPEN, r2, -1).astype(np.int16)
        other_in = ep_cdcs[tr_idx]
        ep_other[tr_idx] = tgt
        ep_person = np.r_[ep_person, pers]
        ep_cdcs = np.r_[ep_cdcs, tgt]
        ep_start = np.r_[ep_start, t_start]
        ep_end = np.r_[ep_end, t_end]
        ep_reason = np.r_[ep_reason, t_reason]
        ep_kind = np.r_[ep_kind, np.full(n_t, 2, np.int8)]
        ep_other = np.r_[ep_other, other_in]
    return Chunk(old_code, slot, cdcs, persons, ep_person, ep_cdcs, ep_start, ep_end, ep_reason.astype(np.int16),
                 ep_kind, ep_other, join)


def _next_month(d: date) -> date:
    return date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)
