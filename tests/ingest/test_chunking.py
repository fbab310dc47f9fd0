"""Chunking: sentence-aligned, within the model's window with the title, counted by its tokenizer (both chunkers)."""

from __future__ import annotations

import pytest

from assistant.core.errors import UserError
from assistant.core.text import split_sentences
from assistant.core.types import Paper
from ingest.chunking import CHUNKERS, chunk_paper, make_chunker

LONG_ABSTRACT = (
    "Large language models memorise parts of their training data in ways that are hard to audit. " * 12
    + "The relative risk fell by 23% (p < 0.0001, 95% CI 19.3-49.2) and apo A-I (P = .05) was lower in "
    + " ".join(["treated patients and their matched controls, followed for a decade"] * 30) + ". "
    + "We release the code, e.g. for audits by Smith et al. 2020 and others."
)


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
    assert " ".join(c.text for c in chunks) == paper.abstract  # cut at word boundaries, no word lost


def test_chunk_paper__chunk_ids_are_stable(embedder):
    paper = Paper(paper_id="p3", title="T", abstract="One. Two.")
    assert [c.chunk_id for c in chunk_paper(paper, embedder.count_tokens)] == ["p3#0"]


@pytest.mark.parametrize("name", CHUNKERS)
def test_chunkers__fit_the_window_with_the_title_and_lose_no_text(embedder, name):
    paper = Paper(paper_id="p4", title="A Fairly Long Title About Auditing Memorisation In Language Models", abstract=LONG_ABSTRACT)
    for window in (256, 128):
        chunks = make_chunker(name, embedder)(paper, max_tokens=window)
        assert len(chunks) > 2
        assert all(embedder.count_tokens(c.embed_text) <= window for c in chunks), name
        # Joined with spaces the chunks give the abstract back: no word lost, and none cut inside
        # (a cut in "19.3-49.2", as llama-index's default clause pattern makes, would add a space).
        assert " ".join(c.text for c in chunks) == " ".join(LONG_ABSTRACT.split())
        assert [c.chunk_id for c in chunks] == [f"p4#{i}" for i in range(len(chunks))]


def test_chunkers__llama_index_packs_whole_sentences_as_the_project_splits_them(embedder):
    sentences = [f"Sentence number {i} says e.g. that results hold at 0.{i}5 with et al. 2020 agreeing." for i in range(40)]
    paper = Paper(paper_id="p5", title="T", abstract=" ".join(sentences))
    chunks = make_chunker("llama-index", embedder)(paper, max_tokens=128)
    assert len(chunks) > 3
    for chunk in chunks:  # every chunk is a run of whole sentences
        assert split_sentences(chunk.text) == [s for s in sentences if s in chunk.text]
    assert [s for c in chunks for s in split_sentences(c.text)] == sentences


def test_chunkers__empty_abstract_is_one_title_only_chunk_and_unknown_names_are_user_errors(embedder):
    paper = Paper(paper_id="p6", title="Only A Title", abstract="  ")
    for name in CHUNKERS:
        assert [(c.chunk_id, c.text) for c in make_chunker(name, embedder)(paper, max_tokens=256)] == [("p6#0", "")]
    with pytest.raises(UserError, match="unknown chunker 'words'"):
        make_chunker("words", embedder)


def test_chunkers__llama_index_counts_with_the_model_tokenizer_never_tiktoken(embedder, monkeypatch):
    import llama_index.core.node_parser.text.sentence as sentence_module
    import llama_index.core.utils as li_utils

    def no_tiktoken(*args, **kwargs):
        raise AssertionError("llama-index reached for its default (tiktoken) tokenizer")

    monkeypatch.setattr(li_utils, "get_tokenizer", no_tiktoken)
    monkeypatch.setattr(sentence_module, "get_tokenizer", no_tiktoken)
    paper = Paper(paper_id="p7", title="T", abstract=LONG_ABSTRACT)
    assert len(make_chunker("llama-index", embedder)(paper, max_tokens=256)) > 1


def test_content_hash__sentences_keeps_the_old_hashes_and_the_llama_index_default_rechunks():
    import hashlib

    from ingest.pipeline import content_hash

    paper = Paper(paper_id="p8", title="T", abstract="An abstract.")
    before = hashlib.sha1("\x1f".join(["T", "An abstract.", "model", "256"]).encode()).hexdigest()  # the key so far
    assert content_hash(paper, "model", 256, "sentences") == before  # what existing libraries were chunked with
    assert content_hash(paper, "model", 256) == content_hash(paper, "model", 256, "llama-index") != before
