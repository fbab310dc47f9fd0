"""Text primitives every layer shares: sentence splitting, citation brackets, content words.

Ingest chunks abstracts with ``split_sentences``; answering quotes, aligns and
verifies the same sentences, so both must split alike, and this is the lowest
floor both use. ``CITATION`` is the one definition of a citation bracket
([3], [1, 2], [1-3], [2, 4-6]; never "[CLS]" or "[a]").

Stemming is PyStemmer's English (Snowball) stemmer, the same one the BM25
index uses. Negations ("not", "no", "without", …) are never stopwords: a
support check that drops them cannot tell "X improves Y" from "X does not
improve Y".
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

# One bracket of citation numbers; group 1 holds the numbers. A number may carry the page of a full-text
# source: [3, p. 5], [3, pp. 5-6], [1, p. 2; 4]; a page always follows "p." or "pp.", so [1, 2] stays two sources.
_PAGE = r"(?:\s*,?\s*pp?\.\s*\d+(?:\s*[-–]\s*\d+)?)"
_CITED = rf"\d+(?:\s*[-–]\s*\d+)?{_PAGE}?"
CITATION = re.compile(rf"\[\s*({_CITED}(?:\s*[,;]\s*{_CITED})*)\s*\]")

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

NEGATIONS = frozenset(
    "not no nor never none neither without cannot can't don't doesn't didn't isn't aren't wasn't weren't "
    "won't fails fail failed lack lacks lacking absence absent".split()
)

# English function words plus the paper-talk that every abstract shares. No negation is here.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either else few for from further had has
    have having he her here hers him his how however i if in into is it its itself just may me might more most
    much must my now of off on once only or other our ours out over own per same she should
    so some such than that the their theirs them then there these they this those through thus to too under
    until up upon us very via was we were what when where which while who whom why will with within
    would yet you your paper papers propose proposed show shows shown study approach method methods
    using use used based new results result work""".split()
) - NEGATIONS

# Abbreviations after which a period does not end a sentence.
_ABBREV = {"e.g", "i.e", "et al", "etc", "vs", "fig", "figs", "eq", "eqs", "sec", "al", "approx", "cf", "resp", "no", "dr",
           "mr", "ms", "st"}
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[\\])")


def split_sentences(text: str) -> list[str]:
    """Split an abstract into sentences, keeping abbreviations and decimals intact."""
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start : m.start()].strip()
        # "(Fig. 3B", "(e.g. BERT": an opening bracket or quote before the abbreviation does not end a sentence.
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".!?").lower().lstrip("([{\"'")
        tail2 = " ".join(candidate.rsplit(" ", 2)[-2:]).rstrip(".").lower().lstrip("([{\"'")
        if last_word in _ABBREV or tail2 in _ABBREV or re.fullmatch(r"[a-z]", last_word):
            continue  # "e.g. BERT", "et al. 2020", "A. Smith"
        sentences.append(text[start : m.end()].strip())
        start = m.end()
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def strip_citations(text: str) -> str:
    """The text without ``[n]``-style citation brackets."""
    return CITATION.sub(" ", text)


_STEMMER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """The Snowball (Porter 2) stem of one lower-cased word: "models" → "model", "improves" → "improv"."""
    with _STEMMER_LOCK:  # a PyStemmer object is not thread-safe
        return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (citation brackets removed), in order."""
    return _WORD.findall(strip_citations(text).lower())


def content_words(text: str) -> list[str]:
    """Stemmed words of ``text`` without stopwords or citation brackets, in order (negations kept)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def overlap(query_words: set[str], text: str) -> float:
    """Share of ``query_words`` that occur in ``text`` (0 when there are none)."""
    if not query_words:
        return 0.0
    return len(query_words & set(content_words(text))) / len(query_words)
