"""Citation marks in an answer: parse [n] (lists and ranges too), drop numbers with no source, split an answer
into the sentences its citations belong to.

Source numbers are stable: ``n`` in the answer is the source's number, never
renumbered, so the text, the reference list and the sources shown beside the
answer agree. Whether a cited sentence is supported is the verifier's job
(``assistant.answering.verify``).
"""

from __future__ import annotations

import re
from typing import Protocol

from assistant.core.text import (
    CITATION,
    split_sentences,
)

_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")
MAX_RANGE = 50  # a "[1-9999]" is not a citation worth expanding
SUPPORT_THRESHOLD = 0.5


class _Cited(Protocol):
    n: int
    paper_id: str
    title: str
    abstract: str


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
