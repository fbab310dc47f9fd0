"""The extractive synthesizer: answers with no language model, by quoting the source sentences that answer.

Every sentence it writes is a sentence of a cited abstract (or of a retrieved
passage of a full-text paper) followed by that paper's number (and the
passage's page: ``[3, p. 5]``), so it states nothing the sources do not say; its own words
are connectors ("On NPO:") and what the answerability decision found missing
("The indexed papers do not give the learning rate."). It is the offline
default: it works on a fresh machine with no key and no server.

How it picks, for each mode:

* **answer**: sentences of the papers the decision keeps, chosen for coverage
  of the question: each candidate scores its similarity to the question, the
  share of the question's words it adds that earlier picks did not cover, and a
  bonus when it gives an asked detail (a number next to "tokens"); near-copies
  of a pick are skipped. A sentence that leans on the one before ("This …",
  "the former … the latter") is quoted with that sentence, never bare.
* **compare**: per side, sentences of the papers that name the side (title
  first), preferring sentences that name it too; a side the library has
  nothing on is said to be missing.
* **summarize**: the kept papers grouped by theme (papers whose abstracts are
  alike), each theme labelled by the words its titles share, one or two key
  sentences per paper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Generator

import numpy as np

from assistant.answering.answerability import LibraryStats, mentions, side_keys
from assistant.answering.evidence import Sentence, SentenceBank
from assistant.answering.synthesis import AnswerPlan, CitingSynthesizer
from assistant.core.text import STOPWORDS, content_words, stem, words
from assistant.core.settings import ExtractiveConfig

# Sentences stating the paper's contribution are the ones worth quoting in a summary.
_CONTRIBUTION = re.compile(r"\b(?:we|this paper|this work)\s+(?:propose|introduce|present|show|find|demonstrate|develop)", re.I)
_GENERIC_TITLE_WORDS = {stem(w) for w in """language model models large llm llms learning via towards toward using
    efficient effective approach method study benchmark new based neural deep training""".split()}


def cite(sentence: str, n: int, page: int | None = None) -> str:
    """Put ``[n]`` (``[n, p. N]`` for a passage of a PDF) before the sentence's final punctuation: "X improves Y [3]."."""
    mark = f"[{n}]" if page is None else f"[{n}, p. {page}]"
    s = sentence.rstrip()
    if s and s[-1] in ".!?":
        return f"{s[:-1].rstrip()} {mark}{s[-1]}"
    return f"{s} {mark}."


def absence_sentence(parts: list[str]) -> str:
    """What the sources do not give, as the sentence that opens a partial answer."""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    return f"The indexed papers do not give {listed}."


