"""Fit the verifier's weights on SciFact claims (train split only) and write ``assistant/answering/verifier_weights.json``.

    .venv/bin/python -m eval.train_verifier [--data PATH] [--out PATH]

Three standardised logistic regressions (scikit-learn, lbfgs: deterministic, the
same bytes on every run): the sentence aligner (rationale sentences vs the others,
over SUPPORT and CONTRADICT pairs), the relatedness head (SUPPORT or CONTRADICT vs
NOT_ENOUGH_INFO) and the agreement head (SUPPORT vs CONTRADICT, plus every SUPPORT
claim reversed: see ``reversals``), stacked by a third fit in log-probability space
into one support score for SUPPORT vs the rest. The operating threshold keeps
``KEEP`` of the training SUPPORT pairs (after the hard rules), and the stacking
intercept is shifted so that this threshold reads 0.5. The grouped 5-fold CV
figures (``cross_validate``, fitted the same way on each fold's
training part) are written into the artefact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.answering.claims import analyse
from assistant.answering.support_model import (
    PAIR_FEATURES,
    SENTENCE_FEATURES,
    WEIGHTS,
    Linear,
    VerifierModel,
    apply_rules,
    log_sigmoid,
    pair_features,
    sentence_features,
)
from eval.support_pairs import Prepared, claim_group, load_pairs, measure, prepare, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "scifact-claims" / "train.jsonl"
FOLDS = 5
KEEP = 0.87  # share of training SUPPORT pairs at or above the threshold (CV keeps ~0.85 of unseen ones)
C_SENTENCE, C_HEADS, C_COMBINE = 0.1, 0.3, 1.0  # inverse regularisation strengths
RULES = ("numbers", "verbatim_reversal", "verbatim_entities")  # hard rules (assistant.answering.verify.RULES)


def _linear(x: np.ndarray, y: np.ndarray, features, c: float) -> Linear:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature contributes nothing
    fit = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return Linear(tuple(features), mean, scale, fit.coef_[0].copy(), float(fit.intercept_[0]))


# Reversals of SUPPORT claims, added to the agreement head's training as CONTRADICT: a claim whose direction
# word is swapped for its opposite ("increases" -> "decreases") or whose negation is toggled contradicts the
# abstract that supported it. SciFact's own contradicted claims were written the same way, and the product
# must catch exactly this in an LLM's paraphrase.
_OPPOSITES = """increase decrease|increases decreases|increased decreased|increasing decreasing|higher lower|more less
    greater smaller|improve impair|improves impairs|improved impaired|promote inhibit|promotes inhibits|promoted inhibited
    induce prevent|induces prevents|induced prevented|enhance reduce|enhances reduces|enhanced reduced|activate inactivate
    activates inactivates|activated inactivated|positively negatively|upregulates downregulates|upregulated downregulated
    raise lower|raises lowers|raised lowered|elevated reduced|accelerates slows|accelerate slow|encourages discourages
    stimulates suppresses|stimulate suppress|worsens improves|worsen improve|exacerbates alleviates|harms benefits
    outperforms underperforms|outperform underperform|better worse|rise fall|rises falls|strengthens weakens
    required dispensable|essential dispensable|necessary unnecessary|effective ineffective|sufficient insufficient
    high low|longer shorter|faster slower|larger smaller|stronger weaker|likely unlikely|associated unassociated"""
OPPOSITE = {}
for _pair in _OPPOSITES.replace("\n", "|").split("|"):
    _a, _b = _pair.split()
    OPPOSITE.setdefault(_a, _b)
    OPPOSITE.setdefault(_b, _a)
_NEGATED = re.compile(r"\b(does|do|did|is|are|was|were|can) not\b|\bcannot\b", re.I)
_AUX = re.compile(r"\b(is|are|was|were|can|may|could|will|has|have|had|does|do|did|should|might|must)\b", re.I)


def reversals(claim: str) -> list[str]:
    """The claim with its direction words swapped for their opposites, and with its negation toggled."""
    out = []
    parts = re.split(r"(\W+)", claim)
    swapped = [OPPOSITE[p.lower()] if p.lower() in OPPOSITE and not _in_compound(parts, k) else p for k, p in enumerate(parts)]
    swapped = [w.capitalize() if w != p and p[:1].isupper() else w for w, p in zip(swapped, parts)]
    if swapped != parts:
        out.append("".join(swapped))
    if _NEGATED.search(claim):
        out.append(_NEGATED.sub(lambda m: "can" if m.group(0).lower() == "cannot" else m.group(1), claim, count=1))
    elif m := _AUX.search(claim):
        out.append(f"{claim[: m.end()]} not{claim[m.end():]}")
    return out


def _in_compound(parts: list[str], k: int) -> bool:
    # "HIV-positive" keeps its "positive": only free-standing words are swapped.
    return (k > 0 and parts[k - 1].endswith("-")) or (k + 1 < len(parts) and parts[k + 1].startswith("-"))


def reversed_claims(pairs: list[dict], prepared: list, embed_fn) -> list[tuple[int, object]]:
    """(index of a SUPPORT pair, its reversed claim prepared against the same abstract), for every reversal."""

    jobs = [(i, text) for i, p in enumerate(pairs) if p["label"] == "SUPPORT" for text in reversals(p["claim"])]
    if not jobs:
        return []
    vectors = np.asarray(embed_fn([t for _, t in jobs]), dtype=np.float32)
    out = []
    for (i, text), vector in zip(jobs, vectors):
        src = prepared[i]
        claim = analyse(text)
        out.append((i, Prepared(claim, src.sents, src.title, sentence_features(claim, src.sents, src.vectors @ vector),
                                src.vectors)))
    return out


def fit_model(pairs: list[dict], prepared: list, keep: float = KEEP, c_sentence: float = C_SENTENCE,
              c_heads: float = C_HEADS, c_combine: float = C_COMBINE, rules: tuple[str, ...] = RULES,
              reversals: Sequence = (), stack: bool = True) -> VerifierModel:
    """Fit aligner, heads and stacking on these pairs (``prepared`` from ``eval.support_eval.prepare``).

    ``reversals``: prepared reversed SUPPORT claims of these pairs (``reversed_claims``), extra
    CONTRADICT examples for the agreement head only.
    """
    labels = np.array([p["label"] for p in pairs])
    with_rationale = [i for i, p in enumerate(pairs) if p["evidence"]]
    sx = np.vstack([prepared[i].sx for i in with_rationale])
    sy = np.concatenate([[j in pairs[i]["evidence"] for j in range(len(prepared[i].sents))] for i in with_rationale])
    sentence = _linear(sx, sy, SENTENCE_FEATURES, c_sentence)

    x = np.array([pair_features(p.claim, p.sents, p.title, p.sx, sentence.logit(p.sx))[0] for p in prepared])
    support, related_y = labels == "SUPPORT", labels != "NOT_ENOUGH_INFO"
    related = _linear(x, related_y, PAIR_FEATURES, c_heads)
    extra = np.array([pair_features(p.claim, p.sents, p.title, p.sx, sentence.logit(p.sx))[0] for p in reversals])
    agrees = _linear(np.vstack([x[related_y], extra.reshape(-1, x.shape[1])]),
                     np.concatenate([support[related_y], np.zeros(len(extra), dtype=bool)]), PAIR_FEATURES, c_heads)
    stacked = np.column_stack([log_sigmoid(related.logit(x)), log_sigmoid(agrees.logit(x))])
    combine = _linear(stacked, support, ("related", "agrees"), c_combine)
    # Fold the stacking's standardisation into plain weights: z = a·related + b·agrees + c.
    a, b = combine.coef / combine.scale
    c = combine.intercept - float(np.dot(combine.coef, combine.mean / combine.scale))
    if not stack:
        a, b, c = 1.0, 1.0, 0.0

    model = VerifierModel(sentence, related, agrees, (float(a), float(b), float(c)), 0.5, tuple(rules))
    raw = model.support(x)
    ruled = np.array([apply_rules(1.0, xi, 1.0, rules) < 1.0 for xi in x])  # pairs the number/entity rules reject
    eligible = np.sort(raw[support & ~ruled])[::-1]
    need = max(1, math.ceil(keep * support.sum()))
    threshold = float(eligible[min(need, len(eligible)) - 1]) if len(eligible) else 0.5
    threshold = min(max(threshold, 1e-6), 1 - 1e-6)
    # Shift so the operating threshold reads 0.5: scores stay ordered, "supported" is support >= 0.5.
    model.combine = (model.combine[0], model.combine[1], model.combine[2] - math.log(threshold / (1 - threshold)))
    model.info = {"raw_threshold": round(threshold, 6), "keep": keep}
    return model


def cross_validate(pairs: list[dict], prepared: list[Prepared], folds: int = FOLDS,
                   reversals: Sequence[tuple[int, Prepared]] = (), **fit_options) -> dict:
    """Grouped k-fold CV by claim: out-of-fold scores, supported flags (each fold's own threshold) and alignments.

    ``reversals``: (index of the SUPPORT pair it reverses, prepared reversed claim), from
    ``eval.train_verifier.reversed_claims``; each fold trains on those of its own pairs only.
    """
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(pairs))
    supported = np.zeros(len(pairs), dtype=bool)
    aligned: list[list[int]] = [[] for _ in pairs]
    groups = [claim_group(p) for p in pairs]
    for train, test in GroupKFold(n_splits=folds).split(np.zeros(len(pairs)), groups=groups):
        members = set(train.tolist())
        model = fit_model([pairs[i] for i in train], [prepared[i] for i in train],
                          reversals=[r for i, r in reversals if i in members], **fit_options)
        fold_scores, fold_aligned = score(model, [prepared[i] for i in test])
        scores[test] = fold_scores
        supported[test] = fold_scores >= model.threshold
        for i, a in zip(test, fold_aligned):
            aligned[i] = a
    return {"scores": scores, "supported": supported, "aligned": aligned}



def main(argv: list[str] | None = None) -> None:
    from assistant.core.settings import Settings
    from assistant.library.embeddings import LocalEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="SciFact claims train.jsonl")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where the weights go")
    args = parser.parse_args(argv)

    pairs = load_pairs(args.data)
    embedder = LocalEmbedder(cache_dir=Settings().home / "models")
    prepared = prepare(pairs, embedder.embed)
    reversed_ = reversed_claims(pairs, prepared, embedder.embed)
    cv = cross_validate(pairs, prepared, reversals=reversed_)
    cv_metrics = measure(pairs, cv["scores"], cv["supported"], cv["aligned"])
    model = fit_model(pairs, prepared, reversals=[r for _, r in reversed_])
    model.info.update({
        "name": "verifier-v2",
        "embedding_model": embedder.name,
        "trained_on": {"file": args.data.name, "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
                       "pairs": len(pairs)},
        "regularisation": {"sentence": C_SENTENCE, "heads": C_HEADS, "combine": C_COMBINE},
        "cv": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cv_metrics.items()},
    })
    args.out.write_text(json.dumps(model.to_dict(), indent=1) + "\n")
    print(json.dumps(model.info["cv"], indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
