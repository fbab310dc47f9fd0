"""No network and no hidden defaults: the whole answer path runs with every non-local connection refused,
llama-index's global Settings never resolve an LLM or an embedding model (they would default to OpenAI),
and tiktoken is never asked for an encoding (it downloads them on first use)."""

from __future__ import annotations

import socket

import pytest

from assistant.app import App


@pytest.fixture
def offline(monkeypatch):
    """Refuse every connection that is not to this machine, and fail any use of tiktoken; yields the attempts."""
    attempts: list = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family == socket.AF_UNIX or host in ("127.0.0.1", "localhost", "::1"):
            return real_connect(sock, address)
        attempts.append(address)
        raise OSError(f"test: network access to {address} is blocked")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    import tiktoken

    def no_tiktoken(*args, **kwargs):
        attempts.append(("tiktoken", args))
        raise AssertionError("tiktoken must not be used: it downloads its encodings")

    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)
    return attempts


def _no_global_defaults():
    from llama_index.core import Settings

    # The private fields stay unset unless something fell back to the global defaults.
    assert Settings._llm is None and Settings._embed_model is None and Settings._tokenizer is None


def test_offline__extractive_engine_answers_through_llama_index_with_nothing_from_the_network(bundled_app, offline):
    engine = bundled_app.query_engine()
    response = engine.query("What is negative preference optimization?")
    assert response.metadata["answer"]["citations"]
    answer = bundled_app.engine.ask("compare TOFU and MUSE")
    assert answer.citations and offline == []
    _no_global_defaults()


def test_offline__llm_engine_reaches_only_the_local_server(bundled_app, offline, openai_server, replies):
    openai_server.push(replies.sse(["NPO treats the forget set as negative preferences [1]."]))
    settings = bundled_app.settings.with_overrides(backend="openai-compatible", llm_base_url=openai_server.url,
                                                   llm_model="scripted")
    app = App(settings, embedder=bundled_app.embedder)
    answer = app.engine.ask("What is negative preference optimization?")
    assert not answer.declined and answer.citations and len(openai_server.requests) == 1
    assert offline == []
    _no_global_defaults()


def test_offline__the_guard_really_blocks(offline):
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    assert offline
