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


def test_paired_test__identical_runs_differ_by_nothing():
    from eval.metrics import paired_test

    got = paired_test([0.2, 0.5, 0.9], [0.2, 0.5, 0.9])
    assert got == {"n": 3, "diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0, "significant": False}


def test_paired_test__matches_the_exact_sign_flip_p_value_and_is_reproducible():
    from eval.metrics import paired_test

    a = [0.0] * 8 + [0.5] * 4
    b = [1.0] * 8 + [0.5] * 4  # 8 questions improve, 4 tie; 2**12 arrangements: the test is exact
    got = paired_test(a, b)
    # Only the 8 changed pairs matter: all-up and all-down are the only ones as extreme, 2 / 2**8.
    assert got["p_value"] == pytest.approx(2 / 2**8) and got["significant"] is True
    assert got["diff"] == pytest.approx(8 / 12) and 0 < got["ci_low"] <= 8 / 12 <= got["ci_high"] <= 1
    assert paired_test(a, b) == got and paired_test(a, b, seed=1)["p_value"] == got["p_value"]


def test_paired_test__two_changes_are_not_enough_and_one_pair_has_no_interval():
    from eval.metrics import paired_test

    assert paired_test([1, 0, 1, 0, 1], [1, 1, 1, 1, 1])["p_value"] == pytest.approx(0.5)
    single = paired_test([0.1], [0.9])
    assert single["diff"] == pytest.approx(0.8) and single["p_value"] is None and single["significant"] is None


def test_paired_test__percentile_statistic_tests_latency_percentiles():
    from eval.metrics import paired_test

    a = [100.0 + i for i in range(40)]
    got = paired_test(a, [x / 2 for x in a], "p50")
    assert got["diff"] == pytest.approx(-59.75) and got["significant"] and got["ci_high"] < 0
