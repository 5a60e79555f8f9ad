"""Word lists for synthetic Vietnamese names (people, places, employers). All text is NFC.

Family-name shares follow the commonly cited distribution (Nguyễn ≈ 38 %, Trần ≈ 11 %, Lê ≈ 9.5 %, …).
"""
from __future__ import annotations

import numpy as np

FAMILY = [
    ("Nguyễn", 38.4), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.1), ("Hoàng", 4.1), ("Huỳnh", 1.7),
    ("Phan", 4.5), ("Vũ", 3.9), ("Võ", 1.6), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1.0), ("Lý", 0.5), ("Đinh", 0.7), ("Trương", 0.6), ("Mai", 0.5),
    ("Đoàn", 0.5), ("Lương", 0.4), ("Trịnh", 0.4), ("Cao", 0.4), ("Lâm", 0.4), ("Tạ", 0.3),
    ("Hà", 0.4), ("Chu", 0.2), ("Lưu", 0.3), ("Tô", 0.2), ("Quách", 0.1), ("Vương", 0.2), ("Kiều", 0.1),
    ("Thái", 0.2), ("Châu", 0.2), ("Triệu", 0.2), ("Nông", 0.3), ("Lò", 0.1), ("Hứa", 0.1),
]
MIDDLE_M = [("Văn", 40), ("Đức", 8), ("Minh", 8), ("Quang", 6), ("Hữu", 6), ("Công", 5), ("Thành", 4),
            ("Xuân", 3), ("Ngọc", 3), ("Anh", 3), ("Trọng", 3), ("Quốc", 3), ("Đình", 4), ("Mạnh", 2),
            ("Thanh", 2), ("Tiến", 2), ("Hoàng", 2), ("Gia", 2)]
MIDDLE_F = [("Thị", 45), ("Ngọc", 8), ("Thu", 6), ("Thanh", 6), ("Kim", 4), ("Phương", 4), ("Hồng", 4),
            ("Thùy", 3), ("Minh", 3), ("Mỹ", 3), ("Bích", 2), ("Hải", 2), ("Diệu", 2), ("Khánh", 2),
            ("Ánh", 2), ("Quỳnh", 2), ("Hoài", 2)]
GIVEN_M = ["Anh", "Bảo", "Bình", "Cường", "Chiến", "Công", "Dũng", "Duy", "Dương", "Đạt", "Đức", "Giang",
           "Hải", "Hào", "Hiếu", "Hoàng", "Hùng", "Huy", "Hưng", "Khang", "Khánh", "Khoa", "Kiên", "Lâm",
           "Long", "Lộc", "Luân", "Mạnh", "Minh", "Nam", "Nghĩa", "Nhân", "Phát", "Phong", "Phúc", "Quân",
           "Quang", "Sơn", "Tài", "Tâm", "Thắng", "Thành", "Thịnh", "Toàn", "Trung", "Tuấn", "Tùng", "Việt",
           "Vinh", "Vũ", "Ước", "Ân", "Ấn", "Ý", "Hậu", "Hiệp", "Lực", "Quyết", "Tiến", "Tú"]
GIVEN_F = ["An", "Anh", "Ánh", "Bích", "Châu", "Chi", "Diệp", "Dung", "Duyên", "Giang", "Hà", "Hạnh",
           "Hằng", "Hiền", "Hoa", "Hồng", "Huệ", "Hương", "Huyền", "Lan", "Liên", "Linh", "Loan", "Mai",
           "My", "Nga", "Ngân", "Ngọc", "Nhung", "Nhi", "Oanh", "Phương", "Quyên", "Quỳnh", "Tâm", "Thảo",
           "Thu", "Thủy", "Thư", "Trang", "Trâm", "Trinh", "Tuyết", "Uyên", "Vân", "Vy", "Xuân", "Yến",
           "Ấu", "Lệ", "Hậu", "Nguyệt", "Thoa", "Thắm"]

PLACE = ["An", "Bình", "Phú", "Tân", "Hòa", "Thạnh", "Long", "Phước", "Hưng", "Thịnh", "Mỹ", "Xuân",
         "Đông", "Tây", "Nam", "Bắc", "Trung", "Quang", "Minh", "Thuận", "Lộc", "Phong", "Đức", "Hải",
         "Sơn", "Thủy", "Vĩnh", "Khánh", "Hiệp", "Yên", "Lạc", "Thái", "Thành", "Cát", "Kim", "Hồng"]

