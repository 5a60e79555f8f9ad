"""The one declarative mapping per file kind: canonical columns and their Vietnamese header variants.

This module is the single declaration shared by the generator (which writes file headers FROM it) and
by ingestion (which maps what offices write back TO canonical columns). It imports only the standard
library so that anyone may import it cheaply.

Data structures
---------------
- ``KINDS: dict[str, KindSpec]`` — one entry per file kind (``roster, dues, services, activities,
  insurance``; CONTRACTS §3).
- ``KindSpec.columns: list[ColumnSpec]`` — canonical columns in the contract's order.
- ``ColumnSpec(name, headers, required, dtype)`` — ``headers[0]`` is the preferred header (what a tidy
  file writes); the rest are variants seen in offices (abbreviations, without diacritics, old tone style).
  ``required`` means the column must be present in the file and each row must have a value there
  (missing value → row rule ``required_missing``; missing column → the file is refused).
- ``KindSpec.identifying`` — canonical columns whose presence identifies the kind (all must be present).

Header matching is done on ``header_key(text)``: NFC → lower case → diacritics removed (đ→d) →
any run of non-alphanumerics → one space. So "Số CMND/CCCD", "so cmnd cccd" and "SỐ CMND / CCCD" match.

Gender layouts (roster)
-----------------------
1. one column "Giới tính" with "Nam"/"Nữ" text (``gender`` column);
2. two x-marked columns "Nam" and "Nữ" (each a ``GENDER_SUBCOLUMNS`` header), optionally merged under a
   parent "Giới tính" header row;
3. a two-row merged header "Ngày sinh" (any ``birth_date`` header) over "Nam" | "Nữ": the birth date is
   written under the member's gender column (the other one is empty). Ingestion derives both
   ``birth_date`` and ``gender`` from that pair.

dtypes: ``code`` (identifier text, upper-cased, no spaces), ``text`` (free text, NFC), ``name`` (a
person's or unit's name), ``date``, ``gender``, ``ethnicity``, ``cccd`` (the identity number: a 12-digit CCCD
or a legacy 9-digit CMND), ``cmnd`` (a column of legacy CMNDs only: beside a ``cccd`` column the row's old
number, alone the file's identity column, see ``layout._cols_for``), ``bhxh``, ``int`` (a count),
``money`` (integer VND), ``enum:<reference csv stem>`` (value is a code or a Vietnamese name from
``data/reference/<stem>.csv``).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "ColumnSpec", "KindSpec", "KINDS", "GENDER_SUBCOLUMNS", "GENDER_GROUP_HEADERS",
    "BIRTH_UNDER_GENDER_HEADERS", "GENDER_MARK_VALUES", "LEAVE_REASON_ALIASES",
    "header_key", "match_header", "preferred_headers", "kind_of_columns",
]


@dataclass(frozen=True)
class ColumnSpec:
    name: str                 # canonical column name (CONTRACTS §3)
    headers: tuple[str, ...]  # headers[0] = preferred header; then variants
    required: bool
    dtype: str

    @property
    def preferred(self) -> str:
        return self.headers[0]


@dataclass(frozen=True)
class KindSpec:
    kind: str
    title_vi: str                       # report title offices put above the table
    columns: list[ColumnSpec]
    identifying: tuple[str, ...]        # canonical columns that identify the kind
    key: tuple[str, ...] = field(default=())  # a row's identity within one file (duplicate_in_file)

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _c(name: str, required: bool, dtype: str, *headers: str) -> ColumnSpec:
    return ColumnSpec(name, tuple(headers), required, dtype)


# Birth-date headers are reused by the "Ngày sinh over Nam|Nữ" layout.
_BIRTH = ("Ngày sinh", "Ngày tháng năm sinh", "Ngày, tháng, năm sinh", "Năm sinh", "Ngày/tháng/năm sinh",
          "Ngay sinh", "NS")
_CDCS = ("Mã CĐCS", "Mã công đoàn cơ sở", "Mã CĐ cơ sở", "Mã CDCS", "Ma CDCS", "Mã đơn vị CĐCS")
_NAME = ("Họ và tên", "Họ tên", "Họ và tên đoàn viên", "Họ tên đoàn viên", "Ho va ten", "Ho ten")
_CCCD = ("Số CCCD", "Số CMND/CCCD", "Số CCCD/CMND", "CMND/CCCD", "CCCD", "Số định danh cá nhân",
         "Số định danh", "Số căn cước", "Số căn cước công dân", "So CCCD")
# A column of the old 9-digit identity card (CMND) only. Beside a CCCD column (rosters of the switch years list
# both: "Số CCCD" | "Số CMND cũ"), it is the legacy number of the row's person; alone, it is the file's identity
# column and is read as one (offices wrote the new 12-digit numbers into their old "Số CMND" column too).
_CMND = ("Số CMND", "Số CMND cũ", "CMND cũ", "Số CMND (cũ)", "CMND", "Số chứng minh nhân dân", "Số CMTND", "CMTND",
         "So CMND")

KINDS: dict[str, KindSpec] = {
    "roster": KindSpec(
        kind="roster",
        title_vi="DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN",
        columns=[
            _c("cdcs_code", True, "code", *_CDCS),
            _c("full_name", True, "name", *_NAME),
            _c("birth_date", True, "date", *_BIRTH),
            _c("gender", True, "gender", "Giới tính", "Gioi tinh", "Phái", "GT"),
            _c("ethnicity", False, "ethnicity", "Dân tộc", "Dan toc", "DT"),
            _c("cccd", True, "cccd", *_CCCD),
            _c("cmnd", False, "cmnd", *_CMND),
            _c("bhxh_code", False, "bhxh", "Mã số BHXH", "Số sổ BHXH", "Mã BHXH", "Số BHXH", "Mã số bảo hiểm xã hội",
               "Ma so BHXH"),
            _c("member_code", False, "code", "Số thẻ đoàn viên", "Số thẻ công đoàn", "Mã đoàn viên", "Số thẻ ĐV",
               "So the doan vien"),
            _c("join_date", True, "date", "Ngày vào công đoàn", "Ngày vào CĐ", "Ngày kết nạp", "Ngày vào Công đoàn",
               "Ngày kết nạp đoàn viên", "Ngay vao cong doan", "Ngay vao CD", "Tháng năm vào CĐ"),
            _c("insurance_salary", False, "money", "Mức lương đóng BHXH", "Lương đóng BHXH", "Tiền lương đóng BHXH",
               "Mức lương đóng BHXH (đồng)", "Luong dong BHXH"),
            _c("leave_date", False, "date", "Ngày thôi sinh hoạt", "Ngày ra khỏi công đoàn", "Ngày ra CĐ", "Ngày giảm",
               "Ngay thoi sinh hoat"),
            _c("leave_reason", False, "enum:leave_reasons", "Lý do thôi sinh hoạt", "Lý do giảm", "Lý do ra CĐ",
               "Lý do", "Ly do thoi sinh hoat"),
        ],
        identifying=("full_name", "birth_date", "join_date"),
        key=("cdcs_code", "cccd"),
    ),
    "dues": KindSpec(
        kind="dues",
        title_vi="BÁO CÁO THU ĐOÀN PHÍ CÔNG ĐOÀN",
        columns=[
            _c("cdcs_code", True, "code", *_CDCS),
            _c("cdcs_name", False, "name", "Tên CĐCS", "Tên công đoàn cơ sở", "Tên đơn vị", "Ten CDCS"),
            _c("members_count", True, "int", "Số đoàn viên", "Tổng số đoàn viên", "Số ĐV", "So doan vien"),
            _c("salary_fund", True, "money", "Quỹ lương đóng BHXH", "Tổng quỹ lương đóng BHXH", "Quỹ lương",
               "Quy luong dong BHXH"),
            _c("dues_expected", True, "money", "Đoàn phí phải thu", "Đoàn phí phải nộp", "Số phải thu",
               "Doan phi phai thu"),
            _c("dues_collected", True, "money", "Đoàn phí đã thu", "Đoàn phí thực thu", "Số đã thu",
               "Doan phi da thu"),
        ],
        identifying=("members_count", "dues_expected"),
        key=("cdcs_code",),
    ),
    "services": KindSpec(
        kind="services",
        title_vi="DANH SÁCH ĐOÀN VIÊN ĐƯỢC HỖ TRỢ, CHĂM LO",
        columns=[
            _c("cdcs_code", True, "code", *_CDCS),
            _c("full_name", True, "name", *_NAME),
            _c("cccd", True, "cccd", *_CCCD),
            _c("cmnd", False, "cmnd", *_CMND),
            _c("program", True, "enum:service_programs", "Chương trình", "Chương trình hỗ trợ", "Hình thức hỗ trợ",
               "Nội dung hỗ trợ", "Chuong trinh"),
            _c("service_date", True, "date", "Ngày hỗ trợ", "Ngày nhận", "Ngày thực hiện", "Ngày trao", "Ngay ho tro"),
            _c("amount", True, "money", "Số tiền", "Số tiền hỗ trợ", "Giá trị (đồng)", "Thành tiền", "So tien"),
        ],
        identifying=("program", "amount"),
        key=("cccd", "program", "service_date"),
    ),
    "activities": KindSpec(
        kind="activities",
        title_vi="DANH SÁCH ĐOÀN VIÊN THAM GIA HOẠT ĐỘNG",
        columns=[
            _c("cdcs_code", True, "code", *_CDCS),
            _c("activity_type", True, "enum:activity_types", "Loại hoạt động", "Hình thức hoạt động", "Loại HĐ",
               "Loai hoat dong"),
            _c("activity_name", False, "text", "Tên hoạt động", "Nội dung hoạt động", "Tên HĐ", "Ten hoat dong"),
            _c("activity_date", True, "date", "Ngày tổ chức", "Ngày hoạt động", "Thời gian tổ chức", "Ngay to chuc"),
            _c("full_name", True, "name", *_NAME),
            _c("cccd", True, "cccd", *_CCCD),
            _c("cmnd", False, "cmnd", *_CMND),
        ],
        identifying=("activity_type", "activity_date"),
        key=("cccd", "activity_type", "activity_name", "activity_date"),
    ),
    "insurance": KindSpec(
        kind="insurance",
        title_vi="DANH SÁCH ĐƠN VỊ THAM GIA BẢO HIỂM XÃ HỘI",
        columns=[
            _c("employer_code", True, "code", "Mã đơn vị", "Mã đơn vị BHXH", "Mã ĐV", "Mã doanh nghiệp", "Ma don vi"),
            _c("employer_name", False, "name", "Tên đơn vị", "Tên doanh nghiệp", "Ten don vi"),
            _c("province_new_code", True, "code", "Mã tỉnh", "Mã tỉnh/thành phố", "Ma tinh"),
            _c("industry_code", False, "enum:industries", "Ngành kinh tế", "Mã ngành", "Ngành", "Nganh kinh te"),
            _c("ownership_type", False, "enum:ownership_types", "Loại hình", "Loại hình doanh nghiệp",
               "Loại hình đơn vị", "Loai hinh"),
            _c("insured_workers", True, "int", "Số lao động tham gia BHXH", "Số người tham gia BHXH", "Số lao động",
               "So lao dong tham gia BHXH"),
            _c("insured_women", False, "int", "Trong đó nữ", "Số lao động nữ", "Lao động nữ", "Trong do nu"),
        ],
        identifying=("employer_code", "insured_workers"),
        key=("employer_code",),
    ),
}

# Roster gender layouts (see the module docstring).
GENDER_SUBCOLUMNS: dict[str, tuple[str, ...]] = {"M": ("Nam",), "F": ("Nữ", "Nu")}
GENDER_GROUP_HEADERS: tuple[str, ...] = ("Giới tính", "Gioi tinh", "Phái")
BIRTH_UNDER_GENDER_HEADERS: tuple[str, ...] = _BIRTH
# Text values of a "Giới tính" column, by key (header_key of the value).
GENDER_MARK_VALUES: dict[str, str] = {"nam": "M", "nu": "F", "m": "M", "f": "F", "male": "M", "female": "F",
                                      "trai": "M", "gai": "F"}
# Leave-reason texts offices write, besides the names in leave_reasons.csv. "Chuyển sinh hoạt" is a
# transfer (CONTRACTS §3): it maps to the code `transfer` (not a leave reason; the warehouse pairs it).
LEAVE_REASON_ALIASES: dict[str, str] = {
    "Chuyển sinh hoạt": "transfer", "Chuyển đơn vị": "transfer", "Chuyển công tác": "transfer",
    "Nghỉ hưu": "retired", "Hưu": "retired", "Nghỉ chế độ": "retired",
    "Nghỉ việc": "job_change", "Chuyển việc": "job_change", "Thôi việc": "job_change",
    "Xin ra khỏi tổ chức": "resigned", "Xin ra": "resigned", "Ra khỏi tổ chức công đoàn": "resigned",
    "Từ trần": "died", "Chết": "died", "Qua đời": "died",
    "Khu vực công dừng sinh hoạt": "public_sector_exit",
    "Khác": "other",
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(text: object) -> str:
    """Comparison key of a header or enum text: lower case, no diacritics (đ→d), single spaces."""
    if text is None:
        return ""
    if isinstance(text, str):
        return _header_key_str(text)
    return _header_key_str(str(text))


@lru_cache(maxsize=65536)
def _header_key_str(text: str) -> str:
    s = unicodedata.normalize("NFD", text).lower().replace("đ", "d")
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", s).strip()


def _build_index() -> dict[str, dict[str, str]]:
    idx: dict[str, dict[str, str]] = {}
    for kind, spec in KINDS.items():
        m: dict[str, str] = {}
        for col in spec.columns:
            m.setdefault(header_key(col.name), col.name)  # the canonical name itself is accepted too
            for h in col.headers:
                m.setdefault(header_key(h), col.name)
        idx[kind] = m
    return idx


_INDEX = _build_index()


_ALL_KEYS = frozenset(k for m in _INDEX.values() for k in m)


# No header text has a digit in it, so a cell with an ASCII digit (a date, a number, a code: most data cells
# of the rows layout detection scans) is not a header, without computing its key (digits survive header_key).
_DIGIT = re.compile(r"[0-9]")
_KEYS_HAVE_DIGITS = any(_DIGIT.search(k) for k in _ALL_KEYS)


def is_known_header(text: object) -> bool:
    """The text is a header of some kind's column (any kind)."""
    if not text:
        return False
    if not _KEYS_HAVE_DIGITS and isinstance(text, str) and _DIGIT.search(text):
        return False
    return header_key(text) in _ALL_KEYS


def match_header(kind: str, text: object) -> str | None:
    """The canonical column of `kind` a header text maps to, or None."""
    return _INDEX[kind].get(header_key(text))


def preferred_headers(kind: str) -> dict[str, str]:
    """canonical column -> preferred Vietnamese header (what the generator writes by default)."""
    return {c.name: c.preferred for c in KINDS[kind].columns}


def kind_of_columns(canonical_by_kind: dict[str, set[str]]) -> str | None:
    """Given, per kind, the set of canonical columns a header row maps to, the kind it identifies.

    A kind qualifies when all its identifying columns are present; among qualifiers the one with the
    largest share of its columns present wins (ties → None).
    """
    best: list[tuple[float, str]] = []
    for kind, found in canonical_by_kind.items():
        spec = KINDS[kind]
        if all(c in found for c in spec.identifying):
            best.append((len(found & set(spec.names)) / len(spec.names), kind))
    if not best:
        return None
    best.sort(reverse=True)
    if len(best) > 1 and best[0][0] == best[1][0]:
        return None
    return best[0][1]
