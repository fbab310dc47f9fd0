"""Claim-level verification: align each answer sentence to the source sentences it cites and score the support.

One ``Verifier`` checks every backend's output. For each answer sentence it
ranks the sentences of the sources the sentence cites (a small learned model
over embedding cosine, stemmed overlap and where the sentence sits in its
abstract), then scores the pair with two learned heads: does the source speak
to the claim at all (relatedness), and does it agree with it (direction words,
negation, null results, statistics read from ratios and p-values). A number of the
claim must occur in the cited source, and a near-verbatim quote that negates,
reverses or swaps a named entity (GPT-4, TOFU, LoRA) is never supported. Each
problem found is reported in words. Reading sentences is claims.py; the learned model is support_model.py.

The weights are fitted only on ``../shared/bench/scifact-claims/train.jsonl``
by ``python -m eval.train_verifier`` (grouped cross-validation figures are kept
in the artefact next to this file). They assume the cosine scale of the local
all-MiniLM-L6-v2 embeddings; pass that model's ``embed`` as ``embed_fn``.
Inference is numpy only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cachetools import LRUCache

from assistant.answering.citations import (
    answer_sentences,
    format_mark,
    parse_cited_pages,
    parse_citations,
    remove_unknown,
)
from assistant.answering.claims import Analysis, analyse
from assistant.answering.evidence import Where, source_sentences
from assistant.answering.support_model import (
    VerifierModel,
    apply_rules,
    score_analysed,
    sentence_features,
    shipped_model,
)
from assistant.core.text import (
    CITATION,
    content_words,
    strip_citations,
)
from assistant.core.types import DECLINE_PHRASE, Source

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

# A sentence saying what the sources lack is not a claim about them: it is a denial, checked apart (``denied``).
ABSENCE_PREFIX = "The indexed papers do not"
# Denials in the assistant's voice: "the papers do not give X", "there is no information about X", "X is not mentioned
# in the sources", "none of the papers describe X". A quoted finding ("prior studies do not address X") is no denial.
_VERBS = (r"give|mention|describe|provide|report|discuss|say|cover|contain|specify|include|state|address|explain|detail|"
          r"offer|present|answer|tell|indicate|list|name|reveal")
_DENIAL = re.compile(
    r"^(?:however,?\s*|but\s+|unfortunately,?\s*)?(?:the\s+|these\s+|none\s+of\s+the\s+)?(?:indexed\s+|provided\s+|given\s+|"
    r"cited\s+|available\s+|above\s+)?(?:papers|sources|abstracts|evidence|library|context)"
    rf"\s+(?:(?:do|does|did)\s*(?:n't|\s+not)\s+(?:\w+ly\s+)?(?:{_VERBS})|(?:fails?|lacks?)\s+(?:to\s+(?:{_VERBS}))?)\w*\b"
    r"\s*(?:us\s+)?(?:anything\s+|any\s+)?(?:(?:specific\s+|further\s+|detailed\s+)?(?:information|details?|data|mention)"
    r"\s+(?:about|on|regarding|of|for)\s+|(?:about|on|regarding)\s+)?(?P<what>.*)$", re.I)
_NO_INFO = re.compile(
    r"^(?:there\s+(?:is|are)\s+)?no\s+(?:specific\s+|further\s+)?(?:information|details?|mention|data)\s+(?:is\s+\w+\s+)?"
    r"(?:about|on|regarding|of)\s+(?P<what>.+?)(?:\s+(?:is\s+|are\s+)?(?:given|provided|available|found|reported)?\s*in\s+"
    r"the\s+.*)?$", re.I)
_NOT_IN = re.compile(
    r"^(?P<what>.+?)\s+(?:is|are)\s+not\s+(?:mentioned|described|given|reported|discussed|specified|covered|stated|"
    r"provided|addressed)\s+(?:in|by)\s+(?:the\s+|any\s+of\s+the\s+)?(?:indexed\s+|provided\s+|given\s+)?"
    r"(?:papers|sources|abstracts|evidence)", re.I)
_NONE_OF = re.compile(rf"^(?:none\s+of\s+the|no)\s+(?:indexed\s+|provided\s+|given\s+)?(?:papers?|sources?|abstracts?)\s+"
                      rf"(?:{_VERBS})s?\s+(?:any\s+)?(?:(?:information|details?|data)\s+(?:about|on|regarding|of)\s+)?"
                      r"(?P<what>.*)$", re.I)
_DENIAL_GENERIC = frozenset({"anyth", "inform", "detail", "specif", "data", "mention", "exact", "particular"})
DENIAL_COSINE = 0.75  # an evidence sentence this close to what is denied gives it, whatever its words
CACHE_SIZE = 20_000  # source sentences whose vectors and analyses are kept
@dataclass
class PairScore:
    """Support of one claim by one source: score in [0, 1], aligned sentence indexes (best first), problems in words."""

    support: float
    aligned: list[int]
    problems: list[str]
    supported: bool


@dataclass
class Verification:
    """A verified answer: cleaned text, the reference list with evidence, dropped numbers, per-sentence checks."""

    text: str
    citations: list[dict] = field(default_factory=list)  # {n, paper_id, title, supported, support, evidence}
    dropped: list[int] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    # {text, cited, support, supported, evidence, problems, by_citation}: ``evidence`` is each part's best aligned
    # sentence, ``by_citation`` what each number the sentence cites rests on ({n, index, text, support, page, section})
    sentences: list[dict] = field(default_factory=list)
    false_denials: list[str] = field(default_factory=list)  # denials ("the papers do not give X") that the evidence gives

    def to_dict(self) -> dict:
        return {"text": self.text, "citations": self.citations, "dropped": self.dropped,
                "unsupported_sentences": self.unsupported_sentences, "sentences": self.sentences,
                "false_denials": self.false_denials}

    @property
    def claims(self) -> list[dict]:
        """The answer's cited sentences, each with the source sentence every citation of it rests on (the Answer's
        ``claims``): ``{text, cited, supported, support, evidence: [{n, text, page, section, support}]}``."""
        return [{"text": c["text"], "cited": list(c["cited"]), "supported": c["supported"], "support": c["support"],
                 "evidence": [{"n": e["n"], "text": e["text"], "page": e.get("page"), "section": e.get("section", ""),
                               "support": e["support"]} for e in c.get("by_citation") or []]}
                for c in self.sentences if c["cited"]]


_HEADING = re.compile(r"^[^.!?]{1,80}:$")
_AUX = re.compile(r"\b(?:is|are|was|were|be|been|being|has|have|had|does|do|did|can|could|may|might|will|would|shall|"
                  r"should|must)\b", re.IGNORECASE)


def is_claim(sentence: str) -> bool:
    """False for what states nothing about the sources: the decline, "The indexed papers do not …", headings like "On NPO:"."""
    text = strip_citations(sentence).strip()
    if not text or text == DECLINE_PHRASE or text.startswith(ABSENCE_PREFIX):
        return False
    if _HEADING.match(text) and not _AUX.search(text) and len(text.split()) <= 8:
        return False
    return len(content_words(text)) >= 2


def denied(sentence: str) -> str | None:
    """What a sentence says the sources do not give ("The indexed papers do not give the learning rate." → "the
    learning rate"; "" for a bare "the papers do not say"), or None when the sentence is no denial."""
    text = strip_citations(sentence).strip().rstrip(".!")
    if text == DECLINE_PHRASE.rstrip("."):
        return None  # the decline itself: no claim, checked by the answerability decision
    for pattern in (_DENIAL, _NO_INFO, _NOT_IN, _NONE_OF):
        m = pattern.match(text)
        if m:
            # What is denied ends with its sentence: the splitter keeps "… error rate. w2v-BERT achieves …" together
            # (no capital after the full stop), and the claim after it is no part of the denial.
            return re.split(r"(?<=[.!?])\s", m.group("what"), maxsplit=1)[0].strip(" ,;:.")
    return None


def _denied_stems(what: str) -> set[str]:
    return set(content_words(what)) - _DENIAL_GENERIC


def _segments(sentence: str) -> list[tuple[str, list[int]]]:
    """The claims of one answer sentence with the numbers each cites.

    "A does X [1], while B does Y [2]." is two claims, each checked against its own source;
    "X [1][2]." or "X [1], and so does Y [1]." is one. Text after the last bracket joins the last claim.
    """
    parts: list[tuple[str, list[int]]] = []
    start = 0
    for m in CITATION.finditer(sentence):
        text, cited = sentence[start : m.start()], parse_citations(m.group(0))
        if parts and len(content_words(text)) < 2:  # "[1], [2]": more sources for the same claim
            parts[-1] = (parts[-1][0] + " " + text, parts[-1][1] + [n for n in cited if n not in parts[-1][1]])
        else:
            parts.append((text, cited))
        start = m.end()
    if parts:
        parts[-1] = (parts[-1][0] + " " + sentence[start:], parts[-1][1])
    if len({tuple(c) for _, c in parts}) <= 1:
        return [(_plain(sentence), parts[0][1] if parts else [])]
    return [(_plain(t), c) for t, c in parts]


def _plain(text: str) -> str:
    """Text without citation brackets or the spaces they leave."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(strip_citations(text).split())).strip(" ,;")


@dataclass
class _Tally:
    """What the claim parts' scores add up to, per answer sentence and per cited source."""

    best: dict[int, tuple[float, str, Where]] = field(default_factory=dict)  # n -> (support, evidence, where)
    best_paged: dict[int, tuple[float, str, Where]] = field(default_factory=dict)  # the same among a full text's passages
    rested: dict[int, dict[tuple[str, int | None], float]] = field(default_factory=dict)  # n -> {(evidence, page): support}
    per_sentence: dict[int, list[tuple[float, dict, list[str]]]] = field(default_factory=dict)  # each part's best
    pages: dict[tuple[int, int], tuple[float, int]] = field(default_factory=dict)  # (sentence, n) -> (support, page)
    by_citation: dict[int, dict[int, dict]] = field(default_factory=dict)  # sentence -> n -> best evidence + support

    def add(self, i: int, n: int, support: float, evidence: dict, where: Where) -> None:
        if where.page is not None and ((i, n) not in self.pages or support > self.pages[(i, n)][0]):
            self.pages[(i, n)] = (support, where.page)
        mine = self.by_citation.setdefault(i, {})
        if n not in mine or support > mine[n]["support"]:
            mine[n] = evidence | {"support": support}
        if n not in self.best or support > self.best[n][0]:
            self.best[n] = (support, evidence["text"], where)
        if where.page is not None and (n not in self.best_paged or support > self.best_paged[n][0]):
            self.best_paged[n] = (support, evidence["text"], where)
        if evidence["text"]:
            key = (evidence["text"], where.page)
            self.rested.setdefault(n, {})[key] = max(support, self.rested.get(n, {}).get(key, -1.0))


def _read(cleaned: str) -> tuple[list[dict], list[tuple[int, str, list[int]]], list[tuple[int, str]]]:
    """The answer's sentences as checks to fill in, the claim parts to score ((sentence index, text, cited
    numbers)), and the denials to check ((sentence index, what is denied)). A claim without a citation is
    unsupported here."""
    checks: list[dict] = []
    parts: list[tuple[int, str, list[int]]] = []
    denials: list[tuple[int, str]] = []
    for sentence in answer_sentences(cleaned):
        cited = parse_citations(sentence)
        check = {"text": sentence, "cited": cited, "support": None, "supported": True, "evidence": [], "problems": [],
                 "by_citation": []}
        what = denied(sentence)
        if what is not None:
            denials.append((len(checks), what))
        elif is_claim(sentence):
            if not cited:
                check.update(support=0.0, supported=False, problems=["no citation"])
            else:
                parts += [(len(checks), text, c) for text, c in _segments(sentence) if c]
        checks.append(check)
    return checks, parts, denials


class SentenceCache:
    """Analyses and vectors of source sentences by text, bounded (least recently used go first) and thread-safe.

    The chat page answers several questions at once; they share one cache, and new
    texts are embedded outside the lock (the embedder serialises its own calls).
    """

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray], size: int = CACHE_SIZE):
        self.embed_fn = embed_fn
        self.size = size
        self._items: LRUCache = LRUCache(maxsize=size)  # text -> (analysis, vector)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, texts: Sequence[str]) -> list[tuple[Analysis, np.ndarray]]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
        new = [t for t in dict.fromkeys(texts) if t not in found]
        if new:
            vectors = np.asarray(self.embed_fn(new), dtype=np.float32)
            computed = {t: (analyse(t), v) for t, v in zip(new, vectors)}
            with self._lock:
                self._items.update(computed)
            found.update(computed)
        return [found[t] for t in texts]


