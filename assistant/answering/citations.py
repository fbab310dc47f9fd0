"""Citation handling after generation: parse [n] marks, drop numbers with no source, check each cited sentence.

Source numbers are stable: ``n`` in the answer is the source's number, never
renumbered, so the text, the reference list and the sources shown beside the
answer agree. The reference list holds only cited papers, in order of first
citation.

Support is checked per sentence against the abstract(s) it cites. The default
check is lexical (share of the sentence's content words found in the cited
abstracts); pass ``support_fn`` for an embedding-based score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from assistant.core.text import (
    CITATION,
    content_words,
    split_sentences,
    strip_citations,
)

_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
MAX_RANGE = 50  # a "[1-9999]" is not a citation worth expanding
SUPPORT_THRESHOLD = 0.5


class _Cited(Protocol):
    n: int
    paper_id: str
    title: str
    abstract: str


@dataclass
class CitationCheck:
    """The checked answer: cleaned text, the reference list, what was dropped and what is unsupported."""

    text: str
    citations: list[dict] = field(default_factory=list)  # {n, paper_id, title, supported}, first-citation order
    dropped: list[int] = field(default_factory=list)  # cited numbers that match no source, sorted
    unsupported_sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "citations": self.citations,
            "dropped": self.dropped,
            "unsupported_sentences": self.unsupported_sentences,
        }


def _numbers(inner: str) -> list[int]:
    out: list[int] = []
    for part in inner.split(","):
        m = _RANGE.fullmatch(part.strip())
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo <= hi and hi - lo <= MAX_RANGE:
                out.extend(range(lo, hi + 1))
            else:
                out.extend([lo, hi])  # reversed or huge: keep the endpoints, let validation judge them
        else:
            out.append(int(part.strip()))
    return out


def parse_citations(text: str) -> list[int]:
    """Cited numbers in order of first appearance, without repeats: "[2] ... [1, 3-4]" → [2, 1, 3, 4]."""
    seen: dict[int, None] = {}
    for m in CITATION.finditer(text):
        for n in _numbers(m.group(1)):
            seen.setdefault(n, None)
    return list(seen)


def _format(numbers: list[int]) -> str:
    return "[" + ", ".join(str(n) for n in numbers) + "]"


def remove_unknown(text: str, known: set[int]) -> tuple[str, list[int]]:
    """Rewrite brackets to keep only known numbers, removing emptied brackets; returns (text, dropped)."""
    dropped: set[int] = set()

    def fix(m: re.Match) -> str:
        numbers = _numbers(m.group(1))
        keep = list(dict.fromkeys(n for n in numbers if n in known))
        dropped.update(n for n in numbers if n not in known)
        if len(keep) == len(numbers):
            return m.group(0)  # untouched: keep the writer's own form, e.g. [1-3]
        return _format(keep) if keep else ""

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


def lexical_support(sentence: str, abstracts: list[str]) -> float:
    """Share of the sentence's content words (stemmed, stopwords removed) found in the cited abstracts."""
    words = set(content_words(sentence))
    if not words:
        return 1.0  # nothing to check ("See [2].")
    found: set[str] = set()
    for abstract in abstracts:
        found |= words & set(content_words(abstract))
    return len(found) / len(words)


def check_answer(
    text: str,
    sources: Iterable[_Cited],
    support_fn: Callable[[str, list[str]], float] | None = None,
    threshold: float = SUPPORT_THRESHOLD,
) -> CitationCheck:
    """Clean the answer's citations and check each cited sentence against the abstracts it cites.

    A paper's ``supported`` is True when at least one sentence citing it is supported.
    """
    by_n = {s.n: s for s in sources}
    cleaned, dropped = remove_unknown(text, set(by_n))
    support = support_fn or lexical_support

    order = parse_citations(cleaned)  # first-citation order
    supported: dict[int, bool] = {n: False for n in order}
    unsupported: list[str] = []
    for sentence in answer_sentences(cleaned):
        cited = parse_citations(sentence)
        if not cited:
            continue
        # Title and abstract both count: a sentence may name the paper.
        abstracts = [f"{by_n[n].title}. {by_n[n].abstract}" for n in cited]
        ok = support(strip_citations(sentence).strip(), abstracts) >= threshold
        for n in cited:
            supported[n] = supported[n] or ok
        if not ok:
            unsupported.append(sentence)

    citations = [
        {"n": n, "paper_id": by_n[n].paper_id, "title": by_n[n].title, "supported": supported[n]} for n in order
    ]
    return CitationCheck(text=cleaned, citations=citations, dropped=dropped, unsupported_sentences=unsupported)
