"""Factories named by the backend registry: each builds a llama-index LLM from Settings.

Retries are the model client's own: the OpenAI classes get an
``openai.OpenAI`` client configured with ``llm_max_retries`` (the SDK retries
connection errors, 408/409/429 and 5xx with backoff, honouring Retry-After),
and llama-index's own retry wrapper is off (``max_retries=0`` on the LLM), so
one setting means one number of tries. ``llm_timeout`` bounds the whole answer
(llms/deadline.py): the client's HTTP hook gives each request only the time
left and sends none after it.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from assistant.core.errors import UserError

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from assistant.core.settings import Settings


# The key given to the client for an OpenAI-compatible server that has none of its own (llama.cpp, Ollama): the
# client insists on a non-empty key; the request goes out with no Authorization header at all (_drop_placeholder).
NO_KEY = "no-key"


def _drop_placeholder(request) -> None:
    if request.headers.get("Authorization") == f"Bearer {NO_KEY}":
        del request.headers["Authorization"]


def _client(settings: "Settings", api_key: str, base_url: str | None, openai_api: bool = True):
    """The openai client. For any server but the OpenAI API (``openai_api=False``) nothing of an OpenAI account goes
    out: not the SDK's OPENAI_ORG_ID / OPENAI_PROJECT_ID headers from the environment, and no Authorization header
    when the server has no key (``NO_KEY``)."""
    import openai

    from assistant.llms.deadline import limit_request

    hooks = [limit_request]  # each request gets only the answer's time left (llms/deadline.py)
    extra = {}
    if not openai_api:
        hooks.append(_drop_placeholder)
        extra = {"default_headers": {"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit}}
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=settings.llm_timeout,
                         max_retries=max(0, settings.llm_max_retries),
                         http_client=openai.DefaultHttpxClient(event_hooks={"request": hooks}), **extra)


def openai_llm(settings: "Settings") -> "LLM":
    """The hosted OpenAI API (llama_index.llms.openai.OpenAI); OPENAI_BASE_URL points it elsewhere (proxies, tests)."""
    from llama_index.llms.openai import OpenAI

    key = settings.api_key()
    if not key:
        raise UserError("OPENAI_API_KEY is not set: export it (or ASSISTANT_LLM_API_KEY), or use the extractive backend")
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    try:
        return OpenAI(model=settings.llm_model, api_key=key, api_base=base_url, temperature=settings.llm_temperature,
                      max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout, max_retries=0,
                      openai_client=_client(settings, key, base_url))
    except ValueError as exc:  # e.g. a model only served by the Responses API
        raise UserError(f"cannot use model {settings.llm_model!r} with the openai backend: {exc}") from None


def openai_like_llm(settings: "Settings") -> "LLM":
    """Any OpenAI-compatible server (llama_index.llms.openai_like.OpenAILike): base URL and model name. It gets its
    own key (ASSISTANT_LLM_SERVER_API_KEY) or none; the OpenAI key never goes there."""
    from llama_index.llms.openai_like import OpenAILike

    if not settings.llm_base_url:
        raise UserError("ASSISTANT_LLM_BASE_URL is not set: give the server's URL, e.g. http://127.0.0.1:8080/v1")
    base_url = normalise_base_url(settings.llm_base_url)
    key = settings.server_api_key() or NO_KEY
    return OpenAILike(model=settings.llm_model, api_base=base_url, api_key=key, is_chat_model=True,
                      context_window=settings.llm_context_window, temperature=settings.llm_temperature,
                      max_tokens=settings.llm_max_tokens, timeout=settings.llm_timeout, max_retries=0,
                      openai_client=_client(settings, key, base_url, openai_api=False))


def import_path_llm(settings: "Settings") -> "LLM":
    """Any llama-index LLM class named by import path (llm_class) and built with llm_kwargs."""
    if not settings.llm_class:
        raise UserError("the llama-index backend needs ASSISTANT_LLM_CLASS, e.g. llama_index.llms.ollama:Ollama")
    cls = import_object(settings.llm_class, "llm_class")
    try:
        llm = cls(**settings.llm_kwargs)
    except Exception as exc:  # the class's own validation: say which setting to fix
        raise UserError(f"cannot build {settings.llm_class} with llm_kwargs {sorted(settings.llm_kwargs)}: "
                        f"{type(exc).__name__}: {exc}") from None
    from llama_index.core.llms import LLM

    if not isinstance(llm, LLM):
        raise UserError(f"llm_class {settings.llm_class} is not a llama-index LLM (got {type(llm).__name__})")
    return llm


def import_object(path: str, setting: str = "import path") -> Any:
    """The object at "package.module:attr" (or "package.module.attr"); a UserError naming ``setting`` otherwise."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UserError(f"{setting} {path!r} is not an import path like 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{setting} {path!r}: cannot import {module_name} ({exc}); is its package installed?") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserError(f"{setting} {path!r}: {module_name} has no {attr!r}") from None


def normalise_base_url(url: str) -> str:
    """Add ``/v1`` to a bare ``http://host:port``: every common server serves the OpenAI API there."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url
