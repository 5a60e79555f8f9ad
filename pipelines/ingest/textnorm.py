"""Vietnamese text normalisation as Polars expressions (whole columns, never a loop per row).

- NFC (``str.normalize("NFC")``), trimmed, inner whitespace collapsed;
- one tone-mark style: the tone sits on the first vowel of a word-final "oa", "oe", "uy"
  ("hoà"→"hòa", "thuỷ"→"thủy", "Khánh Hoà"→"Khánh Hòa"; "quý"/"hoàn" untouched);
- TCVN3 (ABC, ".VnTime") text detected per cell and converted to Unicode (our own inverse table of
  TCVN 5712 VN3, written from the standard's code chart);
- VNI-Windows detected (a file in VNI is refused with rule ``legacy_encoding``, naming VNI).
"""
from __future__ import annotations

import re
from functools import lru_cache

import polars as pl

# --- TCVN3 (TCVN 5712:1993 VN3) code points -> Unicode --------------------------------------------
# TCVN3 text typed with .VnTime fonts arrives in Excel as Latin-1 look-alike characters. VN3 has no
# precomposed capitals with tones: a capital is written as the base capital + the lowercase toned vowel.
_TCVN3_PAIRS = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ",
    0xBB: "ằ", 0xBC: "ẳ", 0xBD: "ẵ", 0xBE: "ắ", 0xC6: "ặ",
    0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ",
    0xCC: "è", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ",
    0xD2: "ề", 0xD3: "ể", 0xD4: "ễ", 0xD5: "ế", 0xD6: "ệ",
    0xD7: "ì", 0xD8: "ỉ", 0xDC: "ĩ", 0xDD: "í", 0xDE: "ị",
    0xDF: "ò", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ",
    0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ", 0xED: "ớ", 0xEE: "ợ",
    0xEF: "ù", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự",
    0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ", 0xFD: "ý", 0xFE: "ỵ",
}
TCVN3_TO_UNICODE: dict[str, str] = {chr(k): v for k, v in _TCVN3_PAIRS.items()}
# Latin-1 letters that proper Vietnamese Unicode text uses; everything else in TCVN3's range is a marker.
_VI_LATIN1 = set("ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúý")
TCVN3_MARKERS = "".join(sorted(c for c in TCVN3_TO_UNICODE if c not in _VI_LATIN1))
_TCVN3_MARKER_RE = "[" + re.escape(TCVN3_MARKERS) + "]"
# VNI-Windows: a vowel followed by a tone/shape byte (e.g. "chaøo", "caùc", "baïn", "Nguyeãn").
# ("uû" is excluded: it is TCVN3's "uỷ", as in the old-style "uỷ ban").
_VNI_RE = (r"[aeiouyAEIOUY][øùõïØÙÕÏ]|[aeioyAEIOY][ûÛ]|[aeoAEO][âÂ][øùûõïáàåãäÁÀÅÃÄ]|[eoEO][ãäåÃÄÅ]"
           r"|[ghnt]ö[oôa]|[GHNT]Ö[OÔA]")
# Any character Vietnamese Unicode uses beyond Latin-1 (ă, đ, ơ, ư, ạ…): proves a cell is Unicode.
_UNICODE_VI_RE = "[\u0100-\u01b0\u1ea0-\u1ef9]"

# --- tone placement ------------------------------------------------------------------------------
_TONES = {  # base vowel -> (huyền, sắc, hỏi, ngã, nặng)
    "o": "òóỏõọ", "u": "ùúủũụ", "a": "àáảãạ", "e": "èéẻẽẹ", "y": "ỳýỷỹỵ",
}


def _tone_rules() -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for i in range(5):
            t1, t2 = _TONES[first][i], _TONES[second][i]
            for src, dst in ((first + t2, t1 + second),                       # hoà -> hòa
                             (first.upper() + t2, t1.upper() + second),       # Hoà after capital O
                             (first.upper() + t2.upper(), t1.upper() + second.upper())):  # HOÀ
                if first == "u":  # "quý" keeps the tone on y: u is part of "qu"
                    rules.append((r"(^|[^qQ])" + src + r"\b", "${1}" + dst))
                else:
                    rules.append((src + r"\b", dst))
    return rules


