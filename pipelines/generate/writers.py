"""Writing one branch file (.xlsx or .csv) the way offices do, with injected defects.

`write_file` takes the true rows of one file (canonical columns, typed) and returns the defect records of
everything it changed or added, with the row number the branch sees (1-based sheet row in Excel, line number
in CSV where the header is line 1).
"""
from __future__ import annotations

import io
import os
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter

from . import names as N
from .headers import CANONICAL, TOTAL_LABEL, gender_words, header_variants
from .legacy_encodings import encode_cp1258, encode_tcvn3, replacement_pairs
from .refdata import FIXED_CREATED, provinces

EXCEL_EPOCH = date(1899, 12, 30)
VALID_PREFIXES = sorted({"0" + r["old_code"] for r in provinces()})
INVALID_PREFIXES = [f"0{i:02d}" for i in range(1, 100) if f"0{i:02d}" not in VALID_PREFIXES]

DATE_COLS = {"roster": ("birth_date", "join_date", "leave_date"), "services": ("service_date",),
             "activities": ("activity_date",), "dues": (), "insurance": ()}
MONEY_COLS = {"roster": ("insurance_salary",), "services": ("amount",),
              "dues": ("members_count", "salary_fund", "dues_expected", "dues_collected"),
              "activities": (), "insurance": ("insured_workers", "insured_women")}
TITLE_VI = {"roster": "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN", "dues": "BÁO CÁO THU ĐOÀN PHÍ CÔNG ĐOÀN",
            "services": "DANH SÁCH ĐOÀN VIÊN ĐƯỢC HỖ TRỢ, CHĂM LO",
            "activities": "DANH SÁCH ĐOÀN VIÊN THAM GIA HOẠT ĐỘNG",
            "insurance": "DANH SÁCH ĐƠN VỊ THAM GIA BẢO HIỂM XÃ HỘI"}

# (defect_type, expected_outcome, expected_rule)
OUTCOME = {
    "cccd_as_number": ("repaired", "cccd_restored"),
    "cccd_scientific": ("row_refused", "cccd_lossy"),
    "cccd_invalid_layout": ("row_refused", "cccd_layout"),
    "cccd_birth_mismatch": ("row_refused", "cccd_birth_mismatch"),
    "date_text": ("repaired", None),
    "date_excel_serial": ("repaired", None),
    "date_year_only": ("flagged", "date_year_only"),
    "date_month_only": ("flagged", "date_month_only"),
    "nfd_text": ("repaired", "nfd_normalised"),
    "legacy_cmnd": ("flagged", "cmnd_legacy"),
    "tcvn3_file": ("repaired", "encoding_converted"),
    "duplicate_row": ("deduplicated", "duplicate_in_file"),
    "person_in_two_units": ("conflict", None),
    "cmnd_filled_down": ("conflict", None),
    "missing_submission": ("carried_forward", None),
    "superseded_version": ("superseded", None),
    "omitted_in_first_version": ("superseded", None),
    "wrong_kind_copy": ("file_refused", "wrong_kind"),
    "empty_file": ("file_refused", "empty"),
    "unreadable_file": ("file_refused", "unreadable"),
    "resent_identical": ("deduplicated", "duplicate_content"),
}


@dataclass
class Style:
    fmt: str = "csv"                 # csv | xlsx
    encoding: str = "utf-8"          # utf-8 | utf-8-sig | cp1258 | tcvn3 (csv only)
    sep: str = ","
    thousands: str = "plain"         # plain | dot | comma
    date_style: str = "dmy"          # dmy | iso (csv)
    headers: dict = field(default_factory=dict)
    title_rows: int = 3
    gender_layout: str = "column"    # column | x_marks | dob_under (xlsx roster)
    numbering_row: bool = False
    cccd_numeric_file: bool = False  # xlsx: the whole CCCD column stored as numbers
    sheet_name: str = "Sheet1"
    # roster: a column of the old CMNDs beside the CCCD column ("before" / "after" it; None: one identity column).
    # A legacy member's CMND stands there, and their CCCD column is empty until the office knows the CCCD; from
    # then on the row has both (the warehouse links the person's CMND rows to the CCCD: 'cmnd_same_row')
    cmnd_column: str | None = None
    # with a CMND column: the share of eligible rows (see `_fill_down_cmnd`) that repeat the old CMND of the row
    # above, and the seed of those draws (an RNG of their own)
    cmnd_fill_down: float = 0.0
    cmnd_fill_seed: int = 0