FIRM_WORDS = ["Hưng Thịnh", "Phát Đạt", "Thành Công", "An Phú", "Minh Long", "Hoàng Gia", "Việt Tiến",
              "Đại Dương", "Sao Mai", "Bình Minh", "Trường Sơn", "Phương Nam", "Hồng Hà", "Thái Bình Dương",
              "Tân Tiến", "Đông Á", "Nam Việt", "Kim Ngân", "Bảo Long", "Hòa Phát Lộc", "Thiên Phú",
              "Vạn Xuân", "Hải Âu", "Quang Minh", "Tiến Thành", "Ánh Dương", "Đức Thịnh", "Sông Hồng"]
FDI_WORDS = ["Sunrise Vina", "Hanwon Việt Nam", "Kyoto Electronics Việt Nam", "Golden Star Vina",
             "Everbright Việt Nam", "Shinwoo Vina", "Taeyang Việt Nam", "Pacific Textile Việt Nam",
             "Orient Footwear", "Meiko Precision Việt Nam", "Lotus Garment", "Fuji Parts Việt Nam",
             "Hansol Vina", "Dragon Steel Việt Nam", "Jade Furniture Vina", "Nanyang Electronics"]
TRADE_BY_INDUSTRY = {
    "A": "Nông sản", "B": "Khoáng sản", "C": "May mặc", "D": "Điện lực", "E": "Môi trường", "F": "Xây dựng",
    "G": "Thương mại", "H": "Vận tải", "I": "Du lịch", "J": "Truyền thông", "K": "Tài chính",
    "L": "Địa ốc", "M": "Tư vấn", "N": "Dịch vụ", "O": "Hành chính", "P": "Giáo dục", "Q": "Y tế",
    "R": "Văn hóa", "S": "Dịch vụ tổng hợp", "T": "Dịch vụ gia đình", "U": "Quốc tế",
}
PUBLIC_UNIT = {
    "P": ["Trường Tiểu học", "Trường THCS", "Trường THPT", "Trường Mầm non"],
    "Q": ["Trạm Y tế", "Trung tâm Y tế", "Bệnh viện Đa khoa"],
    "O": ["Ủy ban nhân dân", "Phòng Tài chính - Kế hoạch", "Chi cục Thuế", "Phòng Tư pháp"],
    "R": ["Trung tâm Văn hóa - Thể thao", "Thư viện"],
    "M": ["Trung tâm Khuyến nông", "Trạm Thú y"],
}
NGHIEP_DOAN = ["Xe ôm công nghệ", "Bốc xếp", "Thợ may", "Buôn bán chợ", "Nghề cá", "Thợ hồ", "Làm muối",
               "Xe ba gác", "Giúp việc gia đình", "Cắt tóc"]

ETHNIC_WEIGHTS = {  # GSO code -> share in %, approximate census shares (Kinh ≈ 85 %)
    "01": 85.3, "02": 1.9, "03": 1.8, "04": 0.8, "05": 1.4, "06": 1.5, "07": 1.1, "08": 1.5, "09": 0.9,
    "10": 0.5, "12": 0.4, "13": 0.3, "14": 0.2, "15": 0.2, "16": 0.2, "17": 0.2, "18": 0.2, "19": 0.15,
    "20": 0.13, "21": 0.15, "22": 0.1, "23": 0.1, "24": 0.09, "25": 0.07, "26": 0.08, "27": 0.07,
    "28": 0.05, "29": 0.1, "30": 0.04, "31": 0.06, "32": 0.03, "33": 0.02, "34": 0.03, "35": 0.03,
    "36": 0.03, "37": 0.02, "38": 0.02, "39": 0.01, "40": 0.01, "41": 0.01, "42": 0.01, "43": 0.005,
    "44": 0.008, "45": 0.005, "46": 0.01, "47": 0.004, "48": 0.003, "49": 0.003, "50": 0.001,
    "51": 0.001, "52": 0.001, "53": 0.001, "54": 0.001, "11": 0.002,
}


def weighted(pairs):
    words = [w for w, _ in pairs]
    p = np.array([x for _, x in pairs], dtype=float)
    return words, p / p.sum()
