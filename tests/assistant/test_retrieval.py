"""Retrieval on the real bundled library with the real model."""

from __future__ import annotations

import pytest

from assistant.core.errors import UserError

NPO = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"
UTK = "Untie the Knots: An Efficient Data Augmentation Strategy for Long-Context Pre-Training in Language Models"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search__npo_query_finds_the_npo_paper_first(bundled_app, mode):
    hits = bundled_app.searcher.search("negative preference optimization", k=5, mode=mode)
    assert hits[0].title == NPO


def test_search__paraphrase_without_distinctive_words_finds_the_paper_in_top_5(bundled_app):
    # None of: untie, knots, augmentation, long-context, pre-training, chunk, shuffle.
    question = "training a model to reassemble scrambled pieces of documents so it copes with very long inputs"
    titles = [h.title for h in bundled_app.searcher.search(question, k=5)]
    assert UTK in titles


def test_search__returns_one_hit_per_paper_with_scores_in_order(bundled_app):
    hits = bundled_app.searcher.search("machine unlearning for large language models", k=10)
    ids = [h.paper_id for h in hits]
    assert len(ids) == len(set(ids)) == 10
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.abstract and h.title for h in hits)


def test_search__hybrid_gives_every_hit_a_true_dense_similarity(bundled_app):
    hits = bundled_app.searcher.search("zeroth order optimization of prompt embeddings", k=8)
    assert all(h.dense is not None and -1.0 <= h.dense <= 1.0 for h in hits)


def test_search__off_topic_query_has_low_dense_similarity(bundled_app):
    hits = bundled_app.searcher.search("best pizza dough hydration?", k=5)
    assert max(h.dense for h in hits) < bundled_app.settings.answerability.min_relevance


def test_search__unknown_mode_is_a_clear_error(bundled_app):
    with pytest.raises(UserError, match="unknown retriever"):
        bundled_app.searcher.search("anything", mode="magic")


def test_llama_retriever__returns_nodes_with_full_abstracts(bundled_app):
    from llama_index.core.retrievers import BaseRetriever

    from assistant.search.nodes import PaperRetriever, node_hit

    retriever = PaperRetriever(bundled_app.searcher, k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("negative preference optimization")
    assert nodes[0].node.metadata["title"] == NPO
    assert nodes[0].node.metadata["paper_id"] == node_hit(nodes[0]).paper_id
    assert 0.3 < nodes[0].node.metadata["dense"] <= 1.0 and nodes[0].node.metadata["bm25"] > 0
    assert ".txt:" in nodes[0].node.metadata["source"]  # the file (and line) it was read from
    assert "NPO" in nodes[0].node.get_content()
    assert len(nodes) == 3


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search__top_of_a_long_list_is_the_short_list(bundled_app, mode):
    # The candidate pool does not grow with k, so asking for more results only adds to the tail.
    query = "continual pre-training learning rate schedule"
    short = [h.paper_id for h in bundled_app.searcher.search(query, k=10, mode=mode)]
    long = [h.paper_id for h in bundled_app.searcher.search(query, k=60, mode=mode)]
    assert long[:10] == short
    assert len(long) == len(set(long)) > 10


def test_search__dense_pool_holds_distinct_papers_not_chunks(bundled_app):
    # 100 candidate papers, though the nearest 100 chunks belong to fewer papers.
    assert len(bundled_app.searcher.dense_scores("language model training", 100)) == 100


def test_bm25__an_empty_library_searches_to_nothing(tmp_path, embedder):
    from assistant.library.bm25 import load_or_build
    from assistant.library.store import Library, open_store

    library = Library(open_store(tmp_path / "chroma"), "empty", embedder.name)
    index = load_or_build(library, tmp_path / "bm25", "here")
    assert index.search("anything at all", 10) == []


def test_search__bm25_hits_carry_their_dense_similarity(bundled_app):
    # BM25 ranks on its own, but the answer step reads the dense similarity of every hit: a BM25-only
    # search once left it empty and every `ask --retriever bm25` declined.
    hits = bundled_app.searcher.search("negative preference optimization", k=5, mode="bm25")
    assert hits[0].title == NPO
    assert all(h.dense is not None for h in hits) and hits[0].dense > 0.4


def test_nodes__carry_the_hit_itself_so_nothing_is_rebuilt_from_flat_fields():
    from assistant.answering.synthesis import sources_from_nodes
    from assistant.core.types import Hit
    from assistant.search.nodes import hit_node, node_hit

    hit = Hit(paper_id="p1", title="A title", score=0.9, abstract="An abstract.", dense=0.61,
              authors=["King, Jr., Martin", "Ann Lee"], passages=[{"page": 3, "section": "", "kind": "text", "text": "x."}],
              pages=9)
    node = hit_node(hit)
    assert node_hit(node) is hit
    assert "King, Jr." not in node.node.get_content(metadata_mode="llm")  # the LLM sees the title and the text only
    [source] = sources_from_nodes([node])
    assert source.authors == ["King, Jr., Martin", "Ann Lee"] and source.relevance == 0.61 and source.pages == 9
