"""The verifier's learned model: features of a (claim, source sentences) pair, three logistic regressions (the
sentence aligner, relatedness and agreement) stacked into one support score, and the hard rules on top.

The weights (``verifier_weights.json`` beside this file) are fitted on SciFact-claims train only by
``python -m eval.train_verifier``; inference is numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.answering.claims import (
    _HEADING_BAD,
    _HEADING_GOOD,
    Analysis,
    _entity_key,
)
from assistant.core.text import NEGATIONS, stem

WEIGHTS = Path(__file__).resolve().with_name("verifier_weights.json")

SENTENCE_FEATURES = ("cos", "overlap", "bigrams", "precision", "entities", "position", "last", "first", "length",
                     "results_heading", "background_heading", "cos_gap", "overlap_gap")
# How a claim's cue relates to a source cue: opposite / same direction, the claim says no effect but the source
# reports one (or the reverse), both say no effect, both report an effect.
RELATIONS = ("conflict", "agree", "claim_null", "source_null", "null_agree", "effect_agree")
POLARITY = tuple(f"{scope}_{r}" for scope in ("t", "u") for r in RELATIONS)
PAIR_FEATURES = ("align", "cos", "overlap", "max_cos", "max_overlap", "abstract_overlap", "entity_cover", "entity_swap",
                 "number_cover", "negation_differs", *POLARITY, "claim_direction", "claim_null", "near_verbatim",
                 "verbatim_reversal", "verbatim_entity_swap")
_NEG_STEMS = frozenset(stem(w) for w in NEGATIONS)
SAME_STATEMENT = 0.6  # share of the claim's words (negations aside) in a sentence for both to state the same thing
# A near-verbatim pair: most words of each are in the other (a quote, or a quote with one thing changed).
VERBATIM_CLAIM, VERBATIM_SOURCE = 0.8, 0.6


def _bigrams(stems: Sequence[str]) -> set[tuple[str, str]]:
    return set(pairwise(stems))


def sentence_features(claim: Analysis, sents: Sequence[Analysis], cos: np.ndarray) -> np.ndarray:
    """One row per source sentence: how well it could be the sentence that says ``claim``."""
    n = len(sents)
    cb = _bigrams(claim.stem_list)
    rows = []
    for i, s in enumerate(sents):
        shared = claim.stems & s.stems
        overlap = len(shared) / max(1, len(claim.stems))
        ents = len(claim.entity_keys & s.mentions) / len(claim.entity_keys) if claim.entity_keys else 0.0
        rows.append([
            float(cos[i]), overlap, len(cb & _bigrams(s.stem_list)) / max(1, len(cb)), len(shared) / max(1, len(s.stems)),
            ents, i / max(1, n - 1), float(i == n - 1 and n > 1), float(i == 0), math.log1p(len(s.stem_list)),
            float(bool(_HEADING_GOOD.match(s.text))), float(bool(_HEADING_BAD.match(s.text))), 0.0, overlap,
        ])
    x = np.array(rows, dtype=np.float64).reshape(n, len(SENTENCE_FEATURES))
    if n:
        x[:, 11] = x[:, 0] - x[:, 0].max()
        x[:, 12] = x[:, 1] - x[:, 1].max()
    return x


def _relation(claim_sign: int, source_sign: int) -> str:
    if claim_sign in (1, -1) and source_sign in (1, -1):
        return "agree" if claim_sign == source_sign else "conflict"
    if claim_sign == 0:
        return "null_agree" if source_sign == 0 else "claim_null"
    return "source_null" if source_sign == 0 else "effect_agree"


def polarity(claim: Analysis, sents: Sequence[Analysis]) -> tuple[dict[str, float], list[str]]:
    """How the claim's direction / effect cues relate to the sentences'.

    Targeted (``t_``): each claim cue against the source cues that share the most words around them
    ("reduces proliferation" against "proliferation was increased"). Untargeted (``u_``): against every
    cue and statistic in the sentences.
    """
    f = dict.fromkeys(POLARITY, 0.0)
    problems: list[str] = []
    source_effects = [e for s in sents for e in s.effects]
    stats = [x for s in sents for x in s.stats]
    for ce in claim.effects:
        shared = [len(ce.objects & e.objects) for e in source_effects]
        top = max(shared, default=0)
        for e, k in zip(source_effects, shared):
            if top and k == top:
                rel = _relation(ce.sign, e.sign)
                f["t_" + rel] = 1.0
                if rel == "conflict":
                    problems.append(f"direction differs: {ce.cue} vs {e.cue}")
                elif rel == "claim_null":
                    problems.append(f"negation differs: the sentence says no effect ({ce.cue}), the source reports one ({e.cue})")
                elif rel == "source_null":
                    problems.append(f"the source reports no effect ({e.cue}) where the sentence claims one ({ce.cue})")
        for sign in [e.sign for e in source_effects] + stats:
            f["u_" + _relation(ce.sign, sign)] = 1.0
    return f, list(dict.fromkeys(problems))


def _reverses(claim: Analysis, sentence: Analysis) -> bool:
    """The claim negates or reverses the sentence: negation parity, or a cue the sentence answers with its opposite."""
    if claim.negated != sentence.negated:
        return True
    for ce in claim.effects:
        if stem(ce.cue.lower()) in sentence.stems:
            continue  # the sentence uses the claim's own word: not replaced by an opposite
        if any(_relation(ce.sign, e.sign) in ("conflict", "claim_null", "source_null")
               for e in sentence.effects if ce.objects & e.objects):
            return True
    return False


def pair_features(claim: Analysis, sents: Sequence[Analysis], title: Analysis | None, sx: np.ndarray,
                  align: np.ndarray, top: int = 2) -> tuple[np.ndarray, list[int], list[str]]:
    """Features of (claim, source): the best-aligned sentences, coverage of the whole source, polarity agreement."""
    order = [int(i) for i in np.argsort(-align, kind="stable")]
    best = order[:top]
    whole = set().union(*(s.stems for s in sents)) | (title.stems if title else set())
    numbers = set().union(*(s.numbers for s in sents)) | (title.numbers if title else set())
    ent_keys = set().union(*(s.mentions for s in sents)) | (title.mentions if title else set())
    missing_numbers = [n for n in sorted(claim.numbers) if n not in numbers]
    missing_entities = [e for e in claim.entities if _entity_key(e) not in ent_keys]
    pol, problems = polarity(claim, [sents[i] for i in best]) if best else (dict.fromkeys(POLARITY, 0.0), [])
    top_sent = sents[best[0]] if best else None
    # Negation is compared with a sentence that states the same thing otherwise ("does not collapse" vs "collapses").
    plain = claim.stems - _NEG_STEMS
    same = top_sent is not None and len(plain & top_sent.stems) >= SAME_STATEMENT * max(1, len(plain))
    negation_differs = same and top_sent.negated != claim.negated
    shared = len(plain & top_sent.stems) if top_sent is not None else 0
    verbatim = top_sent is not None and shared >= VERBATIM_CLAIM * max(1, len(plain)) and \
        shared >= VERBATIM_SOURCE * max(1, len(top_sent.stems - _NEG_STEMS))
    # An entity swapped for another: the claim's is nowhere in the source, and the aligned sentence names one the claim does not.
    claim_keys = claim.mentions
    others = [e for e in (top_sent.entities if top_sent else ()) if _entity_key(e) not in claim_keys]
    swapped = bool(missing_entities and others)
    claim_signs = {e.sign for e in claim.effects}
    f = {
        "align": float(align[best[0]]) if best else -10.0,
        "cos": float(sx[best[0], 0]) if best else 0.0,
        "overlap": float(sx[best[0], 1]) if best else 0.0,
        "max_cos": float(sx[:, 0].max()) if best else 0.0,
        "max_overlap": float(sx[:, 1].max()) if best else 0.0,
        "abstract_overlap": len(claim.stems & whole) / max(1, len(claim.stems)),
        "entity_cover": 1.0 - len(missing_entities) / len(claim.entities) if claim.entities else 1.0,
        "entity_swap": float(swapped),
        "number_cover": 1.0 - len(missing_numbers) / len(claim.numbers) if claim.numbers else 1.0,
        "negation_differs": float(negation_differs),
        **pol,
        "claim_direction": float(bool(claim_signs & {1, -1})),
        "claim_null": float(0 in claim_signs),
        "near_verbatim": float(verbatim),
        "verbatim_reversal": float(verbatim and _reverses(claim, top_sent)),
        "verbatim_entity_swap": float(verbatim and swapped),
    }
    problems = [f"number {n} not in the source" for n in missing_numbers] + \
               [f"entity {e} not in the source" + (f" (it names {', '.join(others[:2])})" if swapped else "")
                for e in missing_entities] + problems
    if negation_differs and not any(p.startswith("negation") for p in problems):
        problems.append("negation differs from the aligned source sentence")
    return np.array([f[k] for k in PAIR_FEATURES], dtype=np.float64), best, problems


# --- the learned model --------------------------------------------------------------------------------------------------

@dataclass
class Linear:
    """A standardised logistic regression: p = sigmoid(((x - mean) / scale) · coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        return ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept

    @classmethod
    def from_dict(cls, d: dict) -> Linear:
        return cls(tuple(d["features"]), np.array(d["mean"]), np.array(d["scale"]), np.array(d["coef"]), float(d["intercept"]))

    def to_dict(self) -> dict:
        r = lambda a: [round(float(v), 6) for v in a]
        return {"features": list(self.features), "mean": r(self.mean), "scale": r(self.scale), "coef": r(self.coef),
                "intercept": round(float(self.intercept), 6)}


@dataclass
class VerifierModel:
    """Three linear parts: sentence alignment, relatedness (SUPPORT or CONTRADICT vs NEI), agreement (SUPPORT vs CONTRADICT).

    support = sigmoid(a · log p(related) + b · log p(agrees) + c): a weighted product of the two probabilities,
    calibrated so that the operating threshold is 0.5; then the hard rules named in ``rules`` (see RULES).
    """

    sentence: Linear
    related: Linear
    agrees: Linear
    combine: tuple[float, float, float]
    threshold: float
    rules: tuple[str, ...] = ("numbers",)  # which hard rules apply (see RULES)
    info: dict = field(default_factory=dict)

    def support(self, x: np.ndarray) -> np.ndarray:
        a, b, c = self.combine
        z = a * log_sigmoid(self.related.logit(x)) + b * log_sigmoid(self.agrees.logit(x)) + c
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def load(cls, path: str | Path = WEIGHTS) -> VerifierModel:
        d = json.loads(Path(path).read_text())
        return cls(Linear.from_dict(d["sentence"]), Linear.from_dict(d["related"]), Linear.from_dict(d["agrees"]),
                   tuple(d["combine"]), float(d["threshold"]), tuple(d.get("rules", ("numbers",))), d.get("info", {}))

    def to_dict(self) -> dict:
        return {"sentence": self.sentence.to_dict(), "related": self.related.to_dict(), "agrees": self.agrees.to_dict(),
                "combine": [round(float(v), 6) for v in self.combine], "threshold": round(float(self.threshold), 6),
                "rules": list(self.rules), "info": self.info}


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """log(sigmoid(z)) without overflow."""
    return -np.logaddexp(0.0, -z)


@lru_cache(maxsize=1)
def shipped_model() -> VerifierModel:
    return VerifierModel.load(WEIGHTS)


# Hard rules: what the source does not say cannot be supported by it, whatever the learned score.
# numbers: a number of the claim is not in the source. verbatim_reversal / verbatim_entities: the claim repeats
# the aligned sentence nearly word for word but negates it, reverses a direction word, or swaps a named entity
# (GPT-4 for Llama). The shipped model uses these three; "entities" (a swap anywhere) and "negation" (parity
# against a sentence sharing 60% of the words) were measured and cost too much on SciFact (eval/train_verifier.py).
MISSING_CAP = 0.5  # support is at most this share of the threshold
RULES = {"numbers": lambda f: f["number_cover"] < 1.0, "entities": lambda f: f["entity_swap"] > 0,
         "negation": lambda f: f["negation_differs"] > 0, "verbatim_reversal": lambda f: f["verbatim_reversal"] > 0,
         "verbatim_entities": lambda f: f["verbatim_entity_swap"] > 0}


def apply_rules(support: float, features: np.ndarray, threshold: float, rules: Sequence[str] = ("numbers",)) -> float:
    f = dict(zip(PAIR_FEATURES, features))
    if any(RULES[r](f) for r in rules):
        return min(support, MISSING_CAP * threshold)
    return support


def score_analysed(model: VerifierModel, claim: Analysis, sents: Sequence[Analysis], title: Analysis | None,
                   sx: np.ndarray) -> tuple[float, np.ndarray, list[int], list[str]]:
    """The model's support of ``claim`` by one source (before rules), its features, aligned indexes, problems."""
    align = model.sentence.logit(sx)
    x, _, problems = pair_features(claim, sents, title, sx, align)
    return float(model.support(x)[0]), x, [int(i) for i in np.argsort(-align, kind="stable")[:3]], problems


# --- the verifier -----------------------------------------------------------------------------------------------------
