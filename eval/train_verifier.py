"""Fit the verifier's weights on SciFact claims (train split only) and write ``assistant/answering/verifier_weights.json``.

    .venv/bin/python -m eval.train_verifier [--data PATH] [--out PATH]

Three standardised logistic regressions (scikit-learn, lbfgs: deterministic):
the sentence aligner (rationale sentences vs the others, over SUPPORT and
CONTRADICT pairs), the relatedness head (SUPPORT or CONTRADICT vs
NOT_ENOUGH_INFO) and the agreement head (SUPPORT vs CONTRADICT), stacked by a
third fit into one support score for SUPPORT vs the rest. The operating
threshold keeps ``KEEP`` of the training SUPPORT pairs (after the number and
entity rules), and the stacking intercept is shifted so that this threshold
is 0.5. The grouped 5-fold CV figures are written into the artefact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from assistant.answering.verify import (
    PAIR_FEATURES,
    SENTENCE_FEATURES,
    WEIGHTS,
    Linear,
    VerifierModel,
    apply_rules,
    log_sigmoid,
    pair_features,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "bench" / "scifact-claims" / "train.jsonl"
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


def fit_model(pairs: list[dict], prepared: list, keep: float = KEEP, c_sentence: float = C_SENTENCE,
              c_heads: float = C_HEADS, c_combine: float = C_COMBINE, rules: tuple[str, ...] = RULES) -> VerifierModel:
    """Fit aligner, heads and stacking on these pairs (``prepared`` from ``eval.support_eval.prepare``)."""
    labels = np.array([p["label"] for p in pairs])
    with_rationale = [i for i, p in enumerate(pairs) if p["evidence"]]
    sx = np.vstack([prepared[i].sx for i in with_rationale])
    sy = np.concatenate([[j in pairs[i]["evidence"] for j in range(len(prepared[i].sents))] for i in with_rationale])
    sentence = _linear(sx, sy, SENTENCE_FEATURES, c_sentence)

    x = np.array([pair_features(p.claim, p.sents, p.title, p.sx, sentence.logit(p.sx))[0] for p in prepared])
    support, related_y = labels == "SUPPORT", labels != "NOT_ENOUGH_INFO"
    related = _linear(x, related_y, PAIR_FEATURES, c_heads)
    agrees = _linear(x[related_y], support[related_y], PAIR_FEATURES, c_heads)
    stacked = np.column_stack([log_sigmoid(related.logit(x)), log_sigmoid(agrees.logit(x))])
    combine = _linear(stacked, support, ("related", "agrees"), c_combine)
    # Fold the stacking's standardisation into plain weights: z = a·related + b·agrees + c.
    a, b = combine.coef / combine.scale
    c = combine.intercept - float(np.dot(combine.coef, combine.mean / combine.scale))

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


def main(argv: list[str] | None = None) -> None:
    from assistant.core.settings import Settings
    from assistant.library.embeddings import LocalEmbedder
    from eval.support_eval import cross_validate, load_pairs, measure, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="SciFact claims train.jsonl")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where the weights go")
    args = parser.parse_args(argv)

    pairs = load_pairs(args.data)
    embedder = LocalEmbedder(cache_dir=Settings().home / "models")
    prepared = prepare(pairs, embedder.embed)
    cv = cross_validate(pairs, prepared)
    cv_metrics = measure(pairs, cv["scores"], cv["supported"], cv["aligned"])
    model = fit_model(pairs, prepared)
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
