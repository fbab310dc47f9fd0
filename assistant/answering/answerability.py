"""Answerability: can these sources answer this question? One decision, for every mode and every backend.

Input: the analysed ``Question``, the numbered sources and their sentences
(``evidence.Sentence``), and how common each word is in the library
(``LibraryStats``). Output: a ``Decision`` — ``answer``, ``partial`` (with
``unanswered`` naming what the sources do not give) or ``decline`` (with the
reason) — plus which sources may be cited (``keep``) and, for a comparison,
which speak for each side. Signals, none of which needs an LLM:

1. **Relevance.** The best source's cosine similarity to the question below
   ``min_relevance`` means the library is not about this: decline. Sources far
   below the best one (``relative_margin``) are not cited unless they name one
   of the question's names: retrieval pads its list with papers that merely
   share a word.
2. **Names.** The question's discriminative names (NPO, TOFU, XNLI, Japanese;
   names in many papers, such as LLM, do not count) must appear in the
   evidence. None found: decline; some missing from the paper the question is
   about: partial ("do not mention XNLI").
3. **Asked details.** A quantity (how many GPUs, what accuracy) needs a
   sentence holding a number next to the detail's words, in a paper that
   carries the question's names, and without the opposite qualifier ("relative"
   for "absolute"); a training setting (learning rate, batch size) needs a
   sentence naming it. Missing: partial, saying which.
4. **Rare terms.** The question's rarest words (by document frequency in this
   library) must be covered by the evidence, literally or by meaning (the word's
   embedding close to an evidence sentence). The rarest one uncovered and most
   of the rare-word weight missing: decline ("do not cover watermarking").
5. **Comparisons.** Each side needs sources that name it (in the title first,
   then the abstract, its acronym or expansion included); a side with none is
   reported as missing, both missing is a decline.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from assistant.answering.evidence import NUMBER, Sentence, body_text, name_key
from assistant.answering.question import OPPOSITE_QUALIFIERS, Facet, Question
from assistant.core.text import STOPWORDS, content_words, stem, words
from assistant.core.settings import AnswerabilityConfig
from assistant.core.types import Source

# Words every question has that say nothing about its topic.
_GENERIC = {stem(w) for w in """what which who how does did do is are was were can could there any paper papers work works
    study studies research library collection report reports reported use uses used method methods approach approaches
    model models language large llm llms propose proposed describe describes explain explains say says tell find found
    main key idea ideas way ways different difference compare comparison versus between both their them they it its
    mention mentioned according show shows give gives given get make makes made""".split()}


# Words between a number and the detail it gives ("achieves 75% and 84.5% accuracy on RULER": 3).
NUMBER_WINDOW = 8
# Measures whose value a change ("+16% on MMLU", "6.6 points better") does not give.
_ABSOLUTE_MEASURES = {stem(w) for w in ("score", "scores", "accuracy", "perplexity", "rate", "error", "bleu", "rouge", "f1",
                                        "wer", "auc", "performance", "latency", "throughput")}
_CHANGE = re.compile(r"\b(?:improvements?|improv\w*|gains?|increases?|increased|boosts?|higher|better|lower|worse|"
                     r"points?\s+(?:improvement|gain|higher|better|increase)|over|relative(?:ly)?|reductions?|reduc\w*|"
                     r"drops?|fewer|more|less|faster|slower|speed-?up)\b", re.I)
_CHANGE_TO = re.compile(r"\b(?:to|of|reach(?:es|ing)?|achiev\w*|obtain\w*|with)\s*$", re.I)
# Settings answered by a name rather than a number ("which optimizer": AdamW).
_NAMED_SETTINGS = {stem(w) for w in ("optimizer", "scheduler", "schedule", "hyperparameters", "hyperparameter")}


@dataclass
class Decision:
    verdict: str  # "answer" | "partial" | "decline"
    reason: str = ""
    unanswered: list[str] = field(default_factory=list)
    keep: list[int] = field(default_factory=list)  # source numbers that may be cited, best first
    sides: dict[str, list[int]] = field(default_factory=dict)  # compare: side -> its sources ([] = none)
    answering: set[tuple[int, int]] = field(default_factory=set)  # (n, index) of sentences that answer an asked detail
    # (n, index) of evidence sentences not to quote: a full text's passage sentences that do not bear on the question
    unquotable: set[tuple[int, int]] = field(default_factory=set)

    def quotable(self, sentences: Sequence[Sentence]) -> list[Sentence]:
        """The sentences an answer may quote: of a kept source, worth quoting alone, and bearing on the question."""
        keep = set(self.keep)
        return [s for s in sentences if s.n in keep and s.quotable and (s.n, s.index) not in self.unquotable]

    @property
    def declined(self) -> bool:
        return self.verdict == "decline"


class LibraryStats:
    """Document frequency of stemmed words in the library (from the BM25 index: one row per paper or chunk)."""

    def __init__(self, vocab: dict[str, int] | None = None, df: np.ndarray | None = None, n_docs: int = 0):
        self.vocab = vocab or {}
        self._df = df if df is not None else np.zeros(0, dtype=np.int64)
        self.n_docs = max(int(n_docs), 0)

    @classmethod
    def from_bm25(cls, index) -> "LibraryStats":
        model = getattr(index, "model", None)
        scores = getattr(model, "scores", None) or {}
        if not scores or "indptr" not in scores:
            return cls()
        if not getattr(index, "rows_are_papers", True):
            # Rows are passages or chunks: count papers, so a word all over one full text stays rare.
            counted = index.paper_document_frequency()
            if counted is not None:
                return cls(dict(model.vocab_dict), counted[1], counted[0])
        indptr = np.asarray(scores["indptr"])
        return cls(dict(model.vocab_dict), np.diff(indptr), int(scores.get("num_docs", 0)))

    def df(self, stemmed: str) -> int:
        i = self.vocab.get(stemmed)
        return int(self._df[i]) if i is not None and i < len(self._df) else 0

    def share(self, stemmed: str) -> float:
        """Share of the library's documents holding the word (0 for an unknown word)."""
        return self.df(stemmed) / self.n_docs if self.n_docs else 0.0

    def idf(self, stemmed: str) -> float:
        return math.log((self.n_docs + 1) / (self.df(stemmed) + 0.5)) if self.n_docs else 1.0


