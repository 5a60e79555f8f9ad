"""Reading what offices send, safely, as text: .xlsx/.xls (calamine), .csv, .parquet.

Every reader returns a `Grid`: the sheet as a Polars frame of text columns ``c0..cN`` plus ``__row``
(the 1-based row number the branch sees in Excel, or the CSV line number). No cell is ever typed by a
sniffer: a CCCD stays text. Formulas are never evaluated (calamine returns the cached value) and external
links are never followed. Zip/XML bombs are refused before any parsing.

`FileRefused(reason_code, message_vi)` is raised for whole-file refusals.
"""
from __future__ import annotations

import datetime as _dt
import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl

from pipelines.ingest.mapping import header_key
from pipelines.ingest.textnorm import TCVN3_TO_UNICODE

MAX_FILE_BYTES = int(os.environ.get("DOANVIEN_INGEST_MAX_BYTES", 50 * 1024 * 1024))
MAX_ROWS = int(os.environ.get("DOANVIEN_INGEST_MAX_ROWS", 500_000))
MAX_UNZIPPED_BYTES = 300 * 1024 * 1024
MAX_ZIP_RATIO = 100.0
MAX_ZIP_MEMBERS = 2000

ALLOWED_EXT = {"xlsx", "xls", "csv", "parquet"}


class FileRefused(Exception):
    def __init__(self, reason_code: str, message_vi: str, detail: str = ""):
        super().__init__(f"{reason_code}: {detail or message_vi}")
        self.reason_code = reason_code
        self.message_vi = message_vi
        self.detail = detail


@dataclass
class Grid:
    sheet: str
    df: pl.DataFrame  # c0..cN (String) + __row (Int64)
    fmt: str
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ncols(self) -> int:
        return self.df.width - 1

    def _with_encoding(self, enc: str) -> "Grid":
        self.encoding = enc
        return self


# ---------------------------------------------------------------------------------------------- sniffing
def sniff_format(data: bytes) -> str:
    """The real format from magic bytes (never from the name)."""
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    if data[:4] == b"PAR1":
        return "parquet"
    head = data[:4096].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<table")):
        return "markup"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "text16"
    if b"\x00" in data[:8192]:
        return "binary"
    return "text"


