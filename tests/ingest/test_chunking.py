"""Chunking: sentence-aligned, within the model's window with the title, counted by its tokenizer."""

from __future__ import annotations

from assistant.core.text import split_sentences
from assistant.core.types import Paper
from ingest.chunking import chunk_paper


def test_split_sentences__keeps_abbreviations_and_decimals():
    text = "We use e.g. BERT and GPT et al. 2020 to reach 84.5% accuracy. Then we stop! Does it work? Yes."
    assert split_sentences(text) == [
        "We use e.g. BERT and GPT et al. 2020 to reach 84.5% accuracy.",
        "Then we stop!",
        "Does it work?",
        "Yes.",
    ]


def test_chunk_paper__every_chunk_fits_the_window_with_its_title(embedder):
    sentence = "Large language models memorise parts of their training data in ways that are hard to audit. "
    paper = Paper(paper_id="p1", title="A Fairly Long Title About Unlearning In Large Language Models", abstract=sentence * 40)
    chunks = chunk_paper(paper, embedder.count_tokens, max_tokens=256)
    assert len(chunks) > 1
    for chunk in chunks:
        assert embedder.count_tokens(chunk.embed_text) <= 256
        assert chunk.text.endswith(".")  # sentence-aligned
    assert " ".join(c.text for c in chunks) == (sentence * 40).strip()


def test_chunk_paper__splits_a_sentence_longer_than_the_window(embedder):
    paper = Paper(paper_id="p2", title="T", abstract=" ".join(["token"] * 600) + ".")
    chunks = chunk_paper(paper, embedder.count_tokens, max_tokens=128)
    assert len(chunks) >= 5
    assert all(embedder.count_tokens(c.embed_text) <= 128 for c in chunks)


def test_chunk_paper__chunk_ids_are_stable(embedder):
    paper = Paper(paper_id="p3", title="T", abstract="One. Two.")
    assert [c.chunk_id for c in chunk_paper(paper, embedder.count_tokens)] == ["p3#0"]
