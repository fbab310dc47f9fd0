"""LLM faults through the whole ask path (engine, CLI, chat page) against the scripted OpenAI-compatible server.

tests/assistant/test_backends.py pins each fault at the backend; here the same
faults must reach the user as one clear message, and a broken answer must never
be shown as a finished one.
"""

from __future__ import annotations

import re
import time

import pytest
from typer.testing import CliRunner

from assistant.core.errors import BackendError
from assistant.cli import INCOMPLETE, app as cli
from assistant.ui.page import ChatPage

QUESTION = "How can large language models unlearn with embedding-corrupted prompts?"
runner = CliRunner()


@pytest.fixture
def cli_env(small_library, openai_server, cli_model, monkeypatch):
    """`assistant ask` in this test's home, answering through the scripted server."""
    monkeypatch.setenv("ASSISTANT_BACKEND", "openai-compatible")
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", openai_server.url)
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", "scripted")
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "5")
    monkeypatch.setenv("ASSISTANT_LLM_MAX_RETRIES", "2")
    return monkeypatch


def _ask(*extra: str):
    return runner.invoke(cli, ["ask", QUESTION, *extra])


def _one_error_line(result) -> str:
    assert "Traceback" not in result.output and 'File "' not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    return errors[0]


def test_faults__429_with_retry_after_then_success_answers(llm_app, openai_server, replies):
    openai_server.push(replies.status(429, "slow down", headers={"Retry-After": "1"}),
                       replies.sse(["Embedding-corrupted prompts make models forget [1]."]))
    started = time.monotonic()
    answer = llm_app().engine.ask(QUESTION)
    assert time.monotonic() - started >= 1.0  # the server's Retry-After was honoured
    assert len(openai_server.requests) == 2
    assert not answer.declined and answer.citations and not answer.dropped_citations


def test_faults__repeated_500_is_one_clear_line(cli_env, openai_server, replies):
    cli_env.setenv("ASSISTANT_LLM_MAX_RETRIES", "1")
    openai_server.push(*[replies.status(500, "model crashed", headers={"Retry-After": "0"})] * 2)
    result = _ask()
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "failed (500) 2 times" in line, line
    assert len(openai_server.requests) == 2  # bounded: the retries stop
    assert "References" not in result.stdout


@pytest.mark.parametrize(
    "reply, says",
    [
        ("malformed", "ended the answer before finishing"),  # a JSON body that is not JSON, to a streamed request
        ("malformed_sse", "sent a malformed stream"),  # an SSE event that is not JSON
    ],
)
def test_faults__malformed_reply_is_one_clear_line(cli_env, openai_server, replies, reply, says):
    openai_server.push(getattr(replies, reply)())
    result = _ask()
    assert result.exit_code == 1
    assert says in _one_error_line(result)
    assert "References" not in result.stdout


def test_faults__malformed_reply_to_the_follow_up_rewrite_falls_back_and_answers(llm_app, openai_server, replies):
    # The non-streamed call of the ask path: condensing a follow-up. A broken reply there must not sink the answer.
    openai_server.push(replies.malformed(), replies.sse(["They corrupt the prompt embeddings [1]."]))
    history = [{"role": "user", "content": "How do LLMs unlearn?"}, {"role": "assistant", "content": "..."}]
    answer = llm_app().engine.ask("and how do they use corrupted prompts?", history=history)
    assert openai_server.bodies[0]["stream"] is False and openai_server.bodies[1]["stream"] is True
    assert answer.standalone_question.startswith("How do LLMs unlearn")
    assert not answer.declined and answer.citations


def test_faults__connection_closed_mid_stream_is_never_a_finished_answer_in_the_cli(cli_env, openai_server, replies):
    openai_server.push(replies.close_midstream(["Embedding-corrupted prompts ", "make models "]))
    result = _ask()
    assert result.exit_code == 1
    assert "broke off the answer" in _one_error_line(result)
    assert "References" not in result.stdout  # the streamed part was never finished off as an answer

    openai_server.push(replies.close_midstream(["Embedding-corrupted prompts ", "make models "]))
    result = _ask("--json")
    assert result.exit_code == 1
    assert result.stdout.strip() == ""  # no answer object at all, let alone a half one
    _one_error_line(result)

    # A clean close without a finish reason looks complete to HTTP; it is still not an answer.
    openai_server.push(replies.clean_eof(["Embedding-corrupted prompts ", "make models "]))
    result = _ask("--json")
    assert result.exit_code == 1 and result.stdout.strip() == ""
    assert "before finishing" in _one_error_line(result)


def test_faults__connection_closed_mid_stream_is_an_error_message_in_the_ui(llm_app, openai_server, replies):
    page = ChatPage(llm_app())
    openai_server.push(replies.close_midstream(["Embedding-corrupted prompts ", "make models "]))
    steps = list(page.respond(QUESTION, []))
    text, panel = steps[-1]
    # an LLM answer is verified before it is shown (issue 24): nothing of the broken reply reached the page
    assert not any("Embedding-corrupted prompts" in t for t, _ in steps[:-1])
    assert text.startswith("⚠️") and "broke off the answer" in text
    assert "Embedding-corrupted prompts" not in text and "Traceback" not in text + panel

    # The next question is answered normally.
    openai_server.push(replies.sse(["Corrupted prompt embeddings make a model forget [1]."]))
    text, _ = list(page.respond(QUESTION, []))[-1]
    assert not text.startswith("⚠️") and "[1]" in text