class ExtractiveSynthesizer(CitingSynthesizer):
    """Writes cited answers from source sentences; no LLM."""

    def __init__(self, bank: SentenceBank, *, stats: Callable[[], LibraryStats] = LibraryStats,
                 config: ExtractiveConfig | None = None, streaming: bool = True, **overrides):
        super().__init__(streaming=streaming)
        self.bank = bank
        self._stats = stats  # a function: the library's word frequencies change with every ingest
        # Its knobs, each described (and measured) in ExtractiveConfig (Settings.extractive).
        self.config = (config or ExtractiveConfig()).model_copy(update=overrides)

    @property
    def name(self) -> str:
        return "extractive"

    @property
    def stats(self) -> LibraryStats:
        return self._stats()

    def write(self, plan: AnswerPlan) -> Generator[str, None, None]:
        yield from render(self.select(plan))

    def select(self, plan: AnswerPlan) -> Selection:
        """The quotes this answer is made of, in parts (a comparison's sides, a summary's themes): what the extractive
        answer prints, and the evidence an LLM backend rewrites (llm_synth.py)."""
        # The answerability decision has said what may be quoted, and that something may (it declines otherwise).
        sentences = plan.sentences or self.bank.sentences(plan.sources)
        pool = plan.decision.quotable(sentences)
        absence = absence_sentence(plan.decision.unanswered) if plan.decision.unanswered else ""
        if plan.question.mode == "compare" and len(plan.question.sides) >= 2:
            return Selection("compare", absence, self._compare(plan, sentences))
        if plan.question.mode == "summarize":
            return Selection("summarize", absence, self._summarize(plan, pool))
        return Selection("answer", absence, [Part("", self._select(plan, pool, sentences))])

    # -- answer ----------------------------------------------------------------------

    def _select(self, plan: AnswerPlan, pool: list[Sentence], everything: list[Sentence]) -> list[list[Sentence]]:
        """Quote units (a sentence, or a dependent sentence with the one it leans on), chosen for coverage."""
        question = plan.question
        qvec = self.bank.embed([question.text])[0]
        qwords = set(content_words(question.text))
        weight = {w: self.stats.idf(w) if self.stats.n_docs else 1.0 for w in qwords}
        total = sum(weight.values()) or 1.0
        relevance = {s.n: s.relevance or 0.0 for s in plan.sources}
        best_rel = max(relevance.values(), default=0.0)
        by_key = {(s.n, s.index): s for s in everything}
        sims = np.stack([s.vec for s in pool]) @ qvec
        # A list wants every paper on its subject, not mostly the closest one.
        paper_weight = self.config.paper_weight / 4 if question.is_list else self.config.paper_weight
        base = {id(s): float(sim) + paper_weight * (relevance.get(s.n, 0.0) - best_rel)
                + (0.3 if (s.n, s.index) in plan.decision.answering else 0.0)
                + self.config.relevance_weight * (s.relevance or 0.0) for s, sim in zip(pool, sims)}
        single_paper = len({s.n for s in pool}) == 1
        # A question about one thing ("which work picks the images worth labelling …?") is answered from its
        # subject, the paper retrieval ranks first among those kept: it may give every quote, and other papers'
        # sentences must beat its own by subject_penalty to be quoted beside them.
        subject = self._subject(plan, pool)
        if subject is not None:
            for s in pool:
                if s.n != subject:
                    base[id(s)] -= self.config.subject_penalty
        # One paper answering: quote enough of it to cover the question; a list: up to two per paper.
        limit = self.config.max_sentences + (1 if single_paper else 0) + (2 if question.is_list else 0)
        per_paper = limit if single_paper else 2
        covered: set[str] = set()
        chosen: list[list[Sentence]] = []
        used: set[tuple[int, int]] = set()
        count: dict[int, int] = {}
        while len(chosen) < limit:
            best, best_score = None, -np.inf
            for s in pool:
                # The paper closest to the question may give one quote more than the others.
                cap = limit if s.n == subject else per_paper + (
                    1 if relevance.get(s.n, 0.0) >= best_rel and not single_paper else 0)
                if (s.n, s.index) in used or count.get(s.n, 0) >= cap:
                    continue
                unit = self._unit(s, by_key)
                if unit is None:
                    continue
                if len(unit) == 2 and (unit[0].n, unit[0].index) in used:
                    unit = [s]  # the sentence it leans on is quoted already, and the answer keeps abstract order
                gain = sum(weight.get(w, 0.0) for w in (set().union(*(u.words for u in unit)) & qwords) - covered) / total
                redundancy = max((float(s.vec @ u.vec) for c in chosen for u in c), default=0.0)
                if redundancy > 0.92:
                    continue  # a near-copy of a chosen sentence (common across related abstracts)
                score = self.config.mmr_lambda * base[id(s)] + 0.35 * gain - (1 - self.config.mmr_lambda) * redundancy
                if score > best_score:
                    best, best_score = unit, score
            if best is None:
                break
            if len(chosen) >= 3 and base[id(best[-1])] < self.config.min_share * max(base.values()):
                break  # the rest is far less related than the best: a short answer beats padding
            chosen.append(best)
            for u in best:
                used.add((u.n, u.index))
                covered |= u.words & qwords
            count[best[-1].n] = count.get(best[-1].n, 0) + 1
        # Abstract order within a paper reads better than score order; but when the best quote is a full text's
        # passage (the finding asked about, deep in a paper), it opens the answer, and the rest follow in order.
        order = {n: i for i, n in enumerate(dict.fromkeys(u[-1].n for u in chosen))}
        lead = chosen[:1] if chosen and chosen[0][-1].passage >= 0 else []
        return lead + sorted(chosen[len(lead):], key=lambda u: (order[u[-1].n], u[0].index))

    @staticmethod
    def _subject(plan: AnswerPlan, pool: list[Sentence]) -> int | None:
        """The paper a single question is about: for an answer that is no list, the best-ranked source with a
        sentence to quote (sources come in retrieval order); None for lists and several papers asked about."""
        question = plan.question
        if question.is_list or question.mode != "answer":
            return None
        quotable = {s.n for s in pool}
        return next((s.n for s in plan.sources if s.n in quotable), None)

    @staticmethod
    def _unit(s: Sentence, by_key: dict) -> list[Sentence] | None:
        """The sentence as a quotable unit: with the sentence before when it leans on it; None if that fails."""
        if not s.dependent:
            return [s]
        before = by_key.get((s.n, s.index - 1))
        if (before is None or before.index < 0 or before.dependent or before.passage != s.passage or before.instruction
                or len(before.text) + len(s.text) > 600):
            return None
        return [before, s]

    # -- compare ---------------------------------------------------------------------

    def _compare(self, plan: AnswerPlan, sentences: list[Sentence]) -> list[Part]:
        """One part per side (sentences that name it, from the papers that speak for it), then what sets them apart."""
        question = plan.question
        sides = question.sides[:2]
        text = " ".join(s.text for s in sentences)
        by_key = {(s.n, s.index): s for s in sentences}
        keys = {side: side_keys(side, text, self.stats) for side in sides}
        names = {(s.n, s.index): {side for side in sides if any(mentions(s.text, k) for k in keys[side])} for s in sentences}
        qvec = self.bank.embed([question.text])[0]
        used: set[tuple[int, int]] = set()

        def pick(candidates: list[Sentence], target: np.ndarray, order: list[int], limit: int) -> list[list[Sentence]]:
            scored = sorted(candidates, key=lambda s: -(0.6 * float(s.vec @ target) + 0.4 * float(s.vec @ qvec)
                                                         - 0.05 * order.index(s.n)))
            picks: list[list[Sentence]] = []
            for s in scored:
                unit = self._unit(s, by_key)
                if unit is None or any((u.n, u.index) in used for u in unit):
                    continue
                picks.append(unit)
                used.update((u.n, u.index) for u in unit)
                if len(picks) == limit:
                    break
            return sorted(picks, key=lambda u: (order.index(u[0].n), u[0].index))

        parts: list[tuple[str, list[list[Sentence]]]] = []
        for side in sides:
            side_sources = plan.decision.sides.get(side)
            if side_sources is None:  # a plan made from bare nodes: every source may speak for each side
                side_sources = [s.n for s in plan.sources]
            pool = [s for s in plan.decision.quotable(sentences) if s.n in side_sources]
            # A paper whose title names the side speaks for it; else sentences that name this side alone;
            # else any of the side's papers' sentences, by meaning.
            titled = {t.n for t in sentences if t.index < 0 and t.n in side_sources and any(mentions(t.text, k) for k in keys[side])}
            own = [s for s in pool if s.n in titled and not (names[(s.n, s.index)] - {side})]
            alone = [s for s in pool if names[(s.n, s.index)] == {side}]
            parts.append((side, pick(own or alone or pool, self.bank.embed([side])[0], side_sources, self.config.per_side)
                          if pool else []))
        # Sentences that name both sides say how they differ.
        order = [s.n for s in plan.sources]
        both = [s for s in sentences if s.quotable and names[(s.n, s.index)] == set(sides)]
        contrast = pick(both, qvec, order, 2) if all(p for _, p in parts) else []

        out = [Part(side, picks, "" if picks else f"The indexed papers do not cover {side}.") for side, picks in parts]
        return out + ([Part(CONTRAST, contrast)] if contrast else [])

    # -- summarize -------------------------------------------------------------------

    def _summarize(self, plan: AnswerPlan, pool: list[Sentence]) -> list[Part]:
        topic = plan.question.topic if plan.question.text.strip() else ""
        tvec = self.bank.embed([topic])[0] if topic else None
        by_paper: dict[int, list[Sentence]] = {}
        for s in pool:
            by_paper.setdefault(s.n, []).append(s)
        order = [n for n in (plan.decision.keep or [s.n for s in plan.sources]) if n in by_paper][: self.config.summary_papers]
        keys: dict[int, list[Sentence]] = {}
        centroids: dict[int, np.ndarray] = {}
        for n in order:
            sents = [s for s in by_paper[n] if not s.dependent]
            if not sents:
                continue
            vecs = np.stack([s.vec for s in sents])
            centroid = vecs.mean(axis=0)
            centroids[n] = centroid / (np.linalg.norm(centroid) or 1.0)
            score = vecs @ centroids[n] + np.array([0.1 if _CONTRIBUTION.search(s.text) else 0.0 for s in sents])
            if tvec is not None:
                score = score + vecs @ tvec
            best = np.argsort(-score)
            chosen = [sents[best[0]]]
            if len(best) > 1 and score[best[1]] >= 0.85 * score[best[0]]:  # a second key sentence when nearly as central
                chosen.append(sents[best[1]])
            keys[n] = sorted(chosen, key=lambda s: s.index)
        titles = {s.n: s.title for s in plan.sources}
        groups = self._themes([n for n in order if n in keys], centroids)
        return [Part(self._label([titles.get(n, "") for n in group], [[s.text for s in by_paper[n]] for n in group], topic)
                     if len(groups) > 1 else "", [[s] for n in group for s in keys[n]]) for group in groups]

    def _themes(self, order: list[int], centroids: dict[int, np.ndarray]) -> list[list[int]]:
        """Papers grouped by theme: average-linkage merging of the most alike groups, while they are alike enough
        (``theme_similarity``) or there are more than four, keeping two themes for five papers or more; groups in
        rank order of their best paper."""
        groups: list[list[int]] = [[n] for n in order]

        def sim(a: list[int], b: list[int]) -> float:
            return float(np.mean([centroids[x] @ centroids[y] for x in a for y in b]))

        # Five or more papers get at least two themes unless they are near-copies of each other.
        least = 2 if len(order) >= 5 else 1
        while len(groups) > least:
            pairs = [(sim(groups[i], groups[j]), i, j) for i in range(len(groups)) for j in range(i + 1, len(groups))]
            best, i, j = max(pairs)
            if best < self.config.theme_similarity and len(groups) <= 4:
                break
            groups[i] += groups.pop(j)
        rank = {n: k for k, n in enumerate(order)}
        return sorted((sorted(g, key=rank.get) for g in groups), key=lambda g: rank[g[0]])

    def _label(self, titles: list[str], abstracts: list[list[str]], topic: str = "") -> str:
        """A theme's label: the telling words its papers' titles share beyond the topic's own, else the words their
        abstracts share (words a few papers of the library use, not one paper's coinage); never one paper's title."""
        skip = {stem(w) for w in words(topic)} | _GENERIC_TITLE_WORDS
        for texts, min_df in ((titles, 1), ([" ".join(a) for a in abstracts], 4)):
            counts: dict[str, int] = {}
            surface: dict[str, str] = {}
            for text in texts:
                for w in dict.fromkeys(words(text)):
                    s = stem(w)
                    if w in STOPWORDS or s in skip or len(w) < 3 or w.isdigit() or self.stats.df(s) < min_df \
                            or (min_df > 1 and self.stats.share(s) > 0.08):  # common words name nothing
                        continue
                    counts[s] = counts.get(s, 0) + 1
                    surface.setdefault(s, w)
            # Words every paper of the theme uses first, the rarer in the library the better: what sets it apart.
            shared = sorted((s for s in counts if counts[s] >= 2), key=lambda s: (-counts[s], -self.stats.idf(s)))
            if shared:
                return " and ".join(surface[s] for s in shared[:2]).capitalize()
        return "Further work"



