"""``assistant eval support``: how well the verifier tells supported claims from the rest, on claim–abstract pairs.

Pairs are JSONL in the format of ``../shared/bench/scifact-claims`` (claim, title,
sentences, label SUPPORT / CONTRADICT / NOT_ENOUGH_INFO, rationale indexes).
Reported: ROC AUC of the support score for SUPPORT vs the rest, vs CONTRADICT and
vs NOT_ENOUGH_INFO; at the operating threshold the share of SUPPORT kept and of
CONTRADICT / NOT_ENOUGH_INFO flagged; and rationale recall (the top aligned
sentence is a rationale sentence, over SUPPORT and CONTRADICT pairs). ``cv=True``
runs grouped 5-fold cross-validation by claim, fitting the model on the other
folds (``eval.train_verifier.cross_validate``), instead of using the shipped weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assistant.answering.support_model import VerifierModel
from assistant.core.errors import UserError
from eval.support_pairs import LABELS, claim_group, load_pairs, measure, prepare, score
from eval.train_verifier import FOLDS, cross_validate, reversed_claims

__all__ = ["LABELS", "eval_support", "load_pairs", "plot_scores"]


def eval_support(path: str | Path, embed_fn: Callable[[list[str]], np.ndarray], cv: bool = False,
                 model: VerifierModel | None = None, threshold: float | None = None, folds: int = FOLDS) -> dict:
    """The support report: metrics over all pairs and per-pair rows (shipped weights, or grouped CV)."""
    from assistant.answering.support_model import shipped_model

    pairs = load_pairs(path)
    started = time.perf_counter()
    prepared = prepare(pairs, embed_fn)
    if cv:
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
