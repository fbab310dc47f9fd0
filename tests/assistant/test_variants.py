"""The embedding variant is part of a library's identity: a new library is int8, an existing one keeps the
variant it was built with (its queries are embedded with it), and two variants never share a collection."""

from __future__ import annotations

import json

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from ingest.readers import read_path
from tests.conftest import DATA

INT8, FP32 = "all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2"


@pytest.fixture
def shared_models(model_cache, monkeypatch):
    """Homes copy the session's models from the per-user cache instead of building them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(model_cache.parent / "xdg"))
    from assistant.library.embeddings import cuda_visible

    if cuda_visible():
        pytest.skip("a visible CUDA device makes fp32 the default variant")
    return model_cache


@pytest.fixture
def src(tmp_path):
    papers = []
    for f in sorted(DATA.glob("*.txt")):
        papers += read_path(f).papers
    path = tmp_path / "papers.jsonl"
    path.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers[:3]))
    return path


def test_variants__a_new_library_is_int8_and_stays_int8(shared_models, temp_home, src):
    app = App(Settings(home=temp_home))
    assert app.embedder.name == INT8
    report = app.ingest([src])
    assert report.new == 3 and report.sentences_embedded > 3

    again = App(Settings(home=temp_home))
    assert again.embedder.name == INT8 and again.library.count_papers() == 3
    title = next(again.library.iter_papers()).title
    hit = again.search(title, mode="dense")[0]
    assert hit.title == title and again.searcher.embedder.name == again.library.model == INT8  # queries as chunks

    fp32 = App(Settings(home=temp_home, embedding_variant="fp32"))
    assert fp32.embedder.name == FP32 and fp32.library.key != again.library.key
    assert fp32.library.count_papers() == 0  # vectors of two variants never meet in one collection


def test_variants__a_library_built_before_the_variants_keeps_fp32(shared_models, temp_home, src, embedder):
    App(Settings(home=temp_home), embedder=embedder).ingest([src])  # sentence-transformers fp32, as before
    app = App(Settings(home=temp_home))
    assert app.embedder.name == FP32 and app.embedder.active_engine == "onnx"
    assert app.library.count_papers() == 3
    title = next(app.library.iter_papers()).title
    hit = app.search(title, mode="dense")[0]
    assert hit.title == title and app.searcher.embedder.name == app.library.model == FP32
    assert app.ingest([src]).unchanged == 3  # nothing re-embedded
