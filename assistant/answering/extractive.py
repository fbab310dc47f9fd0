"""The extractive backend: answers with no language model, by quoting the source sentences that best answer.

Every sentence it writes is a sentence of a cited abstract followed by that
abstract's number, so it cannot state anything the sources do not say; the only
words of its own are short connectors ("On LoRA:"). It is the offline default:
it works on a fresh machine with no key and no server.

How it picks: each abstract is split into sentences; a sentence scores its
cosine similarity to the question (embeddings injected as ``embed_fn``) plus a
small bonus for sharing the question's content words; sentences are then
chosen by maximal marginal relevance (MMR) with a cap per paper, so the answer
covers several papers instead of repeating one. When even the best sentence is
barely related, it declines with DECLINE_PHRASE.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from assistant.answering.backend_base import AnswerTask, BackendError, Source
from assistant.core.text import content_words, overlap, split_sentences, strip_citations
from assistant.core.types import DECLINE_PHRASE

# "compare A and B", "A vs. B", "A versus B": used when a compare task names no sides.
_SIDES = re.compile(r"\s+(?:vs\.?|versus|and|or|with|to)\s+|\s*,\s*", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:how\s+does\s+|how\s+do\s+|what\s+is\s+the\s+difference\s+between\s+)?(?:compare|contrast)?\s*", re.IGNORECASE)


# Sentences that lean on the one before ("It ...", "This has led ...") read badly out of context.
_ANAPHORA = re.compile(r"^(?:it|its|this|these|they|their|those|such|he|she|then|thus|here)\b", re.IGNORECASE)
# Sentences stating the paper's contribution are the ones worth quoting in a summary.
_CONTRIBUTION = re.compile(r"\b(?:we|this paper|this work)\s+(?:propose|introduce|present|show|find|demonstrate|develop)", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.|github\.com", re.IGNORECASE)


@dataclass
class _Sentence:
    n: int  # source number
    text: str
    vec: np.ndarray
    prior: float = 0.0  # small adjustment for how well the sentence stands alone


def _prior(text: str) -> float:
    """Penalties for sentences that quote badly: links, leaning on context, run-ons."""
    score = 0.0
    if _URL.search(text):
        score -= 0.2
    if _ANAPHORA.match(text):
        score -= 0.05
    if len(text) > 350:
        score -= 0.05 if len(text) <= 500 else 0.1
    return score


def _cite(sentence: str, n: int) -> str:
    """Put ``[n]`` before the sentence's final punctuation: "X improves Y [3]."."""
    s = sentence.rstrip()
    if s and s[-1] in ".!?":
        return f"{s[:-1].rstrip()} [{n}]{s[-1]}"
    return f"{s} [{n}]."


def guess_sides(question: str) -> list[str]:
    """Best-effort sides of a comparison question ("compare NPO and gradient ascent" → two sides)."""
    body = _LEAD.sub("", question.strip().rstrip("?.! "))
    body = re.sub(r"\s+(?:compare|differ)\b.*$", "", body, flags=re.IGNORECASE)
    parts = [p.strip(" .?") for p in _SIDES.split(body) if p and p.strip(" .?")]
    return parts if len(parts) >= 2 else []


