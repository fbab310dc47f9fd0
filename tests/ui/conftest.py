"""Fixtures for the chat page: a live page on 127.0.0.1 over a copy of the bundled library, and Chromium.

The page runs in-process (Gradio serves it from a thread) so it shares the
session's embedding model; its home is a copy of the bundled library because
the upload step writes to the library.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Flags that keep a headless Chromium from reaching out to Google services (nothing here can).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


class LivePage:
    """The chat page served on a free port; ``url`` to open, ``app`` behind it."""

    def __init__(self, app, url: str, demo):
        self.app, self.url, self.demo = app, url, demo


@pytest.fixture(scope="session")
def live_page(bundled_home, embedder, tmp_path_factory):
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.ui.page import launch

    home = tmp_path_factory.mktemp("ui-home")
    shutil.copytree(bundled_home, home, dirs_exist_ok=True)
    # Uploads land in Gradio's cache folder: keep them in the test's temp space.
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-cache"))
    app = App(Settings(home=home, backend="extractive", top_k=8, ui_concurrency=4), embedder=embedder)
    port = free_port()
    demo = launch(app, host="127.0.0.1", port=port, auth="", prevent_thread_lock=True, quiet=True)
    yield LivePage(app, f"http://127.0.0.1:{port}/", demo)
    demo.close()


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium driven by Python Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def ask_concurrently(url: str, questions: list[str], timeout: float) -> list[dict]:
    """Ask every question at once through the page's /ask API, one client per thread as separate users would be."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    def ask(question: str) -> dict:
        return Client(url, verbose=False).predict(question=question, api_name="/ask")

    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        return list(pool.map(ask, questions, timeout=timeout))
