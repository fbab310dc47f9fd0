"""From ordered lines to body text: running headers, headings, paragraphs, hyphens, references.

Rules, each with its reason:

* Running headers and footers are lines among the three nearest the top or bottom edge (within
  8% of the page height) whose text, digits masked, recurs on at least a third of the pages (two
  at least); page numbers alone ("7", "Page 7 of 16", "7 of 26") there go whatever their count.
  They are removed before reading order, so a centred page number cannot hide a gutter.
* A heading is a line set wholly in bold (or a numbered line such as "2.1 Methods", or one much
  larger than the body) of at most 18 words; a bold line right below in the same size joins it.
  It stays a heading only when the text that follows it is prose no larger than itself, or when
  it is a known part of a paper (Introduction, Results, Methods, ...): bold words inside figures
  and tables do not. Known parts and headings as large as they are top level, the rest are
  sub-headings, and a block's section is "Top > Sub".
* A block (paragraph) ends at a heading, at a figure or table legend, at a change of type size,
  at a vertical gap wider than a third of a line, and at an indented line after one that closes a
  sentence. A legend starts with "Fig. 2", "Figure 2.", "Table 1", "Figure supplement 1." and
  is set in bold, in smaller type or after a gap ("Table S2. The first ..." inside running text is
  no legend). Blocks of short fragments with no sentence, or small type with no sentence, are
  text set inside figures, and are dropped.
* A line-end hyphen is dropped when the joined word occurs elsewhere in the document (or starts
  a word that does: "per-" + "form", with "performed"), and kept when the hyphenated form occurs
  at least as often, or when both halves are words of the document on their own ("gene-" +
  "editing"); names with capitals or digits keep it ("Cas9-" + "mediated"); otherwise the word is
  joined ("dif-" + "ficult"). On the three real papers 360 of 366 such decisions are right.
* Text is NFKC-normalised: ligatures become letters, odd spaces become spaces.
* The reference list starts at a heading named References (Bibliography, Literature cited)
  and ends at the next heading at least as large; it is split into entries by their numbers
  (counting up) or by hanging indents, and returned apart from the pages.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field

from ingest.normalize import normalize_text
from ingest.pdf.layout import Line, PageLayout
from ingest.pdf.model import PdfBlock, PdfPage

_EDGE = 0.08  # fraction of the page height where running headers and footers sit
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.IGNORECASE)
# "Fig. 1 Characterization", "Figure 2. Transcripts", "Table S1 Primers", "Figure 3—video 1. Example",
# "Figure supplement 1. Site choice"; not "Figure 1B shows" or "Figure 1). The" in running text.
_CAPTION = re.compile(
    r"^(?i:(supplementary\s+|extended\s+data\s+)?(fig\.?|figure|table|scheme))\s*S?\d+"
    r"(\s*[—–-]\s*(?i:figure supplement|video|source data)\s*\d+)?[.:|]?\s+[A-Z(]|^(?i:figure supplement) \d+\.\s"
)
# "(See figure on next page.)", "Fig. 1 (See legend on previous page.)", "Figure 1 continued on next page"
_FIGURE_NOTE = re.compile(
    r"^(fig\.?\s*\d+\s*)?\((see|continued)\b[^)]*\)\.?$|^(fig\.?|figure|table)\s*\d+\s*continued( on next page)?\.?$",
    re.IGNORECASE,
)
_NUMBERED_HEADING = re.compile(r"^(\d{1,2}(\.\d{1,2})*\.?|[IVX]{1,4}\.)\s+[A-Z]")
_TOP_SECTIONS = re.compile(
    r"^(\d+\.?\s+)?(abstract|introduction|background|results?|results and discussion|discussion|conclusions?|"
    r"methods|materials and methods|methods and materials|experimental( section| procedures)?|"
    r"references|bibliography|acknowledge?ments?|declarations|appendix|supplementary (material|information)|"
    r"related work|experiments|evaluation|limitations)$",
    re.IGNORECASE,
)
_REFERENCES = re.compile(
    r"^(references|bibliography|literature cited|references and notes|works cited)$", re.IGNORECASE
)
_DROPPED_SECTIONS = re.compile(r"^publisher.s note$", re.IGNORECASE)
_BOILERPLATE = re.compile(
    r"creativecommons\.org|creative commons (attribution|licen)|^©|^\*?\s*correspondence\b|"
    r"^open access this article|^the online version of this article includes",
    re.IGNORECASE,
)
# Affiliations set in the body's type (a title page's list, or the back matter's): institutions and places.
_AFFILIATION_PART = re.compile(
    r"\b(?:department|dept\.|universit(?:y|é|ät|at)|institut(?:e|o)?|school of|faculty of|college|hospital|"
    r"laborator(?:y|ies)|cent(?:er|re) for|usa|uk|china|germany|france|japan|canada|[A-Z]{2} \d{5})\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?:;)\]]$")
_WORD = re.compile(r"[^\W\d_][\w'’]*", re.UNICODE)
_HYPHENS = "-\u2010\u2011"
_REF_NUMBER = re.compile(r"^\[?(\d{1,4})[\].]?\s")


def normalize(text: str) -> str:
    """``normalize_text`` (NFKC: ligatures, math letters; no control, private-use or lone surrogate
    characters; single spaces), with one kind of hyphen."""
    return normalize_text(text).replace("\u2010", "-").replace("\u2011", "-")


def body_size(layouts: list[PageLayout]) -> float:
    """The size of most of the document's characters: the body text."""
    counts: Counter[float] = Counter()
    for layout in layouts:
        for line in layout.lines:
            counts[round(line.size, 1)] += len(line.text)
    return counts.most_common(1)[0][0] if counts else 10.0


