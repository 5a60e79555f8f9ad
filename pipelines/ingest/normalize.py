"""From the mapped sheet (text) to typed canonical columns, flags and the helper columns the suites check.

All work is Polars expressions over whole columns. Enumerations (ethnicity, programmes, reasons …) are
mapped on the *distinct* values only (a few dozen), then joined back — never a Python loop per row.

Helper columns that the expectation suites (`expectations/<kind>.json`) validate are prefixed ``v_``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import os
import time
from functools import lru_cache

import polars as pl

from pipelines.config import REFERENCE_DIR
from pipelines.ingest.layout import Layout
from pipelines.ingest.mapping import GENDER_MARK_VALUES, KINDS, LEAVE_REASON_ALIASES, header_key
from pipelines.ingest.readers import FileRefused
from pipelines.ingest.textnorm import tone_style_map

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


def _lookup_distinct(df: pl.DataFrame, col: str, exprs: dict[str, pl.Expr] | list[dict[str, pl.Expr]],
                     where: pl.Expr | None = None) -> pl.DataFrame:
    """Evaluate `exprs` (written on ``pl.col(col)``) once per distinct value of `col` (optionally only the
    values where `where` holds) and join the results back by value: heavy parsing costs O(distinct).

    `exprs` may be a list of stages applied in turn (a stage can use the columns of the stages before; columns
    named ``__s_*`` are intermediate and dropped): an intermediate used several times is computed once."""
    stages = exprs if isinstance(exprs, list) else [exprs]
    u = df.select(pl.col(col)).filter(where) if where is not None else df.select(pl.col(col))
    u = u.unique().drop_nulls()
    if u.height == 0:  # nothing to parse: the result columns, all null (planning the exprs costs ~5 ms)
        schema = _result_schema(u.schema[col], col, stages)
        return df.with_columns(pl.lit(None, dtype=dt).alias(n) for n, dt in schema.items() if n != col)
    for st in stages:
        u = u.with_columns(**st)
    res = u.select(c for c in u.columns if not c.startswith("__s_"))
    return _join_back(df, res, col)


def _join_back(df: pl.DataFrame, res: pl.DataFrame, col: str) -> pl.DataFrame:
    """``df.join(res, on=col, how="left")`` for `res` unique on `col`: only the key column takes part in the
    join (the frame is wide: a join gathers every column), the new columns are then added side by side."""
    got = df.select(col).join(res, on=col, how="left", nulls_equal=False, maintain_order="left")
    return df.hstack(got.drop(col).get_columns())


_SCHEMAS: dict = {}


def _result_schema(dtype: pl.DataType, col: str, stages: list[dict[str, pl.Expr]]) -> dict:
    """Output schema of the `stages` on a `col` column (intermediates dropped), once per expression set."""
    key = (col, str(dtype), tuple((n, str(e)) for st in stages for n, e in st.items()))
    hit = _SCHEMAS.get(key)
    if hit is None:
        u = pl.DataFrame(schema={col: dtype})
        for st in stages:
            u = u.with_columns(**st)
        hit = _SCHEMAS[key] = {n: t for n, t in u.schema.items() if not n.startswith("__s_")}
    return hit


def parse_date_columns(df: pl.DataFrame, col: str, prefix: str) -> pl.DataFrame:
    """Adds ``{prefix}_date``, ``{prefix}_prec``, ``{prefix}_status`` for text column `col`.

    Dates repeat a lot (birth dates, a few join dates), so the office forms are parsed on the distinct values;
    the common "dd/mm/yyyy" form (and an Excel date cell's "yyyy-mm-dd") takes a fast strptime path, the rest go
    through `parse_date`.
    """
    u = df.select(pl.col(col)).drop_nulls().unique()
    fast_ok = pl.col(col).str.contains(r"^\d{2}/\d{2}/\d{4}$")
    # an Excel date cell reads as "yyyy-mm-dd": the general parser gives it the same day, precision and status
    iso_ok = pl.col(col).str.contains(r"^\d{4}-\d{2}-\d{2}$")
    u = u.with_columns(pl.when(fast_ok).then(pl.col(col).str.to_date("%d/%m/%Y", strict=False))
                       .when(iso_ok).then(pl.col(col).str.to_date("%Y-%m-%d", strict=False)).alias("__fast"))
    fast = u.filter(pl.col("__fast").is_not_null()).select(
        col, pl.col("__fast").alias(f"{prefix}_date"), pl.lit("day").alias(f"{prefix}_prec"),
        pl.lit("ok").alias(f"{prefix}_status"))
    rest = u.filter(pl.col("__fast").is_null()).select(col)
    if rest.height:  # the general parser only for the few other forms (planning it alone costs ~7 ms)
        d, p, st = _parse_date_exprs(col)
        rest = rest.select(col, d.alias(f"{prefix}_date"), p.alias(f"{prefix}_prec"), st.alias(f"{prefix}_status"))
        both = pl.concat([fast, rest], how="vertical_relaxed")
    else:
        both = fast
    return df.join(both, on=col, how="left", nulls_equal=False, maintain_order="left")


# ------------------------------------------------------------------------------------------- text
_NONASCII = r"[^\x00-\x7F]"
# Characters whose presence can make a string differ from its NFC form (combining marks, Hangul jamo,
# the few singleton decompositions). A string with none of them is already NFC.
_NOT_NFC_CANDIDATE = ("[\u0300-\u036f\u0374\u037e\u0387\u0483-\u0489\u1100-\u11ff\u1dc0-\u1dff\u1f71-\u1ffd"
                      "\u2000\u2001\u20d0-\u20ff\u2126\u212a\u212b\u2329\u232a\uf900-\ufaff\ufe20-\ufe2f]")
# A cell needs whitespace collapsing when it has a run of 2+ blanks or any blank other than a plain space.
_WS_FIX = r"[\s\u00a0\u200b]{2,}|[^\S ]|\u200b"
# A cell needs any cleaning: non-ASCII, blanks to collapse or trim, or empty.
_NEEDS_WORK = r"[^\x00-\x7F]|^$|^\s|\s$|\s\s|[^\S ]"


def _bool_mask(n: int, idx: pl.Series) -> pl.Series:
    """Boolean Series of length n, True at `idx`."""
    m = pl.select(pl.repeat(False, n, dtype=pl.Boolean)).to_series() if n else pl.Series([], dtype=pl.Boolean)
    return m.scatter(idx, True) if len(idx) else m


def prepare_text(df: pl.DataFrame, cols: list[str], info: dict, tcvn3_file: bool = False,
                 by: str | None = None, tcvn3_files: pl.Series | None = None) -> pl.DataFrame:
    """Legacy-encoding detection/conversion, NFC, trimmed and collapsed spaces (empty → null) for `cols`.

    Adds the row flags ``__enc`` (TCVN3 converted) and ``__nfd`` (decomposed text composed). Every costly
    step runs only on the cells that can need it (non-ASCII cells, cells with combining marks, cells with odd
    blanks), found with one cheap scan per column, and is scattered back: plain cells cost one regex scan.
    A file in VNI is refused (``legacy_encoding``), unless its header is TCVN3 (`tcvn3_file`): the two
    encodings share byte values, and TCVN3 text can look like VNI cell by cell.

    Several files' rows at once: `by` names their file column (``__fid`` = 0, 1, … ), `tcvn3_files` the
    header flag of each file. The encoding decisions are then made file by file, exactly as for one file:
    nothing raises; ``info["refused_files"]`` maps a refused file to its FileRefused, and
    ``info["encoding_files"]`` lists the files with converted cells (the rows of a refused file are still in
    the result: the caller drops them).
    """
    from pipelines.ingest.textnorm import _TCVN3_MARKER_RE, _UNICODE_VI_RE, _VNI_RE, TCVN3_TO_UNICODE
    n = df.height
    keys = list(TCVN3_TO_UNICODE)
    vals = [TCVN3_TO_UNICODE[k] for k in keys]
    fid_all = df.get_column(by).cast(pl.UInt32) if by is not None else None
    # one regex pass per column finds the cells that need any work (non-ASCII, odd or edge blanks, empty);
    # everything else below runs on those cells only and is scattered back
    parts = {}
    tallies = []  # per column: the file of each cell to look at and its three encoding marks
    for c in cols:
        s = df.get_column(c)
        idx = s.str.contains(_NEEDS_WORK).fill_null(False).arg_true()
        if not len(idx):
            continue
        sub = s.gather(idx)
        uni = sub.str.contains(_UNICODE_VI_RE)
        marker = sub.str.contains(_TCVN3_MARKER_RE)
        tallies.append(pl.DataFrame({
            "f": fid_all.gather(idx) if fid_all is not None else pl.zeros(len(idx), dtype=pl.UInt32, eager=True),
            "vni": (sub.str.contains(_VNI_RE) & ~uni).fill_null(False),
            "marker": (marker & ~uni).fill_null(False), "uni": uni.fill_null(False)}))
        parts[c] = (idx, sub, uni, marker)
    # per file: its rows, VNI-looking cells, TCVN3-only cells and Vietnamese Unicode cells
    n_files = (len(tcvn3_files) if tcvn3_files is not None
               else int(fid_all.max()) + 1 if fid_all is not None and n else 1)
    files = pl.DataFrame({"f": pl.arange(0, n_files, dtype=pl.UInt32, eager=True)})
    rows = (fid_all.value_counts(name="n") if fid_all is not None
            else pl.DataFrame({"f": [0], "n": [n]}, schema={"f": pl.UInt32, "n": pl.UInt32}))
    files = files.join(rows.rename({rows.columns[0]: "f"}), on="f", how="left")
    if tallies:
        sums = pl.concat(tallies).group_by("f").agg(pl.col("vni").sum(), pl.col("marker").sum(), pl.col("uni").sum())
        files = files.join(sums, on="f", how="left")
    else:
        files = files.with_columns(pl.lit(0).alias("vni"), pl.lit(0).alias("marker"), pl.lit(0).alias("uni"))
    tc = (tcvn3_files.cast(pl.Boolean) if tcvn3_files is not None
          else pl.Series([bool(tcvn3_file)] * n_files, dtype=pl.Boolean))
    files = files.with_columns(pl.col("n", "vni", "marker", "uni").fill_null(0), tc.alias("tcvn3")).with_columns(
        (~pl.col("tcvn3") & ((pl.col("vni") >= 3) | ((pl.col("n") > 0) & (pl.col("vni") >= 1)
                                                    & (pl.col("vni") >= (0.05 * pl.col("n")).clip(lower_bound=1)))))
        .alias("refuse"),
        # a sheet typed in TCVN3 throughout: convert every cell (some TCVN3 cells look like valid Unicode,
        # e.g. "tÝnh"); otherwise only the cells that carry TCVN3-only characters.
        (((pl.col("marker") > 0) | pl.col("tcvn3")) & (pl.col("uni") == 0)).alias("whole"))
    refuse = files.get_column("refuse")
    if refuse.any():
        err = FileRefused("legacy_encoding",
                          "Tệp dùng bảng mã cũ VNI (phông VNI-Times), chưa chuyển được sang Unicode. "
                          "Vui lòng chuyển bảng mã sang Unicode (ví dụ bằng Unikey) rồi gửi lại.", "VNI")
        if by is None:
            raise err
        info["refused_files"] = {int(f): err for f in refuse.arg_true().to_list()}
    whole = files.get_column("whole")
    enc_idx: list[pl.Series] = []
    nfd_idx: list[pl.Series] = []
    new_cols = []
    for (c, (idx, sub, uni, marker)), tally in zip(parts.items(), tallies):
        whole_cell = whole.gather(tally.get_column("f"))
        conv = (pl.select(pl.when(whole_cell).then(sub.str.contains("[\u00a1-\u00fe]"))
                          .otherwise(marker & ~uni)).to_series().fill_null(False)
                if whole.any() else (marker & ~uni).fill_null(False))
        comb = sub.str.contains(_NOT_NFC_CANDIDATE).fill_null(False)
        fixed = sub
        if conv.any():
            ci = conv.arg_true()
            fixed = fixed.scatter(ci, sub.gather(ci).str.replace_many(keys, vals))
            enc_idx.append(idx.gather(ci))
        if comb.any():
            ki = comb.arg_true()
            orig = sub.gather(ki)
            fixed = fixed.scatter(ki, fixed.gather(ki).str.normalize("NFC"))
            nfd_idx.append(idx.gather(ki).filter(orig != orig.str.normalize("NFC")))
        wi = fixed.str.contains(_WS_FIX).fill_null(False)
        if wi.any():
            wi = wi.arg_true()
            fixed = fixed.scatter(wi, fixed.gather(wi).str.replace_all(r"[\s\u00a0\u200b]+", " "))
        fixed = fixed.str.strip_chars()
        fixed = pl.select(pl.when(fixed == "").then(None).otherwise(fixed)).to_series()
        new_cols.append(df.get_column(c).clone().scatter(idx, fixed).alias(c))
    if enc_idx:
        info["encoding_detected"] = "TCVN3"
        if fid_all is not None:
            info["encoding_files"] = set(fid_all.gather(pl.concat(enc_idx)).unique().to_list())
    allidx = lambda xs: pl.concat(xs) if xs else pl.Series([], dtype=pl.UInt32)  # noqa: E731
    return (df.with_columns(new_cols) if new_cols else df).with_columns(
        _bool_mask(n, allidx(enc_idx)).alias("__enc"), _bool_mask(n, allidx(nfd_idx)).alias("__nfd"))


# ------------------------------------------------------------------------------------------- dates
def parse_date_frames(df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """`parse_date_columns` for several date columns at once: their distinct texts are parsed together once,
    then joined back per column (``__<name>_date``, ``__<name>_prec``, ``__<name>_status``)."""
    vals = pl.concat([df.select(pl.col(f"r_{n}").alias("v")) for n in names]).drop_nulls().unique()
    parsed = parse_date_columns(vals, "v", "p").drop_nulls("v")
    for n in names:
        df = _join_back(df, parsed.rename({"v": f"r_{n}", "p_date": f"__{n}_date", "p_prec": f"__{n}_prec",
                                           "p_status": f"__{n}_status"}), f"r_{n}")
    return df


@lru_cache(maxsize=64)
def _parse_date_exprs(col: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    return parse_date(pl.col(col))


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
    digits = _amount_digits(_amount_text(s))
    return _amount_value(digits), digits


def _amount_text(s: pl.Expr) -> pl.Expr:
    return s.str.strip_chars().str.replace_all(r"(?i)\s|đ|vnđ|vnd|đồng", "").str.replace(r"^'", "")


def _amount_digits(t: pl.Expr) -> pl.Expr:
    thousands = t.str.contains(r"^\d{1,3}([.,]\d{3})+$")
    trailing_zero = t.str.contains(r"^\d+[.,]0+$")
    return (pl.when(thousands).then(t.str.replace_all(r"[.,]", ""))
            .when(trailing_zero).then(t.str.replace(r"[.,]0+$", ""))
            .otherwise(t))


def _amount_value(digits: pl.Expr) -> pl.Expr:
    return pl.when(digits.str.contains(r"^\d{1,15}$")).then(digits.cast(pl.Int64, strict=False))


def amount_stages(col: str, value_name: str, digits_name: str) -> list[dict[str, pl.Expr]]:
    """`parse_amount` as `_lookup_distinct` stages: the cleaned text and the digits computed once each (the
    one-expression form evaluates the cleaned text up to six times)."""
    return [{"__s_t": _amount_text(pl.col(col))}, {digits_name: _amount_digits(pl.col("__s_t"))},
            {value_name: _amount_value(pl.col(digits_name))}]


def _bhxh_expr(r: pl.Expr) -> pl.Expr:
    """Social-insurance code: digits only; a 9-digit code lost its leading zero in Excel."""
    t = r.str.replace_all(r"\s", "").str.replace(r"^'", "").str.replace(r"^(\d+)\.0+$", "$1")
    return pl.when(t.str.contains(r"^\d{9}$")).then(pl.lit("0") + t).otherwise(t)


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


def cccd_stages(col: str, out: str = "__") -> list[dict[str, pl.Expr]]:
    """`parse_cccd` as `_lookup_distinct` stages (the same expressions, each intermediate computed once; the
    one-expression form repeats the cleaned text and the scientific-notation parts many times):
    ``__cccd``, ``__cmnd``, ``__restored``, ``__cccd_in`` (named ``<out>cccd`` … for another prefix)."""
    t, sci, num = pl.col("__s_t"), pl.col("__s_sci"), pl.col("__s_num")
    lead, frac, exp, lossless = pl.col("__s_lead"), pl.col("__s_frac"), pl.col("__s_exp"), pl.col("__s_lossless")
    is9, short = pl.col("__s_is9"), pl.col("__s_short")
    return [
        {"__s_t": pl.col(col).str.replace_all(r"[\s\-]", "").str.replace(r"^'", "")},
        {"__s_sci": t.str.extract_groups(r"^([0-9])(?:[.,]([0-9]*))?[eE]\+?([0-9]+)$"),
         "__s_tint": t.str.replace(r"^(\d+)[.,]0+$", "$1")},
        {"__s_lead": sci.struct.field("1"), "__s_frac": sci.struct.field("2").fill_null(""),
         "__s_exp": sci.struct.field("3").cast(pl.Int32, strict=False)},
        {"__s_lossless": lead.is_not_null() & (frac.str.len_chars() == exp) & exp.is_in([9, 10, 11])},
        {"__s_num": pl.coalesce(pl.when(lossless).then(pl.concat_str([lead, frac])), pl.col("__s_tint"))},
        {"__s_is9": num.str.contains(r"^\d{9}$") & ~lossless, "__s_short": num.str.contains(r"^\d{10,11}$")},
        {f"{out}cccd": (pl.when(is9).then(None).when(short).then(num.str.zfill(12))
                        .when(lead.is_not_null() & ~lossless).then(t).otherwise(num)),
         f"{out}cmnd": pl.when(is9).then(num),
         f"{out}restored": (short | lossless).fill_null(False) & ~is9.fill_null(False),
         f"{out}cccd_in": t},
    ]


def _identity_columns(df: pl.DataFrame) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """(cccd, cmnd, restored flag, input text for the lossy rule, CMND-column value not used) of each row from its
    identity column and its legacy CMND column (``__x*`` from `cccd_stages(…, out="__x")`, all null when the file
    has no such column): the CCCD column's CCCD, else the number written in the CMND column (refused by the CCCD
    rules when it is not a valid CCCD); the CMND from either (the identity column's first). A row with both is a
    CCCD person whose old CMND is known (the warehouse links the CMND's other rows to them:
    int_member_identities, 'cmnd_same_row'). The last expression is true where the CMND column held something
    that was neither used nor the row's CCCD again (not a 9-digit CMND beside a CCCD, or a second CMND): the row is
    accepted on its CCCD and flagged `cmnd_ignored`, so the branch learns the value was dropped."""
    cccd, cmnd, restored, inp = pl.col("__cccd"), pl.col("__cmnd"), pl.col("__restored"), pl.col("__cccd_in")
    if "__xcccd" not in df.columns:
        return cccd, cmnd, restored, inp, pl.lit(False)
    xcccd, xcmnd = pl.col("__xcccd"), pl.col("__xcmnd")
    from_x = cccd.is_null() & xcccd.is_not_null()  # the CCCD (or what stands for it) is the CMND column's
    ignored = ((xcmnd.is_null() & xcccd.is_not_null() & cccd.is_not_null() & (xcccd != cccd))
               | (xcmnd.is_not_null() & cmnd.is_not_null() & (xcmnd != cmnd))).fill_null(False)
    return (pl.coalesce(cccd, xcccd), pl.coalesce(cmnd, xcmnd),
            pl.when(from_x).then(pl.col("__xrestored").fill_null(False)).otherwise(restored),
            pl.when(from_x).then(pl.col("__xcccd_in")).otherwise(inp), ignored)


# ------------------------------------------------------------------------------------------- main
def _mark(info: dict, step: str) -> None:
    now = time.perf_counter()
    info["steps"][step] = round(now - info["_t"], 4)
    info["_t"] = now


def normalise(layout: Layout, *, period: _dt.date, today: _dt.date) -> tuple[pl.DataFrame, dict]:
    """Typed canonical frame with `v_*` helper columns, flags and lineage-ready `source_row`.

    Two steps: `prepare_rows` (the file's own layout: text cleaning, one raw text column ``r_<name>`` per
    canonical column) and `type_rows` (everything else, which depends only on the values and the kind). A
    batch maps each file's cells (`map_rows`), then prepares the text (`prepare_text`, encoding decisions per
    file) and types the rows (`type_rows`) once over several files' rows (``__fid`` column)."""
    info = new_info()
    df, ccols = prepare_rows(layout, info)
    typed = type_rows(df, layout.kind, info, keep=ccols)
    info["today_ymd"] = today.year * 10000 + today.month * 100 + today.day
    return typed, info


