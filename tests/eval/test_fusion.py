"""The retrieval choices eval/RESULTS.md settled on: z-score fusion and library-addressing phrases."""

from __future__ import annotations

import numpy as np

from assistant.search.retriever import (
    FusionConfig,
    Searcher,
    _standardise,
    retrieval_query,
)


def test_retrieval_query__drops_phrases_that_address_the_library():
    assert retrieval_query("What does the library say about detecting text written by LLMs?") == "detecting text written by LLMs?"
    assert retrieval_query("Which papers in the library use curriculum learning?") == "use curriculum learning?"
    assert retrieval_query("Compare ECO and NPO in the library.") == "Compare ECO and NPO."


def test_retrieval_query__leaves_ordinary_questions_and_too_short_results_alone():
    for q in ("What is NPO?", "Which papers?", "Vitamin D deficiency increases the risk of sepsis."):
        assert retrieval_query(q) == q


def test_standardise__constant_signal_contributes_nothing():
    assert _standardise(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    z = _standardise(np.array([1.0, 2.0, 3.0]))
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12


def test_fuse__zscore_weights_standardised_signals_and_missing_bm25_counts_as_zero():
    dense = {"a": (0.50, ""), "b": (0.62, ""), "c": (0.57, "")}
    sparse = {"a": (40.0, ""), "c": (6.0, "")}  # b is outside BM25's pool

    def fused(weight):
        return Searcher(None, None, lambda: None, FusionConfig(method="zscore", dense_weight=weight))._fuse(dense, sparse)

    assert [p for p, _ in fused(1.0)] == ["b", "c", "a"]
    assert [p for p, _ in fused(0.0)] == ["a", "c", "b"]
    d, s = _standardise(np.array([0.50, 0.62, 0.57])), _standardise(np.array([40.0, 0.0, 6.0]))
    assert dict(fused(0.5)) == {p: float(0.5 * d[i] + 0.5 * s[i]) for i, p in enumerate("abc")}
