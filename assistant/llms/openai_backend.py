"""LLM backends over the OpenAI chat-completions API: the hosted API and any OpenAI-compatible server.

Both use the real ``openai`` client (chat endpoint, streamed). This module owns
what happens around the call:

* the prompt: rendered from ``prompts/<mode>.md`` and trimmed to the model's
  context window (lowest-ranked sources dropped first, then abstracts cut), so a
  long prompt never fails on the server;
* retries: the client's own retries are off (``max_retries=0``) and we retry
  429 and 5xx here, with exponential backoff that honours Retry-After, so the
  behaviour is explicit, bounded and testable;
* errors: every failure becomes a one-line ``BackendError`` (cannot reach the
  server, timeout, key rejected, model not found, broken or malformed stream).
  A stream that ends without a finish reason is an error, never a short answer.

Chat history is not sent with answer prompts: the caller condenses a follow-up
into a standalone question first (``prompts/condense.md``), because earlier
answers cite an earlier numbering of sources and would mislead the model.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import openai

from assistant.answering.backend_base import AnswerTask, BackendError, Source
from assistant.core.prompts import format_sources, load_prompt

if TYPE_CHECKING:
    from assistant.core.settings import Settings

CHARS_PER_TOKEN = 3.5  # conservative for English; tiktoken would need a download
MESSAGE_OVERHEAD = 8  # tokens per chat message for role markers and templates
SAFETY_TOKENS = 64  # slack for the estimate's error
MIN_ABSTRACT_CHARS = 200
MIN_ANSWER_TOKENS = 64
MAX_BACKOFF_S = 30.0


def estimate_tokens(messages: list[dict]) -> int:
    """A char-based token estimate for chat messages (errs on the high side)."""
    return sum(int(len(m.get("content") or "") / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD for m in messages)


def retry_delay(headers: httpx.Headers | dict | None, attempt: int, base: float = 0.5) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): Retry-After when the server gives one, else 0.5·2^attempt."""
    headers = headers or {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if after:
        try:
            return max(0.0, float(after))
        except ValueError:
            try:  # the HTTP-date form: "Wed, 21 Oct 2015 07:28:00 GMT"
                return max(0.0, email.utils.parsedate_to_datetime(after).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return min(MAX_BACKOFF_S, base * 2**attempt)


class _ChatBackend:
    """Shared machinery of the two OpenAI-API backends."""

    name = "openai-compatible"
    can_stream = True
    can_complete = True
    # Hosted models accept max_completion_tokens (reasoning models require it);
    # local servers (llama.cpp, Ollama, older vLLM) know only max_tokens.
    _max_tokens_param = "max_tokens"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str,
        context_window: int,
        max_tokens: int,
        timeout: float,
        max_retries: int,
        temperature: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.model = model
        self.context_window = context_window
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.temperature = temperature
        self.sleep = sleep  # injectable so tests can assert the waits without waiting
        # The client's retries are off: _create retries, explicitly and testably.
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self.url = str(self.client.base_url).rstrip("/")

    # -- the Backend interface -------------------------------------------------

    def stream(self, task: AnswerTask) -> Iterator[str]:
        messages, max_tokens = self.build_messages(task)
        response = self._create(messages, max_tokens, stream=True)
        finished = False
        try:
            for chunk in response:
                choices = getattr(chunk, "choices", None) or []
                if not choices:
                    continue  # usage-only or keep-alive chunks
                delta = getattr(choices[0], "delta", None)
                text = getattr(delta, "content", None) if delta is not None else None
                if text:
                    yield text
                if getattr(choices[0], "finish_reason", None):
                    finished = True
        except (httpx.HTTPError, openai.APIError) as exc:
            raise BackendError(f"the model server at {self.url} broke off the answer ({type(exc).__name__}); try again") from exc
        except (ValueError, AttributeError, TypeError) as exc:
            raise BackendError(f"the model server at {self.url} sent a malformed stream ({type(exc).__name__})") from exc
        finally:
            response.close()
        if not finished:
            # A connection closed cleanly part-way looks like a normal end; only a
            # finish reason says the answer is whole.
            raise BackendError(f"the model server at {self.url} ended the answer before finishing; try again")

    def complete(self, messages: list[dict]) -> str:
        budget = self.context_window - estimate_tokens(messages) - SAFETY_TOKENS
        max_tokens = min(self.max_tokens, budget)
        if max_tokens < MIN_ANSWER_TOKENS:
            raise BackendError(f"the request is too long for {self.model}'s context window ({self.context_window} tokens)")
        response = self._create(messages, max_tokens, stream=False)
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise BackendError(f"the model server at {self.url} sent a malformed reply (no message)") from exc
        if not isinstance(content, str):
            raise BackendError(f"the model server at {self.url} sent a malformed reply (no text)")
        return content

    # -- prompt building -----------------------------------------------------------

    def render(self, task: AnswerTask, sources: list[Source]) -> list[dict]:
        values = {"question": task.question, "sources": format_sources(sources)}
        if task.mode == "compare":
            values["sides"] = "; ".join(task.sides) if task.sides else "(as named in the question)"
        return load_prompt(task.mode).render(**values)

    def build_messages(self, task: AnswerTask) -> tuple[list[dict], int]:
        """Chat messages that fit the context window with room for the answer, and the answer's token limit."""
        budget = self.context_window - self.max_tokens - SAFETY_TOKENS
        sources = list(task.sources)
        messages = self.render(task, sources)
        # 1. Drop the lowest-ranked sources (lowest score, later rank on ties), keeping one.
        while estimate_tokens(messages) > budget and len(sources) > 1:
            worst = min(range(len(sources)), key=lambda i: (sources[i].score, -i))
            del sources[worst]
            messages = self.render(task, sources)
        # 2. Cut the remaining abstracts to a common length, keeping their opening sentences.
        limit = max((len(s.abstract) for s in sources), default=0)
        trimmed = sources
        while estimate_tokens(messages) > budget and limit > MIN_ABSTRACT_CHARS:
            excess_chars = (estimate_tokens(messages) - budget) * CHARS_PER_TOKEN
            limit = max(MIN_ABSTRACT_CHARS, limit - max(1, int(excess_chars / len(sources))))
            trimmed = [replace(s, abstract=_truncate(s.abstract, limit)) for s in sources]
            messages = self.render(task, trimmed)
        # 3. Still too long (a huge question): shorten the answer budget rather than fail on the server.
        room = self.context_window - estimate_tokens(messages) - SAFETY_TOKENS
        max_tokens = min(self.max_tokens, room)
        if max_tokens < MIN_ANSWER_TOKENS:
            raise BackendError(f"the question is too long for {self.model}'s context window ({self.context_window} tokens)")
        return messages, max_tokens

    # -- the call, with retries ------------------------------------------------------

    def _create(self, messages: list[dict], max_tokens: int, stream: bool):
        for attempt in range(self.max_retries + 1):
            try:
                return self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    stream=stream,
                    **{self._max_tokens_param: max_tokens},
                )
            except openai.APITimeoutError as exc:  # before APIConnectionError: it is a subclass
                raise BackendError(f"the model server at {self.url} did not answer within {self.timeout:g} s") from exc
            except openai.APIConnectionError as exc:
                raise BackendError(f"cannot reach the model server at {self.url}") from exc
            except openai.AuthenticationError as exc:
                raise BackendError(f"the model server at {self.url} rejected the API key (401)") from exc
            except openai.NotFoundError as exc:
                raise BackendError(f"model {self.model!r} not found at {self.url} (404); check the model name") from exc
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500:
                    raise BackendError(f"the model server at {self.url} refused the request ({status}): {_short(exc.message)}") from exc
                what = "rate-limited the request (429)" if status == 429 else f"failed ({status})"
                if attempt == self.max_retries:
                    raise BackendError(f"the model server at {self.url} {what} {attempt + 1} times; try again later") from exc
                delay = retry_delay(exc.response.headers, attempt)
                if delay > MAX_BACKOFF_S:
                    raise BackendError(f"the model server at {self.url} {what} and asks to wait {delay:.0f} s; try again later") from exc
                self.sleep(delay)
            except (ValueError, openai.APIResponseValidationError) as exc:
                raise BackendError(f"the model server at {self.url} sent a malformed reply ({type(exc).__name__})") from exc
        raise AssertionError("unreachable")  # the loop returns or raises


class OpenAIBackend(_ChatBackend):
    """The hosted OpenAI API (key from settings or OPENAI_API_KEY). ``base_url`` overrides the endpoint (tests, proxies)."""

    name = "openai"
    _max_tokens_param = "max_completion_tokens"

    def __init__(self, settings: "Settings", *, base_url: str | None = None, sleep: Callable[[float], None] = time.sleep):
        key = settings.api_key()
        if not key:
            raise BackendError("OPENAI_API_KEY is not set: export it (or ASSISTANT_LLM_API_KEY), or use the extractive backend")
        # base_url None: the client's default (or OPENAI_BASE_URL).
        super().__init__(base_url=base_url, api_key=key, sleep=sleep, **_llm_options(settings))


class OpenAICompatibleBackend(_ChatBackend):
    """Any server speaking the OpenAI chat API (Ollama, vLLM, llama.cpp server, LM Studio): configuration only."""

    name = "openai-compatible"

    def __init__(self, settings: "Settings", *, sleep: Callable[[float], None] = time.sleep):
        if not settings.llm_base_url:
            raise BackendError("ASSISTANT_LLM_BASE_URL is not set: give the server's URL, e.g. http://127.0.0.1:8080/v1")
        # Local servers usually need no key, but the client insists on one.
        super().__init__(base_url=normalise_base_url(settings.llm_base_url), api_key=settings.api_key() or "not-needed",
                         sleep=sleep, **_llm_options(settings))


def _llm_options(settings: "Settings") -> dict:
    """The model settings both backends take from Settings."""
    return {
        "model": settings.llm_model,
        "context_window": settings.llm_context_window,
        "max_tokens": settings.llm_max_tokens,
        "timeout": settings.llm_timeout,
        "max_retries": settings.llm_max_retries,
        "temperature": settings.llm_temperature,
    }


def normalise_base_url(url: str) -> str:
    """Add ``/v1`` to a bare ``http://host:port``: every common server serves the OpenAI API there."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def _short(message: str, limit: int = 160) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