CONTRAST = "Side by side"  # the heading of a comparison's closing part: sentences that name both sides


@dataclass
class Part:
    """One part of an answer: a comparison's side (``heading`` is the side), a summary's theme (its label, "" when
    the summary has one theme) or the whole answer (""); ``units`` are its quotes (a sentence, or a dependent
    sentence with the one it leans on); ``missing`` says a side has nothing to quote."""

    heading: str
    units: list[list[Sentence]]
    missing: str = ""

    @property
    def sentences(self) -> list[Sentence]:
        return [s for unit in self.units for s in unit]


@dataclass
class Selection:
    """The quotes an answer is made of: its mode, the absence sentence the decision calls for ("" when nothing is
    missing) and its parts, in order."""

    mode: str  # "answer" | "compare" | "summarize"
    absence: str
    parts: list[Part] = field(default_factory=list)

    @property
    def sentences(self) -> list[Sentence]:
        return [s for part in self.parts for s in part.sentences]


def render(selection: Selection) -> Generator[str, None, None]:
    """The extractive answer's text, in pieces: every quote cited, a comparison one paragraph per side ("On NPO: …"),
    a summary one per theme."""
    prefix = selection.absence + " " if selection.absence else ""
    if selection.mode == "compare":
        if prefix:
            yield prefix.strip()
        for k, part in enumerate(selection.parts):
            if part.heading == CONTRAST:
                yield f"\n\n{CONTRAST}: "
                yield from _emit(part.units)
                continue
            lead = "\n\n" if k or prefix else ""
            if not part.units:
                yield f"{lead}{part.missing}"
                continue
            yield f"{lead}On {part.heading}: "
            yield from _emit(part.units)
    elif selection.mode == "summarize":
        yield prefix
        for k, part in enumerate(selection.parts):
            yield ("\n\n" if k else "") + (f"{part.heading}:\n\n" if part.heading else "")
            yield from _emit(part.units)
    else:
        yield prefix
        for part in selection.parts:
            yield from _emit(part.units)


def _emit(units: list[list[Sentence]]) -> Generator[str, None, None]:
    first = True
    for unit in units:
        for s in unit:
            yield ("" if first else " ") + cite(s.text, s.n, s.page)
            first = False
