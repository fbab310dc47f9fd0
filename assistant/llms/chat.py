"""Calling a llama-index LLM: chat messages in, text out (whole or streamed), failures as one-line BackendErrors.

Prompts are rendered as ``[{"role", "content"}]`` dicts (``core.prompts``);
these helpers turn them into llama-index ``ChatMessage`` objects, call any
``LLM``, and map what can go wrong (unreachable, timed out, key rejected, model
unknown, rate-limited past the retries, a stream that breaks off or ends
without a finish reason, out of time) to a ``BackendError`` written for the
user. A stream that stops early is an error, never a short answer.

Every call keeps to a ``Deadline`` (llms/deadline.py): the answer's own when the
engine passes one (ASSISTANT_LLM_TIMEOUT for the whole answer), else one of
the LLM's ``timeout`` for this call alone. The message of a call that runs out
says how long it waited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from assistant.core.errors import BackendError
from assistant.llms.deadline import Deadline, DeadlineExceeded, bounded

if TYPE_CHECKING:
    from llama_index.core.llms import LLM


def where(llm: "LLM") -> str:
    """How errors name the model: its server's URL when it has one."""
    base = getattr(llm, "api_base", None) or getattr(llm, "base_url", None)
    return f"the model server at {str(base).rstrip('/')}" if base else f"the model backend {type(llm).__name__}"


def model_name(llm: "LLM") -> str:
    return str(getattr(llm, "model", "") or getattr(llm, "model_name", "") or type(llm).__name__)


def _messages(messages: list[dict]):
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role=m["role"], content=m["content"]) for m in messages]


def with_max_tokens(llm: "LLM", max_tokens: int | None) -> "LLM":
    """The LLM answering at most ``max_tokens`` (a copy; LLMs without the setting are used as they are)."""
    if not max_tokens or getattr(llm, "max_tokens", None) in (None, max_tokens) or not hasattr(llm, "model_copy"):
        return llm
    return llm.model_copy(update={"max_tokens": max_tokens})


def own_deadline(llm: "LLM") -> Deadline | None:
    """A deadline for a call made outside an answer: the LLM's own timeout (None when it has none)."""
    timeout = getattr(llm, "timeout", None)
    return Deadline(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None


def complete(llm: "LLM", messages: list[dict], max_tokens: int | None = None,
             deadline: Deadline | None = None) -> str:
    """One chat call; the reply's text. Raises BackendError (also when ``deadline`` passes)."""
    llm = with_max_tokens(llm, max_tokens)
    deadline = deadline or own_deadline(llm)
    try:
        (response,) = bounded(lambda: [llm.chat(_messages(messages))], deadline)
    except Exception as exc:
        raise _failure(llm, exc, deadline) from exc
    content = response.message.content
    if not isinstance(content, str):
        raise BackendError(f"{where(llm)} sent a malformed reply (no text)")
    return content


def stream(llm: "LLM", messages: list[dict], max_tokens: int | None = None,
           deadline: Deadline | None = None) -> Iterator[str]:
    """The reply in pieces as the model writes it. Raises BackendError, also part-way (a deadline cut included)."""
    llm = with_max_tokens(llm, max_tokens)
    deadline = deadline or own_deadline(llm)
    # An OpenAI-API model says when an answer is whole (a finish reason); other LLMs' streams just end.
    finished = False if getattr(llm, "api_base", None) else None
    written = False
    try:
        for response in bounded(lambda: llm.stream_chat(_messages(messages)), deadline):
            choices = getattr(response.raw, "choices", None)
            if choices is not None:  # an OpenAI-style chunk: only a finish reason says the answer is whole
                finished = bool(finished) or any(getattr(c, "finish_reason", None) for c in choices)
            if response.delta:
                written = True
                yield response.delta
    except BackendError:
        raise
    except Exception as exc:
        raise _failure(llm, exc, deadline, streaming=True, written=written) from exc
    if finished is False:
        # A connection closed cleanly part-way looks like a normal end to HTTP.
        raise BackendError(f"{where(llm)} ended the answer before finishing; try again")


def _failure(llm: "LLM", exc: Exception, deadline: Deadline | None, streaming: bool = False,
             written: bool = False) -> BackendError:
    """The BackendError for a failed call: out of time (with the real figures) or what else went wrong."""
    if isinstance(exc, BackendError):
        return exc
    if deadline is not None and (isinstance(exc, DeadlineExceeded) or (_is_timeout(exc) and deadline.expired())):
        limit, waited = f"{deadline.seconds:g} s", f"{deadline.waited():.1f} s"
        if written:
            return BackendError(f"{where(llm)} did not finish the answer within {limit} (ASSISTANT_LLM_TIMEOUT, "
                                f"the limit for a whole answer); stopped after {waited}")
        return BackendError(f"{where(llm)} did not answer within {limit} (ASSISTANT_LLM_TIMEOUT, the limit for "
                            f"a whole answer, retries included); gave up after {waited}")
    return backend_error(llm, exc, streaming=streaming)


def _is_timeout(exc: Exception) -> bool:
    import httpx
    import openai

    return isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError))


def backend_error(llm: "LLM", exc: Exception, streaming: bool = False) -> BackendError:
    """The one-line BackendError for a failed call (OpenAI-client errors named precisely, others generally)."""
    at = where(llm)
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        openai = None
    if openai is not None:
        tries = 1 + int(getattr(getattr(llm, "_client", None), "max_retries", 0) or 0)
        if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: it is a subclass
            timeout = getattr(llm, "timeout", None)
            return BackendError(f"{at} did not answer within {timeout:g} s" if timeout else f"{at} timed out")
        if isinstance(exc, openai.APIConnectionError):
            if streaming and "incomplete" in str(exc.__cause__ or exc).lower():
                return BackendError(f"{at} broke off the answer ({type(exc).__name__}); try again")
            return BackendError(f"cannot reach {at}")
        if isinstance(exc, openai.AuthenticationError):
            return BackendError(f"{at} rejected the API key (401)")
        if isinstance(exc, openai.NotFoundError):
            return BackendError(f"model {model_name(llm)!r} not found at {at.removeprefix('the model server at ')} (404); "
                                "check the model name")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429:
                return BackendError(f"{at} rate-limited the request (429) {tries} times; try again later")
            if status >= 500:
                return BackendError(f"{at} failed ({status}) {tries} times; try again later")
            return BackendError(f"{at} refused the request ({status}): {_short(exc.message)}")
        if isinstance(exc, openai.APIResponseValidationError):
            return BackendError(f"{at} sent a malformed reply ({type(exc).__name__})")
    try:
        import httpx
    except ImportError:  # pragma: no cover
        httpx = None
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        if streaming:
            return BackendError(f"{at} broke off the answer ({type(exc).__name__}); try again")
        return BackendError(f"cannot reach {at} ({type(exc).__name__})")
    if isinstance(exc, (ValueError, AttributeError, TypeError, KeyError)):
        what = "stream" if streaming else "reply"
        return BackendError(f"{at} sent a malformed {what} ({type(exc).__name__})")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return BackendError(f"cannot reach {at} ({type(exc).__name__}: {_short(str(exc))})")
    return BackendError(f"{at} failed: {type(exc).__name__}: {_short(str(exc))}")


def _short(message: str, limit: int = 160) -> str:
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
