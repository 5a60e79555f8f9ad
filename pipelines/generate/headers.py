"""Vietnamese column headers the generator writes.

The single declaration of canonical columns and their header variants is `pipelines.ingest.mapping`
(owned by ingestion, see docs/CONTRACTS.md §3). `header_variants()` reads it when it exists and falls back
to the small table below otherwise, so that both sides agree on what a header may look like.
The first variant of each list is the "standard" spelling; the others appear in some files.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

CANONICAL: dict[str, tuple[str, ...]] = {
    "roster": ("cdcs_code", "full_name", "birth_date", "gender", "ethnicity", "cccd", "bhxh_code",
               "member_code", "join_date", "insurance_salary", "leave_date", "leave_reason"),
    "dues": ("cdcs_code", "cdcs_name", "members_count", "salary_fund", "dues_expected", "dues_collected"),
    "services": ("cdcs_code", "full_name", "cccd", "program", "service_date", "amount"),
    "activities": ("cdcs_code", "activity_type", "activity_name", "activity_date", "full_name", "cccd"),
    "insurance": ("employer_code", "employer_name", "province_new_code", "industry_code", "ownership_type",
                  "insured_workers", "insured_women"),
}

# Fallback table (used only while pipelines/ingest/mapping.py does not exist).
FALLBACK: dict[str, dict[str, list[str]]] = {
    "roster": {
        "cdcs_code": ["Mã CĐCS", "Mã công đoàn cơ sở", "Ma CDCS", "Mã đơn vị"],
        "full_name": ["Họ và tên", "Họ tên", "Ho va ten", "HỌ VÀ TÊN"],
        "birth_date": ["Ngày sinh", "Ngày tháng năm sinh", "Ngay sinh", "Năm sinh"],
        "gender": ["Giới tính", "Gioi tinh", "Nam/Nữ"],
        "ethnicity": ["Dân tộc", "Dan toc"],
        "cccd": ["Số CCCD", "Số CMND/CCCD", "Số định danh cá nhân", "So CCCD", "CCCD/CMND"],
        "bhxh_code": ["Mã số BHXH", "Số sổ BHXH", "Ma so BHXH"],
        "member_code": ["Số thẻ đoàn viên", "Mã đoàn viên", "So the doan vien", "Số thẻ công đoàn"],
        "join_date": ["Ngày vào công đoàn", "Ngày vào CĐ", "Ngay vao cong doan", "Ngày kết nạp"],
        "insurance_salary": ["Mức lương đóng BHXH", "Lương đóng BHXH", "Muc luong dong BHXH", "Tiền lương BHXH"],
        "leave_date": ["Ngày thôi sinh hoạt", "Ngày ra khỏi công đoàn", "Ngay thoi sinh hoat"],
        "leave_reason": ["Lý do", "Lý do thôi sinh hoạt", "Ly do", "Ghi chú"],
    },
    "dues": {
        "cdcs_code": ["Mã CĐCS", "Mã công đoàn cơ sở", "Ma CDCS"],
        "cdcs_name": ["Tên CĐCS", "Tên công đoàn cơ sở", "Ten CDCS", "Đơn vị"],
        "members_count": ["Số đoàn viên", "Tổng số đoàn viên", "So doan vien"],
        "salary_fund": ["Quỹ lương đóng BHXH", "Tổng quỹ lương", "Quy luong"],
        "dues_expected": ["Đoàn phí phải thu", "Doan phi phai thu", "Đoàn phí phải nộp"],
        "dues_collected": ["Đoàn phí đã thu", "Doan phi da thu", "Đoàn phí thực thu"],
    },
    "services": {
        "cdcs_code": ["Mã CĐCS", "Mã công đoàn cơ sở", "Ma CDCS"],
        "full_name": ["Họ và tên", "Họ tên", "Ho va ten"],
        "cccd": ["Số CCCD", "Số CMND/CCCD", "So CCCD"],
        "program": ["Chương trình", "Hình thức hỗ trợ", "Chuong trinh"],
        "service_date": ["Ngày hỗ trợ", "Ngày thực hiện", "Ngay ho tro"],
        "amount": ["Số tiền", "Số tiền (đồng)", "So tien", "Giá trị hỗ trợ"],
    },
    "activities": {
        "cdcs_code": ["Mã CĐCS", "Mã công đoàn cơ sở", "Ma CDCS"],
        "activity_type": ["Loại hoạt động", "Loai hoat dong", "Hình thức"],
        "activity_name": ["Tên hoạt động", "Ten hoat dong", "Nội dung"],
        "activity_date": ["Ngày tổ chức", "Ngay to chuc", "Thời gian"],
        "full_name": ["Họ và tên", "Họ tên", "Ho va ten"],
        "cccd": ["Số CCCD", "Số CMND/CCCD", "So CCCD"],
    },
    "insurance": {
        "employer_code": ["Mã đơn vị", "Ma don vi", "Mã số doanh nghiệp"],
        "employer_name": ["Tên đơn vị", "Ten don vi"],
        "province_new_code": ["Mã tỉnh", "Ma tinh"],
        "industry_code": ["Ngành kinh tế", "Mã ngành", "Nganh kinh te"],
        "ownership_type": ["Loại hình", "Loai hinh"],
        "insured_workers": ["Số lao động tham gia BHXH", "Tổng số lao động", "So lao dong"],
        "insured_women": ["Trong đó nữ", "Lao động nữ", "Lao dong nu"],
    },
}

# Layout words the xlsx writer uses (title rows, merged sub-headers, footers). Not column headers.
STT = "STT"
GENDER_MALE, GENDER_FEMALE = "Nam", "Nữ"
TOTAL_LABEL = "Tổng cộng"


def _from_ingest_mapping() -> dict[str, dict[str, list[str]]] | None:
    """Read pipelines.ingest.mapping (KINDS[kind].columns[i].headers) when it is there."""
    try:
        mod = importlib.import_module("pipelines.ingest.mapping")
        kinds = mod.KINDS
        out = {}
        for kind, cols in CANONICAL.items():
            spec = kinds[kind]
            out[kind] = {c: list(spec.column(c).headers) for c in cols}
        return out
    except Exception:
        return None


def gender_words() -> tuple[str, str, tuple[str, ...]]:
    """(male sub-column, female sub-column, group headers) for x-marked / birth-under-gender layouts."""
    try:
        mod = importlib.import_module("pipelines.ingest.mapping")
        return mod.GENDER_SUBCOLUMNS["M"][0], mod.GENDER_SUBCOLUMNS["F"][0], tuple(mod.GENDER_GROUP_HEADERS)
    except Exception:
        return GENDER_MALE, GENDER_FEMALE, ("Giới tính",)


@lru_cache(maxsize=1)
def header_variants() -> dict[str, dict[str, list[str]]]:
    """kind -> canonical column -> list of header spellings (first = standard)."""
    return _from_ingest_mapping() or FALLBACK


def mapping_source() -> str:
    return "pipelines.ingest.mapping" if _from_ingest_mapping() else "pipelines.generate.headers.FALLBACK"
