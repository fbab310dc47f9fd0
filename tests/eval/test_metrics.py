"""eval.metrics against values worked out by hand on a three-query example."""

from __future__ import annotations

import math

import pytest

from eval.metrics import evaluate, mean_by_group, run_from_ranking

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d2": 1}, "q3": {"d9": 1}, "q4": {"d5": 0}}
# q1 finds both relevant docs at ranks 2 and 3; q2 finds none; q3 is missing from the run.
RUN = run_from_ranking({"q1": ["d2", "d1", "d3"], "q2": ["d1", "d3"]})
MEASURES = ("nDCG@10", "R@1", "R@5", "RR@10", "Success@1", "Success@5")


def test_metrics__per_query_values_match_hand_computation():
    got = evaluate(RUN, QRELS, MEASURES)["per_query"]
    dcg = 1 / math.log2(3) + 1 / math.log2(4)  # relevant at ranks 2 and 3
    idcg = 1 + 1 / math.log2(3)  # both relevant at ranks 1 and 2
    assert got["q1"]["nDCG@10"] == pytest.approx(dcg / idcg)
    assert got["q1"]["RR@10"] == pytest.approx(0.5)
    assert got["q1"]["R@1"] == 0.0 and got["q1"]["R@5"] == 1.0
    assert got["q1"]["Success@1"] == 0.0 and got["q1"]["Success@5"] == 1.0
    assert all(v == 0.0 for v in got["q2"].values())


def test_metrics__query_missing_from_run_counts_as_zero_and_unjudged_is_dropped():
    result = evaluate(RUN, QRELS, MEASURES)
    assert set(result["per_query"]) == {"q1", "q2", "q3"}  # q4 has no relevant document
    mean = result["mean"]
    assert mean["nDCG@10"] == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)) / 3)
    assert mean["RR@10"] == pytest.approx(0.5 / 3)
    assert mean["R@5"] == pytest.approx(1 / 3)


def test_metrics__run_from_ranking_keeps_order_despite_doc_id_ties():
    # trec_eval breaks equal scores by doc id; ranks as scores keep our order.
    run = run_from_ranking({"q1": ["d3", "d1"]})
    assert evaluate(run, {"q1": {"d3": 1}}, ["RR@10"])["mean"]["RR@10"] == 1.0


def test_metrics__mean_by_group_adds_overall():
    per_query = {"a": {"R@5": 1.0}, "b": {"R@5": 0.0}, "c": {"R@5": 1.0}}
    groups = mean_by_group(per_query, {"a": "lookup", "b": "lookup", "c": "topic"})
    assert groups["lookup"] == {"R@5": 0.5, "n": 2}
    assert groups["topic"]["R@5"] == 1.0
    assert groups["overall"]["R@5"] == pytest.approx(2 / 3) and list(groups)[-1] == "overall"
