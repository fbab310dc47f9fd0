"""One answer's time on the model: ``Deadline``, and the two pieces that keep every model call to it.

``ASSISTANT_LLM_TIMEOUT`` (settings.llm_timeout) is the time one answer may
spend waiting on the model in all: condensing a follow-up, writing the answer
(every retry, every backoff and every streamed token included) and the
optional LLM check. The openai client's own timeout is per socket read and
each of its retries gets it afresh, so on its own a server that never answers
cost 4 × 60 s plus backoff, and one that sends a token every 4 s never tripped
a 5 s timeout at all.

* ``bounded(make, deadline)`` runs the model call in a worker thread and waits
  at most the time left: the caller gets control back on time whatever the call
  is blocked in (a socket read, a retry's sleep, a trickling stream), for every
  llama-index LLM class.
* ``limit_request`` is an httpx request hook on the OpenAI clients
  (factories.py): each HTTP request gets at most the time left, and none starts
  after the deadline, so a call given up on stops by itself instead of retrying
  against the server for minutes in the background.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

# The monotonic time by which the model call running in this context must end (set in bounded's worker).
_REQUEST_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("llm_request_deadline", default=None)


class DeadlineExceeded(Exception):
    """The deadline passed while waiting on the model."""


class Deadline:
    """``seconds`` of waiting on the model, shared by the calls of one answer.

    Only time inside a call counts (``running``), so retrieving between the
    follow-up rewrite and the answer costs the model nothing. Not thread-safe:
    one answer's calls come one after another.
    """

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._spent = 0.0
        self._since: float | None = None

    def waited(self) -> float:
        """Seconds spent waiting on the model so far."""
        return self._spent + (time.monotonic() - self._since if self._since is not None else 0.0)

    def remaining(self) -> float:
        return self.seconds - self.waited()

    def expired(self) -> bool:
        return self.remaining() <= 0

    @contextmanager
    def running(self) -> Iterator[float]:
        """Count the time inside the block; yields the monotonic time at which it runs out."""
        if self._since is not None:  # nested: the outer block already counts
            yield time.monotonic() + self.remaining()
            return
        self._since = time.monotonic()
        try:
            yield self._since + self.seconds - self._spent
        finally:
            self._spent += time.monotonic() - self._since
            self._since = None


def bounded(make: Callable[[], Iterable[T]], deadline: Deadline | None) -> Iterator[T]:
    """The items of ``make()``, called and iterated in a worker thread; DeadlineExceeded once ``deadline`` passes.

    The worker's exceptions are raised here. A worker left behind at the
    deadline stops at its next item (or when its request times out, see
    ``limit_request``); it is a daemon thread, so it never holds up an exit.
    """
    if deadline is None:
        yield from make()
        return
    with deadline.running() as until:
        if time.monotonic() >= until:
            raise DeadlineExceeded()
        items: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            _REQUEST_DEADLINE.set(until)
            iterator = None
            try:
                iterator = iter(make())
                for item in iterator:
                    if stop.is_set():
                        break
                    items.put((True, item))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
                items.put((False, exc))
            else:
                items.put((False, None))
            finally:
                close = getattr(iterator, "close", None)
                if stop.is_set() and close is not None:
                    try:
                        close()  # a generator's cleanup closes its HTTP response
                    except Exception:  # noqa: BLE001 - nobody is waiting for this call any more
                        pass

        worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="llm-call", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    ok, value = items.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    raise DeadlineExceeded() from None
                if ok:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            stop.set()


def limit_request(request) -> None:
    """httpx request hook: the request may take at most the time left; after the deadline it is not sent.

    Raising an ``openai.APITimeoutError`` (an OpenAIError) makes the openai
    client give up at once instead of retrying.
    """
    until = _REQUEST_DEADLINE.get()
    if until is None:
        return
    left = until - time.monotonic()
    if left <= 0:
        import openai

        raise openai.APITimeoutError(request=request)
    timeouts = request.extensions.get("timeout") or {}
    request.extensions["timeout"] = {key: left if timeouts.get(key) is None else min(timeouts[key], left)
                                     for key in ("connect", "read", "write", "pool")}