_TONE_RULES = _tone_rules()
_TONE_ANY = "|".join(src for src, _ in _TONE_RULES)
# Python versions of the same rules, applied to the few distinct values that can need them.
_TONE_RULES_PY = [(re.compile(src), dst.replace("${1}", r"\g<1>")) for src, dst in _TONE_RULES]
# Cheap pre-filter (no word boundary, one character pair): a value can need a tone move only if it has
# o/u followed by a toned a/e/y. Everything else is returned untouched without running the rules.
_TONE_CANDIDATE = "[oOuU][" + "".join(_TONES["a"] + _TONES["e"] + _TONES["y"]) + \
    "".join(_TONES["a"] + _TONES["e"] + _TONES["y"]).upper() + "]"


def clean_text(col: pl.Expr) -> pl.Expr:
    """NFC, trimmed, whitespace collapsed, one tone style; empty -> null."""
    e = col.str.normalize("NFC").str.replace_all(r"[\s\u00a0\u200b]+", " ").str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


_TONE_ANY_PY = re.compile(_TONE_ANY.replace("${1}", ""))


@lru_cache(maxsize=1 << 16)
def tone_style_text(text: str) -> str:
    """One tone-mark style for one string (the rules of `tone_style`). Cached per process: names repeat
    across a batch's files; a value no rule matches is returned at the cost of one combined search."""
    if not _TONE_ANY_PY.search(text):  # no rule matches: none can match after another rule either
        return text
    for rx, dst in _TONE_RULES_PY:
        text = rx.sub(dst, text)
    return text


def tone_style_map(df: pl.DataFrame, col: str) -> dict[str, str]:
    """{value: restyled} for the distinct values of `df[col]` whose tone style changes (usually a few)."""
    if col not in df.columns:
        return {}
    cand = df.select(pl.col(col).filter(pl.col(col).str.contains(_TONE_CANDIDATE)).unique()).to_series()
    out = {}
    for v in cand.to_list():
        w = tone_style_text(v)
        if w != v:
            out[v] = w
    return out


def tone_style(col: pl.Expr) -> pl.Expr:
    """Expression form (45 regex passes over the column): use `tone_style_map` on large frames."""
    out = col
    for src, dst in _TONE_RULES:
        out = out.str.replace_all(src, dst)
    return pl.when(col.str.contains(_TONE_ANY)).then(out).otherwise(col)


def tcvn3_cell(col: pl.Expr) -> pl.Expr:
    """True where a cell looks like TCVN3 (has a TCVN3-only character and no Unicode-only Vietnamese)."""
    return col.str.contains(_TCVN3_MARKER_RE) & ~col.str.contains(_UNICODE_VI_RE)


def tcvn3_to_unicode(col: pl.Expr) -> pl.Expr:
    keys = list(TCVN3_TO_UNICODE)
    vals = [TCVN3_TO_UNICODE[k] for k in keys]
    conv = col.str.replace_many(keys, vals)
    return pl.when(tcvn3_cell(col)).then(conv).otherwise(col)


def vni_cell(col: pl.Expr) -> pl.Expr:
    return col.str.contains(_VNI_RE) & ~col.str.contains(_UNICODE_VI_RE)


def unicode_to_tcvn3(text: str) -> str:
    """Encode Unicode Vietnamese as TCVN3 look-alike text (for tests; capitals with tones lose case)."""
    inv = {v: k for k, v in TCVN3_TO_UNICODE.items()}
    import unicodedata
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in inv:
            out.append(inv[ch])
        elif ch.lower() in inv:  # a capital with a tone: VN3 has none; written lowercase here
            out.append(inv[ch.lower()])
        else:
            out.append(ch)
    return "".join(out)
