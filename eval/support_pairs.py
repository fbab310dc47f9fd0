"""SciFact-style claim–abstract pairs for the support check: reading them, preparing them for the verifier's model
once (analyses, embeddings, sentence features), scoring them with a model and measuring the scores.

Shared by the evaluation (eval/support_eval.py) and the training (eval/train_verifier.py), which imports nothing
back: the three modules form no cycle (the import-linter contract checks it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