def new_info() -> dict:
    return {"encoding_detected": None, "steps": {}, "_t": time.perf_counter()}


def prepare_rows(layout: Layout, info: dict) -> tuple[pl.DataFrame, list[str]]:
    """The file's rows as ``__row``, ``__enc``, ``__nfd``, ``r_<canonical name>`` (cleaned text; the layout's
    gender marks and birth-by-gender columns resolved) plus the sheet's ``c<j>`` columns (its used ones
    cleaned too: the branch workbook shows them); and those names. A batch does the same in another order
    (`map_rows` per file, then `prepare_text` and `resolve_gender_layouts` once over its files' rows)."""
    df = layout.data
    ccols = [c for c in df.columns if c.startswith("c") and c[1:].isdigit()]
    used = sorted({*layout.columns.values(), *layout.gender_marks.values(), *layout.birth_by_gender.values()})
    df = prepare_text(df, [f"c{j}" for j in used], info, tcvn3_file=layout.header_tcvn3)
    _mark(info, "prepare_text")
    df = resolve_gender_layouts(map_rows(layout, df))
    _mark(info, "clean_raw")
    return df, ccols


# the helper columns `map_rows` adds for the two gender layouts (x marks under Nam/Nữ; birth dates under Nam/Nữ)
GENDER_LAYOUT_COLUMNS = ("__gm", "__gm_M", "__gm_F", "__bg", "__bg_M", "__bg_F")


