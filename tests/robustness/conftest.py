"""Fixtures for the robustness suite: small libraries, the scripted OpenAI server, the CLI on the session model.

These tests run real servers (Chroma, the scripted OpenAI-compatible server, a
llama.cpp server) and real failures (kills, bad files, concurrent writers), so
each keeps its library small: a handful of bundled papers, embedded with the
session's model.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from eval.bench_common import stop_process
from tests.ingest.test_pipeline import _papers_jsonl

ROOT = Path(__file__).resolve().parents[2]


class ServerDied(RuntimeError):
    """A test server's process is gone: the message says how it ended and shows its log's tail."""


class LocalServer:
    """A server process started by a fixture (the llama.cpp server), watched so that a crash is reported as one.

    Without the watch a server that dies (llama.cpp killed by an illegal
    instruction at its first completion, say) shows up as a cascade of
    "cannot reach the model server" errors in every later test; with it, the
    first test to notice fails with the exit status and the tail of the log.
    """

    def __init__(self, name: str, args: list[str], log_path: Path, ready_url: str):
        self.name, self.args, self.log_path, self.ready_url = name, args, log_path, ready_url
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 180.0) -> None:
        """Start the process and wait until ``ready_url`` answers; ServerDied if it exits first."""
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while True:
            self.check()
            try:
                urllib.request.urlopen(self.ready_url, timeout=2).read()
                return
            except OSError:
                if time.time() > deadline:
                    raise ServerDied(self.describe(f"did not answer {self.ready_url} within {timeout:.0f} s")) from None
                time.sleep(0.25)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Raise ServerDied (exit status and log tail) unless the process is running."""
        if self.proc is None:
            raise ServerDied(f"{self.name} was never started")
        code = self.proc.poll()
        if code is not None:
            raise ServerDied(self.describe(self.exit_status(code)))

    @staticmethod
    def exit_status(code: int) -> str:
        if code >= 0:
            return f"exited with code {code}"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = (" (an instruction this CPU or VM does not run: was llama-cpp-python built with native flags? "
               "`make local-llm` builds it portably)") if name == "SIGILL" else ""
        return f"was killed by {name}{why}"

    def log_tail(self, chars: int = 3000) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-chars:].strip() or "(empty log)"

    def describe(self, what: str) -> str:
        return f"{self.name} {what}; last lines of {self.log_path}:\n{self.log_tail()}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed while a watched server was down says so, with the server's log tail."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        server = getattr(item.config, "_local_llm_server", None)
        if server is not None and server.proc is not None and not server.alive():
            report.sections.append((f"{server.name} died", server.describe(server.exit_status(server.proc.returncode))))


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
