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
    def __init__(self, settings: Settings, embedder=None, client=None, llm=None):
        self.settings = settings
        self._llm = llm
        self._embedder = embedder
        self._client = client
        self._lock = threading.RLock()

    @cached_property
    def client(self):
        """The Chroma store (assistant.library.chroma.Store): one per folder per process, shared by every App on it."""
        from assistant.library.store import open_store

        return self._client or open_store(self.settings.store_dir, self.settings.chroma_url)

    @cached_property
    def embedder(self):
        """The library's embedder: with embedding_variant "auto", the variant the library was built with."""
        if self._embedder is not None:
            return self._embedder
        from assistant.library.embeddings import make_embedder

        return make_embedder(self._embedding_settings())

    def _embedding_settings(self) -> Settings:
        s = self.settings
        if s.embedding_provider != "local" or s.embedding_variant != "auto":
            return s
        from assistant.library.embeddings import variant_of
        from assistant.library.onnx_models import VARIANTS
        from assistant.library.chroma import stored_models

        # A query must be embedded as its library's chunks were: an existing library keeps its variant.
        stored = {variant_of(m) for m in stored_models(self.client, s.library)}
        found = [v for v in VARIANTS if v in stored]
        return s.model_copy(update={"embedding_variant": found[0]}) if found else s

    @cached_property
    def library(self):
        from assistant.library.store import Library

        return Library(self.client, self.settings.library, self.embedder.name)

    @cached_property
    def history(self):
        """Saved conversations, answers and feedback (SQLite in the home folder, created on the first answer)."""
        from assistant.library.history import History

        return History(self.settings.home / "history.db")

    def settings_used(self) -> dict:
        """The settings an answer was made with, as saved beside it (no secrets)."""
        s = self.settings
        return {"library": s.library, "backend": s.backend, "llm_model": s.llm_model if s.backend != "extractive" else "",
                "retriever": s.retriever, "top_k": s.top_k, "embedding_model": s.embedding_model,
                "min_relevance": s.answerability.min_relevance,  # the key saved answers have always had (eval/feedback.py)
                "answerability": s.answerability.model_dump(), "extractive": s.extractive.model_dump()}

    def bm25(self):
        from assistant.library.bm25 import load_or_build

        location = self.settings.chroma_url or str(self.settings.store_dir)
        return load_or_build(self.library, self.settings.bm25_dir, location, self.settings.bm25_unit)

    @cached_property
    def searcher(self):
        from assistant.search.retriever import FusionConfig, Searcher

        fusion = FusionConfig(method=self.settings.fusion, dense_weight=self.settings.fusion_weight, rrf_k=self.settings.rrf_k,
                              passage_dense_weight=self.settings.passage_dense_weight)
        return Searcher(self.library, self.embedder, self.bm25, fusion, vectors=self.vectors)

    def require_papers(self) -> None:
        """Raise a UserError when the library is empty (every command that reads it checks first)."""
        if self.library.count_papers() == 0:
            raise UserError(f"library {self.settings.library!r} is empty: run `assistant ingest` first")

    def search(self, query: str, k: int | None = None, mode: str | None = None):
        return self.searcher.search(query, k=k or self.settings.top_k, mode=mode or self.settings.retriever)

    def ingest(self, paths: list[Path], fmt: str | None = None, progress: bool = False, on_progress=None,
               on_wait=None):
        """Ingest files into the library; ``on_wait`` gets the notes while another ingest into it holds the lock."""
        from ingest.pipeline import ingest

        with self._lock:
            return ingest(
                paths,
                self.library,
                self.embedder,
                fmt=fmt,
                chunk_tokens=self.settings.chunk_tokens,
                chunker=self.settings.chunker,
                lock_dir=self.settings.home / "locks",
                progress=progress,
                on_progress=on_progress,
                sentences=self.settings.sentence_vectors,
                pdf_dir=self.pdf_dir,
                log_dir=self.settings.home / "logs",
                lock_wait=self.settings.ingest_wait,
                on_wait=on_wait,
            )

    def doctor(self, repair: bool = False, note=None):
        """Check that every record of the library has its vector in the index; ``repair``: re-embed what is missing
        (holding the library's writer lock, as an ingest does). Returns ingest.repair.Repair (counts before and after)."""
        from ingest.pipeline import writer_lock
        from ingest.repair import Repair, check
        from ingest.repair import repair as re_embed

        gaps = check(self.library)
        if not repair or all(g.ok for g in gaps.values()):
            return Repair(before=gaps, after=gaps)
        with self._lock, writer_lock(self.settings.home / "locks", self.library.key, self.settings.ingest_wait, note):
            return re_embed(self.library, self.embedder, check(self.library), note=note or (lambda _: None))

    @property
    def pdf_dir(self) -> Path:
        """Where ingested PDFs are kept (named by the hash of their bytes); the chat page serves only this folder."""
        return self.settings.home / "pdfs"

    @cached_property
    def bank(self):
        """Sentences and vectors of abstracts, shared by answerability, the extractive synthesizer and the verifier."""
        from assistant.answering.evidence import SentenceBank

        # Sentence vectors stored at ingest are looked up; papers stored without them are embedded here.
        return SentenceBank(self.embedder.embed, lookup_fn=self.library.sentence_vectors, vectors=self.vectors)

    @cached_property
    def vectors(self):
        """Every text vector this process makes, shared by search and answering: a question is embedded once."""
        from assistant.library.vectors import TextVectors

        return TextVectors(self.embedder.embed)

    def library_stats(self):
        """Word document frequencies of the library (from its BM25 index, so always in step with it)."""
        from assistant.answering.answerability import LibraryStats

        index = self.bm25()
        with self._lock:
            cached = getattr(self, "_stats", None)
            if cached is None or cached[0] is not index:
                self._stats = (index, LibraryStats.from_bm25(index))
            return self._stats[1]

    @cached_property
    def verifier(self):
        from assistant.answering.verify import Verifier

        from assistant.core.settings import LOCAL_MODEL

        # Its weights were fitted on MiniLM's cosine scale: the bank's vectors (the source sentences it aligns to
        # were embedded when the evidence was gathered) when the library uses MiniLM, else its own MiniLM.
        embed = self.bank.embed_cached if self.embedder.name.startswith(LOCAL_MODEL) else None
        return Verifier(embed, llm=self.llm if self.settings.llm_verify else None)

    def extractive(self, streaming: bool = True):
        """The extractive synthesizer: the answer of the extractive backend, the evidence an LLM rewrites, and the
        answer shown when an LLM's fails the check."""
        from assistant.answering.extractive import ExtractiveSynthesizer

        return ExtractiveSynthesizer(self.bank, stats=self.library_stats, config=self.settings.extractive,
                                     streaming=streaming)

    def synthesizer(self, streaming: bool = True):
        """The configured backend's synthesizer: extractive (no LLM) or the LLM's, writing from the extractive
        synthesizer's evidence."""
        if self.llm is None:
            return self.extractive(streaming)
        from assistant.answering.llm_synth import LLMSynthesizer, structured_for

        s = self.settings
        return LLMSynthesizer(self.llm, evidence=self.extractive(streaming), config=s.llm_answer,
                              structured=structured_for(s.backend, s.llm_answer.structured),
                              context_window=s.llm_context_window, max_tokens=s.llm_max_tokens, streaming=streaming)

    def query_engine(self, streaming: bool = False):
        """The answer path as one llama-index query engine (retriever → answerability → synthesizer → verifier)."""
        from assistant.answering.answerability import Answerability
        from assistant.answering.engine import CitedQueryEngine
        from assistant.llms.chat import model_name

        return CitedQueryEngine(
            retriever=self.retriever(),
            synthesizer=self.synthesizer(),
            # the bank's embedding goes through the one vector cache: the question searched with is not embedded again
            answerability=Answerability(self.bank.embed, self.settings.answerability,
                                        max_question_chars=self.settings.max_question_chars),
            verifier=self.verifier,
            bank=self.bank,
            stats=self.library_stats,
            condense_llm=self.llm,
            llm_timeout=self.settings.llm_timeout,
            get_papers=self.library.get_papers,
            backend=self.settings.backend,
            model="sentence-selection" if self.llm is None else model_name(self.llm),
            k=self.settings.top_k,
            streaming=streaming,
            fallback=self.extractive() if self.llm is not None and self.settings.llm_answer.fallback else None,
            min_supported=self.settings.llm_answer.min_supported,
        )

    @cached_property
    def engine(self):
        """The query engine the CLI, the chat page and the harness answer through."""
        return self.query_engine()

    @cached_property
    def llm(self):
        """The llama-index LLM of the configured backend, or None for a backend without one (extractive)."""
        from assistant.llms import make_llm

        return self._llm if self._llm is not None else make_llm(self.settings)

    def retriever(self, k: int | None = None):
        """The paper retriever as a llama-index BaseRetriever."""
        from assistant.search.nodes import PaperRetriever

        return PaperRetriever(self.searcher, k=k or self.settings.top_k, mode=self.settings.retriever)
