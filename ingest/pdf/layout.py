"""Page geometry: PDFium's characters grouped into lines, and lines put in reading order.

PDFium (pypdfium2) gives every character with its box, font size and font; this module
builds visual lines from them geometrically (PDFium's own line breaks split a line at
every superscript), keeps rotated text (arXiv's margin stamp) apart, and orders the
lines of a page by a recursive XY-cut: a region is split at a vertical gutter when one
runs through it (columns are read left to right), otherwise at its widest horizontal
gaps (top to bottom). Text-level cleaning (headers, hyphens, headings) is in clean.py.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# PDFium's marks for a hyphen it found at a line end. A soft hyphen (U+00AD) in the text is invisible.
_LINE_END_HYPHENS = {0x02, 0xFFFE}
_SPACES = {0x20, 0xA0, 0x09, 0x2002, 0x2003, 0x2009, 0x200A, 0x202F}


@dataclass
class Line:
    """One visual line of text; coordinates are in points, top-down (``top`` < ``bottom``)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    size: float  # the size most of its characters are drawn at, in points
    bold: bool = False  # every character bold
    bold_prefix: int = 0  # how many leading characters are bold (a run-in heading)
    font: str = ""
    region: int = 0  # index of the XY-cut leaf the line was read in (a column or a band)
    plain: str = ""  # the text without characters set much smaller than the line (superscript marks); "" if none

    @property
    def unmarked(self) -> str:
        """The text without superscript and subscript characters ("Yamin Gong", not "Yamin Gonga")."""
        return self.plain or self.text

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def width(self) -> float:
        return self.right - self.left


@dataclass
class PageLayout:
    """A page's lines in reading order, plus its rotated text and size."""

    number: int  # 1-based
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)  # text set at an angle (margin stamps)
    chars: int = 0  # characters with a text layer (0 on a scanned page)
    images: int = 0


@dataclass
class _Building:
    chars: list[str]
    left: float
    top: float
    right: float
    bottom: float
    sizes: list[float]
    bold: list[bool]  # per entry of chars
    font: str
    last_left: float
    char_sizes: list[float] = field(default_factory=list)  # per entry of chars (a space: the size before it)


def _font(textpage, index: int) -> tuple[str, bool, float]:
    """Font name, bold, and the size it is drawn at (font size times the text matrix's vertical scale)."""
    buf = ctypes.create_string_buffer(128)
    flags = ctypes.c_int(0)
    n = pdfium_c.FPDFText_GetFontInfo(textpage, index, buf, len(buf), ctypes.byref(flags))
    name = buf.raw[: max(0, n - 1)].decode("utf-8", "replace") if n else ""
    weight = pdfium_c.FPDFText_GetFontWeight(textpage, index)
    lowered = name.lower()
    # Flag bit 19 is ForceBold; the font's name is the most reliable sign in practice (LaTeX's bold
    # faces are "CMBX10" and "NimbusRomNo9L-Medi").
    bold = weight >= 600 or bool(flags.value & (1 << 18)) or any(
        w in lowered for w in ("bold", "black", "heavy", "semibold", "demi", "-medi", "cmbx", "-bd")
    )
    matrix = pdfium_c.FS_MATRIX()
    size = pdfium_c.FPDFText_GetFontSize(textpage, index)
    if pdfium_c.FPDFText_GetMatrix(textpage, index, ctypes.byref(matrix)):
        size *= math.hypot(matrix.c, matrix.d)
    return name.split("+", 1)[-1], bold, round(size, 2)


def _finish(cur: _Building) -> Line | None:
    text = "".join(cur.chars)
    stripped = text.strip()
    if not stripped:
        return None
    sizes = sorted(cur.sizes)
    size = sizes[len(sizes) // 2]
    lead = len(text) - len(text.lstrip())
    bold = cur.bold[lead:]
    prefix = next((k for k, b in enumerate(bold) if not b), len(bold))
    small = [sz < _SMALL * size for sz in cur.char_sizes]
    plain = " ".join("".join(ch for ch, tiny in zip(cur.chars, small) if not tiny or ch == " ").split()) \
        if any(small) else ""
    return Line(
        stripped, cur.left, cur.top, cur.right, cur.bottom, round(size, 2),
        bold=prefix == len(bold), bold_prefix=prefix, font=cur.font, plain=plain,
    )


_SMALL = 0.75  # a character set below this share of its line's size is a superscript or subscript


# FPDFText_GetTextObject with an integer result: the object's address is all that is needed here,
# and pypdfium2's binding would build a pointer object per character.
_text_object = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)(
    ctypes.cast(pdfium_c.FPDFText_GetTextObject, ctypes.c_void_p).value
)


def _count_images(page: pdfium.PdfPage) -> int:
    raw_page = page.raw
    return sum(
        pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(raw_page, k)) == pdfium_c.FPDF_PAGEOBJ_IMAGE
        for k in range(pdfium_c.FPDFPage_CountObjects(raw_page))
    )