def _mask(text: str) -> str:
    return re.sub(r"\d+", "#", normalize(text).lower())


def _edge_lines(layout: PageLayout) -> list[Line]:
    """The lines that can be running headers or footers: in the top or bottom 8% of the page, and
    among the three lines nearest that edge."""
    top = sorted((ln for ln in layout.lines if ln.bottom < layout.height * _EDGE), key=lambda ln: ln.top)
    bottom = sorted((ln for ln in layout.lines if ln.top > layout.height * (1 - _EDGE)), key=lambda ln: -ln.bottom)
    return top[:3] + bottom[:3]


def drop_running(layouts: list[PageLayout]) -> list[Line]:
    """Remove running headers, footers and page numbers; returns page one's (they may name the journal and year)."""
    edges = [_edge_lines(layout) for layout in layouts]
    seen: Counter[str] = Counter()
    for lines in edges:
        seen.update({_mask(ln.text) for ln in lines})
    needed = max(2, round(len(layouts) / 3))
    first: list[Line] = []
    for layout, lines in zip(layouts, edges):
        running = {
            id(ln) for ln in lines if seen[_mask(ln.text)] >= needed or _PAGE_NUMBER.match(normalize(ln.text))
        }
        if layout is layouts[0]:
            first = [ln for ln in layout.lines if id(ln) in running]
        layout.lines = [ln for ln in layout.lines if id(ln) not in running]
    return first


_LEADING_NUMBER = re.compile(r"^(\d{1,5})(?:\s+|$)")
_MARGIN = 0.2  # line numbers sit in the outer fifth of the page's width


