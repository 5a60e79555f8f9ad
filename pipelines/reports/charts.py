"""The brief's charts: small PNGs rendered offline with matplotlib (Agg), for inline `cid:` images.

DejaVu Sans ships with matplotlib and covers Vietnamese (precomposed NFC letters such as ệ, ở, ữ);
`check_vietnamese_font()` proves it (used by the tests). Every chart is 1200×600 px at 200 dpi (shown at
600 px wide: sharp on phones), with few labels and no member-level data.
"""
from __future__ import annotations

import io
import unicodedata

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FONT = "DejaVu Sans"
BLUE, RED, GREEN, GREY = "#1f5fa8", "#c0392b", "#2e8b57", "#9aa5b1"
WIDTH_IN, HEIGHT_IN, DPI = 6.0, 3.0, 200


def check_vietnamese_font(sample: str = "Công đoàn cơ sở – Đoàn viên mới, nghỉ việc, tỷ lệ thu đoàn phí") -> str:
    """The font file that will render `sample`; raises if any glyph is missing from it."""
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=FONT), fallback_to_default=False)
    font = FT2Font(path)
    cmap = font.get_charmap()
    missing = sorted({c for c in unicodedata.normalize("NFC", sample) if not c.isspace() and ord(c) not in cmap})
    if missing:
        raise RuntimeError(f"{path} lacks glyphs for {''.join(missing)!r}")
    return path


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    ax = fig.add_subplot(111)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", color="#e5e8ec", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", str(s))


def _thousands(lang: str):
    from matplotlib.ticker import FuncFormatter

    sep = "." if lang == "vi" else ","
    return FuncFormatter(lambda v, _: f"{v:,.0f}".replace(",", sep))


def _empty(ax, text):
    ax.text(0.5, 0.5, _nfc(text), ha="center", va="center", fontsize=9, color=GREY, transform=ax.transAxes,
            family=FONT)
    ax.set_xticks([])
    ax.set_yticks([])


def members_trend(months: list[str], members: list[float], title: str, lang: str = "vi",
                  marks: list[tuple[int, str]] = ()) -> bytes:
    """Members at month end over the last months (line). `marks`: (index, label) vertical markers."""
    fig, ax = _figure()
    ax.set_title(_nfc(title), fontsize=9, loc="left", family=FONT)
    if not months:
        _empty(ax, "Chưa có dữ liệu" if lang == "vi" else "No data yet")
        return _png(fig)
    x = list(range(len(months)))
    ax.plot(x, members, color=BLUE, linewidth=1.8, marker="o", markersize=2.5)
    ax.fill_between(x, members, min(members) * 0.98 if members else 0, color=BLUE, alpha=0.08)
    ax.set_xticks(x, [_nfc(m) for m in months], rotation=0, fontsize=6, family=FONT)
    ax.yaxis.set_major_formatter(_thousands(lang))
    for i, label in marks:
        if 0 <= i < len(months):
            ax.axvline(i, color=GREY, linestyle="--", linewidth=0.8)
            ax.text(i, ax.get_ylim()[1], _nfc(label), fontsize=6, color=GREY, ha="left", va="top", family=FONT)
    return _png(fig)


def joins_leaves(months: list[str], joins: list[float], leaves: list[float], title: str,
                 lang: str = "vi") -> bytes:
    """Joins (up) and leaves (down) per month, with net growth as a line."""
    fig, ax = _figure()
    ax.set_title(_nfc(title), fontsize=9, loc="left", family=FONT)
    if not months:
        _empty(ax, "Chưa có dữ liệu" if lang == "vi" else "No data yet")
        return _png(fig)
    x = list(range(len(months)))
    lj = "Kết nạp" if lang == "vi" else "Joins"
    ll = "Ra khỏi tổ chức" if lang == "vi" else "Leaves"
    ln = "Tăng ròng" if lang == "vi" else "Net growth"
    ax.bar(x, joins, color=GREEN, width=0.6, label=_nfc(lj))
    ax.bar(x, [-v for v in leaves], color=RED, width=0.6, label=_nfc(ll))
    ax.plot(x, [j - v for j, v in zip(joins, leaves)], color="#222", linewidth=1.2, marker="o",
            markersize=2, label=_nfc(ln))
    ax.axhline(0, color="#555", linewidth=0.6)
    ax.set_xticks(x, [_nfc(m) for m in months], fontsize=6, family=FONT)
    ax.yaxis.set_major_formatter(_thousands(lang))
    ax.legend(fontsize=6, frameon=False, ncols=3, loc="upper left", prop={"family": FONT, "size": 6})
    return _png(fig)


def dues_by_unit(names: list[str], expected: list[float], collected: list[float], title: str,
                 lang: str = "vi") -> bytes:
    """Dues collected vs expected for the scope's largest child units (horizontal bars)."""
    fig, ax = _figure()
    ax.set_title(_nfc(title), fontsize=9, loc="left", family=FONT)
    if not names:
        _empty(ax, "Chưa có dữ liệu đoàn phí" if lang == "vi" else "No dues data yet")
        return _png(fig)
    names = [(_nfc(n)[:34] + "…") if len(_nfc(n)) > 35 else _nfc(n) for n in names][::-1]
    expected, collected = expected[::-1], collected[::-1]
    y = list(range(len(names)))
    le = "Phải thu" if lang == "vi" else "Expected"
    lc = "Đã thu" if lang == "vi" else "Collected"
    ax.barh([v + 0.2 for v in y], expected, height=0.4, color=GREY, label=_nfc(le))
    ax.barh([v - 0.2 for v in y], collected, height=0.4, color=BLUE, label=_nfc(lc))
    ax.set_yticks(y, names, fontsize=6, family=FONT)
    ax.xaxis.set_major_formatter(_thousands(lang))
    ax.grid(axis="x", color="#e5e8ec", linewidth=0.6)
    ax.grid(axis="y", visible=False)
    ax.legend(fontsize=6, frameon=False, loc="lower right", prop={"family": FONT, "size": 6})
    return _png(fig)
