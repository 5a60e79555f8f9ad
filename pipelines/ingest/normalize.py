"""From the mapped sheet (text) to typed canonical columns, flags and the helper columns the suites check.

All work is Polars expressions over whole columns. Enumerations (ethnicity, programmes, reasons …) are
mapped on the *distinct* values only (a few dozen), then joined back — never a Python loop per row.

Helper columns that the expectation suites (`expectations/<kind>.json`) validate are prefixed ``v_``.
"""
from __future__ import annotations

import csv
import datetime as _dt
from functools import lru_cache

import polars as pl

from pipelines.config import REFERENCE_DIR
from pipelines.ingest.layout import Layout
from pipelines.ingest.mapping import GENDER_MARK_VALUES, KINDS, LEAVE_REASON_ALIASES, header_key
from pipelines.ingest.readers import FileRefused
from pipelines.ingest.textnorm import clean_text, tcvn3_cell, tcvn3_to_unicode, tone_style, vni_cell

EXCEL_EPOCH = _dt.date(1899, 12, 30)


@lru_cache(maxsize=None)
def reference(stem: str) -> list[dict[str, str]]:
    with open(REFERENCE_DIR / f"{stem}.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=None)
def province_prefixes() -> tuple[str, ...]:
    return tuple(sorted({"0" + r["old_code"].zfill(2) for r in reference("provinces_2025")}))


@lru_cache(maxsize=None)
def enum_lookup(stem: str) -> dict[str, str]:
    """header_key(text) -> code for a reference enumeration (code, names, aliases)."""
    out: dict[str, str] = {}
    for r in reference(stem):
        code = r["code"]
        names = [code, r.get("name", ""), r.get("name_vi", ""), r.get("name_en", "")]
        names += (r.get("aliases") or "").split("|")
        if stem == "ethnic_groups":
            names += [str(int(code))]
        for n in names:
            if n:
                out.setdefault(header_key(n), code)
    if stem == "leave_reasons":
        for text, code in LEAVE_REASON_ALIASES.items():
            out.setdefault(header_key(text), code)
    return out


def _map_distinct(s: pl.Expr, df: pl.DataFrame, col: str, table: dict[str, str]) -> pl.Expr:
    """Map a text column through `table` (keyed by header_key) using its distinct values only."""
    vals = df.get_column(col).drop_nulls().unique().to_list() if col in df.columns else []
    mapping = {v: table.get(header_key(v)) for v in vals}
    return s.replace_strict(mapping, default=None, return_dtype=pl.String)


# ------------------------------------------------------------------------------------------- dates
def parse_date(s: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(date, precision 'day'|'month'|'year', status 'ok'|'invalid'|null) from any office form."""
    t = s.str.strip_chars().str.replace(r"^'", "")
    dmy = t.str.extract_groups(r"^(\d{1,2})[/\-.](\d{1,2})[/\-.](\d{4})$")
    d, m, y = (dmy.struct.field("1").cast(pl.Int32, strict=False), dmy.struct.field("2").cast(pl.Int32, strict=False),
               dmy.struct.field("3").cast(pl.Int32, strict=False))
    iso = t.str.extract_groups(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
    iy, im, id_ = (iso.struct.field("1").cast(pl.Int32, strict=False), iso.struct.field("2").cast(pl.Int32, strict=False),
                   iso.struct.field("3").cast(pl.Int32, strict=False))
    my = t.str.extract_groups(r"^(\d{1,2})[/\-.](\d{4})$")
    my_m, my_y = my.struct.field("1").cast(pl.Int32, strict=False), my.struct.field("2").cast(pl.Int32, strict=False)
    ym6 = t.str.extract_groups(r"^((?:19|20)\d{2})(0[1-9]|1[0-2])$")
    y6, m6 = ym6.struct.field("1").cast(pl.Int32, strict=False), ym6.struct.field("2").cast(pl.Int32, strict=False)
    yonly = t.str.extract(r"^((?:19|20)\d{2})$").cast(pl.Int32, strict=False)
    serial = t.str.extract(r"^(\d{4,5})(?:\.\d+)?$").cast(pl.Int64, strict=False)

    def mk(yy, mm, dd):
        txt = pl.format("{}-{}-{}", yy.cast(pl.String).str.zfill(4), mm.cast(pl.String).str.zfill(2),
                        dd.cast(pl.String).str.zfill(2))
        return txt.str.to_date("%Y-%m-%d", strict=False)

    day_dmy = pl.when((d > 0) & (m > 0)).then(mk(y, m, d))
    # "00/00/1985" → year; "00/05/1985" → month
    dmy_year = pl.when((d == 0) & (m == 0)).then(mk(y, pl.lit(1), pl.lit(1)))
    dmy_month = pl.when((d == 0) & (m > 0) & (m <= 12)).then(mk(y, m, pl.lit(1)))
    serial_ok = serial.is_between(3000, 80000) & yonly.is_null()
    serial_date = pl.when(serial_ok).then(pl.lit(EXCEL_EPOCH) + pl.duration(days=serial))
    date = pl.coalesce(
        day_dmy, dmy_year, dmy_month,
        pl.when(iy.is_not_null()).then(mk(iy, im, id_)),
        pl.when(my_y.is_not_null() & my_m.is_between(1, 12)).then(mk(my_y, my_m, pl.lit(1))),
        pl.when(y6.is_not_null()).then(mk(y6, m6, pl.lit(1))),
        pl.when(yonly.is_not_null()).then(mk(yonly, pl.lit(1), pl.lit(1))),
        serial_date.cast(pl.Date),
    )
    precision = (
        pl.when(date.is_null()).then(None)
        .when(((d == 0) & (m == 0)) | yonly.is_not_null()).then(pl.lit("year"))
        .when((d == 0) | my_y.is_not_null() | y6.is_not_null()).then(pl.lit("month"))
        .otherwise(pl.lit("day"))
    )
    status = pl.when(t.is_null() | (t == "")).then(None).when(date.is_not_null()).then(pl.lit("ok")).otherwise(
        pl.lit("invalid"))
    return date, precision, status


# ------------------------------------------------------------------------------------------- numbers
def parse_amount(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(Int64 value, digits text for the suite). Accepts 1.234.567 / 1,234,567 / 1234567 / 1234567.0."""
    t = (s.str.strip_chars().str.replace_all(r"(?i)\s|đ|vnđ|vnd|đồng", "").str.replace(r"^'", ""))
    thousands = t.str.contains(r"^\d{1,3}([.,]\d{3})+$")
    trailing_zero = t.str.contains(r"^\d+[.,]0+$")
    digits = (pl.when(thousands).then(t.str.replace_all(r"[.,]", ""))
              .when(trailing_zero).then(t.str.replace(r"[.,]0+$", ""))
              .otherwise(t))
    value = pl.when(digits.str.contains(r"^\d{1,15}$")).then(digits.cast(pl.Int64, strict=False))
    return value, digits


# ------------------------------------------------------------------------------------------- CCCD
# Scientific notation that dropped digits: fewer fraction digits than the exponent (e.g. 1.23457E+11).
LOSSY_SCI = r"^[0-9]([.,][0-9]*)?[eE]\+?[0-9]+$"


def parse_cccd(s: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(cccd text for validation, cmnd, restored flag, cccd input text)."""
    t = s.str.replace_all(r"[\s\-]", "").str.replace(r"^'", "")
    t_int = t.str.replace(r"^(\d+)[.,]0+$", "$1")
    sci = t.str.extract_groups(r"^([0-9])(?:[.,]([0-9]*))?[eE]\+?([0-9]+)$")
    lead, frac = sci.struct.field("1"), sci.struct.field("2").fill_null("")
    exp = sci.struct.field("3").cast(pl.Int32, strict=False)
    sci_lossless = lead.is_not_null() & (frac.str.len_chars() == exp) & exp.is_in([9, 10, 11])
    sci_digits = pl.when(sci_lossless).then(pl.concat_str([lead, frac]))
    num = pl.coalesce(sci_digits, t_int)
    is9 = num.str.contains(r"^\d{9}$") & ~sci_lossless
    # Excel stored the number: every leading zero is gone (prefix 001..096 → 10 or 11 digits left)
    short = num.str.contains(r"^\d{10,11}$")
    cccd = (pl.when(is9).then(None)
            .when(short).then(num.str.zfill(12))
            .when(lead.is_not_null() & ~sci_lossless).then(t)  # lossy: keep the input (refused)
            .otherwise(num))
    cmnd = pl.when(is9).then(num)
    restored = (short | sci_lossless).fill_null(False) & ~is9.fill_null(False)
    return cccd, cmnd, restored, t


# ------------------------------------------------------------------------------------------- main
def normalise(layout: Layout, *, period: _dt.date, today: _dt.date) -> tuple[pl.DataFrame, dict]:
    """Typed canonical frame with `v_*` helper columns, flags and lineage-ready `source_row`."""
    kind = layout.kind
    spec = KINDS[kind]
    df = layout.data
    ccols = [c for c in df.columns if c.startswith("c") and c[1:].isdigit()]
    info: dict = {"encoding_detected": None}

    # legacy encodings, per cell
    vni_count = df.select(pl.sum_horizontal([vni_cell(pl.col(c)).fill_null(False) for c in ccols]).sum()).item() if ccols else 0
    if vni_count >= 3 or (df.height and vni_count >= max(1, 0.05 * df.height) and vni_count >= 1):
        raise FileRefused("legacy_encoding",
                          "Tệp dùng bảng mã cũ VNI (phông VNI-Times), chưa chuyển được sang Unicode. "
                          "Vui lòng chuyển bảng mã sang Unicode (ví dụ bằng Unikey) rồi gửi lại.", "VNI")
    # a sheet typed in TCVN3 throughout: convert every cell (some TCVN3 cells look like valid Unicode,
    # e.g. "tÝnh"); otherwise only the cells that carry TCVN3-only characters.
    from pipelines.ingest.textnorm import _UNICODE_VI_RE
    marker_cells = df.select(pl.sum_horizontal([tcvn3_cell(pl.col(c)).fill_null(False) for c in ccols]).sum()).item()
    unicode_cells = df.select(pl.sum_horizontal([pl.col(c).str.contains(_UNICODE_VI_RE).fill_null(False)
                                                 for c in ccols]).sum()).item()
    whole = marker_cells > 0 and unicode_cells == 0
    if whole:
        conv = pl.any_horizontal([pl.col(c).str.contains("[\u00a1-\u00fe]").fill_null(False) for c in ccols])
    else:
        conv = pl.any_horizontal([tcvn3_cell(pl.col(c)).fill_null(False) for c in ccols])
    nfd = pl.any_horizontal([(pl.col(c) != pl.col(c).str.normalize("NFC")).fill_null(False) for c in ccols])
    df = df.with_columns(conv.alias("__enc"), nfd.alias("__nfd"))
    if df["__enc"].any():
        info["encoding_detected"] = "TCVN3"
    if whole:
        from pipelines.ingest.textnorm import TCVN3_TO_UNICODE
        keys = list(TCVN3_TO_UNICODE)
        df = df.with_columns([pl.col(c).str.replace_many(keys, [TCVN3_TO_UNICODE[k] for k in keys]) for c in ccols])
    else:
        df = df.with_columns([tcvn3_to_unicode(pl.col(c)).alias(c) for c in ccols])

    def raw(name: str) -> pl.Expr:
        j = layout.columns.get(name)
        return clean_text(pl.col(f"c{j}")) if j is not None else pl.lit(None, dtype=pl.String)

    out: list[pl.Expr] = [pl.col("__row").alias("source_row")]
    flags: list[pl.Expr] = [pl.when(pl.col("__enc")).then(pl.lit("encoding_converted")),
                            pl.when(pl.col("__nfd")).then(pl.lit("nfd_normalised"))]
    required_raw: list[tuple[str, pl.Expr]] = []

    # gender layouts
    if kind == "roster":
        if layout.birth_by_gender:
            bm, bf = (clean_text(pl.col(f"c{layout.birth_by_gender[g]}")) for g in ("M", "F"))
            birth_raw = pl.coalesce(bm, bf)
            gender_raw = (pl.when(bm.is_not_null() & bf.is_null()).then(pl.lit("M"))
                          .when(bf.is_not_null() & bm.is_null()).then(pl.lit("F"))
                          .when(bm.is_not_null() & bf.is_not_null()).then(pl.lit("Nam và Nữ")))
        else:
            birth_raw = raw("birth_date")
            if layout.gender_marks:
                xm, xf = (clean_text(pl.col(f"c{layout.gender_marks[g]}")) for g in ("M", "F"))
                gender_raw = (pl.when(xm.is_not_null() & xf.is_null()).then(pl.lit("M"))
                              .when(xf.is_not_null() & xm.is_null()).then(pl.lit("F"))
                              .when(xm.is_not_null() & xf.is_not_null()).then(pl.lit("Nam và Nữ")))
            else:
                gender_raw = raw("gender")
    else:
        birth_raw = gender_raw = pl.lit(None, dtype=pl.String)

    # first pass: raw text per canonical column
    raws = {}
    for c in spec.columns:
        if c.name == "birth_date":
            raws[c.name] = birth_raw
        elif c.name == "gender":
            raws[c.name] = gender_raw
        else:
            raws[c.name] = raw(c.name)
    df = df.with_columns([e.alias(f"r_{n}") for n, e in raws.items()])

    for c in spec.columns:
        r = pl.col(f"r_{c.name}")
        if c.required:
            required_raw.append((c.name, r))
        if c.dtype == "code":
            out.append(r.str.replace_all(r"\s", "").str.to_uppercase().alias(c.name))
        elif c.dtype in ("name", "text"):
            e = tone_style(r)
            if c.dtype == "name":  # TCVN3 capitals with tones come back lowercase: re-capitalise names
                e = pl.when(pl.col("__enc")).then(e.str.to_titlecase()).otherwise(e)
            out.append(e.alias(c.name))
        elif c.dtype == "date":
            d, p, st = parse_date(r)
            out += [d.alias(c.name), p.alias(f"{c.name}_precision"), st.alias(f"v_{c.name}_status"),
                    (d.dt.year().cast(pl.Int32) * 10000 + d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)).alias(f"v_{c.name}_ymd")]
            flags += [pl.when(p == "month").then(pl.lit("date_month_only")),
                      pl.when(p == "year").then(pl.lit("date_year_only"))]
        elif c.dtype == "gender":
            gmap = {**GENDER_MARK_VALUES}
            g = _map_distinct(r, df, f"r_{c.name}", {**gmap, "m": "M", "f": "F"})
            out.append(pl.when(r.is_null()).then(None).otherwise(pl.coalesce(g, r)).alias("gender"))
        elif c.dtype == "ethnicity":
            e = _map_distinct(r, df, f"r_{c.name}", enum_lookup("ethnic_groups"))
            out.append(pl.when(r.is_null()).then(None).otherwise(pl.coalesce(e, r)).alias("ethnicity_code"))
        elif c.dtype == "cccd":
            cccd, cmnd, restored, inp = parse_cccd(r)
            out += [cccd.alias("cccd"), cmnd.alias("cmnd"), inp.alias("v_cccd_input")]
            flags += [pl.when(restored).then(pl.lit("cccd_restored")),
                      pl.when(cmnd.is_not_null()).then(pl.lit("cmnd_legacy"))]
        elif c.dtype == "bhxh":
            t = r.str.replace_all(r"\s", "").str.replace(r"^'", "").str.replace(r"^(\d+)\.0+$", "$1")
            t = pl.when(t.str.contains(r"^\d{9}$")).then(pl.lit("0") + t).otherwise(t)
            out.append(t.alias("bhxh_code"))
        elif c.dtype in ("money", "int"):
            v, digits = parse_amount(r)
            out += [v.alias(c.name), digits.alias(f"v_{c.name}_digits")]
        elif c.dtype.startswith("enum:"):
            stem = c.dtype.split(":", 1)[1]
            e = _map_distinct(r, df, f"r_{c.name}", enum_lookup(stem))
            name = {"leave_reason": "leave_reason_code"}.get(c.name, c.name)
            if c.name == "leave_reason":  # an unlisted reason is kept as 'other', never refused
                e = pl.when(r.is_null()).then(None).otherwise(e.fill_null("other"))
            out.append(e.alias(name))
        else:
            out.append(r.alias(c.name))

    # required values present: first missing column per row
    miss = [pl.when(e.is_null()).then(pl.lit(n)) for n, e in required_raw]
    out.append(pl.coalesce(miss).alias("v_missing_column") if miss else pl.lit(None, dtype=pl.String).alias("v_missing_column"))
    out.append(pl.concat_list([f for f in flags]).list.drop_nulls().alias("flags"))
    out.append(pl.col("__row").alias("__row"))
    typed = df.select(out + [pl.col(c) for c in ccols] + [pl.col(f"r_{n}") for n in raws])

    # enumerations that are required but unrecognised count as missing
    for c in spec.columns:
        if c.dtype.startswith("enum:") and c.required:
            typed = typed.with_columns(
                pl.when(pl.col("v_missing_column").is_null() & pl.col(c.name).is_null())
                .then(pl.lit(c.name)).otherwise(pl.col("v_missing_column")).alias("v_missing_column"))

    # cross-column helpers per kind
    helpers: list[pl.Expr] = []
    if "cccd" in spec.names:
        helpers.append(pl.col("cccd").str.slice(3, 3).alias("v_cccd_birth_code"))
    if kind == "roster":
        by = pl.col("birth_date").dt.year()
        century_digit = ((by // 100 - 19) * 2 + pl.when(pl.col("gender") == "F").then(1).otherwise(0))
        expected = pl.when(pl.col("gender").is_in(["M", "F"]) & by.is_not_null() & pl.col("cccd").str.contains(r"^\d{12}$")).then(
            pl.concat_str([century_digit.cast(pl.String), (by % 100).cast(pl.String).str.zfill(2)]))
        j, b = pl.col("join_date"), pl.col("birth_date")
        age = (j.dt.year() - b.dt.year() - pl.when((j.dt.month() < b.dt.month()) | (
            (j.dt.month() == b.dt.month()) & (j.dt.day() < b.dt.day()))).then(1).otherwise(0))
        helpers += [
            expected.alias("v_expected_birth_code"),
            age.alias("v_age_at_join"),
            pl.when(pl.col("bhxh_code").is_null()).then(None)
            .when(pl.col("bhxh_code") == pl.col("cccd")).then(pl.lit("same_as_cccd"))
            .otherwise(pl.col("bhxh_code")).alias("v_bhxh_check"),
        ]
    typed = typed.with_columns(helpers)
    if kind == "roster":  # pair check only where both sides exist
        typed = typed.with_columns(
            pl.when(pl.col("v_expected_birth_code").is_null()).then(None).otherwise(pl.col("v_cccd_birth_code"))
            .alias("v_cccd_birth_code"))
    # duplicates within the file: occurrence number of the row's key (first one kept)
    key = list(spec.key)
    person = [k if k != "cccd" else "v_person" for k in key]
    if "cccd" in key:
        typed = typed.with_columns(pl.coalesce(pl.col("cccd"), pl.col("cmnd") if "cmnd" in typed.columns else pl.lit(None)).alias("v_person"))
    typed = typed.with_columns(
        pl.when(pl.all_horizontal([pl.col(k).is_not_null() for k in person]))
        .then(pl.int_range(1, pl.len() + 1).over(person)).otherwise(None).cast(pl.Int64).alias("v_dup_seq"))
    info["today_ymd"] = today.year * 10000 + today.month * 100 + today.day
    return typed, info