class Answerability:
    """The one answerability decision: answer, partial or decline, with the reason; which sources may be cited
    and which of their sentences quoted. Its thresholds are ``AnswerabilityConfig`` (Settings.answerability),
    each described there with what it was measured on; keyword arguments override single ones (tests)."""

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray] | None = None,
                 config: AnswerabilityConfig | None = None, *, max_question_chars: int = 2000, **overrides: float):
        self.embed_fn = embed_fn
        self.config = (config or AnswerabilityConfig()).model_copy(update=overrides)
        self.max_question_chars = max_question_chars

    def check_question(self, question: str, chosen: bool = False) -> Decision | None:
        """A decline before anything is searched (the question is too long, or says nothing to look up), else None."""
        if len(question) > self.max_question_chars:
            return Decision("decline", f"the question is {len(question):,} characters long; ask it in under "
                                       f"{self.max_question_chars:,}")
        if not question.strip() and not chosen:
            return Decision("decline", "the question is empty")
        if question.strip() and not content_words(question):
            return Decision("decline", "the question has only common words, nothing to look up")
        return None

    @staticmethod
    def chosen(sources: Sequence[Source], sentences: Sequence[Sentence]) -> Decision:
        """The user chose these papers ("summarise these three"): every one is kept, declined only when none of
        them has a sentence to quote."""
        decision = Decision("answer", keep=[s.n for s in sources])
        return decision if decision.quotable(sentences) else Decision("decline", "the chosen papers have no text to quote")

    # -- the decision ----------------------------------------------------------------

    def decide(self, question: Question, sources: Sequence[Source], sentences: Sequence[Sentence],
               stats: LibraryStats | None = None) -> Decision:
        """Answer, partial or decline for this question from these sources, with what may be cited and quoted."""
        decision = self._decide(question, sources, sentences, stats or LibraryStats())
        decision.unquotable = {(x.n, x.index) for x in sentences if x.passage >= 0 and not self._bears(x)}
        if not decision.declined and sources and not decision.quotable(sentences):
            return Decision("decline", "no sentence of the sources found bears on the question")
        return decision

    def _decide(self, question: Question, sources: Sequence[Source], sentences: Sequence[Sentence],
                stats: LibraryStats) -> Decision:
        if not question.text.strip() and question.mode != "summarize":
            return Decision("decline", "the question is empty")
        relevances = self._relevances(question, sources, sentences)
        best = max(relevances.values(), default=None)
        named_sides = question.mode == "compare" and len(question.sides) >= 2 and any(
            mentions(f"{s.title} {body_text(s)}", side_key) for s in sources for side in question.sides
            for side_key in side_keys(side, "", stats, self.config.common_name_share))
        # "compare TOFU and MUSE" embeds far from any abstract; papers that name a side still make it answerable.
        if not sources or best is None or (self._off_topic(best, sentences, relevances) and not named_sides):
            top = max(sources, key=lambda s: relevances.get(s.n, -1.0), default=None)
            near = f" (closest: \u201c{top.title}\u201d, similarity {relevances[top.n]:.2f})" if top and top.n in relevances else ""
            return Decision("decline", f"nothing in the library is about this{near}")

        by_n = {s.n: s for s in sources if s.n in relevances}  # full texts off the question are out
        text_of = {s.n: f"{s.title} {body_text(s)}" for s in sources}
        names = self._names(question, stats)
        carried = {n: {e for e in names if mentions(text_of[n], e)} for n in by_n}  # the names each paper carries

        # 1. Relative gate: close to the best paper, or naming what the question names.
        keep = [s.n for s in sorted(sources, key=lambda s: -relevances.get(s.n, -1.0)) if s.n in by_n
                and (relevances.get(s.n, -1.0) >= best - self.config.relative_margin or carried[s.n])]
        if question.mode == "summarize" and not question.text.strip():
            keep = [s.n for s in sources]  # "summarise these papers": the user chose them

        decision = Decision("answer", keep=keep)
        if question.mode == "compare" and len(question.sides) >= 2:
            return self._compare(question, sources, sentences, stats, decision)

        # A summary or a list cites only papers on its topic: holding most of the topic's word weight.
        if question.topic_phrase and (question.is_list or question.mode == "summarize") and stats.n_docs:
            on_topic = [n for n in keep if self._topic_share(question.topic_phrase, text_of[n], stats) >= self.config.topic_share
                        or (relevances.get(n) or -1.0) >= best - 0.03]
            keep = decision.keep = on_topic or keep[:1]

        # 2. Names.
        if names:
            found = set().union(*carried.values())
            missing = [e for e in names if e not in found]
            if len(missing) == len(names) and not self._passage_answers(sentences, keep):
                return Decision("decline", f"the indexed papers do not mention {_join(missing)}")
            if question.is_list or question.mode == "summarize":
                # Every paper listed must carry the names (any of them, for a list over several).
                decision.keep = [n for n in keep if carried[n]] or keep
            else:
                # The paper the question is about carries the most of its names; papers carrying fewer
                # (another model that is also "8B") are not what it asks about.
                most = max(len(carried[n]) for n in keep)
                subject = max(keep, key=lambda n: (len(carried[n]), relevances.get(n, -1.0)))
                absent = [e for e in names if e not in carried[subject]]
                decision.keep = [n for n in keep if most and len(carried[n]) == most] or [subject]
                if absent and not missing:
                    missing = absent  # named in other papers, not in the one the question is about
            if missing:
                decision.verdict = "partial"
                decision.unanswered += [f"anything on {e}" for e in missing]

        # 3. Asked details (quantities and settings) in the papers that carry the names.
        if question.facets:
            pool = [s for s in sentences if s.n in decision.keep]
            asked_numbers = {name_key(m.group(0)) for m in NUMBER.finditer(question.text)}
            asks_change = bool(_CHANGE.search(question.text) or re.search(r"\bhow\s+much\s+(?:more|less|fewer)\b|\bby\s+how\s+much\b",
                                                                      question.text, re.I))
            for facet in question.facets:
                hits = [s for s in pool if _answers(facet, s, asked_numbers, asks_change)]
                decision.answering |= {(s.n, s.index) for s in hits}
                if not hits:
                    decision.verdict = "partial"
                    decision.unanswered.append(_facet_phrase(facet))

        # 4. The topic of a topic-style question: words the library never uses, and nothing in the evidence means.
        uncovered = self._uncovered_topic_words(question, sentences, decision.keep, stats)
        if uncovered:
            return Decision("decline", f"the indexed papers do not cover {_join(uncovered)}")

        if decision.verdict == "partial":
            decision.reason = "the sources do not give " + _join(decision.unanswered)
        return decision

    # -- signals -----------------------------------------------------------------------

    def _relevances(self, question: Question, sources: Sequence[Source], sentences: Sequence[Sentence]) -> dict[int, float]:
        """Each source's similarity to the question: its best chunk's, or for a full text its best passage sentence's
        when that is higher and at least ``min_passage_relevance``. Abstracts keep their chunk's similarity (what
        ``min_relevance`` was set on)."""
        relevances = {s.n: float(s.relevance) for s in sources if s.relevance is not None}
        for n in self.off_question(sources, sentences):
            relevances.pop(n, None)
        passage = [x for x in sentences if x.passage >= 0 and x.n in relevances and self._bears(x)]
        if not passage or self.embed_fn is None or not question.text.strip():
            return relevances
        qvec = np.asarray(self.embed_fn([question.text]), dtype=np.float32)[0]
        sims = np.stack([x.vec for x in passage]) @ qvec
        for x, sim in zip(passage, sims):
            if sim >= self.config.min_passage_relevance and sim > relevances[x.n]:
                relevances[x.n] = float(sim)
        return relevances

    def _off_topic(self, best: float, sentences: Sequence[Sentence], relevances: dict[int, float]) -> bool:
        """Nothing in the library is about this: the best source is far in meaning, and no sentence bears on it."""
        scored = [x.relevance for x in sentences if x.index >= 0 and x.n in relevances and x.relevance is not None]
        if not scored:
            return best < self.config.min_relevance
        surest = max(scored)
        if best < self.config.min_relevance:
            return surest < self.config.rescue_relevance
        return best < self.config.doubtful_relevance and surest < self.config.min_best_sentence

    def _passage_answers(self, sentences: Sequence[Sentence], keep: list[int]) -> bool:
        """A kept full text has a passage sentence that bears on the question. Only a few of a paper's passages
        are retrieved, and a question may word its names otherwise than the paper: the names missing make a
        partial answer that says so, not a decline."""
        return any(x.passage >= 0 and x.n in keep and x.relevance is not None and self._bears(x) for x in sentences)

    def _bears(self, sentence: Sentence) -> bool:
        """A sentence that bears on the question (or was not scored: then nothing says otherwise)."""
        return sentence.relevance is None or sentence.relevance >= self.config.min_sentence_relevance

    def off_question(self, sources: Sequence[Source], sentences: Sequence[Sentence]) -> set[int]:
        """Full texts none of whose sentences bears on the question: never cited, never what makes it answerable."""
        best: dict[int, float] = {}
        for x in sentences:
            if x.relevance is not None:
                best[x.n] = max(best.get(x.n, 0.0), x.relevance)
        return {s.n for s in sources if s.pages and s.n in best and best[s.n] < self.config.min_sentence_relevance}

    def _names(self, question: Question, stats: LibraryStats) -> list[str]:
        """The question's names that pick out papers: rare in the library (or absent from it), and not the
        detail asked for ("how many GPUs" asks for a number; the GPUs are not what the question is about)."""
        asked = {name_key(f.phrase) for f in question.facets}
        out = []
        for e in question.entities:
            if name_key(e) in asked:
                continue
            key_words = [stem(w) for w in words(e)]
            share = max((stats.share(w) for w in key_words), default=0.0) if key_words else 0.0
            if share <= self.config.common_name_share and name_key(e):
                out.append(e)
        return out

    @staticmethod
    def _topic_share(topic: str, text: str, stats: LibraryStats) -> float:
        """IDF-weighted share of the topic's words (stemmed) found in ``text``."""
        terms = {stem(w) for w in words(topic) if w not in STOPWORDS and stem(w) not in _GENERIC and len(w) > 2}
        if not terms:
            return 1.0
        present = set(content_words(text))
        weight = {t: stats.idf(t) for t in terms}
        return sum(weight[t] for t in terms if _has_word(frozenset(present), t)) / (sum(weight.values()) or 1.0)

    def _uncovered_topic_words(self, question: Question, sentences: Sequence[Sentence], keep: list[int],
                               stats: LibraryStats) -> list[str]:
        """Words of the question's topic phrase absent from the whole library and far from every evidence sentence.

        Only the topic phrase counts ("is there a paper on X", "what does the library say about X"): a paraphrase
        describing a paper in other words ("a popular fantasy book series") uses words the library lacks too.
        """
        if not question.topic_phrase or not stats.n_docs:
            return []
        name_words = {w for e in question.entities for w in re.findall(r"[a-z0-9]{2,}", e.lower())}
        absent = [w for w in dict.fromkeys(re.findall(r"[a-z0-9]{2,}", question.topic_phrase.lower()))
                  if len(w) >= 3 and not w.isdigit() and w not in STOPWORDS and w not in name_words
                  and stem(w) not in _GENERIC and stats.df(stem(w)) == 0]
        pool = [s for s in sentences if s.n in keep]
        if not absent or not pool or self.embed_fn is None:
            return absent if absent and not pool else []
        sims = np.asarray(self.embed_fn(absent), dtype=np.float32) @ np.stack([s.vec for s in pool]).T
        return [w for w, best in zip(absent, sims.max(axis=1)) if best < self.config.term_similarity]

    def _compare(self, question: Question, sources: Sequence[Source], sentences: Sequence[Sentence],
                 stats: LibraryStats, decision: Decision) -> Decision:
        text = " ".join(s.text for s in sentences)
        sides: dict[str, list[int]] = {}
        for side in question.sides[:2]:
            keys = side_keys(side, text, stats, self.config.common_name_share)
            in_title = [s.n for s in sources if any(mentions(s.title, k) for k in keys)]
            in_text = [s.n for s in sources if s.n not in in_title and any(mentions(body_text(s), k) for k in keys)]
            sides[side] = in_title + in_text
        decision.sides = sides
        named = {n for ns in sides.values() for n in ns}
        decision.keep = [n for n in decision.keep if n in named] + [n for ns in sides.values() for n in ns
                                                                     if n not in decision.keep]
        missing = [side for side, ns in sides.items() if not ns]
        if len(missing) == len(sides):
            return Decision("decline", f"the indexed papers do not mention {_join(missing)}", sides=sides)
        if missing:
            decision.verdict = "partial"
            decision.unanswered = [f"anything on {side}" for side in missing]
            decision.reason = "the sources do not cover " + _join(missing)
        return decision