def map_rows(layout: Layout, df: pl.DataFrame | None = None) -> pl.DataFrame:
    """`df` (default: the layout's data rows) with one text column ``r_<canonical name>`` per column of the
    kind: the sheet column the layout mapped to it, else null. Cells are taken as they are (cleaning is per
    cell: `prepare_text` can run before or after). A roster with a gender layout also gets its marked columns
    (``__gm_M``/``__gm_F`` or ``__bg_M``/``__bg_F``) and the flag ``__gm`` or ``__bg``, which
    `resolve_gender_layouts` turns into ``r_gender`` / ``r_birth_date`` once the cells are clean."""
    df = layout.data if df is None else df
    exprs = [(pl.col(f"c{layout.columns[c.name]}") if c.name in layout.columns else pl.lit(None, dtype=pl.String))
             .alias(f"r_{c.name}") for c in KINDS[layout.kind].columns]
    if layout.kind == "roster":
        if layout.birth_by_gender:
            exprs += [pl.lit(True).alias("__bg"), *(pl.col(f"c{layout.birth_by_gender[g]}").alias(f"__bg_{g}")
                                                    for g in ("M", "F"))]
        elif layout.gender_marks:
            exprs += [pl.lit(True).alias("__gm"), *(pl.col(f"c{layout.gender_marks[g]}").alias(f"__gm_{g}")
                                                    for g in ("M", "F"))]
    return df.with_columns(exprs)