# share of roster files with a CMND column of their own (rosters of the CCCD switch years)
CMND_COLUMN_SHARE = 0.25
# share of a CMND column's eligible rows where the office dragged the old CMND of the row above down one row (Excel's
# fill handle): a legacy member's CMND beside another person's CCCD, which the warehouse must not merge
# (dq_member_conflicts 'cmnd_beside_other_name', or 'cmnd_several_cccd' when the member's own CCCD is written too)
CMND_FILL_DOWN_SHARE = 0.05


def choose_style(rng: np.random.Generator, kind: str, n_rows: int, xlsx_share: float, xlsx_max_rows: int,
                 force_csv: bool = False, force_xlsx: bool = False) -> Style:
    st = Style()
    is_xlsx = (rng.random() < xlsx_share and n_rows <= xlsx_max_rows) or force_xlsx
    if force_csv or kind == "insurance" and not force_xlsx:
        is_xlsx = False
    st.fmt = "xlsx" if is_xlsx else "csv"
    st.encoding = str(rng.choice(["utf-8", "utf-8-sig", "cp1258"], p=[0.45, 0.35, 0.20]))
    st.sep = str(rng.choice([",", ";"], p=[0.6, 0.4]))
    st.thousands = str(rng.choice(["plain", "dot", "comma"], p=[0.5, 0.3, 0.2]))
    if st.sep == ";" and st.thousands == "comma":
        st.thousands = "dot"
    st.date_style = str(rng.choice(["dmy", "iso"], p=[0.8, 0.2]))
    hv = header_variants()[kind]
    for col in CANONICAL[kind]:
        variants = hv[col]
        # mostly the preferred header, sometimes a variant
        st.headers[col] = variants[0] if rng.random() < 0.6 or len(variants) == 1 else \
            variants[1 + int(rng.integers(len(variants) - 1))]
    if len(set(st.headers.values())) < len(st.headers):  # never two identical headers
        st.headers = {c: hv[c][0] for c in CANONICAL[kind]}
    st.title_rows = int(rng.integers(1, 7))
    if kind == "roster" and st.fmt == "xlsx" and n_rows <= 10_000:
        st.gender_layout = str(rng.choice(["column", "x_marks", "dob_under"], p=[0.5, 0.3, 0.2]))
    st.numbering_row = bool(rng.random() < 0.5)
    st.cccd_numeric_file = bool(st.fmt == "xlsx" and rng.random() < 0.3)
    st.sheet_name = str(rng.choice(["Sheet1", "Danh sách", "DS", "Báo cáo", "Data"]))
    return st