# -- helpers ------------------------------------------------------------------------------


def side_keys(side: str, evidence_text: str, stats: LibraryStats | None = None, common_share: float = 0.05) -> list[str]:
    """How a comparison side is written in papers: its names, its acronym or expansion, or the phrase itself."""
    from assistant.answering.question import entities

    stats = stats or LibraryStats()
    names = [e for e in entities(side)
             if not stats.n_docs or max((stats.share(stem(w)) for w in words(e)), default=0.0) <= common_share]
    keys = names or [re.sub(r"\s*\([^)]*\)", "", side).strip()]
    for key in list(keys):
        keys += aliases(key, evidence_text)
    # "ECO (Embedding-Corrupted Prompts)": the bracketed expansion is a name too.
    keys += [m.strip() for m in re.findall(r"\(([^)]+)\)", side)]
    return list(dict.fromkeys(k for k in keys if name_key(k)))


def aliases(name: str, text: str) -> list[str]:
    """Acronym ↔ expansion pairs written in ``text`` as "Long Form (LF)": the other form of ``name``."""
    out = []
    for m in re.finditer(r"((?:[A-Za-z][\w-]*\s+){1,6}?)\(([A-Za-z][A-Za-z0-9-]{1,12})\)", text):
        long_form, acronym = m.group(1).strip(), m.group(2)
        initials = "".join(w[0] for w in re.split(r"[\s-]+", long_form) if w).lower()
        # The long form's last words whose initials spell the acronym.
        letters = acronym.lower().replace("-", "")
        tail = long_form.split()
        for k in range(1, len(tail) + 1):
            candidate = " ".join(tail[-k:])
            if "".join(w[0] for w in re.split(r"[\s-]+", candidate) if w).lower() == letters:
                long_form = candidate
                break
        else:
            if not initials.endswith(letters):
                continue
        if name_key(name) == name_key(acronym):
            out.append(long_form)
        elif name_key(name) == name_key(long_form):
            out.append(acronym)
    return out


