"""Wiring: builds the store, embedder, BM25 loader, searcher and backend from Settings.

The CLI, the UI and the eval harness all go through one ``App``, so they run
the same functions. Everything is created lazily on first use (opening Chroma
or loading the model costs seconds) and injected downward; nothing here holds
retrieval or answer logic of its own.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

from assistant.core.errors import UserError
from assistant.core.settings import Settings


def load_settings(**overrides) -> Settings:
    """Settings from env and TOML with flags on top; an invalid value is a UserError naming the field."""
    from pydantic import ValidationError

    from assistant.core.settings import load_settings as _load

    try:
        return _load(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UserError(f"invalid setting {field}: {err['msg']}") from None


def load_app(**overrides) -> "App":
    """An App from the effective settings (flags given as keyword arguments; None means not given)."""
    return App(load_settings(**overrides))


class App:
    def __init__(self, settings: Settings, embedder=None, backend=None, client=None, llm=None):
        self.settings = settings
        self._llm = llm
        self._embedder = embedder
        self._backend = backend
        self._client = client
        self._lock = threading.RLock()

    @cached_property
    def client(self):
        from assistant.library.store import make_client

        return self._client or make_client(self.settings.store_dir, self.settings.chroma_url)

    @cached_property
    def embedder(self):
        from assistant.library.embeddings import make_embedder

        return self._embedder or make_embedder(self.settings)

    @cached_property
    def library(self):
        from assistant.library.store import Library

        return Library(self.client, self.settings.library, self.embedder.name)

    def bm25(self):
        from assistant.library.bm25 import load_or_build

        location = self.settings.chroma_url or str(self.settings.store_dir)
        return load_or_build(self.library, self.settings.bm25_dir, location, self.settings.bm25_unit)

    @cached_property
    def searcher(self):
        from assistant.search.retriever import FusionConfig, Searcher

        fusion = FusionConfig(method=self.settings.fusion, dense_weight=self.settings.fusion_weight, rrf_k=self.settings.rrf_k)
        return Searcher(self.library, self.embedder, self.bm25, fusion)

    def require_papers(self) -> None:
        """Raise a UserError when the library is empty (every command that reads it checks first)."""
        if self.library.count_papers() == 0:
            raise UserError(f"library {self.settings.library!r} is empty: run `assistant ingest` first")

    def search(self, query: str, k: int | None = None, mode: str | None = None):
        return self.searcher.search(query, k=k or self.settings.top_k, mode=mode or self.settings.retriever)

    def ingest(self, paths: list[Path], fmt: str | None = None, progress: bool = False, on_progress=None):
        from ingest.pipeline import ingest

        with self._lock:
            return ingest(
                paths,
                self.library,
                self.embedder,
                fmt=fmt,
                chunk_tokens=self.settings.chunk_tokens,
                lock_dir=self.settings.home / "locks",
                progress=progress,
                on_progress=on_progress,
            )

    @cached_property
    def backend(self):
        from assistant.answering.backend_base import make_backend

        return self._backend or make_backend(self.settings, embed_fn=self.embedder.embed)

    @cached_property
    def engine(self):
        from assistant.answering.engine import AnswerEngine

        return AnswerEngine(
            lambda query, k: self.searcher.search(query, k=k, mode=self.settings.retriever),
            self.backend,
            k=self.settings.top_k,
            min_relevance=self.settings.min_relevance,
            get_papers=self.library.get_papers,
        )

    @cached_property
    def llm(self):
        """The llama-index LLM of the configured backend, or None for a backend without one (extractive)."""
        from assistant.llms import make_llm

        return self._llm if self._llm is not None else make_llm(self.settings)

    def retriever(self, k: int | None = None):
        """The paper retriever as a llama-index BaseRetriever."""
        from assistant.search.nodes import PaperRetriever

        return PaperRetriever(self.searcher, k=k or self.settings.top_k, mode=self.settings.retriever)
