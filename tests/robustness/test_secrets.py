"""Secrets: an API key is never printed or logged, on success or on a rejected key, with logging at DEBUG."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli

KEY = "sk-test-S3CRET-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
QUESTION = "How can large language models unlearn with embedding-corrupted prompts?"
runner = CliRunner()


def _assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        assert KEY[:-4] not in text  # not even the masked form's hidden part


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)  # root: openai, httpx, httpcore and our own loggers all at DEBUG
    for name in ("openai", "httpx", "httpcore", "assistant"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name in ("openai", "httpx", "httpcore", "assistant"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_secrets__config_never_shows_the_key(monkeypatch, debug_logs, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ASSISTANT_LLM_API_KEY", KEY)
    for args in (["config"], ["config", "--json"]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 0, out.output
        _assert_no_key(out.output, debug_logs.text, *capsys.readouterr())


def test_secrets__ask_with_the_openai_backend_never_prints_or_logs_the_key(
    small_library, openai_server, replies, cli_model, monkeypatch, debug_logs, capsys
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)  # the hosted API's client, pointed at the scripted server
    monkeypatch.setenv("OPENAI_LOG", "debug")
    openai_server.push(*[replies.sse(["Corrupted prompt embeddings make a model forget [1]."])] * 2)
    for args in (["ask", QUESTION, "--backend", "openai"], ["ask", QUESTION, "--backend", "openai", "--json"]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 0, out.output
        assert "Corrupted prompt embeddings" in out.output
        _assert_no_key(out.output, debug_logs.text, *capsys.readouterr())
    headers = {k.lower(): v for k, v in openai_server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"  # the key was really used
    assert any("openai" in r.name or "httpx" in r.name for r in debug_logs.records)  # DEBUG logging was on


def test_secrets__rejected_key_error_does_not_print_it(small_library, openai_server, replies, cli_model, monkeypatch,
                                                       debug_logs, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    # Servers echo the key they refused (the hosted API shows part of it): it must not reach the user.
    openai_server.push(replies.status(401, f"Incorrect API key provided: {KEY}", code_name="invalid_api_key"))
    out = runner.invoke(cli, ["ask", QUESTION, "--backend", "openai"])
    assert out.exit_code == 1
    assert "rejected the API key (401)" in out.stderr
    assert "Traceback" not in out.output
    _assert_no_key(out.output, debug_logs.text, *capsys.readouterr())
