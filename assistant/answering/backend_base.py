"""The backend interface: what an answer backend receives, what it yields, and how one is chosen by name.

A backend answers one ``AnswerTask`` (a question, a mode and numbered sources)
by streaming text that cites the sources as ``[n]``. It also offers a plain
``complete(messages)`` chat call for the small jobs around answering
(condensing a follow-up, judging an answer, splitting a question).

Backends are small classes registered by name; an OpenAI-compatible server is
configuration (base URL, model, context window), not a new class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from assistant.core.settings import Settings

MODES = ("answer", "compare", "summarize")


@dataclass
class Source:
    """One numbered paper given to a backend. ``n`` is its citation number, stable from retrieval to display."""

    n: int
    paper_id: str
    title: str
    abstract: str
    score: float = 0.0  # the retriever's fused score: orders sources, no fixed scale
    relevance: float | None = None  # cosine similarity to the question: the scale shown to users


@dataclass
class AnswerTask:
    """What to answer: ``mode`` is "answer", "compare" (with ``sides``) or "summarize" (question = topic)."""

    question: str
    mode: str = "answer"
    sources: list[Source] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)  # earlier chat turns {"role", "content"}, oldest first

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown answer mode {self.mode!r}; expected one of {', '.join(MODES)}")


from assistant.core.errors import BackendError  # noqa: E402  (re-exported for the backends)


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str
    context_window: int
    can_stream: bool
    can_complete: bool  # False where complete() always raises (the extractive backend)

    def stream(self, task: AnswerTask) -> Iterator[str]:
        """Yield the answer in pieces; raise BackendError if it cannot be finished."""
        ...

    def complete(self, messages: list[dict]) -> str:
        """One plain chat call (no sources handling); raise BackendError on failure."""
        ...


EmbedFn = Callable[[list[str]], np.ndarray]


def make_backend(settings: "Settings", embed_fn: EmbedFn | None = None) -> Backend:
    """The backend named by ``settings.backend``.

    ``embed_fn`` is used by the extractive backend; when it is not given, the
    embedder configured in settings is built (lazily loads the local model).
    """
    name = settings.backend
    if name == "extractive":
        from assistant.answering.extractive import ExtractiveBackend

        if embed_fn is None:
            from assistant.library.embeddings import make_embedder

            embed_fn = make_embedder(settings).embed
        return ExtractiveBackend(embed_fn)
    if name == "openai":
        from assistant.llms.openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    if name == "openai-compatible":
        from assistant.llms.openai_backend import OpenAICompatibleBackend

        return OpenAICompatibleBackend(settings)
    raise BackendError(f"unknown backend {name!r}: use extractive, openai or openai-compatible")
