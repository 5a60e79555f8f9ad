"""The organisation registry: units (SCD2), branches and employers. Built once, globally (small: at most a
few hundred thousand rows), before members are simulated province by province."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from . import names as N
from .refdata import (CITY_SINCE, INDUSTRIAL_OLD, INDUSTRY_BY_OWNERSHIP, NEW_CITIES, OLD_CITIES, OLD_END,
                      OWNERSHIP, OWNERSHIP_SHARE, PROVINCE_WEIGHT, PUBLIC_CDCS_END, RESTRUCTURE_DATE,
                      SECTOR_OWNERSHIP, SIZE_MEDIAN, SIZE_SIGMA, Scale, provinces, rng_for, table)

FOUNDED_DEFAULT = date(2000, 1, 1)

UNIT_SCHEMA = {
    "unit_code": pl.String, "unit_name": pl.String, "level": pl.String, "upper_level_type": pl.String,
    "parent_code": pl.String, "province_old_code": pl.String, "province_new_code": pl.String,
    "sector_code": pl.String, "ownership_type": pl.String, "industry_code": pl.String,
    "employer_code": pl.String, "valid_from": pl.Date, "valid_to": pl.Date,
}


@dataclass
class Registry:
    units: pl.DataFrame          # SCD2, contract columns
    branches: pl.DataFrame
    employers: pl.DataFrame      # additive: every employer (with or without a CĐCS)
    cdcs: pl.DataFrame           # one row per CĐCS, generator working columns
    old_to_new: dict[str, str]
    old_names: dict[str, str]
    new_names: dict[str, str]


def _prov_name(code: str, name: str, cities: set[str]) -> str:
    return f"Liên đoàn Lao động {'thành phố' if code in cities else 'tỉnh'} {name}"


def _place_names(rng, n: int) -> list[str]:
    a = rng.choice(N.PLACE, n)
    b = rng.choice(N.PLACE, n)
    return [f"{x} {y}" if x != y else f"{x} {y} {i % 9 + 1}" for i, (x, y) in enumerate(zip(a, b))]


def build_registry(scale: Scale, seed: int, start: date | None = None) -> Registry:
    rng = rng_for(seed, "registry")
    prov = provinces()
    old_to_new = {r["old_code"]: r["new_code"] for r in prov}
    old_names = {r["old_code"]: r["old_name"] for r in prov}
    new_names = {r["new_code"]: r["new_name"] for r in prov}
    olds = list(scale.old_provinces) if scale.old_provinces else [r["old_code"] for r in prov]
    units: list[dict] = []

    def unit(**kw):
        row = {k: None for k in UNIT_SCHEMA}
        row.update(kw)
        units.append(row)

    unit(unit_code="TLD", unit_name="Tổng Liên đoàn Lao động Việt Nam", level="confederation",
         valid_from=date(1929, 7, 28))
    # provincial federations: all 63 / 34, whatever the scale
    for r in prov:
        o, n = r["old_code"], r["new_code"]
        if o != n:
            unit(unit_code=f"T{o}", unit_name=_prov_name(o, r["old_name"], OLD_CITIES), level="province_federation",
                 parent_code="TLD", province_old_code=o, province_new_code=n, valid_from=FOUNDED_DEFAULT,
                 valid_to=OLD_END)
    for n in sorted(new_names):
        host_old_name = old_names[n]
        new_name = new_names[n]
        name_before = _prov_name(n, host_old_name, OLD_CITIES)
        name_after = _prov_name(n, new_name, NEW_CITIES)
        versions = [(FOUNDED_DEFAULT, name_before)]
        if name_after != name_before:
            versions.append((RESTRUCTURE_DATE, name_after))
        if n in CITY_SINCE:
            versions.append((CITY_SINCE[n], _prov_name(n, new_name, {n})))
        for i, (vf, nm) in enumerate(versions):
            vt = versions[i + 1][0] if i + 1 < len(versions) else None
            unit(unit_code=f"T{n}", unit_name=nm, level="province_federation", parent_code="TLD",
                 province_old_code=n, province_new_code=n, valid_from=vf,
                 valid_to=date.fromordinal(vt.toordinal() - 1) if vt else None)
    for r in table("sector_unions.csv"):
        unit(unit_code=r["code"], unit_name=r["name_vi"], level="sector_union", parent_code="TLD",
             sector_code=r["code"], valid_from=FOUNDED_DEFAULT)

    # ---- CĐCS per old province --------------------------------------------------------------------------
    weights = np.array([PROVINCE_WEIGHT.get(o, 0.8) for o in olds])
    members_p = np.maximum(1, np.round(scale.members * weights / weights.sum())).astype(np.int64)
    sectors = [r["code"] for r in table("sector_unions.csv")]
    # corporations, hosted by the biggest provinces in scope
    order = sorted(olds, key=lambda o: -PROVINCE_WEIGHT.get(o, 0.8))
    corp_rows = []  # (code, sector, old_code)
    for i in range(scale.corporations):
        sec = sectors[(i * 7 + 8) % len(sectors)] if scale.corporations > 1 else "N09"
        k = sum(1 for c in corp_rows if c[1] == sec) + 1
        host = order[i % min(len(order), 6)]
        corp_rows.append((f"C{sec[1:]}{k:02d}", sec, host))

    cdcs_parts = []
    upper_rows = []   # (code, name, type, old, new, sector, valid_from, valid_to, parent)
    emp_extra = []
    cs_counter = 0
    x_counter: dict[str, int] = {}
    for pi, o in enumerate(olds):
        n_new = old_to_new[o]
        m_target = int(members_p[pi])
        prng = rng_for(seed, "province", o)
        industrial = o in INDUSTRIAL_OLD or scale.old_provinces is not None
        # ownership mix: FDI concentrated in industrial provinces
        share = OWNERSHIP_SHARE.copy()
        share[5] *= 2.5 if o in INDUSTRIAL_OLD else 0.4
        share /= share.sum()
        mean_size = float((share * SIZE_MEDIAN * np.exp(SIZE_SIGMA ** 2 / 2)).sum())
        n_cdcs = max(len(OWNERSHIP) if scale.force_each_defect else 3, int(round(m_target / mean_size * 1.45)))
        if start is not None and start > PUBLIC_CDCS_END:
            # window after the public-sector exit: size the *open* CĐCS like the real network
            # (~127,000 CĐCS for ~12 M members, mean ≈ 94); closed public ones stay in the registry's history
            n_cdcs = max(3, int(round(m_target / 94.5 / (1.0 - share[0] - share[1]))))
        own = prng.choice(len(OWNERSHIP), n_cdcs, p=share)
        if scale.force_each_defect:  # tiny: every ownership type present
            own[: len(OWNERSHIP)] = np.arange(len(OWNERSHIP))
        raw = np.exp(np.log(SIZE_MEDIAN[own]) + SIZE_SIGMA[own] * prng.standard_normal(n_cdcs))
        raw = np.minimum(raw, 25_000)
        if start is not None and start > PUBLIC_CDCS_END:
            # the window starts after the public-sector exit: the target counts the CĐCS still open
            nonpub_raw = raw[~np.isin(own, [0, 1])].sum()
            size = np.maximum(3, np.round(raw * m_target / max(nonpub_raw, 1.0))).astype(np.int64)
        else:
            size = np.maximum(3, np.round(raw * m_target / raw.sum())).astype(np.int64)
        # upper-level units before 07/2025
        n_q = max(2, min(60, int(round(m_target / scale.members_per_district))))
        n_k = scale.iz_per_industrial_province if industrial else 0
        if scale.force_each_defect and o != olds[-1]:
            n_k = 0
        place = _place_names(prng, n_q + n_k)
        for q in range(n_q):
            kind = "quận" if o in OLD_CITIES and q % 2 == 0 else "huyện"
            upper_rows.append((f"Q{o}{q + 1:02d}", f"Liên đoàn Lao động {kind} {place[q]}", "district", o, n_new,
                               None, FOUNDED_DEFAULT, OLD_END, f"T{o}"))
        for k in range(n_k):
            upper_rows.append((f"K{o}{k + 1:02d}", f"Công đoàn các Khu công nghiệp {place[n_q + k]}",
                               "industrial_zone", o, n_new, None, FOUNDED_DEFAULT, OLD_END, f"T{o}"))
        n_x = max(1, int(round(m_target / scale.members_per_commune)))
        xplace = _place_names(prng, n_x)
        x_codes = []
        for x in range(n_x):
            x_counter[n_new] = x_counter.get(n_new, 0) + 1
            code = f"X{n_new}{x_counter[n_new]:03d}"
            kind = "phường" if (x % 3 == 0 or o in OLD_CITIES) else "xã"
            upper_rows.append((code, f"Công đoàn {kind} {xplace[x]}", "commune_ward", o, n_new, None,
                               RESTRUCTURE_DATE, None, f"T{n_new}"))
            x_codes.append(code)
        corps_here = [c for c in corp_rows if c[2] == o]
        own_names = np.array(OWNERSHIP)[own]
        # parents before
        parent_before = np.array([f"Q{o}{q + 1:02d}" for q in prng.integers(0, n_q, n_cdcs)], dtype=object)
        if n_k:
            to_k = (own_names == "fdi") & (prng.random(n_cdcs) < 0.75)
            to_k |= (own_names == "ngoai_nn") & (prng.random(n_cdcs) < 0.15)
            ks = np.array([f"K{o}{k + 1:02d}" for k in prng.integers(0, n_k, n_cdcs)], dtype=object)
            parent_before = np.where(to_k, ks, parent_before)
        sector = np.full(n_cdcs, None, dtype=object)
        if corps_here:
            to_c = (own_names == "dnnn") & (prng.random(n_cdcs) < 0.6)
            if scale.force_each_defect and not to_c.any():
                to_c[np.flatnonzero(own_names == "dnnn")[:1]] = True
            ci = prng.integers(0, len(corps_here), n_cdcs)
            cs = np.array([corps_here[i][0] for i in ci], dtype=object)
            sec = np.array([corps_here[i][1] for i in ci], dtype=object)
            parent_before = np.where(to_c, cs, parent_before)
            sector = np.where(to_c, sec, sector)
        under_corp = np.array([p[0] == "C" for p in parent_before])
        xs = np.array(x_codes, dtype=object)[prng.integers(0, n_x, n_cdcs)]
        parent_after = np.where(under_corp, parent_before, xs)
        is_public = np.isin(own_names, ["hcsn", "dvsn_100"])
        parent_after = np.where(is_public, None, parent_after)
        industry = np.array([INDUSTRY_BY_OWNERSHIP[t][prng.integers(len(INDUSTRY_BY_OWNERSHIP[t]))]
                             for t in own_names], dtype=object)
        founded = np.datetime64("1995-01-01") + prng.integers(0, 365 * 25, n_cdcs).astype("timedelta64[D]")
        # names
        firm = prng.choice(N.FIRM_WORDS, n_cdcs)
        fdi = prng.choice(N.FDI_WORDS, n_cdcs)
        plc = prng.choice(N.PLACE, n_cdcs)
        nd = prng.choice(N.NGHIEP_DOAN, n_cdcs)
        nm = []
        for i in range(n_cdcs):
            t = own_names[i]
            ind = industry[i]
            if t in ("hcsn", "dvsn_100", "dvsn_khac"):
                lst = N.PUBLIC_UNIT.get(ind, N.PUBLIC_UNIT["O"])
                nm.append(f"Công đoàn {lst[i % len(lst)]} {plc[i]}")
            elif t == "fdi":
                nm.append(f"Công đoàn cơ sở Công ty TNHH {fdi[i]} {i % 7 + 1 if i % 3 == 0 else ''}".strip())
            elif t == "nghiep_doan":
                nm.append(f"Nghiệp đoàn {nd[i]} {plc[i]}")
            elif t == "htx":
                nm.append(f"Công đoàn cơ sở Hợp tác xã {N.TRADE_BY_INDUSTRY[ind]} {plc[i]}")
            elif t == "dnnn":
                nm.append(f"Công đoàn Công ty {N.TRADE_BY_INDUSTRY[ind]} {firm[i]}")
            else:
                nm.append(f"Công đoàn cơ sở Công ty TNHH {N.TRADE_BY_INDUSTRY[ind]} {firm[i]}")
        seq = np.arange(n_cdcs)
        is_budget = np.isin(own_names, ["hcsn", "dvsn_100", "dvsn_khac"])
        emp = np.where(own_names == "nghiep_doan", None,
                       np.where(is_budget, np.char.add(o, np.char.zfill(seq.astype(str), 5)).astype(object),
                                np.char.add(o, np.char.zfill(seq.astype(str), 8)).astype(object)))
        codes = [f"CS{cs_counter + i + 1:07d}" for i in range(n_cdcs)]
        cs_counter += n_cdcs
        cdcs_parts.append(pl.DataFrame({
            "cdcs_code": codes, "cdcs_name": nm, "ownership_type": own_names.tolist(),
            "industry_code": industry.tolist(), "employer_code": emp.tolist(), "province_old_code": o,
            "province_new_code": n_new, "sector_code": sector.tolist(), "size0": size,
            "founded": founded, "parent_before": parent_before.tolist(), "parent_after": parent_after.tolist(),
            "is_public": is_public,
        }, schema_overrides={"employer_code": pl.String, "sector_code": pl.String, "parent_after": pl.String}))
        # employers without a CĐCS (smaller, mostly private)
        n_e = int(round(n_cdcs * 0.6))
        e_own = prng.choice(["ngoai_nn", "fdi", "htx", "dnnn", "dvsn_khac"], n_e, p=[0.8, 0.05, 0.1, 0.02, 0.03])
        e_size = np.maximum(1, np.round(np.exp(np.log(12) + 0.9 * prng.standard_normal(n_e)))).astype(np.int64)
        e_ind = [INDUSTRY_BY_OWNERSHIP[t][prng.integers(len(INDUSTRY_BY_OWNERSHIP[t]))] for t in e_own]
        e_firm = prng.choice(N.FIRM_WORDS, n_e)
        e_seq = np.arange(n_cdcs, n_cdcs + n_e)
        e_code = [f"{o}{s:05d}" if t == "dvsn_khac" else f"{o}{s:08d}" for t, s in zip(e_own, e_seq)]
        e_name = [f"Công ty TNHH {N.TRADE_BY_INDUSTRY[i]} {f} {s % 97 + 1}" for i, f, s in zip(e_ind, e_firm, e_seq)]
        emp_extra.append(pl.DataFrame({
            "employer_code": e_code, "employer_name": e_name, "province_old_code": o, "province_new_code": n_new,
            "industry_code": e_ind, "ownership_type": e_own.tolist(), "cdcs_code": [None] * n_e,
            "base_workers": e_size}, schema_overrides={"cdcs_code": pl.String}))

    cdcs = pl.concat(cdcs_parts).with_columns(
        pl.when(pl.col("is_public")).then(pl.lit(PUBLIC_CDCS_END)).otherwise(None).cast(pl.Date).alias("end_date"),
        pl.col("founded").cast(pl.Date))

    for code, sec, host in corp_rows:
        upper_rows.append((code, f"Công đoàn Tổng công ty {N.TRADE_BY_INDUSTRY['D' if sec == 'N09' else 'C']} "
                                 f"{N.FIRM_WORDS[int(code[1:]) % len(N.FIRM_WORDS)]}",
                           "corporation", host, old_to_new[host], sec, FOUNDED_DEFAULT, None, sec))
    for code, name, typ, o, n, sec, vf, vt, parent in upper_rows:
        unit(unit_code=code, unit_name=name, level="upper_level", upper_level_type=typ, parent_code=parent,
             province_old_code=o, province_new_code=n, sector_code=sec, valid_from=vf, valid_to=vt)

    upper = pl.DataFrame(units, schema=UNIT_SCHEMA)
    # CĐCS SCD2 rows: before (parent Q/K/C) and, for those moved, after (parent X)
    base = cdcs.select(
        pl.col("cdcs_code").alias("unit_code"), pl.col("cdcs_name").alias("unit_name"),
        pl.lit("cdcs").alias("level"), pl.lit(None, pl.String).alias("upper_level_type"),
        "province_old_code", "province_new_code", "sector_code", "ownership_type", "industry_code",
        "employer_code", pl.col("founded").alias("valid_from"), "parent_before", "parent_after", "end_date")
    moved = pl.col("parent_after").is_not_null() & (pl.col("parent_after") != pl.col("parent_before"))
    v1 = base.with_columns(
        pl.col("parent_before").alias("parent_code"),
        pl.when(moved).then(pl.lit(OLD_END)).otherwise(pl.col("end_date")).cast(pl.Date).alias("valid_to"))
    v2 = base.filter(moved).with_columns(
        pl.col("parent_after").alias("parent_code"), pl.lit(RESTRUCTURE_DATE).alias("valid_from"),
        pl.lit(None, pl.Date).alias("valid_to"))
    cols = list(UNIT_SCHEMA)
    units_df = pl.concat([upper, v1.select(cols), v2.select(cols)]).sort(["unit_code", "valid_from"])

    branches = units_df.filter(pl.col("level") == "upper_level").select(
        pl.col("unit_code").alias("branch_code"), pl.col("unit_name").alias("branch_name"), "province_new_code",
        (pl.col("unit_code").str.to_lowercase() + pl.lit("@congdoan.example.vn")).alias("email"),
        "valid_from", "valid_to")
    branches = pl.concat([branches, pl.DataFrame({
        "branch_code": ["BHXH"], "branch_name": ["Bảo hiểm xã hội Việt Nam"], "province_new_code": [None],
        "email": ["bhxh@baohiemxahoi.example.vn"], "valid_from": [FOUNDED_DEFAULT], "valid_to": [None]},
        schema=branches.schema)]).sort("branch_code")

    employers = pl.concat([
        cdcs.filter(pl.col("employer_code").is_not_null()).select(
            "employer_code", pl.col("cdcs_name").str.replace(r"^(Công đoàn cơ sở|Công đoàn) ", "").alias(
                "employer_name"), "province_old_code", "province_new_code", "industry_code", "ownership_type",
            "cdcs_code", pl.col("size0").alias("base_workers")),
        pl.concat(emp_extra)]).sort("employer_code")
    return Registry(units_df, branches, employers, cdcs, old_to_new, old_names, new_names)