def check_zip_safe(data: bytes) -> None:
    """Refuse zip bombs, macro workbooks, DTD/entity tricks, before any parser sees the file."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise FileRefused("unreadable", "Tệp Excel bị hỏng hoặc không đầy đủ, không đọc được.", str(exc))
    if len(infos) > MAX_ZIP_MEMBERS:
        raise FileRefused("unsafe_file", "Tệp Excel có cấu trúc bất thường (quá nhiều thành phần), bị từ chối vì lý do an toàn.")
    total = 0
    names = set()
    for zi in infos:
        names.add(zi.filename)
        total += zi.file_size
        ratio = zi.file_size / max(zi.compress_size, 1)
        if zi.file_size > 1_000_000 and ratio > MAX_ZIP_RATIO:
            raise FileRefused("unsafe_file", "Tệp Excel bị nén bất thường (nghi là 'bom nén'), bị từ chối vì lý do an toàn.",
                              f"member ratio {ratio:.0f}")
    if total > MAX_UNZIPPED_BYTES:
        raise FileRefused("unsafe_file", "Tệp Excel khi giải nén quá lớn (nghi là 'bom nén'), bị từ chối vì lý do an toàn.",
                          f"uncompressed {total}")
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise FileRefused("unsafe_file", "Tệp không phải bảng tính Excel (.xlsx) hợp lệ, bị từ chối vì lý do an toàn.")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise FileRefused("unsafe_file", "Tệp Excel có chứa macro, bị từ chối vì lý do an toàn. Vui lòng lưu lại dạng .xlsx không macro.")
    # XML members: no DTD / entity declarations anywhere (billion laughs, quadratic blowup, XXE).
    from defusedxml import ElementTree as DET  # noqa: N812
    for zi in infos:
        if not zi.filename.endswith((".xml", ".rels", ".vml")):
            continue
        with zf.open(zi) as fh:
            head = fh.read(65536)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise FileRefused("unsafe_file", "Tệp Excel chứa khai báo XML nguy hiểm, bị từ chối vì lý do an toàn.")
    for small in ("[Content_Types].xml", "xl/workbook.xml"):
        if small in names:
            try:
                DET.fromstring(zf.read(small))
            except Exception as exc:  # defusedxml raises on DTD/entities; others are malformed XML
                raise FileRefused("unsafe_file", "Tệp Excel chứa XML không hợp lệ hoặc nguy hiểm, bị từ chối.", str(exc))


# ---------------------------------------------------------------------------------------------- cells
def _cell_text(v) -> str | None:
    if v is None:
        return None
    t = type(v)
    if t is str:
        return v if v != "" else None
    if t is float:
        if v != v:
            return None
        if v.is_integer() and abs(v) < 1e17:
            return str(int(v))
        return repr(v)
    if t is bool:
        return "TRUE" if v else "FALSE"
    if t is int:
        return str(v)
    if t is _dt.datetime:
        return v.date().isoformat() if (v.hour, v.minute, v.second) == (0, 0, 0) else v.isoformat()
    if t is _dt.date:
        return v.isoformat()
    if t is _dt.time:
        return v.isoformat()
    return str(v)


_ASCII_ALNUM = re.compile("[0-9A-Za-z]")


@lru_cache(maxsize=4096)
def _char_keyed(ch: str) -> bool:
    return bool(header_key(ch))


def _keyed(text: str) -> bool:
    """``header_key(text) != ""`` without building the key (the delimiter sniff asks it of every cell of 60
    lines, four times): the key keeps a character's letters/digits, character by character (NFD, lower
    case, marks dropped, đ → d), so it is non-empty exactly when one character has a non-empty key."""
    if _ASCII_ALNUM.search(text):
        return True
    return not text.isascii() and any(_char_keyed(ch) for ch in text if not ch.isascii())


def _grid_from_rows(rows: list[list], sheet: str, fmt: str) -> Grid:
    if len(rows) > MAX_ROWS + 100:
        raise FileRefused("too_large", f"Tệp có quá nhiều dòng (giới hạn {MAX_ROWS:,} dòng). Vui lòng tách tệp.")
    width = max((len(r) for r in rows), default=0)
    cols: dict[str, list] = {f"c{j}": [] for j in range(width)}
    for r in rows:
        n = len(r)
        for j in range(width):
            cols[f"c{j}"].append(_cell_text(r[j]) if j < n else None)
    df = pl.DataFrame(cols, schema={k: pl.String for k in cols}) if width else pl.DataFrame()
    df = df.with_columns(pl.int_range(1, len(rows) + 1, dtype=pl.Int64).alias("__row")) if width else \
        pl.DataFrame({"__row": pl.Series([], dtype=pl.Int64)})
    return Grid(sheet=sheet, df=df, fmt=fmt)


def read_excel_grids(data: bytes, fmt: str) -> list[Grid]:
    import python_calamine as pc
    try:
        wb = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
        grids = []
        for name in wb.sheet_names:
            sh = wb.get_sheet_by_name(name)
            if sh.total_height > MAX_ROWS + 100:
                raise FileRefused("too_large", f"Tệp có quá nhiều dòng (giới hạn {MAX_ROWS:,} dòng). Vui lòng tách tệp.")
            rows = sh.to_python(skip_empty_area=False)
            grids.append(_grid_from_rows(rows, name, fmt))
        return grids
    except FileRefused:
        raise
    except Exception as exc:
        raise FileRefused("unreadable", "Không đọc được tệp Excel (tệp hỏng hoặc sai định dạng).", str(exc)[:200])


def decode_text(data: bytes) -> tuple[str, str]:
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1258", errors="replace")
    return unicodedata.normalize("NFC", text), "cp1258"


def _header_hits(text: str, tcvn3: bool = True) -> int:
    """How many cells of the first lines read as a known column header (any kind, any separator); with
    `tcvn3`, header rows that read as TCVN3 are converted first."""
    from pipelines.ingest.mapping import is_known_header
    hits = 0
    for ln in text.split("\n", 40)[:40]:
        cells = [c.strip().strip('"') for c in re.split(r"[,;\t|]", ln)]
        hits += sum(1 for cell in (legacy_fix_header_row(cells) if tcvn3 else cells) if is_known_header(cell))
    return hits


def decode_single_byte(data: bytes) -> tuple[str, str]:
    """Text that is not UTF-8: Windows-1258 or TCVN3 (ABC) bytes. The two put Vietnamese letters on different
    byte values, so the choice is the decoding under which more header cells read as known headers (TCVN3
    header rows converted on the Latin-1 side only; ties → Windows-1258). TCVN3 is returned as its Latin-1 look-alike text, which normalising converts (and flags)."""
    # decided on the first 64 KiB (as the header lines are read), then only the chosen decoding is made in full
    head = data[:65536]
    latin_head = head.decode("latin-1")
    # a Windows-1258 file's headers read as they are; a TCVN3 file's only once converted (its bytes decoded as
    # Windows-1258 can still look TCVN3-like cell by cell, so no TCVN3 fixing on that side)
    if _header_res()[0].search(latin_head) and _header_hits(latin_head) > _header_hits(
            unicodedata.normalize("NFC", head.decode("cp1258", errors="replace")), tcvn3=False):
        return data.decode("latin-1"), "tcvn3"
    return unicodedata.normalize("NFC", data.decode("cp1258", errors="replace")), "cp1258"


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _csv_bytes(data: bytes) -> tuple[bytes, str, str]:
    """(UTF-8 bytes for the CSV parser, encoding name, decoded head for sniffing).

    UTF-8 input (the common case) is handed to the parser as is (it validates UTF-8 itself); only UTF-16,
    Windows-1258 and old-Mac CR-only files are decoded and re-encoded."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text, enc = decode_text(data)
        body = text.encode("utf-8")
    elif data[:3] == b"\xef\xbb\xbf":
        body, enc = data[3:], "utf-8-sig"
    else:
        body, enc = data, "utf-8"
        try:  # the parser validates UTF-8 itself; only the head is checked here (cheap), the rest by Polars
            body[:65536].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < 65536 - 4:  # not just a character cut at the 64 KiB boundary
                text, enc = decode_single_byte(data)
                body = text.encode("utf-8")
    if b"\r" in body and b"\n" not in body:  # CR-only line ends
        body = body.replace(b"\r", b"\n")
    head = body[:65536].decode("utf-8", errors="ignore")
    return body, enc, head


