"""Relevance: does this sentence bear on the question? A learned model of (question, sentence), not nearness alone.

Cosine similarity says a sentence is *about* the same things as the question; it cannot tell the sentence
that answers from its neighbours in the same paragraph, and a full text's hundreds of sentences always hold
one that shares a word with any question ("A negative score indicates a destabilization …" for "What is
negative preference optimization?"). The model reads signals of the pair:

* ``cos`` — the MiniLM cosine of question and sentence;
* ``idf_recall`` / ``rare_recall`` — the share of the question's word weight (IDF in this library; squared
  for ``rare_recall``, so the question's rarest words dominate) that the sentence carries;
* ``max_idf_hit`` — the rarest question word the sentence carries, against the rarest the question has;
* ``names`` — the share of the question's names (tokens with digits or inner capitals: COSA-1, MSH5, Pbs2) in it;
* ``numbers`` — the share of the question's numbers in it; ``has_number``;
* ``bigrams`` — the share of the question's word pairs in it; ``precision`` — the share of its words in the
  question; ``length`` — log of its word count (up to 40); ``cos_x_recall`` — cosine times idf_recall.

Weights (``relevance_weights.json`` beside this file): a logistic regression fitted by ``python -m
eval.train_relevance`` on SciFact-claims train only — a claim's rationale sentences against the other
sentences of the abstract it cites (the hard case: same paper, same topic) and sentences of other abstracts.
Inference is numpy only. ``score`` gives each sentence's probability of bearing on the question; answering
quotes a full text's passage sentence only from ``min_sentence_relevance`` (Settings).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from assistant.core.text import content_words

WEIGHTS = Path(__file__).resolve().with_name("relevance_weights.json")
FEATURES = ("cos", "idf_recall", "rare_recall", "max_idf_hit", "names", "numbers", "has_number", "bigrams",
            "precision", "length", "cos_x_recall")
_NAME = re.compile(r"\b(?=[\w+-]*(?:\d|[a-z][A-Z]|[A-Z]{2}))[A-Za-z][\w+-]*[A-Za-z0-9+]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?")
_KEY = re.compile(r"[a-z0-9]+")


def _key(text: str) -> str:
    return "".join(_KEY.findall(text.lower()))


@dataclass
class QuestionTerms:
    """What the model reads of a question once: its stemmed words with their weights, names, numbers, bigrams."""

    words: dict[str, float]  # stemmed content word -> IDF weight
    names: frozenset[str]
    numbers: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    max_idf: float

    @classmethod
    def of(cls, question: str, idf: Callable[[str], float]) -> "QuestionTerms":
        stems = content_words(question)
        weights = {w: max(float(idf(w)), 0.0) for w in dict.fromkeys(stems)}
        names = frozenset(k for m in _NAME.finditer(question) if len(k := _key(m.group(0))) >= 2)
        numbers = frozenset(m.group(0).replace(",", "") for m in _NUMBER.finditer(question))
        return cls(weights, names, numbers, frozenset(zip(stems, stems[1:])), max(weights.values(), default=0.0))


def pair_features(terms: QuestionTerms, texts: Sequence[str], cos: np.ndarray,
                  stems: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """One row of ``FEATURES`` per sentence (``stems``: each sentence's content words, when already known)."""
    total = sum(terms.words.values()) or 1.0
    total_sq = sum(v * v for v in terms.words.values()) or 1.0
    rows = []
    for i, text in enumerate(texts):
        own = list(stems[i]) if stems is not None else content_words(text)
        present = set(own)
        hit = [w for w in terms.words if w in present]
        recall = sum(terms.words[w] for w in hit) / total
        key = _key(text)
        numbers = {m.group(0).replace(",", "") for m in _NUMBER.finditer(text)}
        rows.append([
            float(cos[i]),
            recall,
            sum(terms.words[w] ** 2 for w in hit) / total_sq,
            max((terms.words[w] for w in hit), default=0.0) / terms.max_idf if terms.max_idf else 0.0,
            sum(1 for n in terms.names if n in key) / len(terms.names) if terms.names else 0.0,
            len(terms.numbers & numbers) / len(terms.numbers) if terms.numbers else 0.0,
            float(bool(numbers)),
            len(terms.bigrams & set(zip(own, own[1:]))) / len(terms.bigrams) if terms.bigrams else 0.0,
            len(present & set(terms.words)) / len(present) if present else 0.0,
            math.log1p(min(len(own), 40)),  # a run-on block (an affiliation list, a table) is no longer a sentence
            float(cos[i]) * recall,
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(texts), len(FEATURES))


@dataclass(frozen=True)
class RelevanceModel:
    """A standardised logistic regression over ``FEATURES``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def score(self, question: str, qvec: np.ndarray, texts: Sequence[str], vecs: np.ndarray,
              idf: Callable[[str], float], stems: Sequence[Sequence[str]] | None = None) -> np.ndarray:
        """Each sentence's probability of bearing on the question."""
        if not len(texts):
            return np.zeros(0)
        cos = np.asarray(vecs, dtype=np.float32) @ np.asarray(qvec, dtype=np.float32)
        return self.probability(pair_features(QuestionTerms.of(question, idf), texts, cos, stems))

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> "RelevanceModel":
        if tuple(d["features"]) != FEATURES:
            raise ValueError(f"relevance weights are for features {d['features']}, not {list(FEATURES)}")
        return cls(np.asarray(d["mean"]), np.asarray(d["scale"]), np.asarray(d["coef"]), float(d["intercept"]))


@lru_cache(maxsize=1)
def load_model(path: str = str(WEIGHTS)) -> RelevanceModel:
    return RelevanceModel.from_dict(json.loads(Path(path).read_text())["model"])


def annotate(sentences: Sequence, question: str, qvec: np.ndarray, idf: Callable[[str], float],
             model: RelevanceModel | None = None) -> None:
    """Set each evidence sentence's ``relevance`` (``evidence.Sentence``: text, vec and stemmed words)."""
    if not sentences or not question.strip():
        return
    model = model or load_model()
    scores = model.score(question, qvec, [s.text for s in sentences], np.stack([s.vec for s in sentences]), idf)
    for sentence, p in zip(sentences, scores):
        sentence.relevance = float(p)
