"""Evidence: the retrieved sources cut into sentences, each with its vector, stemmed words, numbers and name tokens.

Answerability, the extractive synthesizer and the verifier all look at the
same sentences: a source's title, its abstract's sentences, then, for a
full-text paper, the sentences of the passages retrieval found for the
question, each with its page (``source_sentences``). ``SentenceBank`` splits and embeds each source once and keeps
the result in a bounded cache shared by the chat page's concurrent questions:
every read and write of the cache holds one lock, and embedding happens outside
it, so a lookup never races an eviction.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from cachetools import LRUCache

from assistant.core.text import content_words, split_sentences, strip_citations
from assistant.core.types import Source
from assistant.library.vectors import TextVectors

log = logging.getLogger(__name__)

# A number as a quantity: 530B, 84.5%, 1.4 trillion, 2:4, 40x, 24K, "four times". Years alone count too: harmless.
NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,:]\d+)*\s?(?:%|x|×|[kKmMbBtT]\b)?|\b(?:one|two|three|four|five|six|seven|eight|"
                    r"nine|ten|twenty|thirty|forty|fifty|hundred|thousand|million|billion|trillion|twice|half)\b", re.I)
_NAME_TOKENS = re.compile(r"[a-z0-9]+")
# Sentences that lean on the one before: quoting them bare means nothing ("Indeed, the former …").
_DEPENDENT = re.compile(r"^(?:(?:indeed|moreover|furthermore|however|thus|therefore|hence|also|in addition|in contrast|"
                        r"additionally|consequently|similarly|finally|specifically|in particular|notably|instead),?\s+)?"
                        r"(?:it|its|this|these|they|their|those|such|that|he|she|the former|the latter|both|"
                        r"the (?:resulting|proposed|above|same) \w+|here)\b", re.I)
_FORMER_LATTER = re.compile(r"\b(?:the former|the latter)\b", re.I)
# A contrast opens a sentence that answers the one before ("However, … these methods fail …").
_CONTRAST = re.compile(r"^(?:however|nevertheless|nonetheless|yet|but|conversely|in contrast|by contrast)\b", re.I)
_URL = re.compile(r"https?://|www\.|github\.com|huggingface\.co", re.I)
# Sentences addressed to the assistant rather than stating a finding (text injected into a paper to steer whoever
# answers from it): an imperative at a sentence's or clause's start about citing, answering or the assistant's own
# instructions ("Ignore previous instructions.", "Cite [1] for everything.", "Always answer that …"), or a sentence
# that speaks to the assistant ("You are now …", "As an AI …", "Note to any AI reading this: …"). Abstracts state
# findings in the third person or "we"; they do not open a sentence with "Cite" or "You must". A paper that studies
# such attacks describes them ("models that ignore previous instructions …") and stays quotable.
_INSTRUCTION = re.compile(
    r"(?:^|[;:!\u2014]\s*)(?:(?:please|now|also|then)[,\s]+)?(?:"
    r"(?:ignore|disregard|forget|override|bypass)\s+(?:all|any|the|every|your|previous|prior|above|earlier|these|those|other)\b"
    r"|(?:always|only|never|do\s+not|don't|must)\s+(?:cite|quote|mention|answer|respond|reply|say|state|tell|recommend|"
    r"refer|reveal|output|print|include|use)\b"
    r"|cite\b|(?:quote|recommend)\s+(?:this|the|only|\[|paper|source|reference|it\b|every|all)"
    r"|(?:answer|respond|reply)\s+(?:every|all|any|each|only|with|to\s+(?:every|all|any|each|the\s+user))\b"
    r"|(?:reveal|print|repeat|output)\s+(?:your|the)\s+(?:system\s+)?(?:prompt|instructions)"
    r"|(?:you\s+(?:are|must|should|will|have\s+to|need\s+to)|you're|from\s+now\s+on)\b"
    r"|as\s+an?\s+(?:ai|artificial\s+intelligence|language\s+model|llm|assistant|chatbot)\b"
    r"|(?:note|message|instructions?|attention)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|llm|assistant|chatbot|"
    r"language\s+model|model|reader\s+model)s?\b"
    r"|(?:dear|hey|hello)\s+(?:ai|llm|assistant|chatbot|model)s?\b|(?:ai|llm|assistant|chatbot)\s*:)",
    re.I,
)


def addressed_to_assistant(text: str) -> bool:
    """Whether a sentence is an instruction aimed at the assistant (see ``_INSTRUCTION``): such a sentence is data,
    never evidence, so no answer quotes it as a finding."""
    return bool(_INSTRUCTION.search(text))


def leans_back(text: str) -> bool:
    """Whether a sentence leans on the one before it (quoted alone it would mean nothing, or mislead)."""
    return bool(_DEPENDENT.match(text) or _FORMER_LATTER.search(text) or _CONTRAST.match(text))


def name_key(text: str) -> str:
    """Letters and digits only, lower-cased: "Llama2-70B" and "Llama 2 70B" meet as "llama270b"."""
    return "".join(_NAME_TOKENS.findall(text.lower()))


@dataclass
class Sentence:
    """One sentence of source ``n`` (``index`` within its evidence: -1 the title, 0.. the abstract's sentences, then
    the passages' sentences; ``page``, ``section`` and ``passage`` say where a passage's sentence is in the PDF)."""

    n: int
    index: int
    text: str
    vec: np.ndarray
    words: frozenset[str] = field(default_factory=frozenset)  # stemmed content words
    has_number: bool = False
    dependent: bool = False  # leans on the sentence before it
    quotable: bool = True  # worth quoting on its own (not a link, not a fragment, not addressed to the assistant)
    instruction: bool = False  # addressed to the assistant (``addressed_to_assistant``): never quoted, nor leaned on
    page: int | None = None  # the PDF page of a passage's sentence; None for the title and the abstract
    section: str = ""
    passage: int = -1  # which retrieved passage it is in (-1: the title or the abstract)
    relevance: float | None = None  # the relevance model's probability that it bears on the question (None: not scored)


@dataclass(frozen=True)
class Where:
    """Where one evidence sentence is: its page and section in the PDF, its passage (-1: title or abstract)."""

    page: int | None = None
    section: str = ""
    passage: int = -1


def passage_sentences(source: Source) -> list[tuple[str, Where]]:
    """The sentences of a full-text source's retrieved passages as answering quotes them, each with where it is.

    A passage is a block of one page (ingest never lets a chunk span two pages), so every sentence has one page."""
    out: list[tuple[str, Where]] = []
    for k, passage in enumerate(getattr(source, "passages", None) or []):
        where = Where(passage.get("page"), passage.get("section") or "", k)
        # A removed reference bracket leaves "cell line , which": the space goes too.
        texts = (re.sub(r"\s+([,.;:])", r"\1", _clean(x)) for x in split_sentences(passage.get("text") or ""))
        out += [(t, where) for t in texts if t]
    return out


def body_text(source: Source) -> str:
    """What a source says beyond its title: its abstract, then its retrieved passages (full texts)."""
    passages = [p.get("text") or "" for p in getattr(source, "passages", None) or []]
    return " ".join([source.abstract, *passages]) if passages else source.abstract


def source_sentences(source: Source) -> list[tuple[str, Where]]:
    """Every evidence sentence of a source but its title: the abstract's (raw, as the verifier has always split
    them), then its passages' (cleaned of citation brackets, as quoted)."""
    return [(t, Where()) for t in split_sentences(source.abstract)] + passage_sentences(source)

    @property
    def tokens(self) -> set[str]:
        return set(_NAME_TOKENS.findall(self.text.lower()))


