"""The answer's deadline (assistant/llms/deadline.py): what counts, how a blocked call is left, how requests are cut."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from assistant.llms.deadline import Deadline, DeadlineExceeded, bounded, limit_request


def test_deadline__only_time_inside_calls_counts():
    deadline = Deadline(1.0)
    with deadline.running():
        time.sleep(0.2)
    time.sleep(0.3)  # between calls (retrieval, say): not the model's time
    assert 0.2 <= deadline.waited() < 0.3
    assert 0.7 < deadline.remaining() <= 0.8 and not deadline.expired()


def test_deadline__a_blocked_call_is_left_at_the_deadline():
    release = threading.Event()

    def blocked():
        release.wait(30)  # a socket read that never returns, or a retry's long sleep
        return ["late"]

    deadline = Deadline(0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        list(bounded(blocked, deadline))
    assert 0.3 <= time.monotonic() - started < 1.0
    assert deadline.expired() and 0.3 <= deadline.waited() < 1.0
    release.set()


def test_deadline__a_trickling_stream_is_cut_and_the_worker_stops_at_its_next_item():
    produced = []

    def trickle():
        for i in range(50):
            produced.append(i)
            yield i
            time.sleep(0.1)

    got = []
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        for item in bounded(trickle, Deadline(0.35)):
            got.append(item)
    assert time.monotonic() - started < 0.8
    assert got[:3] == [0, 1, 2] and len(got) < 6
    time.sleep(0.3)
    assert len(produced) <= len(got) + 2  # the worker stopped instead of reading the stream to its end


def test_deadline__the_calls_errors_are_raised_in_the_caller():
    def broken():
        yield "first"
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        list(bounded(broken, Deadline(5)))


def test_deadline__a_spent_deadline_starts_no_call():
    deadline = Deadline(0.05)
    with deadline.running():
        time.sleep(0.06)
    calls = []
    with pytest.raises(DeadlineExceeded):
        list(bounded(lambda: calls.append(1) or [1], deadline))
    assert calls == []


def _request(**timeouts) -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions", extensions={"timeout": timeouts})


def test_limit_request__each_request_gets_the_time_left():
    seen = {}

    def call():
        request = _request(connect=60.0, read=60.0, write=60.0, pool=None)
        limit_request(request)
        seen.update(request.extensions["timeout"])
        return [1]

    list(bounded(call, Deadline(2.0)))
    assert set(seen) == {"connect", "read", "write", "pool"} and all(1.5 < v <= 2.0 for v in seen.values())


def test_limit_request__after_the_deadline_no_request_is_sent():
    refused = []

    def retry_after_backoff():
        time.sleep(0.3)  # the openai client's backoff before a retry, past the deadline
        try:
            limit_request(_request(read=60.0))
        except openai.OpenAIError as exc:  # the openai client re-raises these at once: no further retry
            refused.append(exc)
            raise
        return [1]

    with pytest.raises(DeadlineExceeded):
        list(bounded(retry_after_backoff, Deadline(0.1)))
    time.sleep(0.4)  # the abandoned worker reaches its request
    assert len(refused) == 1 and isinstance(refused[0], openai.APITimeoutError)


def test_limit_request__outside_a_bounded_call_changes_nothing():
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions", extensions={"timeout": {"read": 60.0}})
    limit_request(request)
    assert request.extensions["timeout"] == {"read": 60.0}