class ExtractiveBackend:
    """Composes cited answers from source sentences; ``embed_fn`` returns L2-normalised vectors."""

    name = "extractive"
    model = "sentence-selection"
    context_window = sys.maxsize  # no model, so no window: every source is read in full
    can_stream = True
    can_complete = False

    def __init__(
        self,
        embed_fn: Callable[[list[str]], np.ndarray],
        *,
        min_similarity: float = 0.25,
        max_sentences: int = 4,
        per_paper: int = 2,
        per_side: int = 2,
        lexical_weight: float = 0.15,
        mmr_lambda: float = 0.7,
        relative_floor: float = 0.5,
        theme_similarity: float = 0.55,
    ):
        self.embed_fn = embed_fn
        self.min_similarity = min_similarity
        self.max_sentences = max_sentences
        self.per_paper = per_paper
        self.per_side = per_side
        self.lexical_weight = lexical_weight
        self.mmr_lambda = mmr_lambda
        self.relative_floor = relative_floor
        self.theme_similarity = theme_similarity
        self._cache: dict[str, np.ndarray] = {}

    # -- the Backend interface -------------------------------------------------

    def complete(self, messages: list[dict]) -> str:
        # No language model to call. Callers check ``can_complete`` and fall back
        # (condense: use the follow-up as it is; judge: lexical metrics only).
        raise BackendError("the extractive backend has no language model; choose the openai or openai-compatible backend for this")

    def stream(self, task: AnswerTask) -> Iterator[str]:
        sentences = self._sentences(task.sources)
        if not sentences or (task.mode != "summarize" and not task.question.strip()):
            yield DECLINE_PHRASE
            return
        if task.mode == "compare":
            sides = [s for s in task.sides if s.strip()] or guess_sides(task.question)
            if len(sides) >= 2:
                yield from self._compare(sides, sentences, task.question)
                return
        if task.mode == "summarize":
            yield from self._summarize(task.question, task.sources, sentences)
            return
        yield from self._answer(task.question, sentences)

    # -- modes -------------------------------------------------------------------

    def _answer(self, question: str, sentences: list[_Sentence]) -> Iterator[str]:
        sims, rel = self._relevance(question, sentences)
        if sims.max() < self.min_similarity:
            yield DECLINE_PHRASE
            return
        picked = self._mmr(sentences, rel, self.max_sentences, self.per_paper, used=set())
        yield from self._emit([sentences[i] for i in picked])

    def _compare(self, sides: list[str], sentences: list[_Sentence], question: str = "") -> Iterator[str]:
        parts: list[list[_Sentence]] = []
        used: set[int] = set()
        if question.strip():
            # Only quote papers that bear on the comparison as a whole: a paper on
            # gradient *descent* should not speak for "gradient ascent".
            q_sims, _ = self._relevance(question, sentences)
            best: dict[int, float] = {}
            for s, sim in zip(sentences, q_sims):
                best[s.n] = max(best.get(s.n, -1.0), float(sim))
            # Relative as well as absolute: retrieval pads the list with papers that
            # merely share a word ("gradient"), far below the best paper.
            gate = max(self.min_similarity, 0.75 * max(best.values()))
            off_topic = {i for i, s in enumerate(sentences) if best[s.n] < gate}
            used |= off_topic
        for side in sides:
            # The side's name matters more than in a free question, so its words weigh double.
            sims, rel = self._relevance(side, sentences, lexical_weight=2 * self.lexical_weight, context=question)
            if sims.max() < self.min_similarity:
                parts.append([])
                continue
            picked = self._mmr(sentences, rel, self.per_side, self.per_paper, used=used)
            used.update(picked)
            parts.append([sentences[i] for i in picked])
        if not any(parts):
            yield DECLINE_PHRASE
            return
        for k, (side, chosen) in enumerate(zip(sides, parts)):
            prefix = "\n\n" if k else ""
            if not chosen:
                yield f"{prefix}On {side}: none of the sources addresses it."
                continue
            yield f"{prefix}On {side}: "
            yield from self._emit(chosen)

    def _summarize(self, topic: str, sources: list[Source], sentences: list[_Sentence]) -> Iterator[str]:
        by_paper: dict[int, list[int]] = {}
        for i, s in enumerate(sentences):
            by_paper.setdefault(s.n, []).append(i)
        if topic.strip():
            sims, rel = self._relevance(topic, sentences)
            if sims.max() < self.min_similarity:
                yield DECLINE_PHRASE
                return
        else:
            sims = rel = np.zeros(len(sentences))
        keys: dict[int, list[int]] = {}
        centroids: dict[int, np.ndarray] = {}
        for n, idx in by_paper.items():
            vecs = np.stack([sentences[i].vec for i in idx])
            centroid = vecs.mean(axis=0)
            centroids[n] = centroid / (np.linalg.norm(centroid) or 1.0)
            if topic.strip() and sims[idx].max() < self.min_similarity:
                continue  # retrieved but off-topic: leave it out rather than pad the summary
            # Key sentence: relevant to the topic when there is one, else the most central one.
            score = vecs @ centroids[n] + np.array([sentences[i].prior for i in idx])
            score += np.array([0.1 if _CONTRIBUTION.search(sentences[i].text) else 0.0 for i in idx])
            if topic.strip():
                score = score + rel[idx]
            order = np.argsort(-score)
            chosen = [idx[order[0]]]
            # Two sentences per paper only when there are few papers, so summaries stay short.
            if len(by_paper) <= 3 and len(order) > 1 and score[order[1]] >= 0.85 * score[order[0]]:
                chosen.append(idx[order[1]])
            keys[n] = sorted(chosen)  # abstract order reads better than score order
        groups = self._themes([s.n for s in sources if s.n in keys], centroids)
        for k, group in enumerate(groups):
            if k:
                yield "\n\n"
            yield from self._emit([sentences[i] for n in group for i in keys[n]])

    # -- helpers -------------------------------------------------------------------

    def _sentences(self, sources: list[Source]) -> list[_Sentence]:
        texts: list[tuple[int, str]] = []
        for src in sources:
            for sent in split_sentences(src.abstract):
                # Numeric brackets inside an abstract would read as citations; drop them.
                clean = re.sub(r"\s+", " ", strip_citations(sent)).strip()
                if len(content_words(clean)) >= 3:  # skip fragments like "Code: https://..."
                    texts.append((src.n, clean))
        if not texts:
            return []
        vecs = self._embed([t for _, t in texts])
        return [_Sentence(n, t, v, _prior(t)) for (n, t), v in zip(texts, vecs)]

    def _embed(self, texts: list[str]) -> np.ndarray:
        # Follow-up questions in a chat reuse most sources: embed each sentence once.
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > 20_000:
                self._cache.clear()
            for t, v in zip(todo, np.asarray(self.embed_fn(todo), dtype=np.float32)):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in texts])

    def _relevance(
        self, query: str, sentences: list[_Sentence], lexical_weight: float | None = None, context: str = ""
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities to ``query``, and the ranking score: those plus lexical bonus and priors.

        ``context`` (the whole question, for one side of a comparison) is blended
        in, so "gradient ascent" does not pick sentences about gradient descent.
        """
        q = np.asarray(self.embed_fn([query]), dtype=np.float32)[0]
        matrix = np.stack([s.vec for s in sentences])
        sims = matrix @ q
        rank = sims.copy()
        if context:
            c = np.asarray(self.embed_fn([context]), dtype=np.float32)[0]
            rank = 0.7 * sims + 0.3 * (matrix @ c)
        words = set(content_words(query))
        weight = self.lexical_weight if lexical_weight is None else lexical_weight
        bonus = np.array([overlap(words, s.text) for s in sentences])
        # A sentence from a paper that is about the question is safer to quote:
        # add a little of the paper's best sentence similarity.
        best_in_paper: dict[int, float] = {}
        for s, sim in zip(sentences, sims):
            best_in_paper[s.n] = max(best_in_paper.get(s.n, -1.0), float(sim))
        paper = np.array([best_in_paper[s.n] for s in sentences])
        priors = np.array([s.prior for s in sentences])
        return sims, rank + weight * bonus + 0.1 * paper + priors

    def _mmr(self, sentences: list[_Sentence], rel: np.ndarray, k: int, per_paper: int, used: set[int]) -> list[int]:
        """Up to ``k`` sentence indexes by maximal marginal relevance, at most ``per_paper`` per source."""
        floor = max(self.min_similarity, self.relative_floor * float(rel.max()))
        picked: list[int] = []
        count: dict[int, int] = {}
        while len(picked) < k:
            best, best_score = -1, -np.inf
            for i, s in enumerate(sentences):
                if i in used or i in picked or rel[i] < floor or count.get(s.n, 0) >= per_paper:
                    continue
                redundancy = max((float(s.vec @ sentences[j].vec) for j in picked), default=0.0)
                if redundancy > 0.92:
                    continue  # a near-copy of a chosen sentence (common across related abstracts)
                score = self.mmr_lambda * rel[i] - (1 - self.mmr_lambda) * redundancy
                if score > best_score:
                    best, best_score = i, score
            if best < 0:
                break
            picked.append(best)
            count[sentences[best].n] = count.get(sentences[best].n, 0) + 1
        return picked

    def _themes(self, order: list[int], centroids: dict[int, np.ndarray]) -> list[list[int]]:
        """Greedy grouping of papers (in rank order) whose abstracts are similar."""
        groups: list[list[int]] = []
        for n in order:
            sims = [float(centroids[n] @ centroids[g[0]]) for g in groups]
            if sims and max(sims) >= self.theme_similarity:
                groups[int(np.argmax(sims))].append(n)
            else:
                groups.append([n])
        return groups

    @staticmethod
    def _emit(chosen: list[_Sentence]) -> Iterator[str]:
        for k, s in enumerate(chosen):
            yield ("" if k == 0 else " ") + _cite(s.text, s.n)
