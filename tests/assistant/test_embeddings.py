"""The ONNX Runtime path gives the same vectors as sentence-transformers, and serves queries without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

TEXTS = [
    "compare NPO and gradient ascent",
    "What is negative preference optimization?",
    "",
    "Large Language Model Unlearning via Embedding-Corrupted Prompts. " * 30,  # past the 256-token window
    "Ünïcödé — ∑ symbols, 中文 and numbers 3.14",
    "LoRA",
]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory):
    from assistant.library.embeddings import LocalEmbedder

    return LocalEmbedder(cache_dir=tmp_path_factory.mktemp("models"), engine="onnx")


def test_embeddings__onnx_matches_sentence_transformers(onnx_embedder, embedder):
    from assistant.library.embeddings import LocalEmbedder

    torch_vectors = LocalEmbedder(engine="torch").embed(TEXTS)
    onnx_vectors = onnx_embedder.embed(TEXTS)
    assert onnx_embedder.active_engine == "onnx"
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == (len(TEXTS), 384)
    assert (np.sum(onnx_vectors * torch_vectors, axis=1) > 0.9999).all()
    np.testing.assert_allclose(onnx_embedder.embed_query(TEXTS[0]), onnx_vectors[0], atol=1e-5)


def test_embeddings__batching_does_not_change_vectors(onnx_embedder):
    one_by_one = np.stack([onnx_embedder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(onnx_embedder.embed(TEXTS), one_by_one, atol=1e-5)


def test_embeddings__exported_model_serves_queries_without_importing_torch(onnx_embedder):
    onnx_embedder.embed(["export first"])
    code = (
        "import sys; from assistant.library.embeddings import LocalEmbedder; "
        f"e = LocalEmbedder(cache_dir={str(onnx_embedder.cache_dir)!r}); v = e.embed_query('hello'); "
        "assert e.active_engine == 'onnx' and v.shape == (384,); "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_embeddings__without_a_cache_folder_sentence_transformers_does_the_work(embedder):
    assert embedder.active_engine == "torch"
    assert embedder.embed(["x"]).shape == (1, 384)