def test_faults__reply_slower_than_the_timeout_is_a_clear_error(llm_app, cli_env, openai_server, replies):
    openai_server.push(replies.delay(10, replies.sse(["Too late [1]."])))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 1 s .*gave up after 1\.\d s"):
        llm_app(llm_timeout=1.0, llm_max_retries=0).engine.ask(QUESTION)
    assert time.monotonic() - started < 8  # gave up long before the server would have answered

    # ASSISTANT_LLM_MAX_RETRIES=2 here: the retries share the one limit, so the first slow reply uses it up.
    cli_env.setenv("ASSISTANT_LLM_TIMEOUT", "1")
    openai_server.requests.clear()
    openai_server.push(*[replies.delay(10, replies.sse(["Too late [1]."]))] * 3)
    result = _ask("--json")
    assert result.exit_code == 1 and result.stdout.strip() == ""
    assert "did not answer within 1 s" in _one_error_line(result)
    assert len(openai_server.requests) == 1


def _waited(line: str) -> float:
    found = re.search(r"(?:gave up|stopped) after (\d+\.\d) s", line)
    assert found, line
    return float(found.group(1))


def test_deadline__a_server_that_never_answers_is_given_up_at_the_limit_retries_included(cli_env, openai_server,
                                                                                          replies):
    # The probe, scaled down: 248 s with the defaults (60 s, 3 retries), and a message saying 60 s.
    cli_env.setenv("ASSISTANT_LLM_TIMEOUT", "2")
    cli_env.setenv("ASSISTANT_LLM_MAX_RETRIES", "3")
    openai_server.push(*[replies.never()] * 4)
    started = time.monotonic()
    result = _ask()
    wall = time.monotonic() - started
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "did not answer within 2 s (ASSISTANT_LLM_TIMEOUT" in line and "retries included" in line, line
    assert 2.0 <= _waited(line) < 2.5  # the real figure
    assert wall < 2 + 3, wall  # the limit, plus retrieval and the CLI (4 tries of 2 s would be 8 s and more)
    time.sleep(1.5)  # past the openai client's backoff: a retry would have been sent by now
    assert len(openai_server.requests) == 1  # no request after the deadline
    assert result.stdout.strip() == ""


def test_deadline__slow_tokens_are_cut_at_the_limit_and_marked_incomplete(cli_env, openai_server, replies):
    # The probe, scaled down: a token every 4 s with a 5 s limit ran 130 s and exited 0.
    cli_env.setenv("ASSISTANT_LLM_TIMEOUT", "2.5")
    pieces = [f"Embedding-corrupted prompts {i} " for i in range(30)]
    openai_server.push(replies.trickle(pieces, every=1.0))
    started = time.monotonic()
    result = _ask()
    wall = time.monotonic() - started
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "did not finish the answer within 2.5 s" in line, line
    assert 2.5 <= _waited(line) < 3.0
    assert wall < 2.5 + 3, wall
    # an LLM answer is verified before it is shown (issue 24): no half answer is printed, marked or not
    assert "Embedding-corrupted prompts" not in result.stdout and INCOMPLETE not in result.stdout
    assert "References" not in result.stdout

    openai_server.push(replies.trickle(pieces, every=1.0))
    result = _ask("--json")
    assert result.exit_code == 1 and result.stdout.strip() == ""  # no answer object, whole or half
    assert "did not finish the answer within 2.5 s" in _one_error_line(result)


def test_deadline__the_follow_up_rewrite_and_the_answer_share_one_limit(llm_app, openai_server, replies):
    openai_server.push(replies.delay(1.5, replies.answer("How do embedding-corrupted prompts make LLMs unlearn?")),
                       replies.trickle([f"They corrupt prompts {i} " for i in range(30)], every=0.5))
    history = [{"role": "user", "content": "How do LLMs unlearn?"}, {"role": "assistant", "content": "..."}]
    engine = llm_app(llm_timeout=3.0, llm_max_retries=0).engine
    started = time.monotonic()
    pieces = []
    with pytest.raises(BackendError, match=r"did not finish the answer within 3 s") as caught:
        for event in engine.stream("and how do they use corrupted prompts?", history=history):
            pieces += [event.text] if event.kind == "delta" else []
    assert 3.0 <= _waited(str(caught.value)) < 3.5
    assert time.monotonic() - started < 3.0 + 2.5  # one limit for both calls (and retrieval between them)
    assert openai_server.bodies[0]["stream"] is False and openai_server.bodies[1]["stream"] is True
    assert pieces == []  # the answer is verified before it is shown: the cut one never was


def test_deadline__a_cut_answer_on_the_chat_page_is_replaced_by_the_error(llm_app, openai_server, replies):
    page = ChatPage(llm_app(llm_timeout=1.5))
    openai_server.push(replies.trickle([f"Embedding-corrupted prompts {i} " for i in range(20)], every=0.5))
    steps = list(page.respond(QUESTION, []))
    text, _ = steps[-1]
    assert not any("Embedding-corrupted prompts 0" in t for t, _ in steps[:-1])  # verified before shown: never shown
    assert text.startswith("⚠️") and "did not finish the answer within 1.5 s" in text
    assert "Embedding-corrupted prompts" not in text