def code_point(unit: Callable[[int], int], i: int, count: int) -> tuple[int | None, bool]:
    """The character at index ``i`` of a text page whose ``unit(k)`` is PDFium's UTF-16 code unit k: (its code
    point, whether it took the next unit too), or (None, False) for half a character.

    A character outside the Basic Multilingual Plane (math italic 𝑟, 𝜏) is a high surrogate followed by a low
    one; joined, it is one character (NFKC later makes 𝑟 an r). A surrogate without its pair is dropped: the
    tokenizer refuses lone surrogates, and one such letter used to abort a whole folder's ingest."""
    code = unit(i)
    if not 0xD800 <= code <= 0xDFFF:
        return code, False
    following = unit(i + 1) if i + 1 < count else 0
    if code <= 0xDBFF and 0xDC00 <= following <= 0xDFFF:
        return 0x10000 + ((code - 0xD800) << 10) + (following - 0xDC00), True
    return None, False


def page_lines(page: pdfium.PdfPage, number: int) -> PageLayout:
    """The lines of one page, in content order (`reading_order` puts them in reading order)."""
    width, height = page.get_size()
    layout = PageLayout(number, width, height)
    textpage = page.get_textpage()
    lines: list[Line] = []
    rotated: list[str] = []
    try:
        tp = textpage.raw
        tp_address = ctypes.cast(tp, ctypes.c_void_p)
        box = pdfium_c.FS_RECTF()
        fonts: dict[int | None, tuple[str, bool, float, bool]] = {}  # text object -> font, bold, size, rotated
        last_obj: int | None = -1
        font, bold, size, turned = "", False, 0.0, False
        cur: _Building | None = None
        pending_space = False  # a word boundary: a space character, or one PDFium generated
        pending_break = False  # a line break PDFium generated, which may fall inside a visual line
        count = pdfium_c.FPDFText_CountChars(tp)
        low_surrogate = -1  # the index of a low surrogate already joined to the character before it
        for i in range(count):
            if i == low_surrogate:
                continue
            code, joined = code_point(lambda k: pdfium_c.FPDFText_GetUnicode(tp, k), i, count)
            if code is None:
                continue
            if joined:
                low_surrogate = i + 1
            if code in (0x0D, 0x0A):
                pending_break = True
                continue
            if code in _SPACES:
                pending_space = True
                continue
            if (code < 0x20 and code not in _LINE_END_HYPHENS) or code == 0xAD:
                continue
            ch = "-" if code in _LINE_END_HYPHENS else chr(code)
            obj = _text_object(tp_address, i)
            if obj != last_obj:
                if obj not in fonts:
                    angle = pdfium_c.FPDFText_GetCharAngle(tp, i)
                    fonts[obj] = (*_font(tp, i), 0.05 < angle < 2 * math.pi - 0.05)
                font, bold, size, turned = fonts[obj]
                last_obj = obj
            if turned:
                rotated.append(" " if pending_space and rotated else "")
                rotated.append(ch)
                pending_space = False
                continue
            pdfium_c.FPDFText_GetLooseCharBox(tp, i, box)
            left, right = box.left, box.right
            top, bottom = height - box.top, height - box.bottom
            em = max(bottom - top, 1.0)  # the loose box: the font's ascent to descent, for geometry
            layout.chars += 1
            if cur is not None:
                overlap = min(bottom, cur.bottom) - max(top, cur.top)
                span = min(bottom - top, cur.bottom - cur.top)
                gap = left - cur.right
                # Kerning and ligatures (one glyph for "ffi") put a character's box over the one before:
                # a line goes on while a character does not start left of the previous one's start.
                if not (overlap > 0.4 * span and left >= cur.last_left - 0.25 * em and gap < 1.8 * em):
                    lines.extend(filter(None, [_finish(cur)]))
                    cur = None
            if cur is None:
                cur = _Building([ch], left, top, right, bottom, [size], [bold], font, left, [size])
                pending_space = pending_break = False
                continue
            # Within a line PDFium's spacing is trusted (a hyphen's box can sit apart from its word);
            # across a break it generated, a gap of a sixth of an em is a space.
            wide = pending_break and left - cur.right > 0.16 * em
            if (pending_space or wide) and cur.chars[-1] != " ":
                cur.chars.append(" ")
                cur.bold.append(bold)
                cur.char_sizes.append(cur.char_sizes[-1])
            pending_space = pending_break = False
            cur.chars.append(ch)
            cur.bold.append(bold)
            cur.sizes.append(size)
            cur.char_sizes.append(size)
            cur.last_left = left
            cur.left, cur.right = min(cur.left, left), max(cur.right, right)
            if size >= 0.8 * cur.sizes[0]:  # a superscript or subscript does not make the line taller
                cur.top, cur.bottom = min(cur.top, top), max(cur.bottom, bottom)
        if cur is not None:
            lines.extend(filter(None, [_finish(cur)]))
    finally:
        textpage.close()
    layout.rotated = ["".join(rotated).strip()] if rotated else []
    if layout.chars == 0:
        layout.images = _count_images(page)
    layout.lines = _merge_fragments(lines)
    return layout


