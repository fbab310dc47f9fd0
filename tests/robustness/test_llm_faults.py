"""LLM faults through the whole ask path (engine, CLI, chat page) against the scripted OpenAI-compatible server.

tests/assistant/test_backends.py pins each fault at the backend; here the same
faults must reach the user as one clear message, and a broken answer must never
be shown as a finished one.
"""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from assistant.core.errors import BackendError
from assistant.cli import app as cli
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
    assert answer.answer == "Embedding-corrupted prompts make models forget [1]."
    assert [c["n"] for c in answer.citations] == [1] and not answer.dropped_citations


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
    assert answer.answer == "They corrupt the prompt embeddings [1]."


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
    assert any("Embedding-corrupted prompts" in t for t, _ in steps[:-1])  # it was streaming
    assert text.startswith("⚠️") and "broke off the answer" in text
    assert "Embedding-corrupted prompts" not in text and "Traceback" not in text + panel

    # The next question is answered normally.
    openai_server.push(replies.sse(["Corrupted prompt embeddings make a model forget [1]."]))
    text, _ = list(page.respond(QUESTION, []))[-1]
    assert text.startswith("Corrupted prompt embeddings make a model forget")


def test_faults__reply_slower_than_the_timeout_is_a_clear_error(llm_app, cli_env, openai_server, replies):
    openai_server.push(replies.delay(10, replies.sse(["Too late [1]."])))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 1 s"):
        llm_app(llm_timeout=1.0, llm_max_retries=0).engine.ask(QUESTION)
    assert time.monotonic() - started < 8  # gave up long before the server would have answered

    # The openai client retries a timed-out request too (ASSISTANT_LLM_MAX_RETRIES=2 here): three slow replies.
    cli_env.setenv("ASSISTANT_LLM_TIMEOUT", "1")
    openai_server.push(*[replies.delay(10, replies.sse(["Too late [1]."]))] * 3)
    result = _ask("--json")
    assert result.exit_code == 1 and result.stdout.strip() == ""
    assert "did not answer within 1 s" in _one_error_line(result)
