"""Claim-level verification: align each answer sentence to the source sentences it cites and score the support.

One ``Verifier`` checks every backend's output. For each answer sentence it
ranks the sentences of the sources the sentence cites (a small learned model
over embedding cosine, stemmed overlap and where the sentence sits in its
abstract), then scores the pair with two learned heads: does the source speak
to the claim at all (relatedness), and does it agree with it (direction words,
negation, null results, statistics read from ratios and p-values). A number of the
claim must occur in the cited source, and a near-verbatim quote that negates,
reverses or swaps a named entity (GPT-4, TOFU, LoRA) is never supported. Each
problem found is reported in words.

The weights are fitted only on ``../shared/bench/scifact-claims/train.jsonl``
by ``python -m eval.train_verifier`` (grouped cross-validation figures are kept
in the artefact next to this file). They assume the cosine scale of the local
all-MiniLM-L6-v2 embeddings; pass that model's ``embed`` as ``embed_fn``.
Inference is numpy only.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.answering.citations import (
    answer_sentences,
    parse_citations,
    remove_unknown,
)
from assistant.core.text import (
    CITATION,
    NEGATIONS,
    STOPWORDS,
    content_words,
    split_sentences,
    stem,
    strip_citations,
    words,
)
from assistant.core.types import DECLINE_PHRASE, Source

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().with_name("verifier_weights.json")
# A sentence saying what the sources lack is not a claim about them.
ABSENCE_PREFIX = "The indexed papers do not"
CACHE_SIZE = 20_000  # source sentences whose vectors and analyses are kept

# Direction families, as Snowball stems. UP: the quantity goes up or the method does better;
# DOWN: it goes down, is blocked or does worse ("worsens accuracy" reverses "improves accuracy").
UP = frozenset("""increas rais rise rose risen elev higher more greater enhanc improv promot stimul induc activ upregul up-regul
    boost augment acceler exacerb outperform better gain strengthen amplifi posit expand grow grew enlarg
    excess accumul faster larger longer stronger superior benefit exceed surpass beat encourag enabl drive
    facilit trigger aggrav extend prolong favour favor""".split())
DOWN = frozenset("""decreas reduc reduct lower less fewer declin diminish impair inhibit suppress attenu downregul down-regul
    underperform harm drop fell fall loss lose negat shorten deplet slow slower weaken prevent protect block
    abolish abrog delay rescu allevi amelior smaller shorter weaker inferior wors worsen deactiv inactiv disrupt
    imped degrad hurt fallen discourag hinder limit restrict counteract revers restor""".split())
# An effect without a direction ("is associated with", "plays a role in").
EXIST = frozenset("""associ correl link relat predict contribut requir role affect regul mediat involv depend determin influenc
    caus essenti necessari signific critic key effect""".split())
# Words that state no effect.
NULL = frozenset("""ineffect unrel independ unchang unaffect similar compar nonsignific insignific dispens neither nor""".split())
# Words whose stem looks like a cue but that rarely state an effect ("compared with", "HIV-positive", "gene promoters").
_NOT_CUES = frozenset("""active activity activities compared compare comparing comparison comparisons relative relatively positive
    negative determine determined determining determination promoter promoters similarly independently""".split())
_DETERMINERS = frozenset("""the a an its their this these that those""".split())
# Negating words beyond the shared NEGATIONS: negative adjectives ("incapable of", "unable to").
_NEGATING = NEGATIONS | frozenset("unable incapable impossible inaccurate inadequate insufficient unlikely".split())
_NEG = _NEGATING | {"little"}
_CUES = UP | DOWN | EXIST | NULL
OBJECTS_BEFORE, OBJECTS_AFTER = 1, 5  # words around a cue that say what it applies to

# Ratios with their interval (OR 0.69, 95% CI 0.64-0.74) and p-values are read as effect or null.
_RATIO = re.compile(r"\b(?:a?OR|RR|a?HR|IRR|odds ratios?|relative risks?|hazard ratios?|risk ratios?)\b.{0,200}?"
                    r"(?<![\d.])(\d*\.\d+)(?![\d.]*\s*(?:%|[a-zA-Zµ]))"
                    r"(?:[^0-9]{1,40}?(?:95\s*%[^0-9]{0,30}?)?(\d*\.\d+)\s*(?:-|–|to|,)\s*(\d*\.\d+))?", re.IGNORECASE)
_PVALUE = re.compile(r"\bp\s*(=|<|>|≤|≥)\s*(0?\.\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:[.,]\d+)*)(\s*%)?")
# Named things: mixed case or digits inside (GPT-4, LoRA, H3K9me3, T5) or an acronym (TOFU, NPO).
_ENTITY = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*)")
_HEADING_GOOD = re.compile(r"^(?:CONCLUSIONS?|RESULTS?|FINDINGS|INTERPRETATION|MAIN RESULTS)\b")
_HEADING_BAD = re.compile(r"^(?:BACKGROUND|OBJECTIVES?|METHODS?|DESIGN|SETTING|CONTEXT|PURPOSE|AIMS?|INTRODUCTION)\b")


# --- what a text says ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Effect:
    sign: int  # 1 up, -1 down, 0 no effect, 2 an effect without direction
    cue: str  # the word that carries it, as written
    objects: frozenset[str]  # stems of the content words it applies to


@dataclass(frozen=True)
class Analysis:
    """What the checks need from one text, computed once per text."""

    text: str
    stems: frozenset[str]
    stem_list: tuple[str, ...]
    effects: tuple[Effect, ...]
    stats: tuple[int, ...]  # signs read from ratios and p-values
    negated: bool
    numbers: frozenset[str]
    entities: tuple[str, ...]  # as written, lower-cased keys in entity_keys
    entity_keys: frozenset[str]
    mentions: frozenset[str]  # entity keys and every word's key: what the text mentions, in any case

def _number_key(raw: str) -> str:
    plain = raw.replace(",", "")
    try:
        value = float(plain)
    except ValueError:
        return plain
    return f"{value:g}"


def _entity_key(token: str) -> str:
    key = re.sub(r"[-.]", "", token)
    if re.fullmatch(r"[A-Z0-9]*[A-Z][A-Z0-9]*s", key):
        key = key[:-1]  # a plural acronym ("LLMs", "ESCs") names the same thing
    return key.lower()


def _entities(text: str) -> list[str]:
    """Named things in ``text``: mixed case or digits inside (GPT-4, LoRA, T5) or acronyms (TOFU).

    An acronym defined in place ("chronic kidney disease (CKD)") is not one: its words are checked instead.
    In a hyphenated compound only the named part counts ("HIV-positive" → HIV).
    """
    out = []
    for m in _ENTITY.finditer(text):
        token = m.group(1)
        if text[max(0, m.start() - 1) : m.start()] == "(" and text[m.end() : m.end() + 1] == ")" and m.start() > 1:
            continue
        parts = token.split("-")
        if len(parts) > 1 and any(p.islower() and len(p) > 2 for p in parts):
            candidates = [p for p in parts if not (p.islower() or p.isdigit())]
        else:
            candidates = [token]
        for tok in candidates:
            inner_upper = any(c.isupper() for c in tok[1:])
            letters_digits = any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)
            if (inner_upper or letters_digits) and len(tok) > 1:
                out.append(tok)
    return list(dict.fromkeys(out))


def effects(text: str) -> list[Effect]:
    """Direction, effect and no-effect cues in ``text``, each with the content words after it."""
    toks = words(text)
    # A compound is read by its head: "UCP1-independent", "HR-defective", "NPO-based".
    stems = [stem(t) if "-" not in t or stem(t) in _CUES else stem(t.rsplit("-", 1)[1]) for t in toks]
    out = []
    for i, (tok, s) in enumerate(zip(toks, stems)):
        if s not in _CUES or tok in _NOT_CUES:
            continue
        if i >= 2 and toks[i - 1] in _DETERMINERS and stems[i - 2] in UP | DOWN:
            continue  # the object of a cue, not one: "increases the loss"
        sign = 1 if s in UP else -1 if s in DOWN else 2 if s in EXIST else 0
        if sign != 0 and any(w in _NEG for w in toks[max(0, i - 4) : i]):
            sign = 0  # "did not improve", "no significant reduction"
        window = [*range(max(0, i - OBJECTS_BEFORE), i), *range(i + 1, min(len(toks), i + 1 + OBJECTS_AFTER))]
        objects = frozenset(stems[j] for j in window
                            if toks[j] not in STOPWORDS and toks[j] not in _NEG and stems[j] not in _CUES and not toks[j].isdigit())
        out.append(Effect(sign, tok, objects))
    return out


def stat_signs(text: str) -> list[int]:
    """Effects read from statistics: a ratio whose interval excludes 1 (+1 above, -1 below), or a null (0)."""
    signs = []
    for m in _RATIO.finditer(text):
        if m.group(2):
            lo, hi = float(m.group(2)), float(m.group(3))
            signs.append(0 if lo <= 1 <= hi else 1 if lo > 1 else -1)
        elif float(m.group(1)) != 1:
            signs.append(1 if float(m.group(1)) > 1 else -1)
    for m in _PVALUE.finditer(text):
        op, value = m.group(1), float(m.group(2))
        significant = value <= 0.05 if op in "<≤=" else False
        signs.append(2 if significant else 0)
    return signs


def analyse(text: str) -> Analysis:
    toks = words(text)
    stem_list = tuple(content_words(text))
    ents = _entities(strip_citations(text))
    nums = {_number_key(m.group(1)) for m in _NUMBER.finditer(strip_citations(text))}
    return Analysis(
        text=text, stems=frozenset(stem_list), stem_list=stem_list, effects=tuple(effects(text)),
        stats=tuple(stat_signs(text)), negated=sum(t in _NEGATING for t in toks) % 2 == 1, numbers=frozenset(nums),
        entities=tuple(ents), entity_keys=frozenset(_entity_key(e) for e in ents),
        mentions=frozenset(_entity_key(e) for e in ents) | frozenset(_entity_key(w) for w in toks),
    )


# --- features --------------------------------------------------------------------------------------------------------

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
    sentences: list[dict] = field(default_factory=list)  # {text, cited, support, supported, evidence, problems}

    def to_dict(self) -> dict:
        return {"text": self.text, "citations": self.citations, "dropped": self.dropped,
                "unsupported_sentences": self.unsupported_sentences, "sentences": self.sentences}


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


class SentenceCache:
    """Analyses and vectors of source sentences by text, bounded (least recently used go first) and thread-safe.

    The chat page answers several questions at once; they share one cache, and new
    texts are embedded outside the lock (the embedder serialises its own calls).
    """

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray], size: int = CACHE_SIZE):
        self.embed_fn = embed_fn
        self.size = size
        self._items: OrderedDict[str, tuple[Analysis, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, texts: Sequence[str]) -> list[tuple[Analysis, np.ndarray]]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for t in found:
                self._items.move_to_end(t)
        new = [t for t in dict.fromkeys(texts) if t not in found]
        if new:
            vectors = np.asarray(self.embed_fn(new), dtype=np.float32)
            computed = {t: (analyse(t), v) for t, v in zip(new, vectors)}
            with self._lock:
                self._items.update(computed)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
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

    def verify(self, answer_text: str, sources: Sequence[Source]) -> Verification:
        """Drop citation numbers with no source, align and score every claim sentence, build the reference list."""
        by_n = {s.n: s for s in sources}
        cleaned, dropped = remove_unknown(answer_text, set(by_n))
        split = {n: split_sentences(s.abstract) for n, s in by_n.items()}
        checks: list[dict] = []
        parts: list[tuple[int, str, list[int]]] = []  # (sentence index, claim text, cited numbers)
        for sentence in answer_sentences(cleaned):
            cited = parse_citations(sentence)
            check = {"text": sentence, "cited": cited, "support": None, "supported": True, "evidence": [], "problems": []}
            if is_claim(sentence):
                if not cited:
                    check.update(support=0.0, supported=False, problems=["no citation"])
                else:
                    parts += [(len(checks), text, c) for text, c in _segments(sentence) if c]
            checks.append(check)

        vectors = self.embed([t for _, t, _ in parts]) if parts else np.zeros((0, 0), dtype=np.float32)
        verdicts = self._llm_verdicts([(t, c) for _, t, c in parts], by_n) if self.llm is not None and parts else None
        best: dict[int, tuple[float, str]] = {}  # n -> (support, evidence sentence)
        per_sentence: dict[int, list[tuple[float, dict, list[str]]]] = {}
        for k, (i, text, cited) in enumerate(parts):
            claim = analyse(text)
            part_best = None
            for n in cited:
                support, x, aligned, problems = self._score(claim, vectors[k], split[n], by_n[n].title)
                support = self._finish(support, x, verdicts[k] if verdicts else None)
                evidence = {"n": n, "index": aligned[0], "text": split[n][aligned[0]]} if aligned else {"n": n, "index": None, "text": ""}
                if n not in best or support > best[n][0]:
                    best[n] = (support, evidence["text"])
                if part_best is None or support > part_best[0]:
                    part_best = (support, evidence, problems)
            per_sentence.setdefault(i, []).append(part_best)

        for i, found in per_sentence.items():
            # Every part of a sentence must be supported: the sentence is as strong as its weakest part.
            weakest = min(found, key=lambda f: f[0])
            support = weakest[0]
            problems = list(dict.fromkeys(p for f in found for p in f[2] if f[0] < self.threshold))
            if support < self.threshold and not problems:
                problems = ["no sentence of the cited source says this"]
            checks[i].update(support=round(support, 3), supported=support >= self.threshold,
                             evidence=[f[1] for f in sorted(found, key=lambda f: -f[0])], problems=problems)

        citations = []
        for n in parse_citations(cleaned):
            support, evidence = best.get(n, (0.0, ""))
            citations.append({"n": n, "paper_id": by_n[n].paper_id, "title": by_n[n].title,
                              "supported": n in best and support >= self.threshold,
                              "support": round(support, 3) if n in best else None, "evidence": evidence})
        unsupported = [c["text"] for c in checks if not c["supported"]]
        return Verification(text=cleaned, citations=citations, dropped=dropped, unsupported_sentences=unsupported,
                            sentences=checks)

    # --- optional LLM pass -------------------------------------------------------------------------------------------

    def _llm_verdicts(self, claims: list[tuple[str, list[int]]], by_n: dict[int, Source]) -> list[float | None] | None:
        """One call for all claims: 1.0 when the LLM says SUPPORTED, 0.0 otherwise, None where it gave no verdict."""
        from assistant.core.errors import BackendError
        from assistant.core.prompts import format_sources, load_prompt
        from assistant.llms.chat import complete

        cited = sorted({n for _, c in claims for n in c})
        statements = "\n".join(f"{k + 1}. {text.strip()} [{', '.join(map(str, c))}]" for k, (text, c) in enumerate(claims))
        messages = load_prompt("verify").render(sources=format_sources([by_n[n] for n in cited]), statements=statements)
        try:
            reply = complete(self.llm, messages)
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