def _merge_fragments(lines: list[Line]) -> list[Line]:
    """Join pieces of one visual line that the content stream wrote apart (e.g. a name, then its superscript)."""
    out: list[Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if prev is not None:
            overlap = min(line.bottom, prev.bottom) - max(line.top, prev.top)
            span = min(line.height, prev.height)
            gap = line.left - prev.right
            em = max(prev.height, line.height, 1.0)
            if span > 0 and overlap > 0.5 * span and -0.3 * em < gap < 1.0 * em:
                sep = "" if gap < 0.18 * em or line.text[:1] in ",.;:)]" else " "
                if prev.bold and prev.bold_prefix == len(prev.text):
                    prev.bold_prefix += len(sep) + line.bold_prefix
                prev.bold = prev.bold and line.bold
                if line.size < _SMALL * prev.size or prev.plain or line.plain:  # a mark written apart
                    prev.plain = prev.unmarked + ("" if line.size < _SMALL * prev.size else sep + line.unmarked)
                prev.text = prev.text + sep + line.text
                prev.right = max(prev.right, line.right)
                if line.size >= 0.8 * prev.size:
                    prev.top, prev.bottom = min(prev.top, line.top), max(prev.bottom, line.bottom)
                continue
        out.append(line)
    return out


# --- reading order -------------------------------------------------------------------------------

_MIN_GUTTER = 6.0  # points of empty width that separate two columns
_MAX_DEPTH = 200  # past this (a staircase of a thousand lines) a region is read in rows


def _vertical_cut(lines: list[Line]) -> float | None:
    """The x of the widest empty vertical strip crossing all the lines, if one is wide enough."""
    spans = sorted((ln.left, ln.right) for ln in lines)
    best, best_width = None, _MIN_GUTTER
    reach = spans[0][1]
    for left, right in spans[1:]:
        if left - reach > best_width:
            best, best_width = (reach + left) / 2, left - reach
        reach = max(reach, right)
    return best


def _horizontal_cuts(lines: list[Line]) -> list[float]:
    """The y of the widest empty horizontal strips (all those within 1 pt of the widest)."""
    spans = sorted((ln.top, ln.bottom) for ln in lines)
    gaps: list[tuple[float, float]] = []
    reach = spans[0][1]
    for top, bottom in spans[1:]:
        if top - reach > 0:
            gaps.append((top - reach, (reach + top) / 2))
        reach = max(reach, bottom)
    if not gaps:
        return []
    widest = max(g for g, _ in gaps)
    return sorted(y for g, y in gaps if g >= widest - 1.0)


def reading_order(lines: list[Line]) -> list[Line]:
    """Lines ordered by recursive XY-cut; each line's ``region`` names the leaf it was read in."""
    ordered: list[Line] = []
    leaf = 0

    def visit(group: list[Line], depth: int = 0) -> None:
        nonlocal leaf
        if len(group) > 1 and depth < _MAX_DEPTH:
            x = _vertical_cut(group)
            if x is not None:
                visit([ln for ln in group if ln.right <= x], depth + 1)
                visit([ln for ln in group if ln.right > x], depth + 1)
                return
            cuts = _horizontal_cuts(group)
            if cuts:
                bounds = [-math.inf, *cuts, math.inf]
                for lo, hi in itertools.pairwise(bounds):
                    visit([ln for ln in group if lo < (ln.top + ln.bottom) / 2 <= hi], depth + 1)
                return
        for ln in _rows(group):
            ln.region = leaf
            ordered.append(ln)
        leaf += 1

    if lines:
        visit(lines)
    return ordered


def _rows(group: list[Line]) -> list[Line]:
    """A leaf's lines top to bottom; lines sharing a row (a superscript can shift a piece's top) are
    read left to right, and pieces of one row that nearly touch are joined."""
    rows: list[list[Line]] = []
    for ln in sorted(group, key=lambda ln: (ln.top + ln.bottom) / 2):
        row = rows[-1] if rows else None
        if row is not None:
            top, bottom = min(o.top for o in row), max(o.bottom for o in row)
            if min(bottom, ln.bottom) - max(top, ln.top) > 0.5 * min(ln.height, bottom - top):
                row.append(ln)
                continue
        rows.append([ln])
    out: list[Line] = []
    for row in rows:
        row.sort(key=lambda ln: ln.left)
        out.extend(_merge_fragments(row))
    return out
