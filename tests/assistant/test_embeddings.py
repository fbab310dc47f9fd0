"""The ONNX models: fp32 gives sentence-transformers' vectors, int8 is built reproducibly and stays close,
queries run without torch, batches are cut by length, and a CUDA device is used when one is visible."""

from __future__ import annotations

import hashlib
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


@pytest.fixture
def shared_models(model_cache, monkeypatch):
    """Point the per-user model cache at the session's built models."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(model_cache.parent / "xdg"))
    from assistant.library.onnx_models import shared_cache_dir

    shared = shared_cache_dir()
    shared.mkdir(parents=True, exist_ok=True)
    for f in model_cache.glob("*.onnx"):
        if not (shared / f.name).exists():
            (shared / f.name).hardlink_to(f)
    return model_cache


@pytest.fixture(scope="module")
def onnx_embedder(model_cache):
    from assistant.library.embeddings import LocalEmbedder

    return LocalEmbedder(cache_dir=model_cache, engine="onnx")


@pytest.fixture(scope="module")
def int8_embedder(model_cache):
    from assistant.library.embeddings import LocalEmbedder

    return LocalEmbedder(cache_dir=model_cache, variant="int8")


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


def test_embeddings__int8_is_its_own_variant_close_to_fp32_and_the_same_in_any_batch(int8_embedder, onnx_embedder):
    from assistant.core.errors import UserError
    from assistant.library.embeddings import LocalEmbedder

    assert (int8_embedder.name, onnx_embedder.name) == ("all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2")
    with pytest.raises(UserError, match="ONNX Runtime only"):
        LocalEmbedder(variant="int8", engine="torch")
    texts = TEXTS * 3
    int8 = int8_embedder.embed(texts)
    cos = np.sum(int8 * onnx_embedder.embed(texts), axis=1)
    assert cos.min() > 0.98 and cos.mean() > 0.99, cos
    # Activations are quantized per run: a text runs alone, so its vector never depends on its neighbours.
    alone = np.stack([int8_embedder.embed_query(t) for t in texts])
    np.testing.assert_allclose(int8, alone, atol=1e-6)


def test_embeddings__model_files_are_the_same_bytes_when_built_again(model_cache, tmp_path, monkeypatch):
    from assistant.library.onnx_models import model_file, quantize_int8

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    again = quantize_int8(model_file(model_cache, "fp32"), tmp_path / "int8.onnx")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(again) == digest(model_file(model_cache, "int8"))


@pytest.mark.slow
def test_embeddings__the_fp32_export_is_the_same_bytes_when_built_again(model_cache, tmp_path, monkeypatch):
    from assistant.library.onnx_models import ensure_model, model_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    again = ensure_model(tmp_path / "models", "fp32")
    assert again.read_bytes() == model_file(model_cache, "fp32").read_bytes()


def test_embeddings__a_new_home_copies_the_built_model_and_serves_queries_without_torch(shared_models, tmp_path):
    home_models = tmp_path / "home" / "models"
    code = (
        "import sys; from assistant.library.embeddings import LocalEmbedder; "
        f"e = LocalEmbedder(cache_dir={str(home_models)!r}, variant='int8'); v = e.embed_query('hello'); "
        "assert e.active_engine == 'onnx' and v.shape == (384,); "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert [p.name.split("-")[-2] for p in home_models.glob("*.onnx")] == ["int8"]  # copied, not rebuilt from fp32


def test_embeddings__batches_are_cut_by_length_so_little_goes_to_padding(onnx_embedder):
    short = ["LoRA", "a short sentence about unlearning"] * 40
    long = ["A long abstract sentence about preference optimization and unlearning benchmarks. " * 6] * 40
    mixed = [t for pair in zip(short, long) for t in pair]
    before = dict(onnx_embedder.stats)
    onnx_embedder.embed(mixed)
    tokens = onnx_embedder.stats["tokens"] - before["tokens"]
    padded = onnx_embedder.stats["padded_tokens"] - before["padded_tokens"]
    lengths = [onnx_embedder.count_tokens(t) for t in mixed]
    in_arrival_order = sum(len(b) * max(b) for b in (lengths[i : i + 64] for i in range(0, len(lengths), 64)))
    assert tokens == sum(lengths) and padded <= 1.15 * tokens and padded < 0.7 * in_arrival_order, (tokens, padded, in_arrival_order)


def test_embeddings__without_a_cache_folder_sentence_transformers_does_the_work(embedder):
    assert embedder.active_engine == "torch"
    assert embedder.embed(["x"]).shape == (1, 384)


def _cuda_engine_present() -> bool:
    from assistant.library.embeddings import cuda_visible

    if not cuda_visible():
        return False
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return True
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda_engine_present(), reason="no CUDA device visible (or no engine that can use one)")
def test_embeddings__bulk_embedding_uses_a_visible_cuda_device_and_gives_the_cpu_vectors(onnx_embedder, model_cache):
    from assistant.library.embeddings import LocalEmbedder

    gpu = LocalEmbedder(cache_dir=model_cache, engine="onnx", device="auto")
    texts = TEXTS * 50
    vectors = gpu.embed_bulk(texts)
    assert gpu.bulk[0] == "cuda"
    assert (np.sum(vectors * onnx_embedder.embed(texts), axis=1) > 0.9999).all()


def test_embeddings__without_a_cuda_device_bulk_embedding_stays_on_the_cpu(int8_embedder, monkeypatch):
    import assistant.library.embeddings as embeddings
    from assistant.core.errors import UserError

    monkeypatch.setattr(embeddings, "cuda_visible", lambda: False)
    cpu = embeddings.LocalEmbedder(cache_dir=int8_embedder.cache_dir, variant="fp32")
    assert cpu.bulk == ("cpu", None)
    assert embeddings.default_variant() == "int8"
    with pytest.raises(UserError, match="cuda"):
        _ = embeddings.LocalEmbedder(cache_dir=int8_embedder.cache_dir, device="cuda").bulk
