"""Small lexical helpers shared by the extractive backend and the citation checker: content words and light stemming.

Deliberately simple and dependency-free: they back an overlap *bonus* and a
support *check*, not a ranking on their own.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_CITE = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either else few for from further had has
    have having he her here hers him his how however i if in into is it its itself just may me might more most
    much must my neither no nor not now of off on once only or other our ours out over own per same she should
    so some such than that the their theirs them then there these they this those through thus to too under
    until up upon us very via was we were what when where which while who whom why will with within without
    would yet you your we our paper papers propose proposed show shows shown study approach method methods
    using use used based new results result work""".split()
)

# Ordered longest first so "ies" wins over "s".
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s")


def stem(word: str) -> str:
    """Strip one common English suffix (light stemming: "models" → "model", "trained" → "train")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def strip_citations(text: str) -> str:
    """The text without ``[n]``-style citation brackets."""
    return _CITE.sub(" ", text)


def content_words(text: str) -> list[str]:
    """Lowercased, stemmed words of ``text`` without stopwords or citation brackets, in order."""
    words = _WORD.findall(strip_citations(text).lower())
    return [stem(w) for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def overlap(query_words: set[str], text: str) -> float:
    """Share of ``query_words`` that occur in ``text`` (0 when there are none)."""
    if not query_words:
        return 0.0
    return len(query_words & set(content_words(text))) / len(query_words)