def _csv_line_numbers(df: pl.DataFrame, body: bytes) -> pl.Expr:
    """1-based line number where each record starts. A quoted field may hold line breaks, so a record can
    span several lines: then each record's start is 1 + the line breaks of all records before it."""
    physical = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    if physical == df.height or not df.height:
        return pl.int_range(1, df.height + 1, dtype=pl.Int64)
    breaks = pl.sum_horizontal([pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in df.columns])
    lines = (breaks + 1).cast(pl.Int64)
    return (lines.cum_sum() - lines + 1).cast(pl.Int64)


def read_csv_grid(data: bytes) -> Grid:
    try:
        body, enc, head = _csv_bytes(data)
    except UnicodeDecodeError as exc:
        raise FileRefused("unreadable", "Không đọc được tệp CSV (bảng mã không hợp lệ).", str(exc)[:200])
    if not head.strip():
        raise FileRefused("empty", "Tệp không có dữ liệu.")
    head_lines = head.replace("\r\n", "\n").split("\n", 60)[:60]
    best = (-1, ",")
    for d in (";", ",", "\t", "|"):
        score = 0
        for ln in head_lines:
            score = max(score, sum(1 for c in ln.split(d) if _keyed(c.strip().strip('"'))))
        score = score if any(ln.count(d) for ln in head_lines) else 0
        if score > best[0]:
            best = (score, d)
    sep = best[1]
    import numpy as np
    arr = np.frombuffer(body, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    if len(nl) > MAX_ROWS + 100:
        raise FileRefused("too_large", f"Tệp có quá nhiều dòng (giới hạn {MAX_ROWS:,} dòng). Vui lòng tách tệp.")
    # widest line (separators + 1), without a Python loop over the lines
    sp = np.flatnonzero(arr == ord(sep))
    width = int(np.bincount(np.searchsorted(nl, sp)).max()) + 1 if len(sp) else 1
    def _read(b: bytes) -> pl.DataFrame:
        return pl.read_csv(io.BytesIO(b), has_header=False, separator=sep,
                           schema={f"c{j}": pl.String for j in range(width)}, missing_columns="insert",
                           truncate_ragged_lines=True, quote_char='"', infer_schema=False,
                           raise_if_empty=False, encoding="utf8")
    try:
        df = _read(body)
    except Exception as exc:
        if enc == "utf-8" and not _is_utf8(body):  # invalid UTF-8 after the first 64 KiB: a single-byte file
            text, enc = decode_single_byte(data)
            return read_csv_grid(text.encode("utf-8"))._with_encoding(enc)
        raise FileRefused("unreadable", "Không đọc được tệp CSV (cấu trúc dòng/cột không hợp lệ).", str(exc)[:200])
    df = df.with_columns(_csv_line_numbers(df, body).alias("__row"))
    g = Grid(sheet="", df=df, fmt="csv", encoding=enc)
    g.notes.append(f"separator={sep!r}")
    return g


def read_parquet_grid(data: bytes) -> Grid:
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise FileRefused("unreadable", "Không đọc được tệp Parquet.", str(exc)[:200])
    if df.height > MAX_ROWS:
        raise FileRefused("too_large", f"Tệp có quá nhiều dòng (giới hạn {MAX_ROWS:,} dòng). Vui lòng tách tệp.")
    exprs = []
    for j, (name, dt) in enumerate(df.schema.items()):
        c = pl.col(name)
        if dt.is_float():
            c = pl.when(c == c.floor()).then(c.cast(pl.Int64).cast(pl.String)).otherwise(c.cast(pl.String))
        elif dt == pl.Date or dt == pl.Datetime:
            c = c.dt.date().cast(pl.String) if dt != pl.Date else c.cast(pl.String)
        else:
            c = c.cast(pl.String)
        exprs.append(c.alias(f"c{j}"))
    body = df.select(exprs)
    header = pl.DataFrame({f"c{j}": [n] for j, n in enumerate(df.columns)}, schema={f"c{j}": pl.String for j in range(df.width)})
    out = pl.concat([header, body]).with_columns(pl.int_range(1, df.height + 2, dtype=pl.Int64).alias("__row"))
    return Grid(sheet="", df=out, fmt="parquet", encoding=None)


def read_grids(data: bytes) -> tuple[str, list[Grid]]:
    """(format, grids). Raises FileRefused."""
    if len(data) == 0:
        raise FileRefused("empty", "Tệp rỗng (0 byte).")
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused("too_large", f"Tệp quá lớn (tối đa {MAX_FILE_BYTES // (1024 * 1024)} MB).")
    kind = sniff_format(data)
    if kind == "zip":
        check_zip_safe(data)
        return "xlsx", read_excel_grids(data, "xlsx")
    if kind == "xls":
        return "xls", read_excel_grids(data, "xls")
    if kind == "parquet":
        return "parquet", [read_parquet_grid(data)]
    if kind in ("text", "text16"):
        return "csv", [read_csv_grid(data)]
    if kind == "markup":
        raise FileRefused("unsafe_file", "Tệp là trang HTML/XML chứ không phải bảng tính, bị từ chối vì lý do an toàn.")
    raise FileRefused("unreadable", "Không nhận ra định dạng tệp (chỉ nhận .xlsx, .xls, .csv, .parquet).")


@lru_cache(maxsize=1)
def _header_res() -> tuple[re.Pattern, re.Pattern]:
    """The TCVN3 marker and the Unicode-only Vietnamese letter patterns of textnorm, compiled once."""
    from pipelines.ingest.textnorm import _TCVN3_MARKER_RE, _UNICODE_VI_RE
    return re.compile(_TCVN3_MARKER_RE), re.compile(_UNICODE_VI_RE)


def legacy_fix_header_row(row: list[str | None]) -> list[str]:
    """A header row: when the row as a whole reads as TCVN3 (a marker byte somewhere, no Unicode-only
    Vietnamese letter anywhere), every cell is converted, including cells such as "Sè CCCD" (Số CCCD) or
    "Sè tiÒn" (Số tiền) whose TCVN3 bytes all look like ordinary Latin-1 Vietnamese letters; otherwise cell by
    cell (`legacy_fix_header_cell`). (Every file's first 40 rows come through here: the checks are compiled
    regexes, not a Python loop per character.)"""
    marker, unicode_vi = _header_res()
    flat = "".join(x for x in row if x)
    if not marker.search(flat):  # no TCVN3 marker in the row: no cell to convert
        return [x.strip() if x else "" for x in row]
    if not unicode_vi.search(flat):
        return ["".join(TCVN3_TO_UNICODE.get(ch, ch) for ch in x).strip() if x else "" for x in row]
    return [legacy_fix_header_cell(x).strip() if x else "" for x in row]


def legacy_fix_header_cell(s: str | None) -> str:
    """Header cells (a few dozen) are fixed in Python: TCVN3 → Unicode when they look like TCVN3."""
    if not s:
        return ""
    marker, unicode_vi = _header_res()
    if unicode_vi.search(s) or not marker.search(s):
        return s
    return "".join(TCVN3_TO_UNICODE.get(ch, ch) for ch in s)