def resolve_gender_layouts(df: pl.DataFrame) -> pl.DataFrame:
    """``r_gender`` (and, birth dates under Nam/Nữ, ``r_birth_date``) of the rows `map_rows` flagged with a
    gender layout, from their clean marked cells; the helper columns dropped. Birth dates under Nam/Nữ take
    precedence over x marks, as in the layout."""
    if not any(c in df.columns for c in ("__bg", "__gm")):
        return df

    def pair(prefix: str):
        return pl.col(f"{prefix}_M"), pl.col(f"{prefix}_F")

    def gender_of(m: pl.Expr, f: pl.Expr) -> pl.Expr:
        return (pl.when(m.is_not_null() & f.is_null()).then(pl.lit("M"))
                .when(f.is_not_null() & m.is_null()).then(pl.lit("F"))
                .when(m.is_not_null() & f.is_not_null()).then(pl.lit("Nam và Nữ")))

    gender, birth = pl.col("r_gender"), pl.col("r_birth_date")
    if "__gm" in df.columns:
        gender = pl.when(pl.col("__gm").fill_null(False)).then(gender_of(*pair("__gm"))).otherwise(gender)
    if "__bg" in df.columns:
        bg = pl.col("__bg").fill_null(False)
        gender = pl.when(bg).then(gender_of(*pair("__bg"))).otherwise(gender)
        birth = pl.when(bg).then(pl.coalesce(*pair("__bg"))).otherwise(birth)
    return df.with_columns(gender.alias("r_gender"), birth.alias("r_birth_date")).drop(
        [c for c in GENDER_LAYOUT_COLUMNS if c in df.columns])


