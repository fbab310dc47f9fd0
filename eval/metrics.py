"""Retrieval metrics over run dicts, computed by ir-measures (pytrec_eval underneath).

A run is ``{qid: {doc_id: score}}`` (higher is better) and qrels are
``{qid: {doc_id: relevance}}``. Names follow ir-measures: ``nDCG@10``, ``R@k``
(recall), ``RR@10`` (MRR@10 once averaged), ``Success@k`` (hit@k). Using the
standard implementation keeps our numbers comparable with published BEIR
baselines instead of trusting a home-made nDCG.

Averages are over every query in the qrels: a query the retriever returned
nothing for scores 0 (trec_eval would silently leave it out of the mean).
"""

from __future__ import annotations

from collections import defaultdict

import ir_measures

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
