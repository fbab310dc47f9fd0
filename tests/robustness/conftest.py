"""Fixtures for the robustness suite: small libraries, the scripted OpenAI server, the CLI on the session model.

These tests run real servers (Chroma, the scripted OpenAI-compatible server, a
llama.cpp server) and real failures (kills, bad files, concurrent writers), so
each keeps its library small: a handful of bundled papers, embedded with the
session's model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ingest.test_pipeline import _papers_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_model(embedder, monkeypatch):
    """CLI commands build their App from settings; give them the session's model instead of loading it again."""
    import assistant.library.embeddings

    monkeypatch.setattr(assistant.library.embeddings, "make_embedder", lambda settings: embedder)
    return embedder


class SmallLibrary:
    """A few bundled papers as a JSONL file, ingested into the test's home."""

    def __init__(self, app, src: Path, rows: list[dict]):
        self.app, self.src, self.rows = app, src, rows

    @property
    def titles(self) -> list[str]:
        return [r["title"] for r in self.rows]


@pytest.fixture(scope="session")
def small_library_home(tmp_path_factory, embedder):
    """A home holding six bundled papers, ingested once; tests get a copy (they may write to it)."""
    from assistant.app import App
    from assistant.core.settings import Settings

    home = tmp_path_factory.mktemp("small-home")
    src = home.parent / "small-papers.jsonl"
    rows = _papers_jsonl(src, 6)
    report = App(Settings(home=home), embedder=embedder).ingest([src])
    assert report.new == 6, report.lines()
    return home, src, rows


@pytest.fixture
def small_library(small_library_home, temp_home, tmp_path, embedder):
    from assistant.app import App
    from assistant.core.settings import Settings

    home, src, rows = small_library_home
    shutil.copytree(home, temp_home, dirs_exist_ok=True)
    local_src = tmp_path / "papers.jsonl"
    shutil.copy(src, local_src)
    return SmallLibrary(App(Settings(home=temp_home), embedder=embedder), local_src, rows)


@pytest.fixture
def llm_app(small_library, openai_server):
    """Build an App over the small library answering through the scripted server (openai-compatible backend)."""
    from assistant.app import App

    def make(**overrides):
        values = {"backend": "openai-compatible", "llm_base_url": openai_server.url, "llm_model": "scripted",
                  "llm_timeout": 5.0, "llm_max_retries": 2, **overrides}
        settings = small_library.app.settings.with_overrides(**values)
        return App(settings, embedder=small_library.app.embedder, client=small_library.app.client)

    return make


# The chat page served on 127.0.0.1 over a copy of the bundled library (the UI suite's fixture, reused).
from tests.ui.conftest import live_page  # noqa: E402,F401