def type_rows(df: pl.DataFrame, kind: str, info: dict, keep: list[str] = ()) -> pl.DataFrame:
    """From `prepare_rows`' frame (or several files' frames stacked, with a ``__fid`` column) to the typed
    canonical frame; `keep` columns pass through. Every step works per value or per row, except the in-file
    duplicate rule, which is per ``__fid`` when the frame has one."""
    spec = KINDS[kind]
    out: list[pl.Expr] = [pl.col("__row").alias("source_row")]
    flags: list[pl.Expr] = [pl.when(pl.col("__enc")).then(pl.lit("encoding_converted")),
                            pl.when(pl.col("__nfd")).then(pl.lit("nfd_normalised"))]
    required_raw: list[tuple[str, pl.Expr]] = []
    raws = [c.name for c in spec.columns]
    # heavy per-value parsing runs on distinct values (or on the few non-trivial values), joined back
    tone_maps: dict[str, dict[str, str]] = {}
    date_cols = [c.name for c in spec.columns if c.dtype == "date"]
    if date_cols:
        df = parse_date_frames(df, date_cols)
    for c in spec.columns:
        rc = f"r_{c.name}"
        if c.dtype == "date":
            pass
        elif c.dtype == "cccd":
            plain = pl.col(rc).str.contains(r"^\d{12}$")
            df = _lookup_distinct(df, rc, cccd_stages(rc), where=~plain)
            df = df.with_columns(
                pl.when(plain).then(pl.col(rc)).otherwise(pl.col("__cccd")).alias("__cccd"),
                pl.when(plain).then(pl.col(rc)).otherwise(pl.col("__cccd_in")).alias("__cccd_in"),
                pl.col("__restored").fill_null(False))
        elif c.dtype == "cmnd":
            # a legacy CMND column beside the CCCD column (`layout._cols_for` makes a lone one the identity
            # column): read as the identity column is; combined with it below (_identity_columns)
            df = _lookup_distinct(df, rc, cccd_stages(rc, out="__x"))
        elif c.dtype in ("name", "text"):
            tone_maps[c.name] = tone_style_map(df, rc)
        elif c.dtype in ("money", "int"):
            df = _lookup_distinct(df, rc, amount_stages(rc, f"__{c.name}_val", f"__{c.name}_digits"))
        elif c.dtype == "bhxh":
            plain = pl.col(rc).str.contains(r"^\d{10}$")
            df = _lookup_distinct(df, rc, {f"__{c.name}_code": _bhxh_expr(pl.col(rc))}, where=~plain)
            df = df.with_columns(pl.when(plain).then(pl.col(rc)).otherwise(pl.col(f"__{c.name}_code"))
                                 .alias(f"__{c.name}_code"))
    _mark(info, "parse_distinct")

    for c in spec.columns:
        r = pl.col(f"r_{c.name}")
        if c.required:
            # the identity number may stand in the legacy CMND column instead (a CMND-only member)
            required_raw.append((c.name, pl.coalesce(r, pl.col("r_cmnd")) if c.dtype == "cccd" and
                                 "__xcccd" in df.columns else r))
        if c.dtype == "code":
            out.append(r.str.replace_all(" ", "", literal=True).str.to_uppercase().alias(c.name))
        elif c.dtype in ("name", "text"):
            tm = tone_maps.get(c.name)
            e = r.replace(tm) if tm else r
            if c.dtype == "name":  # TCVN3 capitals with tones come back lowercase: re-capitalise names
                e = pl.when(pl.col("__enc")).then(e.str.to_titlecase()).otherwise(e)
            out.append(e.alias(c.name))
        elif c.dtype == "date":
            d, p, st = (pl.col(f"__{c.name}_date"), pl.col(f"__{c.name}_prec"), pl.col(f"__{c.name}_status"))
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
            cccd, cmnd, restored, inp, ignored = _identity_columns(df)
            out += [cccd.alias("cccd"), cmnd.alias("cmnd"), inp.alias("v_cccd_input")]
            # cmnd_legacy: the person is known by the old CMND only on this row
            flags += [pl.when(restored).then(pl.lit("cccd_restored")),
                      pl.when(cmnd.is_not_null() & cccd.is_null()).then(pl.lit("cmnd_legacy")),
                      pl.when(ignored).then(pl.lit("cmnd_ignored"))]
        elif c.dtype == "cmnd":
            pass  # in the identity columns above
        elif c.dtype == "bhxh":
            out.append(pl.col(f"__{c.name}_code").alias("bhxh_code"))
        elif c.dtype in ("money", "int"):
            out += [pl.col(f"__{c.name}_val").alias(c.name), pl.col(f"__{c.name}_digits").alias(f"v_{c.name}_digits")]
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
    if os.environ.get("DOANVIEN_INGEST_TRACE_EXPRS"):  # developer aid: cost of each output expression
        for e in out:
            t0 = time.perf_counter()
            df.select(e)
            print(f"{time.perf_counter() - t0:8.4f}  {str(e)[:110]}")
    fid = ["__fid"] if "__fid" in df.columns else []
    typed = df.select(out + [pl.col(c) for c in keep] + [pl.col(f"r_{n}") for n in raws] + [pl.col(c) for c in fid])

    _mark(info, "main_select")
    # a required enumeration whose text is present but not in the reference list: its own helper column
    # (rule required_missing, message "… không có trong danh mục"), so an empty cell and an unknown value read
    # differently to the branch
    for c in spec.columns:
        if c.dtype.startswith("enum:") and c.required:
            typed = typed.with_columns(
                pl.when(pl.col(f"r_{c.name}").is_not_null() & pl.col(c.name).is_null())
                .then(pl.col(f"r_{c.name}")).otherwise(None).alias(f"v_{c.name}_unknown"))

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
    _mark(info, "helpers")
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
        # 1 for the first row of a key, 2 for any later one (a hash of the key, no window over 50k groups)
        .then(pl.when(pl.struct(person + fid).is_first_distinct()).then(1).otherwise(2))
        .otherwise(None).cast(pl.Int64).alias("v_dup_seq"))
    _mark(info, "dup_seq")
    return typed