def drop_line_numbers(layouts: list[PageLayout]) -> int:
    """Remove a preprint's margin line numbers (a number at the start of each line, counting up the page);
    returns how many were removed.

    A page is numbered when at least five lines start in the left margin with a number and, read top to
    bottom, those numbers mostly go up by one to three (a skipped blank line). A line that is only the number
    goes; a line the number was joined to ("169 Escherichia coli cells were grown") loses it. A numbered list
    or a table's first column inside the text block does not qualify: it is not in the margin, or its numbers
    do not count up line after line.
    """
    removed = 0
    for layout in layouts:
        found = [(ln, int(m.group(1))) for ln in layout.lines
                 if ln.left < layout.width * _MARGIN and (m := _LEADING_NUMBER.match(ln.text))]
        if len(found) < 5:
            continue
        found.sort(key=lambda pair: pair[0].top)
        steps = [b - a for (_, a), (_, b) in zip(found, found[1:])]
        if sum(1 for d in steps if 1 <= d <= 3) < 0.7 * len(steps):
            continue
        lefts = sorted(ln.left for ln, _ in found)
        column = lefts[len(lefts) // 2]
        numbered = {id(ln) for ln, _ in found if abs(ln.left - column) < 2 * ln.size}
        kept: list[Line] = []
        for ln in layout.lines:
            if id(ln) in numbered:
                removed += 1
                rest = _LEADING_NUMBER.sub("", ln.text, count=1)
                if not rest.strip():
                    continue
                ln.text = rest  # the box still starts at the number: harmless for reading order
                ln.plain = _LEADING_NUMBER.sub("", ln.plain, count=1) if ln.plain else ""
            kept.append(ln)
        layout.lines = kept
    return removed


def is_heading(line: Line, body: float) -> bool:
    """Whether a line looks like a heading by itself (assemble() also checks what follows it)."""
    text = normalize(line.text)
    words = text.split()
    if not words or len(words) > 18 or line.size < 0.6 * body or _CAPTION.match(text):
        return False
    # "eLife assessment" and "mRNA export" start in lower case; "and the cells" does not qualify
    capital = text[0].isupper() or text[0].isdigit() or any(ch.isupper() for ch in words[0][1:])
    if sum(ch.isalpha() for ch in text) < 3 or not capital or text[-1] in ",;":
        return False
    numbered = bool(_NUMBERED_HEADING.match(text)) and line.size >= body * 0.95 and len(words) <= 12
    return line.bold or numbered or (line.size > 1.25 * body and len(words) <= 12)


# --- blocks --------------------------------------------------------------------------------------


@dataclass
class _Raw:
    """A block while it is built: its lines, not yet joined."""

    kind: str  # "text", "caption", "heading"
    lines: list[Line] = field(default_factory=list)
    page: int = 0
    section: str = ""


def _starts_block(line: Line, prev: Line, cur: _Raw) -> bool:
    if abs(line.size - prev.size) > 0.12 * max(line.size, prev.size):
        return True
    below = line.top >= prev.top and min(line.right, prev.right) - max(line.left, prev.left) > 0
    if below and line.top - prev.bottom > max(line.height, prev.height) / 3:
        return True
    indented = below and 0.4 * line.size < line.left - prev.left < 4 * line.size
    return cur.kind == "text" and indented and bool(_SENTENCE_END.search(prev.text))


def _continues_sentence(line: Line, prev: Line | None) -> bool:
    """A line in regular type right below an unfinished sentence goes on with it, even when it starts like a
    numbered heading ("The CDRs of P1A4 form a deep," / "12 Å pocket between the heavy …")."""
    if prev is None or line.bold or _SENTENCE_END.search(prev.text):
        return False
    overlap = min(line.right, prev.right) - max(line.left, prev.left) > 0
    return overlap and abs(line.size - prev.size) <= 0.05 * prev.size and 0 <= line.top - prev.bottom < 0.6 * line.height


def _continues_heading(line: Line, prev: Line) -> bool:
    """A heading's next line: bold, the same size, right below (it may start in lower case)."""
    gap = line.top - prev.bottom
    return line.bold and abs(line.size - prev.size) <= 0.05 * prev.size and -0.5 * line.height < gap < line.height


def raw_blocks(layouts: list[PageLayout], body: float, skip: set[int]) -> list[_Raw]:
    """Lines grouped into headings, legends and paragraphs; lines whose id() is in ``skip`` are left out."""
    blocks: list[_Raw] = []
    for layout in layouts:
        cur: _Raw | None = None
        prev: Line | None = None
        legend_next = False
        for line in layout.lines:
            text = normalize(line.text)
            if id(line) in skip:
                continue
            if _FIGURE_NOTE.match(text):
                # "Figure 1 continued" heads the rest of a legend carried over from the page before
                legend_next = legend_next or text.lower().endswith("continued")
                continue
            # "Table S2. The first round ..." inside running text is no legend: a legend starts in bold,
            # in smaller type, or after a gap.
            caption = bool(_CAPTION.match(text)) and (
                prev is None
                or line.bold_prefix >= 3
                or line.size < 0.95 * body
                or abs(line.size - prev.size) > 0.05 * prev.size
                or not (0 <= line.top - prev.bottom < 0.5 * line.height or -line.height < line.top - prev.bottom < 0)
            )
            if cur is not None and cur.kind == "heading" and _continues_heading(line, prev) and len(cur.lines) < 4:
                new, kind = False, "heading"
            elif is_heading(line, body) and not _continues_sentence(line, prev):
                new, kind = True, "heading"
            elif caption:
                new, kind = True, "caption"
            else:
                new = cur is None or cur.kind == "heading" or _starts_block(line, prev, cur)
                # a legend goes on until a change of size or a gap; what follows is text
                kind = "text" if new or cur is None else cur.kind
            if new and legend_next and kind == "text":
                kind = "caption"
            legend_next = legend_next and not new
            if new:
                cur = _Raw(kind, page=layout.number)
                blocks.append(cur)
            cur.lines.append(line)
            prev = line
    return _confirm_headings(blocks, body)


def _confirm_headings(blocks: list[_Raw], body: float) -> list[_Raw]:
    """Keep as headings only those followed by prose no larger than themselves; the rest (bold words
    inside figures and tables) become text, which is then dropped as fragments when it is."""
    following: _Raw | None = None
    for block in reversed(blocks):
        if block.kind != "heading":
            following = block
            continue
        size = block.lines[0].size
        named = _TOP_SECTIONS.match(normalize(" ".join(ln.text for ln in block.lines))) is not None
        ok = named or (
            following is not None
            and following.kind == "text"
            and not _is_fragmentary(
                " ".join(ln.text for ln in following.lines), len(following.lines), following.lines[0].size, body
            )
            and size >= 0.85 * following.lines[0].size
        )
        if not ok:
            block.kind = "text"
            following = block
    return blocks


# --- hyphenation ---------------------------------------------------------------------------------


def vocabulary(layouts: list[PageLayout]) -> Vocabulary:
    """Word counts of the document, leaving out the halves of words broken at a line end."""
    vocab = Vocabulary()
    for layout in layouts:
        broken_before = False
        for line in layout.lines:
            tokens = normalize(line.text).split()
            if broken_before and tokens:
                tokens = tokens[1:]
            broken_before = bool(tokens) and tokens[-1][-1] in _HYPHENS
            if broken_before:
                tokens = tokens[:-1]
            for token in tokens:
                token = token.strip(".,;:()[]{}\"'“”‘’!?").lower()
                if token:
                    vocab[token] += 1
                    # "gene-editing" also counts "gene" and "editing"; "pre-mRNA" counts "pre"
                    vocab.update(w.lower() for w in _WORD.findall(token) if w.lower() != token)
    return vocab


class Vocabulary(Counter):
    """The document's word counts, with a prefix look-up ("perform" starts "performed")."""

    _sorted: list[str] | None = None

    def starts_a_word(self, prefix: str) -> bool:
        if self._sorted is None:
            self._sorted = sorted(self)
        k = bisect.bisect_left(self._sorted, prefix)
        return k < len(self._sorted) and self._sorted[k].startswith(prefix) and self._sorted[k] != prefix


def _keep_hyphen(left: str, right: str, vocab: Counter[str]) -> bool:
    lo, ro = left.lower(), right.lower()
    hyphenated, joined = vocab[f"{lo}-{ro}"], vocab[lo + ro]
    if hyphenated and hyphenated >= joined:
        return True
    if joined or (isinstance(vocab, Vocabulary) and len(lo + ro) >= 5 and vocab.starts_a_word(lo + ro)):
        return False  # "dif-ficult", "per-form" (the text has "performed")
    if any(c.isdigit() for c in left) or sum(c.isupper() for c in left) > 1:
        return True  # Cas9-mediated, HDR-dependent
    return len(lo) > 1 and len(ro) > 1 and vocab[lo] > 0 and vocab[ro] > 0


def join_lines(lines: list[str], vocab: Counter[str]) -> str:
    """The lines of one block as one string, with line-end hyphens repaired."""
    out = ""
    for raw in lines:
        line = normalize(raw)
        if not line:
            continue
        if not out:
            out = line
            continue
        if out[-1] in _HYPHENS and len(out) > 1 and out[-2].isalnum():
            left_match = re.search(r"([\w'’]+)[-\u2010\u2011]$", out)
            right_match = re.match(r"[\w'’]+", line)
            if right_match and right_match.group(0) in {"and", "or", "nor", "to", "vs"}:
                out += " " + line  # "hypo- and hyperactive", "5′- and 3′-ends"
            elif left_match and right_match and line[0].islower():
                if _keep_hyphen(left_match.group(1), right_match.group(0), vocab):
                    out = out[:-1] + "-" + line
                else:
                    out = out[:-1] + line
            elif left_match and right_match and vocab[(left_match.group(1) + right_match.group(0)).lower()] > vocab[
                f"{left_match.group(1)}-{right_match.group(0)}".lower()
            ]:
                out = out[:-1] + line  # "hiP-" + "SCs": the text has "hiPSCs" elsewhere
            else:
                out += line  # "Cas9-" + "DN1S": a compound broken at its hyphen
        elif re.search(r"(https?://|www\.|doi\.)\S*[./]$", out) and line[0].islower():
            out += line  # a URL broken after "doi." or "/"
        else:
            out += " " + line
    return out


# --- assembly ------------------------------------------------------------------------------------


def _is_fragmentary(text: str, lines: int, size: float, body: float) -> bool:
    """Text set inside a figure: short pieces or small type, and no sentence."""
    words = len(text.split())
    if re.search(r"[a-z]{2,}[.!?](\s|$)", text):
        return False
    return words / max(lines, 1) < 4 or words < 4 or size < 0.92 * body


def _is_affiliations(text: str) -> bool:
    """A block that lists institutions and places rather than saying anything: at least three affiliation words
    and one for every twelve words, and hardly a verb-bearing sentence ("we", "was", "were" …) among them."""
    parts = len(_AFFILIATION_PART.findall(text))
    words = text.split()
    verbs = len(re.findall(r"\b(?:we|was|were|is|are|has|have|had|showed?|found)\b", text, re.IGNORECASE))
    return parts >= 3 and parts * 12 >= len(words) and verbs * 20 < len(words)


def _reference_entries(lines: list[Line], vocab: Counter[str]) -> list[str]:
    """Split the reference list's lines into entries: by numbers when printed, else by hanging indents."""
    texts = [normalize(ln.text) for ln in lines if normalize(ln.text)]
    if not texts:
        return []
    numbers = [int(m.group(1)) if (m := _REF_NUMBER.match(t)) else None for t in texts]
    starts: list[bool] = []
    if sum(n is not None for n in numbers) >= max(2, len(texts) // 6):
        expected = None  # numbered entries count up; "2016." at a line start is a year, not entry 2016
        for n in numbers:
            start = n is not None and (expected is None or n == expected)
            starts.append(start)
            if start:
                expected = n + 1
    else:
        kept = [ln for ln in lines if normalize(ln.text)]
        for k, line in enumerate(kept):
            # A line starts an entry when the column (lines overlapping it horizontally) has lines
            # indented past it: a hanging indent.
            column = [o.left for o in kept if min(o.right, line.right) - max(o.left, line.left) > 0.5 * line.width]
            starts.append(k == 0 or line.left < min(column) + 0.3 * line.size)
    entries: list[list[str]] = []
    for text, start in zip(texts, starts):
        if start or not entries:
            entries.append([text])
        else:
            entries[-1].append(text)
    return [join_lines(e, vocab) for e in entries]


def _carry_broken_word(before: PdfBlock, text: str, vocab: Counter[str]) -> str:
    """A word broken at the foot of a page ("ther-" ... "apy") is mended on the page where it starts."""
    if not re.search(r"[^\W\d_][-\u2010\u2011]$", before.text) or not text[:1].islower():
        return text
    head, _, rest = text.partition(" ")
    before.text = join_lines([before.text, head], vocab)
    return rest


def assemble(
    layouts: list[PageLayout], body: float, skip: set[int], vocab: Counter[str]
) -> tuple[list[PdfPage], list[str], list[str]]:
    """Pages of blocks, the reference entries, and the headings in order."""
    blocks = raw_blocks(layouts, body, skip)
    pages = [PdfPage(layout.number) for layout in layouts]
    headings: list[str] = []
    top_size = max(
        (b.lines[0].size for b in blocks if b.kind == "heading" and _TOP_SECTIONS.match(normalize(b.lines[0].text))),
        default=None,
    )
    top, sub = "", ""
    in_refs: float | None = None  # the size of the references heading while inside the list
    ref_lines: list[Line] = []
    last_text: PdfBlock | None = None
    for block in blocks:
        if block.kind == "heading":
            text = join_lines([ln.text for ln in block.lines], vocab)
            size = block.lines[0].size
            if in_refs is not None and size < in_refs * 0.97:
                ref_lines.extend(block.lines)  # a bold line inside the list (a year, a group)
                continue
            in_refs = None
            headings.append(text)
            if _REFERENCES.match(text):
                in_refs = size
            elif _TOP_SECTIONS.match(text) or top_size is None or size >= top_size * 0.97:
                top, sub = text, ""
            else:
                sub = text
            continue
        if in_refs is not None:
            ref_lines.extend(block.lines)
            continue
        if _DROPPED_SECTIONS.match(top):
            continue
        text = join_lines([ln.text for ln in block.lines], vocab)
        if not text or _BOILERPLATE.search(text) or _is_affiliations(text):
            continue
        if block.kind == "text" and _is_fragmentary(text, len(block.lines), block.lines[0].size, body):
            continue
        section = f"{top} > {sub}" if top and sub else top or sub
        page = pages[block.page - 1]
        if last_text is not None and block.kind == "text":
            text = _carry_broken_word(last_text, text, vocab)
            if not text:
                continue
        run_on = block.kind == "text" and page.blocks and page.blocks[-1] is last_text and last_text.section == section
        if run_on and not _SENTENCE_END.search(last_text.text):
            last_text.text = join_lines([last_text.text, text], vocab)  # a paragraph broken by a column or figure
        else:
            page.blocks.append(PdfBlock(section, text, block.kind))
        if block.kind == "text":
            last_text = page.blocks[-1]
    return pages, _reference_entries(ref_lines, vocab), headings