# ---------------------------------------------------------------------------------------------------------
def fmt_int_expr(col: str, style: str) -> pl.Expr:
    """Integer column -> text with thousands separators (vectorised)."""
    x = pl.col(col)
    if style == "plain":
        return x.cast(pl.String)
    sep = "." if style == "dot" else ","
    parts = [(x // 10 ** (3 * k)) % 1000 for k in range(5)]  # units, thousands, millions, billions, 10^12
    out = None
    for k in range(4, -1, -1):
        lead = parts[k].cast(pl.String)
        for j in range(k - 1, -1, -1):
            lead = pl.concat_str([lead, pl.lit(sep), parts[j].cast(pl.String).str.zfill(3)])
        cond = x >= 10 ** (3 * k) if k else pl.lit(True)
        out = pl.when(cond).then(lead) if out is None else out.when(cond).then(lead)
    return out.otherwise(pl.lit("0")).alias(col)


def _fake_names(rng, n):
    fam, pf = N.weighted(N.FAMILY)
    f = rng.choice(fam, n, p=pf)
    g = rng.choice(N.GIVEN_M + N.GIVEN_F, n)
    m = rng.choice(["Văn", "Thị", "Minh", "Ngọc"], n)
    return [f"{a} {b} {c}" for a, b, c in zip(f, m, g)]


_DSCHEMA = {"defect_type": pl.String, "source_row": pl.Int64, "column": pl.String, "person_id": pl.Int64}
DEFECT_SCHEMA = {"defect_type": pl.String, "relpath": pl.String, "source_sheet": pl.String, "source_row": pl.Int64,
                 "column": pl.String, "person_id": pl.Int64, "expected_outcome": pl.String,
                 "expected_rule": pl.String, "branch_code": pl.String, "period": pl.Date, "kind": pl.String}
_OUT = pl.DataFrame({"defect_type": list(OUTCOME), "expected_outcome": [v[0] for v in OUTCOME.values()],
                     "expected_rule": [v[1] for v in OUTCOME.values()]}, schema={
                         "defect_type": pl.String, "expected_outcome": pl.String, "expected_rule": pl.String})


def finish_defects(parts: list[pl.DataFrame], relpath, source_sheet, ctx) -> pl.DataFrame | None:
    """Defect rows (defect_type, source_row, column, person_id) -> full defect records (without defect_id)."""
    if not parts:
        return None
    df = pl.concat(parts).join(_OUT, on="defect_type", how="left")
    return df.with_columns(pl.lit(relpath, pl.String).alias("relpath"),
                           pl.lit(source_sheet, pl.String).alias("source_sheet"),
                           pl.lit(ctx["branch_code"], pl.String).alias("branch_code"),
                           pl.lit(ctx["period"], pl.Date).alias("period"),
                           pl.lit(ctx["kind"], pl.String).alias("kind")).select(list(DEFECT_SCHEMA))


@dataclass
class FileResult:
    relpath: str
    defects: pl.DataFrame | None
    data_rows: int
    fmt: str
    encoding: str
    content: bytes


def _add_rows(frame: pl.DataFrame, kind: str, rng, rate: float, fmt: str, encoding: str) -> pl.DataFrame:
    """Add junk rows (refused) and duplicate rows (deduplicated). Real rows keep their relative order."""
    n = frame.height
    if n == 0:
        return frame
    real_pos = np.flatnonzero(frame["_defect"].is_null().to_numpy())
    real = frame[real_pos]
    extras, keys = [], []
    n_dup = int(rng.binomial(n, rate / 4))
    if n_dup:
        idx = np.sort(rng.choice(real.height, min(n_dup, real.height), replace=False))
        extras.append(real[idx].with_columns(pl.lit("duplicate_row").alias("_defect")))
        pos = real_pos[idx].astype(float)
        keys.append(pos + 0.5 + rng.random(len(idx)) * (n - pos - 0.5))  # always after the original row
    if kind == "roster":
        ok = real.filter(pl.col("cccd").str.len_chars() == 12)
        for dtype, r in (("cccd_scientific", rate / 6 if fmt == "csv" else 0), ("cccd_invalid_layout", rate / 6),
                         ("cccd_birth_mismatch", rate / 8)):
            k = min(int(rng.binomial(n, r)), ok.height)
            if not k:
                continue
            t = ok[np.sort(rng.choice(ok.height, k, replace=False))]
            cccd = t["cccd"].to_list()
            if dtype == "cccd_scientific":
                # what Excel shows for the number once the leading zero is gone: 8.09416E+10
                new = [f"{int(c) / 10 ** (len(str(int(c))) - 1):.5f}E+{len(str(int(c))) - 1:02d}" for c in cccd]
            elif dtype == "cccd_invalid_layout":
                bad = rng.choice(INVALID_PREFIXES, k)
                new = [b + c[3:] if i % 3 else c[:11] + "99" for i, (b, c) in enumerate(zip(bad, cccd))]
            else:
                new = [c[:4] + f"{(int(c[4:6]) + 3) % 100:02d}" + c[6:] for c in cccd]
            t = t.with_columns(pl.Series("cccd", new), pl.Series("full_name", _fake_names(rng, k)),
                               pl.lit(None, pl.String).alias("_cmnd"),
                               pl.lit(None, pl.String).alias("bhxh_code"),
                               pl.lit(None, pl.String).alias("member_code"),
                               pl.lit(None, pl.Int64).alias("_person_id"), pl.lit(dtype).alias("_defect"))
            extras.append(t)
            keys.append(rng.random(k) * n)
    if not extras:
        return frame
    ex = pl.concat(extras, how="vertical_relaxed")
    key = np.concatenate([np.arange(n, dtype=float)] + keys)
    out = pl.concat([frame, ex], how="vertical_relaxed").with_columns(pl.Series("_k", key)).sort(
        "_k", maintain_order=True).drop("_k")
    return out


def _pick(rng, mask: np.ndarray, p: float) -> np.ndarray:
    return mask & (rng.random(mask.shape[0]) < p)


def write_file(root: Path, relpath: str, kind: str, frame: pl.DataFrame, style: Style, rng, rate: float,
               mtime: float, ctx: dict) -> FileResult:
    """Write `frame` (canonical columns + _person_id, _defect) to root/relpath. Returns defect records."""
    frame = _add_rows(frame, kind, rng, rate, style.fmt, style.encoding)
    frame, filled = _fill_down_cmnd(kind, frame, style)
    n = frame.height
    real = frame["_defect"].is_null().to_numpy()
    pid = frame["_person_id"].to_list()
    added = frame["_defect"].to_list()
    rep: dict[str, np.ndarray] = {}   # defect type -> row mask (real rows)
    rep_col: dict[str, str] = {}
    date_cols = [c for c in DATE_COLS[kind] if c in frame.columns]
    nfd_ok = style.encoding not in ("tcvn3", "cp1258")
    if kind in ("roster", "services", "activities"):
        if nfd_ok:
            nm = frame["full_name"]
            changes = (nm.str.normalize("NFD") != nm).fill_null(False).to_numpy()  # "Đinh Kim Chi" has no NFD form
            rep["nfd_text"] = _pick(rng, real, rate / 2) & changes
            rep_col["nfd_text"] = "full_name"
        main_date = "birth_date" if kind == "roster" else date_cols[0]
        alt = "date_text" if style.fmt == "xlsx" else "date_excel_serial"
        rep[alt] = _pick(rng, real, rate / 2)
        rep_col[alt] = main_date if kind != "roster" or rng.random() < 0.5 else "join_date"
        if kind == "roster":
            rep["date_year_only"] = _pick(rng, real & ~rep[alt] if rep_col[alt] == "birth_date" else real, rate / 3)
            rep_col["date_year_only"] = "birth_date"
            rep["date_month_only"] = _pick(rng, real & ~rep[alt] if rep_col[alt] == "join_date" else real, rate / 3)
            rep_col["date_month_only"] = "join_date"
        if style.fmt == "xlsx":
            is12 = frame["cccd"].str.len_chars().fill_null(0).to_numpy() == 12
            rep["cccd_as_number"] = real & is12 & (np.ones(n, bool) if style.cccd_numeric_file
                                                   else rng.random(n) < rate / 2)
            rep_col["cccd_as_number"] = "cccd"
        cm = frame["cccd"].str.len_chars().fill_null(0).to_numpy() == 9
        if cm.any():
            rep["legacy_cmnd"] = cm & real
            rep_col["legacy_cmnd"] = "cccd"
        if filled is not None and filled.any():
            rep["cmnd_filled_down"] = filled
            rep_col["cmnd_filled_down"] = "cmnd"

    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if style.fmt == "xlsx":
        first_data_row, sheet = _write_xlsx(path, kind, frame, style, rep, rep_col, ctx)
        rows_1based = np.arange(n) + first_data_row + 1
        source_sheet = sheet
    else:
        _write_csv(path, kind, frame, style, rep, rep_col)
        rows_1based = np.arange(n) + 2
        source_sheet = None
    os.utime(path, (mtime, mtime))
    content = path.read_bytes()

    parts = []
    idx_added = np.flatnonzero(~real)
    if len(idx_added):
        dts = [added[i] for i in idx_added]
        parts.append(pl.DataFrame({
            "defect_type": dts, "source_row": rows_1based[idx_added],
            "column": [{"duplicate_row": None, "person_in_two_units": "cdcs_code"}.get(d, "cccd") for d in dts],
            "person_id": [pid[i] for i in idx_added]}, schema=_DSCHEMA))
    pid_arr = frame["_person_id"]
    for dt, mask in rep.items():
        idx = np.flatnonzero(mask)
        if len(idx):
            parts.append(pl.DataFrame({"defect_type": [dt] * len(idx), "source_row": rows_1based[idx],
                                       "column": [rep_col[dt]] * len(idx), "person_id": pid_arr.gather(idx)},
                                      schema=_DSCHEMA))
    if style.encoding == "tcvn3":
        parts.append(pl.DataFrame({"defect_type": ["tcvn3_file"], "source_row": [None], "column": [None],
                                   "person_id": [None]}, schema=_DSCHEMA))
    defects = finish_defects(parts, relpath, source_sheet, ctx)
    return FileResult(relpath, defects, n, style.fmt, style.encoding if style.fmt == "csv" else "xlsx", content)


# ---------------------------------------------------------------------------------------------------------
def _fill_down_cmnd(kind: str, frame: pl.DataFrame, st: Style) -> tuple[pl.DataFrame, np.ndarray | None]:
    """A roster with a CMND column: a real row of a CCCD person without an old CMND, right under a real row of a
    legacy member (their CMND in the CMND column, alone or beside their CCCD), takes that CMND too
    (`Style.cmnd_fill_down` of such rows, drawn from an RNG of their own). The returned mask marks them (defect
    `cmnd_filled_down`): the CMND then stands beside a CCCD whose row names someone else."""
    if kind != "roster" or not st.cmnd_column or st.cmnd_fill_down <= 0 or frame.height < 2:
        return frame, None
    real = frame["_defect"].is_null()
    legacy = frame["_cmnd"].is_not_null()
    alone = real & (frame["cccd"].str.len_chars() == 12).fill_null(False) & frame["_cmnd"].is_null()
    eligible = (alone & (real & legacy).shift(1, fill_value=False)).to_numpy()
    draws = np.random.default_rng(st.cmnd_fill_seed).random(frame.height)
    filled = eligible & (draws < st.cmnd_fill_down)
    if not filled.any():
        return frame, None
    return frame.with_columns(pl.when(pl.Series(filled)).then(pl.col("_cmnd").shift(1)).otherwise(pl.col("_cmnd"))
                              .alias("_cmnd")), filled


def _file_columns(kind: str, frame: pl.DataFrame, st: Style) -> tuple[list[str], pl.DataFrame]:
    """The columns the file writes, in order, and `frame` with them: the canonical columns, and with a CMND column
    (`Style.cmnd_column`) the legacy numbers moved there: a 9-digit number of the identity column, or beside a
    12-digit CCCD the person's old CMND (real rows and their duplicates; a junk row keeps its own)."""
    cols = list(CANONICAL[kind])
    if kind != "roster" or not st.cmnd_column:
        return cols, frame
    is9 = pl.col("cccd").str.len_chars() == 9
    frame = frame.with_columns(
        pl.when(is9).then(pl.col("cccd")).when(pl.col("cccd").str.len_chars() == 12).then(pl.col("_cmnd"))
        .alias("cmnd"),
        pl.when(is9).then(None).otherwise(pl.col("cccd")).alias("cccd"))
    at = cols.index("cccd") + (st.cmnd_column == "after")
    return cols[:at] + ["cmnd"] + cols[at:], frame


def _file_headers(kind: str, st: Style) -> dict[str, str]:
    """Column -> header text: the style's, and with a CMND column "Số CCCD" and a header of the CMND column."""
    if kind != "roster" or not st.cmnd_column:
        return dict(st.headers)
    from pipelines.ingest.mapping import KINDS
    cmnd = KINDS["roster"].column("cmnd").headers
    return {**st.headers, "cccd": KINDS["roster"].column("cccd").headers[0],
            "cmnd": cmnd[1] if st.cmnd_column == "after" else cmnd[0]}


def _display_frame(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Value mapping shared by both formats: gender -> Nam/Nữ (the other columns are already display text)."""
    if "gender" in frame.columns:
        m, f, _ = gender_words()
        frame = frame.with_columns(pl.when(pl.col("gender") == "M").then(pl.lit(m)).otherwise(pl.lit(f))
                                   .alias("gender"))
    return frame


def _write_csv(path: Path, kind: str, frame: pl.DataFrame, st: Style, rep, rep_col):
    cols, frame = _file_columns(kind, frame, st)
    df = _display_frame(kind, frame.select(cols))
    exprs = []
    datefmt = "%d/%m/%Y" if st.date_style == "dmy" else "%Y-%m-%d"
    masks = {k: pl.Series(k, v) for k, v in rep.items()}
    df = df.with_columns([s for s in masks.values()])
    for c in cols:
        dtype = df.schema[c]
        if dtype == pl.Date:
            e = pl.col(c).dt.strftime(datefmt)
            for dt, alt in (("date_excel_serial", (pl.col(c) - pl.lit(EXCEL_EPOCH)).dt.total_days().cast(pl.String)),
                            ("date_year_only", pl.col(c).dt.strftime("%Y")),
                            ("date_month_only", pl.col(c).dt.strftime("%m/%Y" if st.sep == ";" else "%Y%m"))):
                if dt in rep and rep_col[dt] == c:
                    e = pl.when(pl.col(dt)).then(alt).otherwise(e)
            exprs.append(e.alias(c))
        elif dtype in (pl.Int64, pl.Int32, pl.UInt32, pl.UInt64):
            exprs.append(fmt_int_expr(c, st.thousands if c in MONEY_COLS[kind] else "plain"))
        elif c == "full_name" and "nfd_text" in rep:
            exprs.append(pl.when(pl.col("nfd_text")).then(pl.col(c).str.normalize("NFD")).otherwise(pl.col(c))
                         .alias(c))
        else:
            exprs.append(pl.col(c))
    out = df.select(exprs)
    headers = _file_headers(kind, st)
    if st.encoding in ("cp1258", "tcvn3"):
        # vectorised re-encoding: replace every Vietnamese letter by its legacy form, then encode per byte
        src, dst = replacement_pairs(st.encoding)
        out = out.with_columns(pl.col(pl.String).str.replace_many(src, dst))
        headers = {c: (encode_cp1258(h).decode("cp1258") if st.encoding == "cp1258"
                       else encode_tcvn3(h).decode("latin-1")) for c, h in headers.items()}
    text = out.rename(headers).write_csv(None, separator=st.sep, quote_style="necessary", null_value="")
    if st.encoding == "utf-8":
        data = text.encode("utf-8")
    elif st.encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + text.encode("utf-8")
    elif st.encoding == "cp1258":
        data = text.encode("cp1258")
    else:
        data = text.encode("latin-1")
    path.write_bytes(data)


def _write_xlsx(path: Path, kind: str, frame: pl.DataFrame, st: Style, rep, rep_col, ctx) -> tuple[int, str]:
    """Returns (0-based sheet row index of the first data row, sheet name)."""
    n = frame.height
    big = n > 10_000 and st.gender_layout == "column"  # constant_memory needs strictly row-ordered writes
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": big, "default_date_format": "dd/mm/yyyy",
                                         "strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    wb.set_properties({"created": datetime(*FIXED_CREATED), "author": ctx.get("branch_name", ""),
                       "title": TITLE_VI[kind]})
    ws = wb.add_worksheet(st.sheet_name)
    bold = wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "text_wrap": True, "border": 1})
    title_f = wb.add_format({"bold": True, "align": "center"})
    money = wb.add_format({"num_format": "#,##0"})
    cols, frame = _file_columns(kind, frame, st)
    headers = _file_headers(kind, st)
    df = _display_frame(kind, frame.select(cols))
    values = {c: df[c].to_list() for c in cols}
    # representation defects (only the few defect rows are touched one by one)
    for dt, mask in rep.items():
        c = rep_col[dt]
        idx = np.flatnonzero(mask)
        v = values[c]
        for i in idx:
            x = v[i]
            if x is None:
                continue
            if dt == "date_text":
                v[i] = x.strftime("%d/%m/%Y")
            elif dt == "date_year_only":
                v[i] = x.year if i % 2 else str(x.year)
            elif dt == "date_month_only":
                v[i] = x.strftime("%m/%Y") if i % 2 else x.strftime("%Y%m")
            elif dt == "nfd_text":
                v[i] = unicodedata.normalize("NFD", x)
            elif dt == "cccd_as_number":
                v[i] = int(x)
    m_word, f_word, groups = gender_words()
    layout = st.gender_layout if kind == "roster" else "column"
    # logical columns: (header_top, header_bottom, values, is_money)
    out_cols: list[tuple[str, str | None, list, bool]] = []
    gender = values.get("gender")
    for c in cols:
        if kind == "roster" and c == "gender" and layout != "column":
            if layout == "x_marks":
                mark = "x" if ctx.get("x_lower", True) else "X"
                out_cols.append((groups[0], m_word, [mark if g == m_word else None for g in gender], False))
                out_cols.append((groups[0], f_word, [mark if g != m_word else None for g in gender], False))
            continue
        if kind == "roster" and c == "birth_date" and layout == "dob_under":
            bd = values[c]
            out_cols.append((headers[c], m_word, [b if g == m_word else None for b, g in zip(bd, gender)], False))
            out_cols.append((headers[c], f_word, [b if g != m_word else None for b, g in zip(bd, gender)], False))
            continue
        out_cols.append((headers[c], None, values[c], c in MONEY_COLS[kind]))
    two_rows = any(b is not None for _, b, _, _ in out_cols)
    ncol = len(out_cols) + 1
    period: date = ctx["period"]
    titles_all = [
        ctx.get("branch_name", "").upper(),
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        f"{TITLE_VI[kind]} THÁNG {period.month:02d}/{period.year}",
        f"(Kèm theo Công văn số {ctx.get('doc_no', 12)}/CĐ ngày 05/{period.month:02d}/{period.year})",
        "Đơn vị tính: người" if kind == "roster" else "Đơn vị tính: đồng",
    ]
    pick = {1: [3], 2: [0, 3], 3: [1, 2, 3], 4: [0, 1, 2, 3], 5: [0, 1, 2, 3, 4], 6: [0, 1, 2, 3, 4, 5]}
    r = 0
    for t in pick[st.title_rows]:
        if titles_all[t]:
            ws.write(r, 0 if t == 0 else 2, titles_all[t], title_f)
        r += 1
    if st.title_rows >= 3:
        r += 1  # a blank row before the table
    hr = r
    ws.write(hr, 0, "STT", bold)
    if two_rows:
        ws.write(hr + 1, 0, None, bold)
        ws.merge_range(hr, 0, hr + 1, 0, "STT", bold)
    j = 1
    while j < ncol:
        top, bottom, _, _ = out_cols[j - 1]
        if bottom is None:
            if two_rows:
                ws.merge_range(hr, j, hr + 1, j, top, bold)
            else:
                ws.write(hr, j, top, bold)
            j += 1
        else:
            ws.merge_range(hr, j, hr, j + 1, top, bold)
            ws.write(hr + 1, j, out_cols[j - 1][1], bold)
            ws.write(hr + 1, j + 1, out_cols[j][1], bold)
            j += 2
    r = hr + (2 if two_rows else 1)
    if st.numbering_row:
        ws.write_row(r, 0, [f"({k})" for k in range(1, ncol + 1)])
        r += 1
    first = r
    for j, (_, _, _, is_money) in enumerate(out_cols, start=1):
        ws.set_column(j, j, 16 if not is_money else 14, money if is_money else None)
    cols_vals = [v for _, _, v, _ in out_cols]
    for i, row in enumerate(zip(*cols_vals)):
        ws.write(r + i, 0, i + 1)
        ws.write_row(r + i, 1, row)
    r += n
    # footer: totals, place/date, signatures
    total = ["Tổng cộng" if kind != "roster" else TOTAL_LABEL] + [None] * (ncol - 1)
    for j, (_, _, v, is_money) in enumerate(out_cols, start=1):
        if is_money:
            total[j] = int(sum(x for x in v if isinstance(x, (int, float))))
    if kind in ("roster", "services", "activities"):
        total[1] = f"{n} người" if kind == "roster" else f"{n} lượt"
    ws.write_row(r, 0, total, wb.add_format({"bold": True}))
    r += 2
    ws.write(r, ncol - 3 if ncol > 3 else 1,
             f"{ctx.get('place', 'Việt Nam')}, ngày 05 tháng {(period.month % 12) + 1:02d} năm "
             f"{period.year + (period.month == 12)}")
    r += 1
    ws.write(r, 1, "Người lập biểu", title_f)
    ws.write(r, ncol - 3 if ncol > 3 else 2, "TM. BAN CHẤP HÀNH" if kind != "insurance" else "GIÁM ĐỐC", title_f)
    r += 1
    ws.write(r, 1, "(Ký, ghi rõ họ tên)")
    ws.write(r, ncol - 3 if ncol > 3 else 2, "CHỦ TỊCH", title_f)
    wb.close()
    return first, st.sheet_name


def garbage_bytes(rng, real: bytes | None) -> bytes:
    """An unreadable 'xlsx': the first bytes of a real zip, cut off, or random noise."""
    if real and len(real) > 400:
        return real[: 300 + int(rng.integers(100))]
    return bytes(rng.integers(0, 256, 512, dtype=np.uint8))
