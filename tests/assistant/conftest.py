"""Fixtures shared by the embedding and variant tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """Both model files (fp32 and int8), built once per test session: the per-user cache every test home copies from."""
    from assistant.library.onnx_models import ensure_model

    cache = tmp_path_factory.getbasetemp() / "onnx-model-cache"
    with pytest.MonkeyPatch.context() as mp:  # never the real user's cache
        mp.setenv("XDG_CACHE_HOME", str(cache.parent / "xdg"))
        for variant in ("fp32", "int8"):
            ensure_model(cache, variant)
    return cache
