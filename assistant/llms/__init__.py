"""Model backends as llama-index LLMs: ``make_llm(settings)`` builds the one the registry names (None: no LLM)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from assistant.core.settings import Settings


def make_llm(settings: "Settings") -> "LLM | None":
    """The llama-index LLM of ``settings.backend``, or None for a backend that uses no LLM (extractive)."""
    from assistant.core.backends import get_backend
    from assistant.llms.factories import import_object

    spec = get_backend(settings.backend)
    if not spec.uses_llm:
        return None
    return import_object(spec.factory, f"backend {spec.name!r} factory")(settings)