class Verifier:
    """Scores answer sentences against the sources they cite; one entry point (``verify``) for every backend.

    ``embed_fn``: texts → L2-normalised vectors from all-MiniLM-L6-v2 (the scale the weights were fitted on);
    by default the local model is loaded on first use. ``model``: a ``VerifierModel`` or a path to weights
    (default: the shipped ones). ``threshold``: support needed to count as supported (default: the model's,
    0.5 after calibration). ``llm``: an optional llama-index LLM asked for a verdict per sentence
    (``prompts/verify.md``); its verdict is averaged with the model's score.
    """

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray] | None = None, *,
                 model: VerifierModel | str | Path | None = None, threshold: float | None = None,
                 llm: LLM | None = None, cache_size: int = CACHE_SIZE):
        if model is None:
            model = shipped_model()
        elif not isinstance(model, VerifierModel):
            model = VerifierModel.load(model)
        self.model = model
        self.threshold = model.threshold if threshold is None else float(threshold)
        self.llm = llm
        self._embed_fn = embed_fn
        self._lock = threading.Lock()
        self.cache = SentenceCache(self.embed, cache_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embed_fn is None:
            with self._lock:
                if self._embed_fn is None:  # loaded on first use: a verifier built and never used costs nothing
                    from assistant.library.embeddings import LocalEmbedder

                    self._embed_fn = LocalEmbedder().embed
        return np.asarray(self._embed_fn(texts), dtype=np.float32)

    def _score(self, claim: Analysis, vector: np.ndarray, sentences: Sequence[str], title: str) -> tuple[float, np.ndarray | None, list[int], list[str]]:
        """Model support (before the LLM and the rules), the pair's features, aligned indexes, problems."""
        known = self.cache.get(list(sentences) + ([title] if title else []))
        sents = [a for a, _ in known[: len(sentences)]]
        if not sents:
            return 0.0, None, [], ["the source has no text"]
        cos = np.stack([v for _, v in known[: len(sentences)]]) @ vector
        return score_analysed(self.model, claim, sents, known[-1][0] if title else None, sentence_features(claim, sents, cos))

    def _score_source(self, claim: Analysis, vector: np.ndarray, evidence: list[tuple[str, Where]], title: str,
                      verdict: float | None) -> tuple[float, list[int], list[str]]:
        """Support of a claim by one source: its abstract and each retrieved passage are scored apart, as the
        model was fitted on whole abstracts (a sentence's place in its text is one of its features), and the
        best one counts. Returns (support, aligned indexes into ``evidence``, problems)."""
        units: dict[int, list[int]] = {}
        for i, (_, where) in enumerate(evidence):
            units.setdefault(where.passage, []).append(i)
        if not units:
            units = {-1: []}
        best: tuple[float, list[int], list[str]] | None = None
        for members in units.values():
            support, x, aligned, problems = self._score(claim, vector, [evidence[i][0] for i in members], title)
            support = self._finish(support, x, verdict)
            if best is None or support > best[0]:
                best = (support, [members[a] for a in aligned], problems)
        return best

    def _finish(self, support: float, x: np.ndarray | None, verdict: float | None) -> float:
        if verdict is not None:
            support = (support + verdict) / 2
        return support if x is None else apply_rules(support, x, self.threshold, self.model.rules)

    def score_pair(self, claim: str, sentences: list[str], title: str = "") -> PairScore:
        """Support of ``claim`` by one source given as its sentence list (and title)."""
        text = strip_citations(claim).strip()
        support, x, aligned, problems = self._score(analyse(text), self.embed([text])[0], sentences, title)
        verdict = None
        if self.llm is not None:
            source = Source(n=1, paper_id="", title=title, abstract=" ".join(sentences))
            verdict = (self._llm_verdicts([(text, [1])], {1: source}) or [None])[0]
        support = self._finish(support, x, verdict)
        return PairScore(round(support, 4), aligned, problems, support >= self.threshold)

    def verify(self, answer_text: str, sources: Sequence[Source], deadline=None,
               off_question: Callable[[str], bool] | None = None, absent: Sequence[str] = ()) -> Verification:
        """Drop citation numbers with no source, align and score every claim sentence, build the reference list.

        A full-text source's sentences include its retrieved passages, each with its page: a claim aligned to one
        gets that page in its mark (``[3]`` → ``[3, p. 5]``; a page written that the evidence is not on is
        corrected when the claim is supported), and the citation carries the page and every evidence passage.
        ``deadline``: the answer's time on the model (llms.deadline), which the optional LLM check draws on.
        ``off_question(passage sentence)``: True for a full text's passage sentence that does not bear on the
        question (the relevance model's call, made for answering): a claim resting on it is not supported, however
        faithfully it quotes it ("A negative score indicates …" is no support for an answer about NPO).
        A denial ("the papers do not give X", ``denied``) is checked against every source's evidence: one naming
        something the answerability decision found missing (``absent``, its ``unanswered``) stands; another stands
        only when no evidence sentence gives X (all of X's content words in one sentence, or a sentence as close as
        DENIAL_COSINE), else it is a false denial: unsupported, listed in ``false_denials``.
        """
        by_n = {s.n: s for s in sources}
        cleaned, dropped = remove_unknown(answer_text, set(by_n))
        evidence_of = {n: source_sentences(s) for n, s in by_n.items()}
        checks, parts, denials = _read(cleaned)
        tally = self._score_parts(parts, by_n, evidence_of, deadline, off_question)
        for i, found in tally.per_sentence.items():
            checks[i] |= self._settle(found, [tally.by_citation[i][n] for n in checks[i]["cited"]
                                              if n in tally.by_citation.get(i, {})])
        false_denials = []
        for i, what in denials:
            found = self._gives(what, evidence_of, absent)
            if found is not None:
                n, text = found
                checks[i].update(support=0.0, supported=False, evidence=[{"n": n, "index": None, "text": text}],
                                 problems=[f"false denial: source [{n}] gives it"])
                false_denials.append(checks[i]["text"])
        if tally.pages:
            cleaned = self._mark_pages(cleaned, checks, tally.pages)
        unsupported = [c["text"] for c in checks if not c["supported"]]
        return Verification(text=cleaned, citations=self._citations(cleaned, by_n, tally), dropped=dropped,
                            unsupported_sentences=unsupported, sentences=checks, false_denials=false_denials)

    def _score_parts(self, parts: list[tuple[int, str, list[int]]], by_n: dict[int, Source],
                     evidence_of: dict[int, list[tuple[str, Where]]], deadline,
                     off_question: Callable[[str], bool] | None) -> _Tally:
        """Score every (claim part, cited source) pair, keeping each part's best and each source's best evidence."""
        split = {n: [t for t, _ in ev] for n, ev in evidence_of.items()}
        vectors = self.embed([t for _, t, _ in parts]) if parts else np.zeros((0, 0), dtype=np.float32)
        verdicts = (self._llm_verdicts([(t, c) for _, t, c in parts], by_n, deadline)
                    if self.llm is not None and parts else None)
        tally = _Tally()
        for k, (i, text, cited) in enumerate(parts):
            claim = analyse(text)
            part_best = None
            for n in cited:
                support, aligned, problems = self._score_source(claim, vectors[k], evidence_of[n], by_n[n].title,
                                                                verdicts[k] if verdicts else None)
                where = evidence_of[n][aligned[0]][1] if aligned else Where()
                if aligned and where.page is not None and off_question and off_question(split[n][aligned[0]]):
                    support, problems = 0.0, [*problems, "the passage it rests on does not bear on the question"]
                evidence = ({"n": n, "index": aligned[0], "text": split[n][aligned[0]]} if aligned
                            else {"n": n, "index": None, "text": ""})
                if where.page is not None:
                    evidence |= {"page": where.page, "section": where.section}
                tally.add(i, n, support, evidence, where)
                if part_best is None or support > part_best[0]:
                    part_best = (support, evidence, problems)
            tally.per_sentence.setdefault(i, []).append(part_best)
        return tally

    def _settle(self, found: list[tuple[float, dict, list[str]]], by_citation: list[dict]) -> dict:
        """A sentence's verdict from its parts' best scores: every part must be supported, so the sentence is as
        strong as its weakest part."""
        support = min(f[0] for f in found)
        problems = list(dict.fromkeys(p for f in found for p in f[2] if f[0] < self.threshold))
        if support < self.threshold and not problems:
            problems = ["no sentence of the cited source says this"]
        return {"support": round(support, 3), "supported": support >= self.threshold,
                "evidence": [f[1] for f in sorted(found, key=lambda f: -f[0])], "problems": problems,
                "by_citation": [e | {"support": round(e["support"], 3)} for e in by_citation]}

    def _citations(self, cleaned: str, by_n: dict[int, Source], tally: _Tally) -> list[dict]:
        """The reference list, one entry per cited source: its best evidence (for a full text, the passage and page
        its best-supported claim rests on, and every passage the answer rests on)."""
        citations = []
        for n in parse_citations(cleaned):
            support, evidence, where = tally.best_paged.get(n) or tally.best.get(n, (0.0, "", Where()))
            entry = {"n": n, "paper_id": by_n[n].paper_id, "title": by_n[n].title,
                     "supported": n in tally.best and support >= self.threshold,
                     "support": round(support, 3) if n in tally.best else None, "evidence": evidence}
            if getattr(by_n[n], "passages", None):
                entry |= {"page": where.page, "section": where.section, "passages": [
                    {"evidence": text, "page": page, "support": round(sup, 3)}
                    for (text, page), sup in sorted(tally.rested.get(n, {}).items(), key=lambda kv: -kv[1])]}
            citations.append(entry)
        return citations

    def _gives(self, what: str, evidence_of: dict[int, list[tuple[str, Where]]],
               absent: Sequence[str]) -> tuple[int, str] | None:
        """The (source, sentence) that gives what a denial denies; None when none does (the denial is true) or when
        the answerability decision found it missing (``absent``). A denial of nothing named gives itself away when
        nothing was found missing."""
        stems = _denied_stems(what)
        missing = set().union(*(_denied_stems(a) for a in absent)) if absent else set()
        if stems and missing and len(stems & missing) * 2 >= len(stems):
            return None  # the decision's own finding, said again
        candidates = [(n, text) for n, ev in evidence_of.items() for text, _ in ev]
        if not candidates:
            return None
        if not stems:
            return None if absent else candidates[0]
        known = self.cache.get([t for _, t in candidates])
        target = self.embed([what])[0]
        for (n, text), (analysis, vec) in zip(candidates, known):
            if stems <= analysis.stems or float(vec @ target) >= DENIAL_COSINE:
                return n, text
        return None

    def _mark_pages(self, text: str, checks: list[dict], pages: dict[tuple[int, int], tuple[float, int]]) -> str:
        """Each citation of a full-text source carries the page of the passage its claim was aligned to.

        A mark without a page gets it; a written page is kept unless the claim is supported by a passage on
        another page (the writer then cited the wrong page). The marks of ``text`` are walked in order, each
        belonging to the answer sentence (``checks``) that holds it.
        """
        def fix(mark: str, i: int) -> str:
            items = []
            for n, page in parse_cited_pages(mark):
                found = pages.get((i, n))
                if found is not None and (page is None or found[0] >= self.threshold):
                    page = found[1]
                items.append((n, page))
            items = list(dict.fromkeys(items))
            return mark if parse_cited_pages(mark) == items else format_mark(items)

        owner: list[int] = []
        for i, check in enumerate(checks):
            owner += [i] * len(CITATION.findall(check["text"]))
        marks = list(CITATION.finditer(text))
        if len(marks) != len(owner):  # the sentences do not hold exactly the text's marks: leave it as written
            return text
        out, last = [], 0
        for m, i in zip(marks, owner):
            out += [text[last : m.start()], fix(m.group(0), i)]
            last = m.end()
        out.append(text[last:])
        for i, check in enumerate(checks):  # the checks quote the sentences as the answer now reads
            check["text"] = CITATION.sub(lambda m, i=i: fix(m.group(0), i), check["text"])
        return "".join(out)

    # --- optional LLM pass -------------------------------------------------------------------------------------------

    def _llm_verdicts(self, claims: list[tuple[str, list[int]]], by_n: dict[int, Source],
                      deadline=None) -> list[float | None] | None:
        """One call for all claims: 1.0 when the LLM says SUPPORTED, 0.0 otherwise, None where it gave no verdict."""
        from assistant.core.errors import BackendError
        from assistant.core.prompts import format_sources, load_prompt
        from assistant.llms.chat import complete

        cited = sorted({n for _, c in claims for n in c})
        statements = "\n".join(f"{k + 1}. {text.strip()} [{', '.join(map(str, c))}]" for k, (text, c) in enumerate(claims))
        messages = load_prompt("verify").render(sources=format_sources([by_n[n] for n in cited]), statements=statements)
        try:
            reply = complete(self.llm, messages, deadline=deadline)
        except BackendError as exc:
            log.warning("LLM verification skipped: %s", exc)
            return None
        return parse_verdicts(reply, len(claims))


_VERDICT = {"SUPPORTED": 1.0, "CONTRADICTED": 0.0, "NOT_ENOUGH_INFO": 0.0}


def parse_verdicts(reply: str, count: int) -> list[float | None] | None:
    """The verdicts in an LLM reply ``{"verdicts": [{"statement": 1, "verdict": "SUPPORTED"}, ...]}``; None if unreadable."""
    m = re.search(r"\{.*\}", reply, re.DOTALL)
    try:
        items = json.loads(m.group(0))["verdicts"] if m else None
    except (ValueError, KeyError, TypeError):
        items = None
    if not isinstance(items, list):
        log.warning("LLM verification skipped: unreadable reply %r", reply[:200])
        return None
    out: list[float | None] = [None] * count
    for item in items:
        try:
            k = int(item["statement"]) - 1
            value = _VERDICT[str(item["verdict"]).strip().upper().replace(" ", "_")]
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= k < count:
            out[k] = value
    return out
