"""``assistant eval support``: how well the verifier tells supported claims from the rest, on claim–abstract pairs.

Pairs are JSONL in the format of ``../shared/bench/scifact-claims`` (claim, title,
sentences, label SUPPORT / CONTRADICT / NOT_ENOUGH_INFO, rationale indexes).
Reported: ROC AUC of the support score for SUPPORT vs the rest, vs CONTRADICT and
vs NOT_ENOUGH_INFO; at the operating threshold the share of SUPPORT kept and of
CONTRADICT / NOT_ENOUGH_INFO flagged; and rationale recall (the top aligned
sentence is a rationale sentence, over SUPPORT and CONTRADICT pairs). ``cv=True``
runs grouped 5-fold cross-validation by claim, fitting the model on the other
folds (``eval.train_verifier.fit_model``), instead of using the shipped weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.answering.claims import Analysis, analyse
from assistant.answering.support_model import VerifierModel, apply_rules, score_analysed, sentence_features
from assistant.answering.verify import SentenceCache
from assistant.core.errors import UserError

LABELS = ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")
FOLDS = 5


def load_pairs(path: str | Path) -> list[dict]:
    """Read and check the pairs; literal "\\n" left in sentences by the export is turned into a space."""
    pairs = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pair = {"id": str(row["id"]), "claim": str(row["claim"]), "title": str(row.get("title", "")),
                    "sentences": [" ".join(s.replace("\\n", " ").split()) for s in row["sentences"]],
                    "label": str(row["label"]), "evidence": [int(i) for i in row.get("evidence", [])]}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{number}: not a claim–abstract pair ({type(exc).__name__}: {exc})") from exc
        if pair["label"] not in LABELS:
            raise UserError(f"{path}:{number}: label {pair['label']!r} is not one of {', '.join(LABELS)}")
        if not pair["sentences"]:
            raise UserError(f"{path}:{number}: the abstract has no sentences")
        pairs.append(pair)
    if not pairs:
        raise UserError(f"{path} holds no pairs")
    return pairs


def claim_group(pair: dict) -> str:
    """Pairs of one claim share a group ("<claim>-<doc>" ids), so CV never splits a claim."""
    return pair["id"].rsplit("-", 1)[0]


@dataclass
class Prepared:
    """What the model needs from one pair, computed once: analyses and sentence features."""

    claim: Analysis
    sents: list[Analysis]
    title: Analysis | None
    sx: np.ndarray
    vectors: np.ndarray  # the sentences' embeddings (to score other claims against the same abstract)


def prepare(pairs: list[dict], embed_fn: Callable[[list[str]], np.ndarray]) -> list[Prepared]:
    """Analyse and embed every pair (one embedding pass over all claims and sentences)."""
    cache = SentenceCache(embed_fn, size=10**7)
    cache.get([s for p in pairs for s in p["sentences"]] + [p["title"] for p in pairs if p["title"]])  # one pass
    claims = np.asarray(embed_fn([p["claim"] for p in pairs]), dtype=np.float32)
    out = []
    for pair, vector in zip(pairs, claims):
        known = cache.get(pair["sentences"])
        claim = analyse(pair["claim"])
        sents = [a for a, _ in known]
        vectors = np.stack([v for _, v in known])
        title = cache.get([pair["title"]])[0][0] if pair["title"] else None
        out.append(Prepared(claim, sents, title, sentence_features(claim, sents, vectors @ vector), vectors))
    return out


def score(model: VerifierModel, prepared: list[Prepared], threshold: float | None = None) -> tuple[np.ndarray, list[list[int]]]:
    """Support scores (rules applied, as the verifier does) and aligned sentence indexes per pair."""
    thr = model.threshold if threshold is None else threshold
    scores, aligned = [], []
    for p in prepared:
        support, x, order, _ = score_analysed(model, p.claim, p.sents, p.title, p.sx)
        scores.append(apply_rules(support, x, thr, model.rules))
        aligned.append(order)
    return np.array(scores), aligned


def measure(pairs: list[dict], scores: np.ndarray, supported: np.ndarray, aligned: list[list[int]]) -> dict:
    """AUCs (SUPPORT vs rest / CONTRADICT / NEI), shares kept and flagged, rationale recall."""
    from sklearn.metrics import roc_auc_score

    labels = np.array([p["label"] for p in pairs])
    s, c, n = labels == "SUPPORT", labels == "CONTRADICT", labels == "NOT_ENOUGH_INFO"

    def auc(neg: np.ndarray) -> float | None:
        mask = s | neg
        return float(roc_auc_score(s[mask], scores[mask])) if s.any() and neg.any() else None

    share = lambda mask, flag: float(flag[mask].mean()) if mask.any() else None
    rationale = [a[0] in p["evidence"] for p, a in zip(pairs, aligned) if p["label"] != "NOT_ENOUGH_INFO" and p["evidence"] and a]
    return {
        "auc_support_vs_rest": auc(c | n), "auc_support_vs_contradict": auc(c), "auc_support_vs_nei": auc(n),
        "support_kept": share(s, supported), "contradict_flagged": share(c, ~supported), "nei_flagged": share(n, ~supported),
        "rationale_recall": float(np.mean(rationale)) if rationale else None,
        "n": len(pairs),
    }


def cross_validate(pairs: list[dict], prepared: list[Prepared], folds: int = FOLDS,
                   reversals: Sequence[tuple[int, Prepared]] = (), **fit_options) -> dict:
    """Grouped k-fold CV by claim: out-of-fold scores, supported flags (each fold's own threshold) and alignments.

    ``reversals``: (index of the SUPPORT pair it reverses, prepared reversed claim), from
    ``eval.train_verifier.reversed_claims``; each fold trains on those of its own pairs only.
    """
    from sklearn.model_selection import GroupKFold

    from eval.train_verifier import fit_model

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


def eval_support(path: str | Path, embed_fn: Callable[[list[str]], np.ndarray], cv: bool = False,
                 model: VerifierModel | None = None, threshold: float | None = None, folds: int = FOLDS) -> dict:
    """The support report: metrics over all pairs and per-pair rows (shipped weights, or grouped CV)."""
    from assistant.answering.support_model import shipped_model

    pairs = load_pairs(path)
    started = time.perf_counter()
    prepared = prepare(pairs, embed_fn)
    if cv:
        from eval.train_verifier import reversed_claims

        if len({claim_group(p) for p in pairs}) < folds:
            raise UserError(f"--cv needs at least {folds} different claims; {path} has fewer")
        out = cross_validate(pairs, prepared, folds=folds, reversals=reversed_claims(pairs, prepared, embed_fn))
        scores, supported, aligned = out["scores"], out["supported"], out["aligned"]
        # Each fold's model is calibrated on its own training part so that its operating threshold reads 0.5.
        used = {"weights": f"grouped {folds}-fold CV by claim (fitted on the other folds)", "threshold": 0.5}
    else:
        model = model or shipped_model()
        thr = model.threshold if threshold is None else threshold
        scores, aligned = score(model, prepared, thr)
        supported = scores >= thr
        used = {"weights": model.info.get("name", "shipped"), "threshold": thr, "trained_on": model.info.get("trained_on")}
    elapsed = time.perf_counter() - started
    metrics = measure(pairs, scores, supported, aligned)
    per_pair = [{"id": p["id"], "label": p["label"], "score": round(float(sc), 4), "supported": bool(ok), "aligned": a}
                for p, sc, ok, a in zip(pairs, scores, supported, aligned)]
    return {
        "dataset": str(path),
        "questions_file": str(path),  # the report records its sha256 as the input
        "mode": "cv" if cv else "shipped",
        "model": used,
        "groups": {"overall": metrics},
        "labels": {label: sum(p["label"] == label for p in pairs) for label in LABELS},
        "seconds": round(elapsed, 2),
        "per_pair": per_pair,
    }


def plot_scores(result: dict, folder: Path) -> Path:
    """Histogram of support scores per label, with the threshold when there is one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    bins = np.linspace(0, 1, 26)
    for label, colour in zip(LABELS, ("tab:green", "tab:red", "tab:grey")):
        values = [r["score"] for r in result["per_pair"] if r["label"] == label]
        if values:
            ax.hist(values, bins=bins, alpha=0.55, label=f"{label} ({len(values)})", color=colour, edgecolor="black", linewidth=0.3)
    thr = result["model"].get("threshold")
    if isinstance(thr, (int, float)):
        ax.axvline(thr, color="black", linestyle="--", linewidth=1, label=f"threshold {thr:.2f}")
    ax.set_xlabel("support score")
    ax.set_ylabel("pairs")
    ax.set_title(f"support scores per label ({result['mode']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "support_scores.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
