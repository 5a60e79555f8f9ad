"""Legacy Vietnamese encodings the generator writes, as reusable tables.

TCVN3 (TCVN 5712:1993, the "ABC" / ".VnTime" font encoding, table VN3)
----------------------------------------------------------------------
Old provincial files set in the .VnTime font store Vietnamese letters as single bytes in 0xA1..0xFE.
Read as Latin-1 / cp1252 they look like "NguyÔn V¨n An". VN3 has precomposed bytes for every *lowercase*
letter, but among capitals only Ă Â Đ Ê Ô Ơ Ư: a capital with a tone mark (Á, Ấ, Ý, Ứ …) was typed with the
capitals font (.VnTimeH) and is stored with the code of the lowercase letter. So:

* ``encode_tcvn3(text)`` maps every character of ``text`` (NFC) to bytes; a toned capital becomes its lowercase
  code (this is what real files contain). ASCII passes through. Characters that VN3 cannot hold raise.
* ``decode_tcvn3(data)`` is the inverse (bytes -> str, NFC); toned capitals come back lowercase. Re-capitalise
  word-initial letters of person names (``str.title``-style) to recover the original exactly: generated names
  are always title-cased.

The ingestion side may import ``TCVN3_TO_UNICODE`` / ``decode_tcvn3`` or use its own inverse; tests check both.

Windows-1258 (cp1258)
---------------------
Python's ``cp1258`` codec encodes only the precomposed letters that the code page contains; the others must
be written as base letter + combining tone mark, which is what Windows itself does. ``encode_cp1258(text)``
does that; decoding with ``bytes.decode('cp1258')`` followed by ``unicodedata.normalize('NFC', ...)`` gives the
original text back exactly.
"""
from __future__ import annotations

import unicodedata

# Unicode (NFC) -> TCVN3 (VN3) byte, lowercase letters.
_TCVN3_LOWER: dict[str, int] = {
    "à": 0xB5, "ả": 0xB6, "ã": 0xB7, "á": 0xB8, "ạ": 0xB9,
    "ă": 0xA8, "ằ": 0xBB, "ẳ": 0xBC, "ẵ": 0xBD, "ắ": 0xBE, "ặ": 0xC6,
    "â": 0xA9, "ầ": 0xC7, "ẩ": 0xC8, "ẫ": 0xC9, "ấ": 0xCA, "ậ": 0xCB,
    "đ": 0xAE,
    "è": 0xCC, "ẻ": 0xCE, "ẽ": 0xCF, "é": 0xD0, "ẹ": 0xD1,
    "ê": 0xAA, "ề": 0xD2, "ể": 0xD3, "ễ": 0xD4, "ế": 0xD5, "ệ": 0xD6,
    "ì": 0xD7, "ỉ": 0xD8, "ĩ": 0xDC, "í": 0xDD, "ị": 0xDE,
    "ò": 0xDF, "ỏ": 0xE1, "õ": 0xE2, "ó": 0xE3, "ọ": 0xE4,
    "ô": 0xAB, "ồ": 0xE5, "ổ": 0xE6, "ỗ": 0xE7, "ố": 0xE8, "ộ": 0xE9,
    "ơ": 0xAC, "ờ": 0xEA, "ở": 0xEB, "ỡ": 0xEC, "ớ": 0xED, "ợ": 0xEE,
    "ù": 0xEF, "ủ": 0xF1, "ũ": 0xF2, "ú": 0xF3, "ụ": 0xF4,
    "ư": 0xAD, "ừ": 0xF5, "ử": 0xF6, "ữ": 0xF7, "ứ": 0xF8, "ự": 0xF9,
    "ỳ": 0xFA, "ỷ": 0xFB, "ỹ": 0xFC, "ý": 0xFD, "ỵ": 0xFE,
}
# The capitals VN3 holds as their own bytes.
_TCVN3_UPPER: dict[str, int] = {
    "Ă": 0xA1, "Â": 0xA2, "Ê": 0xA3, "Ô": 0xA4, "Ơ": 0xA5, "Ư": 0xA6, "Đ": 0xA7,
}

#: Unicode character -> TCVN3 byte (every Vietnamese letter, both cases; toned capitals share the lowercase byte).
UNICODE_TO_TCVN3: dict[str, int] = {**_TCVN3_LOWER, **_TCVN3_UPPER}
for _ch, _b in _TCVN3_LOWER.items():
    _up = _ch.upper()
    if _up not in UNICODE_TO_TCVN3:
        UNICODE_TO_TCVN3[_up] = _b

#: TCVN3 byte -> Unicode character (the inverse; bytes < 0x80 are ASCII).
TCVN3_TO_UNICODE: dict[int, str] = {**{b: c for c, b in _TCVN3_LOWER.items()},
                                    **{b: c for c, b in _TCVN3_UPPER.items()}}

_ENC_TABLE = {ord(c): chr(b) for c, b in UNICODE_TO_TCVN3.items()}
_DEC_TABLE = {b: c for b, c in TCVN3_TO_UNICODE.items()}


def encode_tcvn3(text: str) -> bytes:
    """Unicode text -> TCVN3 bytes. Raises UnicodeEncodeError for characters VN3 cannot hold."""
    s = unicodedata.normalize("NFC", text).translate(_ENC_TABLE)
    return s.encode("latin-1")


def decode_tcvn3(data: bytes) -> str:
    """TCVN3 bytes -> Unicode (NFC). Toned capitals come back as lowercase letters (see module doc)."""
    return data.decode("latin-1").translate(_DEC_TABLE)


# ---- Windows-1258 -------------------------------------------------------------------------------------
_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def _cp1258_char(ch: str) -> str:
    try:
        ch.encode("cp1258")
        return ch
    except UnicodeEncodeError:
        pass
    d = unicodedata.normalize("NFD", ch)
    tones = "".join(c for c in d if c in _TONE_MARKS)
    base = unicodedata.normalize("NFC", "".join(c for c in d if c not in _TONE_MARKS))
    out = base + tones
    out.encode("cp1258")  # raises if still impossible
    return out


_CP1258_TABLE: dict[int, str] = {}
for _c in list(UNICODE_TO_TCVN3):
    _CP1258_TABLE[ord(_c)] = _cp1258_char(_c)


def encode_cp1258(text: str) -> bytes:
    """Unicode text -> Windows-1258 bytes (base letter + combining tone where needed)."""
    s = unicodedata.normalize("NFC", text).translate(_CP1258_TABLE)
    return s.encode("cp1258")


def decode_cp1258(data: bytes) -> str:
    return unicodedata.normalize("NFC", data.decode("cp1258"))


def replacement_pairs(encoding: str) -> tuple[list[str], list[str]]:
    """(from, to) character lists turning NFC text into text whose code points are the target bytes
    (``tcvn3``: Latin-1 code points) or which ``str.encode('cp1258')`` accepts (``cp1258``). For vectorised
    conversion with polars ``str.replace_many``."""
    if encoding == "tcvn3":
        pairs = [(c, chr(b)) for c, b in UNICODE_TO_TCVN3.items()]
    elif encoding == "cp1258":
        pairs = [(c, r) for c, r in ((chr(k), v) for k, v in _CP1258_TABLE.items()) if c != r]
    else:
        raise ValueError(encoding)
    return [a for a, _ in pairs], [b for _, b in pairs]
