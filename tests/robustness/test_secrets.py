"""Secrets: an API key is never printed or logged, on success or on a rejected key, with logging at DEBUG."""

from __future__ import annotations

import logging
from pathlib import Path

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


# -- each key goes to its own server only ---------------------------------------------------------------------------

SERVER_KEY = "srv-key-for-the-local-server-7e21"
URL_PASSWORD = "hunter2-pw-77"


def _headers(server) -> dict[str, str]:
    return {k.lower(): v for k, v in server.requests[-1]["headers"].items()}


def test_secrets__the_openai_key_never_goes_to_an_openai_compatible_server(
    small_library, openai_server, replies, cli_model, monkeypatch, debug_logs, capsys
):
    # The probe of issue 21: OPENAI_API_KEY=sk-… assistant ask Q --backend openai-compatible --base-url … --model m
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ASSISTANT_LLM_API_KEY", KEY)  # the openai backend's own setting: not the server's either
    monkeypatch.setenv("OPENAI_ORG_ID", "org-of-the-openai-account")
    openai_server.push(replies.sse(["Corrupted prompt embeddings make a model forget [1]."]))
    out = runner.invoke(cli, ["ask", QUESTION, "--backend", "openai-compatible", "--base-url", openai_server.url,
                              "--model", "m"])
    assert out.exit_code == 0, out.output
    headers = _headers(openai_server)
    assert "authorization" not in headers  # no key of its own: none is sent, not even a placeholder
    assert "openai-organization" not in headers and "openai-project" not in headers
    assert KEY not in str(openai_server.requests)
    _assert_no_key(out.output, debug_logs.text, *capsys.readouterr())


def test_secrets__an_openai_compatible_server_gets_its_own_key(small_library, openai_server, replies, cli_model,
                                                                monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ASSISTANT_LLM_SERVER_API_KEY", SERVER_KEY)
    openai_server.push(replies.sse(["Corrupted prompt embeddings make a model forget [1]."]))
    out = runner.invoke(cli, ["ask", QUESTION, "--backend", "openai-compatible", "--base-url", openai_server.url,
                              "--model", "m"])
    assert out.exit_code == 0, out.output
    assert _headers(openai_server)["authorization"] == f"Bearer {SERVER_KEY}"
    assert KEY not in str(openai_server.requests)


def test_secrets__config_masks_keys_in_llm_kwargs_and_url_passwords(monkeypatch):
    import json

    monkeypatch.setenv("ASSISTANT_LLM_KWARGS", json.dumps({"api_key": KEY, "model": "llama3.1",
                                                           "headers": {"Authorization": f"Bearer {KEY}"}}))
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", f"http://lab:{URL_PASSWORD}@127.0.0.1:8080/v1")
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", f"https://chroma:{URL_PASSWORD}@db.lab.example:8000")
    monkeypatch.setenv("ASSISTANT_LLM_SERVER_API_KEY", SERVER_KEY)
    monkeypatch.setenv("ASSISTANT_UI_AUTH", f"admin:{URL_PASSWORD}")
    text = runner.invoke(cli, ["config"])
    raw = runner.invoke(cli, ["config", "--json"])
    assert text.exit_code == 0 and raw.exit_code == 0, text.output + raw.output
    for out in (text.output, raw.output):
        _assert_no_key(out)
        assert URL_PASSWORD not in out and SERVER_KEY not in out
    values = json.loads(raw.stdout)
    assert values["llm_base_url"] == "http://lab:***@127.0.0.1:8080/v1"
    assert values["chroma_url"] == "https://chroma:***@db.lab.example:8000"
    assert values["llm_kwargs"]["api_key"] == "****" + KEY[-4:] and values["llm_kwargs"]["model"] == "llama3.1"
    assert values["llm_kwargs"]["headers"]["Authorization"].startswith("****")
    assert values["llm_server_api_key"] == "****" + SERVER_KEY[-4:]
    assert values["llm_max_tokens"] == 512  # a count of tokens is not a token


def test_secrets__errors_and_trace_files_mask_url_passwords(cli_model, monkeypatch, temp_home):
    from assistant.core.errors import UserError

    # A user error whose message carries the URL (as the store's and the model client's messages do).
    url = f"http://lab:{URL_PASSWORD}@127.0.0.1:9/v1"
    out = runner.invoke(cli, ["ask", "what is NPO?", "--backend", "openai-compatible", "--base-url", url,
                              "--model", "m", "--chroma-url", f"http://db:{URL_PASSWORD}@127.0.0.1:9"])
    assert out.exit_code == 1, out.output
    assert "error: " in out.stderr and URL_PASSWORD not in out.output
    assert "db:***@127.0.0.1:9" in out.stderr  # the Chroma server's URL, password masked

    import assistant.cli

    def broken():
        raise UserError(f"cannot reach the model server at {url}")

    monkeypatch.setattr(assistant.cli, "load_settings", broken)
    out = runner.invoke(cli, ["config"])
    assert out.exit_code == 1 and "lab:***@127.0.0.1:9" in out.stderr and URL_PASSWORD not in out.output

    # A bug: the one line and the trace file (which also holds the command line) say neither the password nor the key.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def buggy():
        raise RuntimeError(f"request to {url} failed with header Bearer {KEY}")

    monkeypatch.setattr(assistant.cli, "load_settings", buggy)
    monkeypatch.setattr(assistant.cli.sys, "argv", ["assistant", "config", "--base-url", url])
    out = runner.invoke(cli, ["config"])
    assert out.exit_code == 2, out.output
    trace = Path(out.stderr.split("full trace is in ")[1].split(" (or run")[0]).read_text()
    assert "Traceback" in trace and "lab:***@" in trace
    for text in (out.output, trace):
        assert URL_PASSWORD not in text
        _assert_no_key(text)
