"""Finding the table inside a sheet: header row(s) below title rows, merged two-row headers, the STT and
column-number rows, footer totals and signature blocks; mapping headers to canonical columns; recognising
the file kind from its columns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from pipelines.ingest.mapping import (
    BIRTH_UNDER_GENDER_HEADERS, GENDER_GROUP_HEADERS, GENDER_SUBCOLUMNS, KINDS, header_key, is_known_header, kind_of_columns,
    match_header,
)
from pipelines.ingest.readers import Grid, legacy_fix_header_row

SCAN_ROWS = 40
_GENDER_SUB = {header_key(h): g for g, hs in GENDER_SUBCOLUMNS.items() for h in hs}
_BIRTH_KEYS = {header_key(h) for h in BIRTH_UNDER_GENDER_HEADERS}
_GENDER_GROUP_KEYS = {header_key(h) for h in GENDER_GROUP_HEADERS}
_STT_KEYS = {"stt", "tt", "so tt", "so thu tu"}
_COLNUM_RE = r"^\(?\s*[0-9]{1,2}[a-z]?\s*\)?$|^\(?[A-Z]\)?$"
_FOOTER_RE = (r"(?i)^\s*(tổng\s*cộng|tong\s*cong|cộng\b|cong\s*:|tổng\s*số\b|tong\s*so\b|người\s*lập|nguoi\s*lap|"
              r"chủ\s*tịch|chu\s*tich|thủ\s*trưởng|thu\s*truong|kế\s*toán|ke\s*toan|xác\s*nhận|xac\s*nhan|"
              r"t\s*/\s*m\b|tm\.?\s)")
# "…, ngày … tháng … năm …" anywhere in the cell (kept apart: an unanchored branch in the regex above made
# every cell of the column a full scan)
_FOOTER_DATE_RE = r"(?i)ngày\s*\.*\s*tháng\s*\.*\s*năm"


@dataclass
class Layout:
    sheet: str
    kind: str | None
    header_rows: list[int]                      # sheet row numbers of the header
    columns: dict[str, int]                     # canonical -> column index
    gender_marks: dict[str, int] = field(default_factory=dict)      # "M"/"F" -> x-marked column
    birth_by_gender: dict[str, int] = field(default_factory=dict)   # "M"/"F" -> birth date under gender
    headers: dict[int, str] = field(default_factory=dict)           # column index -> header text shown
    found_by_kind: dict[str, set[str]] = field(default_factory=dict)
    score: int = 0
    data: pl.DataFrame | None = None            # data rows (c*, __row), footer/blank/numbering removed
    title_text: str = ""                        # text above the header (for the period check)
    header_tcvn3: bool = False                  # the header row was written in TCVN3 (the file is TCVN3)
    identity_is_cmnd: bool = False              # the identity column ("cccd") is a lone "Số CMND" column


def _cols_for(kind: str, top: list[str], bottom: list[str] | None):
    """Map header cells of one kind. Returns (columns, gender_marks, birth_by_gender, headers, identity_is_cmnd):
    the last is true when a "Số CMND" column with no CCCD column beside it became the identity column."""
    cols: dict[str, int] = {}
    marks: dict[str, int] = {}
    birth: dict[str, int] = {}
    shown: dict[int, str] = {}
    parent = ""
    for j, t in enumerate(top):
        b = bottom[j] if bottom is not None and j < len(bottom) else ""
        if t:
            parent = t
        elif not b:
            parent = ""
        tk, bk, pk = header_key(t), header_key(b), header_key(parent)
        shown[j] = " / ".join(x for x in ((t or (parent if b else "")), b) if x)
        target = None
        if bk:
            if bk in _GENDER_SUB:
                g = _GENDER_SUB[bk]
                if pk in _BIRTH_KEYS:
                    birth.setdefault(g, j)
                else:
                    marks.setdefault(g, j)
                continue
            target = match_header(kind, b) or match_header(kind, f"{parent} {b}") or match_header(kind, parent)
        elif tk:
            if tk in _GENDER_SUB:
                marks.setdefault(_GENDER_SUB[tk], j)
                continue
            target = match_header(kind, t)
        if target and target not in cols:
            cols[target] = j
    lone_cmnd = "cmnd" in cols and "cccd" not in cols
    if lone_cmnd:
        # a "Số CMND" column and no CCCD column: the file's identity column (CCCDs written there are read as such)
        cols["cccd"] = cols.pop("cmnd")
    return cols, marks, birth, shown, lone_cmnd


def _found(cols, marks, birth) -> set[str]:
    f = set(cols)
    if len(marks) == 2 or len(birth) == 2:
        f.add("gender")
    if len(birth) == 2:
        f.add("birth_date")
    return f


def detect_layout(grid: Grid, declared_kind: str | None = None) -> Layout | None:
    df = grid.df
    if df.height == 0 or grid.ncols == 0:
        return None
    ccols = [c for c in df.columns if c != "__row"]
    head = df.head(SCAN_ROWS).select(ccols).rows()
    raw_head = head
    head = [legacy_fix_header_row(list(r)) for r in head]
    best: Layout | None = None
    # a row can start a header only if it, or the row under it, holds a known header text; every other row
    # scores at most 1 (an x-marked Nam/Nữ pair) and can never be chosen (score ≥ 2): skip the mapping work
    keyed = [any(is_known_header(x) for x in r) for r in head] + [False]
    for i, top in enumerate(head):
        if sum(1 for x in top if x) < 2 or not (keyed[i] or keyed[i + 1]):
            continue
        bottom = head[i + 1] if i + 1 < len(head) else None
        # two-row header when the next row carries sub-headers (Nam/Nữ or known header words)
        two = False
        if bottom is not None and any(bottom):
            sub_hits = 0
            for x in bottom:
                k = header_key(x)
                if not k:
                    continue
                if k in _GENDER_SUB or any(match_header(kk, x) for kk in KINDS):
                    sub_hits += 1
            data_like = sum(1 for x in bottom if re.fullmatch(r"[0-9][0-9./\-]{5,}", x or ""))
            two = sub_hits >= 1 and data_like == 0
        for kind in KINDS:
            cand = []
            cand.append(_cols_for(kind, top, None) + (False,))
            if two:
                cand.append(_cols_for(kind, top, bottom) + (True,))
            for cols, marks, birth, shown, _, is_two in cand:
                found = _found(cols, marks, birth)
                score = len(found)
                if best is None or score > best.score or (
                        score == best.score and kind == declared_kind and best.kind != declared_kind) or (
                        # "Giới tính" / "Ngày sinh" over "Nam | Nữ": the two-row reading consumes the sub-header
                        # row (a tie with the one-row reading would leave it as a data row and read "x" as gender)
                        score == best.score and is_two and kind == best.kind and len(best.header_rows) == 1
                        and best.header_rows[0] == i and (len(marks) == 2 or len(birth) == 2)):
                    best = Layout(sheet=grid.sheet, kind=None, header_rows=[i, i + 1] if is_two else [i],
                                  columns=cols, gender_marks=marks if len(marks) == 2 else {},
                                  birth_by_gender=birth if len(birth) == 2 else {}, headers=shown, score=score)
                    best.kind = kind  # provisional: the kind whose mapping scored best on this row
    if best is None or best.score < 2:
        return None
    # recompute per-kind findings on the chosen header row(s) for kind recognition
    i = best.header_rows[0]
    top = head[i]
    bottom = head[i + 1] if len(best.header_rows) == 2 else None
    found_by_kind = {}
    for kind in KINDS:
        cols, marks, birth, _, _ = _cols_for(kind, top, bottom)
        found_by_kind[kind] = _found(cols, marks, birth)
    best.found_by_kind = found_by_kind
    recognised = kind_of_columns(found_by_kind)
    if recognised is None and declared_kind and all(
            c in found_by_kind[declared_kind] for c in KINDS[declared_kind].identifying):
        recognised = declared_kind
    best.kind = recognised
    if recognised:
        cols, marks, birth, shown, best.identity_is_cmnd = _cols_for(recognised, top, bottom)
        best.columns, best.headers = cols, shown
        best.gender_marks = marks if len(marks) == 2 else {}
        best.birth_by_gender = birth if len(birth) == 2 else {}
    best.title_text = " ".join(x for r in head[:i] for x in r if x)
    best.header_tcvn3 = [x.strip() if x else "" for x in raw_head[i]] != head[i]
    # data rows: after the header; drop numbering rows, blank rows, footer and everything after it
    first_row = df["__row"][best.header_rows[-1]] + 1
    body = df.filter(pl.col("__row") >= first_row)
    nonnull = pl.sum_horizontal([pl.col(c).is_not_null() & (pl.col(c).str.strip_chars() != "") for c in ccols])
    lead = [pl.col(c) for c in ccols[: min(4, len(ccols))]]
    # footer rows: a total line or a signature block in one of the first four columns
    footer = pl.any_horizontal([(c.str.contains(_FOOTER_RE) | c.str.contains(_FOOTER_DATE_RE)).fill_null(False)
                                for c in lead])
    body = body.with_columns(nonnull.alias("__n"), footer.alias("__footer"))
    body = body.with_columns(pl.col("__footer").cum_max().alias("__after_footer"))
    # column-number rows only directly under the header (first 2 body rows): checked on those two rows only
    head2 = body.head(2).with_columns(pl.all_horizontal([
        pl.col(c).is_null() | pl.col(c).str.strip_chars().str.contains(_COLNUM_RE) for c in ccols]).alias("__colnum"))
    numrows = head2.filter(pl.col("__colnum") & (pl.col("__n") >= 2)).get_column("__row")
    body = body.with_columns(pl.col("__row").is_in(numrows.implode()).alias("__numrow"))
    body = body.filter(~pl.col("__after_footer") & ~pl.col("__numrow") & (pl.col("__n") > 0))
    best.data = body.drop("__n", "__footer", "__after_footer", "__numrow")
    return best