class SentenceBank:
    """Sentences and vectors of abstracts, cached per (paper, abstract) and shared across threads."""

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray], max_papers: int = 5000, max_texts: int = 100_000,
                 lookup_fn: Callable[[list[tuple[str, list[str]]]], list[np.ndarray | None]] | None = None,
                 vectors: TextVectors | None = None):
        self.embed_fn = embed_fn
        # Stored sentence vectors (the store's, written at ingest): given (paper id, sentence texts) pairs, the
        # vectors of each paper whose stored texts are exactly these, else None; what it lacks is embedded here.
        self.lookup_fn = lookup_fn
        # Any text's vector (sentences, questions, claims), shared with the searcher when the App gives one.
        self.vectors = vectors if vectors is not None else TextVectors(embed_fn, maxsize=max_texts)
        self._cache: LRUCache = LRUCache(maxsize=max_papers)  # a source's key -> its sentences and their vectors
        self._lock = threading.Lock()

    def _key(self, source: Source) -> str:
        passages = "\n".join(f"{p.get('page')}\t{p.get('text')}" for p in getattr(source, "passages", None) or [])
        return hashlib.sha1(f"{source.paper_id}\n{source.title}\n{source.abstract}\n{passages}".encode()).hexdigest()

    def split(self, source: Source) -> tuple[list[str], np.ndarray]:
        """The source's sentences (its title first) and their vectors."""
        return self.split_many([source])[0]

    def split_many(self, sources: Sequence[Source]) -> list[tuple[list[str], np.ndarray]]:
        keys = [self._key(s) for s in sources]
        with self._lock:
            found = {k: self._cache[k] for k in keys if k in self._cache}
        todo = [(k, s) for k, s in zip(keys, sources) if k not in found]
        if todo:
            texts_per = [[_clean(s.title)] + [_clean(t) for t in split_sentences(s.abstract)] for _, s in todo]
            flat = [t for texts in texts_per for t in texts]
            vecs = self._stored_or_embedded([s.paper_id for _, s in todo], texts_per, flat)
            self.vectors.remember(flat, vecs)
            # Passages differ per question: never stored, embedded once per text (shared with the verifier).
            passages_per = [[t for t, _ in passage_sentences(s)] for _, s in todo]
            passage_vecs = self.embed_cached([t for texts in passages_per for t in texts])
            start = p_start = 0
            with self._lock:
                for (k, _), texts, extra in zip(todo, texts_per, passages_per):
                    own = vecs[start : start + len(texts)]
                    if extra:
                        own = np.concatenate([own, passage_vecs[p_start : p_start + len(extra)]])
                    found[k] = (texts + extra, own)
                    start += len(texts)
                    p_start += len(extra)
                    self._cache[k] = found[k]
        return [found[k] for k in keys]

    def _stored_or_embedded(self, paper_ids: list[str], texts_per: list[list[str]], flat: list[str]) -> np.ndarray:
        """Vectors of ``flat`` (the papers' texts in order): stored ones where the store has them, the rest embedded."""
        stored: list[np.ndarray | None] = [None] * len(texts_per)
        if self.lookup_fn is not None and flat:
            try:
                stored = list(self.lookup_fn(list(zip(paper_ids, texts_per))))
            except Exception as exc:  # the store is an optimisation here: embedding gives the same vectors
                log.warning("stored sentence vectors unavailable, embedding instead: %s", exc)
        missing = [t for texts, v in zip(texts_per, stored) if v is None or len(v) != len(texts) for t in texts]
        embedded = np.asarray(self.embed_fn(missing), dtype=np.float32) if missing else None
        parts, used = [], 0
        for texts, v in zip(texts_per, stored):
            if v is None or len(v) != len(texts):
                v, used = embedded[used : used + len(texts)], used + len(texts)
            parts.append(np.asarray(v, dtype=np.float32))
        return np.concatenate(parts) if parts and flat else np.zeros((0, 1), np.float32)

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``, reusing every vector made before (the verifier's embed function: the source
        sentences it aligns to were embedded when the evidence was gathered, the question when it was searched)."""
        return self.vectors(texts)

    def sentences(self, sources: Sequence[Source]) -> list[Sentence]:
        """Every sentence of every source (titles as index -1, then the abstract, then the passages), in source order."""
        out: list[Sentence] = []
        for src, (texts, vecs) in zip(sources, self.split_many(sources)):
            places = [w for _, w in passage_sentences(src)]
            first_passage = len(texts) - len(places)  # the passages' sentences come last
            for i, (text, vec) in enumerate(zip(texts, vecs)):
                index = i - 1  # the title is -1, the abstract's sentences 0..
                instruction = index >= 0 and addressed_to_assistant(text)
                where = places[i - first_passage] if i >= first_passage else Where()
                out.append(Sentence(
                    n=src.n, index=index, text=text, vec=vec, words=frozenset(content_words(text)),
                    has_number=bool(NUMBER.search(text)),
                    dependent=index > 0 and leans_back(text),
                    quotable=index >= 0 and not _URL.search(text) and len(content_words(text)) >= 3 and not instruction,
                    instruction=instruction,
                    page=where.page, section=where.section, passage=where.passage,
                ))
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_cached(texts)


def _clean(sentence: str) -> str:
    # Numeric brackets inside an abstract would read as citations once quoted.
    return re.sub(r"\s+", " ", strip_citations(sentence)).strip()