def mentions(text: str, name: str) -> bool:
    """Does ``text`` name ``name`` (spelling-insensitive; a short name only as a whole token)?"""
    key = name_key(name)
    if not key:
        return False
    if len(key) <= 4:  # short names must be whole tokens: "GA" is not in "GAN"
        return key in re.findall(r"[a-z0-9]+", text.lower()) or bool(
            re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", text, re.I))
    return key in name_key(text)


def _has_word(sentence_words: frozenset[str], w: str) -> bool:
    """Stem match that tolerates a plural left by the stemmer ("gpus" / "gpu")."""
    if w in sentence_words:
        return True
    if len(w) < 3:
        return False
    if any(x.startswith(w) or w.startswith(x) for x in sentence_words if len(x) >= 3):
        return True
    # Abstracts have typos ("accurracy"): long words may differ by one letter.
    return len(w) >= 6 and any(len(x) >= 6 and Levenshtein.distance(w, x) <= 1 for x in sentence_words)


def _answers(facet: Facet, sentence: Sentence, asked_numbers: set[str] = frozenset(), asks_change: bool = False) -> bool:
    """Does this sentence give the asked detail (a number next to the detail's words, or the setting named)?"""
    if sentence.index < 0:
        return False
    text = sentence.text.lower()
    if any(re.search(rf"\b{re.escape(OPPOSITE_QUALIFIERS[q])}\b", text) for q in facet.qualifiers):
        return False  # "relative WER" does not answer "absolute word error rate"
    numbers = _new_numbers(sentence.text, asked_numbers, absolute=facet.words[-1] in _ABSOLUTE_MEASURES and not asks_change)
    if facet.kind == "setting":
        named = all(_has_word(sentence.words, w) for w in facet.words)
        return named and (bool(numbers) or facet.words[-1] in _NAMED_SETTINGS)
    # The number must stand near the detail's words: "Mistral 7B" fifteen words from "MMLU" is not an MMLU score.
    tokens = re.findall(r"[\w.%×:-]+", sentence.text.lower())
    near = {i for i, t in enumerate(tokens) if any(_has_word(frozenset(content_words(t)), w) for w in facet.words)}
    spots = {i for i, t in enumerate(tokens) if name_key(t) in numbers}
    return any(abs(i - j) <= NUMBER_WINDOW for i in spots for j in near)


def _new_numbers(text: str, asked: set[str], absolute: bool) -> list[str]:
    """Numbers in ``text`` that the question did not itself state; for an absolute measure, not changes."""
    out = []
    for m in NUMBER.finditer(text):
        value = name_key(m.group(0))
        if not value or value in asked:
            continue
        if absolute and _CHANGE.search(text[m.end(): m.end() + 40].split(".")[0][:40]) \
                and not _CHANGE_TO.search(text[max(0, m.start() - 12): m.start()]):
            continue  # "a 16% improvement in MMLU" is not the MMLU score
        out.append(value)
    return out


def _facet_phrase(facet: Facet) -> str:
    phrase = facet.phrase.strip()
    return phrase if phrase.lower().startswith(("the ", "a ", "an ")) else f"the {phrase}"


def _join(items: Sequence[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
