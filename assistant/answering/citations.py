"""Citation marks in an answer: parse [n] (lists, ranges and pages too: [1, 2], [1-3], [3, p. 5]), drop numbers
with no source, split an answer into the sentences its citations belong to.

Source numbers are stable: ``n`` in the answer is the source's number, never
renumbered, so the text, the reference list and the sources shown beside the
answer agree. Whether a cited sentence is supported is the verifier's job
(``assistant.answering.verify``).
"""

from __future__ import annotations

import re

from assistant.core.text import (
    CITATION,
    split_sentences,
)

_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
_ITEM = re.compile(r"(\d+(?:\s*[-–]\s*\d+)?)(?:\s*,?\s*pp?\.\s*(\d+)(?:\s*[-–]\s*\d+)?)?")
MAX_RANGE = 50  # a "[1-9999]" is not a citation worth expanding
SUPPORT_THRESHOLD = 0.5


def _items(inner: str) -> list[tuple[int, int | None]]:
    """(number, page or None) for each number of a bracket's inside: "1-2, 4, p. 5" → [(1, None), (2, None), (4, 5)].

    A page range ("pp. 5-6") keeps its first page: the page the passage starts on.
    """
    out: list[tuple[int, int | None]] = []
    for m in _ITEM.finditer(inner):
        numbers, page = m.group(1), int(m.group(2)) if m.group(2) else None
        r = _RANGE.fullmatch(numbers)
        if r:
            lo, hi = int(r.group(1)), int(r.group(2))
            span = list(range(lo, hi + 1)) if lo <= hi and hi - lo <= MAX_RANGE else [lo, hi]
            # reversed or huge: keep the endpoints, let validation judge them
            out += [(n, None) for n in span[:-1]] + [(span[-1], page)]
        else:
            out.append((int(numbers), page))
    return out


def _numbers(inner: str) -> list[int]:
    return [n for n, _ in _items(inner)]


def parse_citations(text: str) -> list[int]:
    """Cited numbers in order of first appearance, without repeats: "[2] ... [1, 3-4]" → [2, 1, 3, 4]."""
    seen: dict[int, None] = {}
    for m in CITATION.finditer(text):
        for n in _numbers(m.group(1)):
            seen.setdefault(n, None)
    return list(seen)


def parse_cited_pages(text: str) -> list[tuple[int, int | None]]:
    """(number, page) of every citation in order, without repeats: "[3, p. 5] … [3] [1, p. 2; 4]" →
    [(3, 5), (3, None), (1, 2), (4, None)]."""
    seen: dict[tuple[int, int | None], None] = {}
    for m in CITATION.finditer(text):
        for item in _items(m.group(1)):
            seen.setdefault(item, None)
    return list(seen)


def format_mark(items: list[tuple[int, int | None]]) -> str:
    """A bracket for (number, page) pairs: [1, 2] without pages, "[3, p. 5]", "[1, p. 2; 4]" with them."""
    if all(page is None for _, page in items):
        return "[" + ", ".join(str(n) for n, _ in items) + "]"
    return "[" + "; ".join(f"{n}, p. {page}" if page is not None else str(n) for n, page in items) + "]"


def _format(numbers: list[int]) -> str:
    return "[" + ", ".join(str(n) for n in numbers) + "]"


def remove_unknown(text: str, known: set[int]) -> tuple[str, list[int]]:
    """Rewrite brackets to keep only known numbers (with their pages), removing emptied brackets; returns
    (text, dropped)."""
    dropped: set[int] = set()

    def fix(m: re.Match) -> str:
        items = _items(m.group(1))
        keep = list(dict.fromkeys(item for item in items if item[0] in known))
        dropped.update(n for n, _ in items if n not in known)
        if len(keep) == len(items):
            return m.group(0)  # untouched: keep the writer's own form, e.g. [1-3]
        return format_mark(keep) if keep else ""

    cleaned = CITATION.sub(fix, text)
    if dropped:
        # An emptied bracket leaves "claim ." or "a  b": tidy the space it left.
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return cleaned, sorted(dropped)


def answer_sentences(text: str) -> list[str]:
    """Sentences of an answer, with a citation written after the full stop ("X. [2] Y") kept on X."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n(?=\s*[-*•]\s)", text):
        for sentence in split_sentences(para):
            lead = re.match(r"^((?:\s*" + CITATION.pattern + r")+)\s*", sentence)
            if lead and out:
                out[-1] = f"{out[-1]} {lead.group(1).strip()}"
                sentence = sentence[lead.end() :]
            if sentence.strip():
                out.append(sentence.strip())
    return out
