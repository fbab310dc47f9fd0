"""Retrieval metrics over run dicts (ir-measures), and the paired significance test every comparison uses.

A run is ``{qid: {doc_id: score}}`` (higher is better) and qrels are
``{qid: {doc_id: relevance}}``. Names follow ir-measures: ``nDCG@10``, ``R@k``
(recall), ``RR@10`` (MRR@10 once averaged), ``Success@k`` (hit@k). Using the
standard implementation keeps our numbers comparable with published BEIR
baselines instead of trusting a home-made nDCG.

Averages are over every query in the qrels: a query the retriever returned
nothing for scores 0 (trec_eval would silently leave it out of the mean).

``paired_test`` says whether two runs differ by more than their noise: given
one value per question from each run (the same questions, in the same order),
it reports B − A, a paired bootstrap confidence interval
(``scipy.stats.bootstrap``, BCa, questions resampled as pairs) and the p-value of
a paired randomization test (``scipy.stats.permutation_test`` with
``permutation_type="samples"``: each question's A and B values are swapped at
random, exact when there are few questions). Both are seeded, so the same
reports give the same figures.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Sequence

import ir_measures
import numpy as np

# Headline measures: the BEIR standard trio, and what the dev set is judged on.
BEIR_MEASURES = ("nDCG@10", "R@100", "RR@10", "R@10", "Success@10")
DEV_MEASURES = ("Success@5", "R@5", "R@10", "RR@10", "nDCG@10")

# Friendlier names for reports (ir-measures names stay the keys).
LABELS = {"Success@5": "hit@5", "Success@10": "hit@10", "R@5": "recall@5", "R@10": "recall@10",
          "R@100": "recall@100", "RR@10": "MRR@10", "nDCG@10": "nDCG@10"}


def _parse(names) -> list:
    return [ir_measures.parse_measure(n) if isinstance(n, str) else n for n in names]


def run_from_ranking(ranking: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Ranked id lists -> a run whose scores keep exactly that order (no ties to break)."""
    return {q: {d: float(len(ids) - i) for i, d in enumerate(dict.fromkeys(ids))} for q, ids in ranking.items()}


def evaluate(run: dict, qrels: dict, measures=BEIR_MEASURES) -> dict:
    """{"mean": {measure: value}, "per_query": {qid: {measure: value}}} over the qids of ``qrels``.

    Queries whose qrels hold no relevant document are left out: no ranking can
    be judged on them, and every measure here is undefined for them.
    """
    parsed = _parse(measures)
    names = [str(m) for m in parsed]
    judged = {q: {d: int(r) for d, r in docs.items()} for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
    per_query: dict[str, dict[str, float]] = {q: {n: 0.0 for n in names} for q in judged}
    # pytrec_eval needs string ids and at least one document per query in the run.
    clean_run = {str(q): {str(d): float(s) for d, s in docs.items()} for q, docs in run.items() if q in judged and docs}
    if clean_run:
        for m in ir_measures.iter_calc(parsed, judged, clean_run):
            per_query[m.query_id][str(m.measure)] = float(m.value)
    mean = {n: (sum(pq[n] for pq in per_query.values()) / len(per_query) if per_query else 0.0) for n in names}
    return {"mean": mean, "per_query": per_query}


def mean_by_group(per_query: dict[str, dict[str, float]], groups: dict[str, str]) -> dict[str, dict[str, float]]:
    """Average per-query values within each group (e.g. question type), plus ``overall``."""
    buckets: dict[str, list[dict[str, float]]] = defaultdict(list)
    for qid, values in per_query.items():
        buckets[groups.get(qid, "other")].append(values)
        buckets["overall"].append(values)
    out = {}
    for group, rows in sorted(buckets.items(), key=lambda kv: (kv[0] == "overall", kv[0])):
        out[group] = {n: sum(r[n] for r in rows) / len(rows) for n in rows[0]}
        out[group]["n"] = len(rows)
    return out


# The statistics a comparison can test: a mean of per-question values, or a latency percentile.
_STATISTICS = {
    "mean": lambda x, axis=-1: np.mean(x, axis=axis),
    "p50": lambda x, axis=-1: np.percentile(x, 50, axis=axis),
    "p95": lambda x, axis=-1: np.percentile(x, 95, axis=axis),
}


def paired_test(a: Sequence[float], b: Sequence[float], statistic: str = "mean", *, seed: int = 0,
                n_resamples: int = 9999, confidence: float = 0.95, alpha: float = 0.05) -> dict:
    """B − A over paired per-question values, with a bootstrap interval and a randomization-test p-value.

    Returns {"n", "diff", "ci_low", "ci_high", "p_value", "significant"}; the
    interval and p-value are None when fewer than two pairs exist. ``significant``
    is ``p_value < alpha``. ``statistic`` is "mean", "p50" or "p95" (of each run's values).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_test needs two equally long lists, got {x.shape} and {y.shape}")
    stat = _STATISTICS[statistic]

    def diff(xs, ys, axis=-1):
        return stat(ys, axis=axis) - stat(xs, axis=axis)

    out = {"n": int(x.size), "diff": float(diff(x, y)) if x.size else None,
           "ci_low": None, "ci_high": None, "p_value": None, "significant": None}
    if x.size < 2:
        return out
    if np.array_equal(x, y):  # nothing moved: resampling would only warn about degenerate data
        return {**out, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0, "significant": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples (e.g. all 0/1 values) are handled below
        ci = None
        for method in ("BCa", "percentile"):  # BCa is undefined on some degenerate samples; fall back
            res = stats.bootstrap((x, y), diff, paired=True, vectorized=True, n_resamples=n_resamples,
                                  confidence_level=confidence, method=method, rng=np.random.default_rng(seed))
            ci = res.confidence_interval
            if np.isfinite(ci.low) and np.isfinite(ci.high):
                break
        perm = stats.permutation_test((x, y), diff, permutation_type="samples", vectorized=True,
                                      n_resamples=n_resamples, alternative="two-sided",
                                      rng=np.random.default_rng(seed))
    p_value = float(min(1.0, perm.pvalue))
    return {**out, "ci_low": float(ci.low), "ci_high": float(ci.high), "p_value": p_value,
            "significant": bool(p_value < alpha)}
