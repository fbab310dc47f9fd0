"""Untrusted text stays text, in a real Chromium: a hostile paper (HTML, Markdown images, a ``javascript:`` URL and
template syntax in its title, abstract and record) and a hostile model reply, each answered on the page.

A second HTTP server on 127.0.0.2 stands for the foreign origin an ``<img src=…>`` would leak to; the tests assert
that nothing reaches it (it records every request), that no injected script runs (no dialog, no flag set), and that
the hostile text is shown as text. A last check injects a foreign image from the page's own script context to show
that the Content-Security-Policy alone blocks the request.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from tests.conftest import free_port
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]


class ForeignOrigin:
    """An HTTP server on 127.0.0.2 (another origin than the page's 127.0.0.1) that records what it is asked for."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.2:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def foreign():
    origin = ForeignOrigin()
    yield origin
    origin.stop()


def _hostile_paper(host: str) -> dict:
    # "//host/…" (no "http:") so the sentence is not set aside as a link by the extractive answer: quoted, it
    # reaches the chat bubble.
    return {
        "title": f"Tulip growth <img src=//{host}/title.png> in cold gardens",
        "url": "javascript:window.__pwned='title-link'",
        "authors": ["Mallory <b>Bold</b>"],
        "abstract": (
            "We measure how tulips grow in cold gardens over three winters ${window.__pwned='template'} {{7*7}}. "
            f"Frost delays tulip flowering <img src=//{host}/abstract.png onerror=\"window.__pwned='onerror'\"> by two "
            f"weeks ![chart](//{host}/markdown.png) in cold gardens. <script>window.__pwned='script'</script> "
            "This delay is longer in gardens facing north [click](javascript:window.__pwned='md-link')."
        ),
    }


def _model_reply(host: str) -> str:
    return (f"Frost delays tulip flowering by two weeks <img src=http://{host}/model.png "
            f"onerror=\"window.__pwned='model-onerror'\"> ![chart](http://{host}/model-markdown.png) "
            "[read more](javascript:window.__pwned='model-link') <script>window.__pwned='model-script'</script> "
            f"<a href=\"javascript:window.__pwned='model-a'\">here</a> <{'http'}://{host}/autolink.png> [1].")


@pytest.fixture(scope="module")
def hostile_page(bundled_home, embedder, foreign, tmp_path_factory):
    """The chat page over the bundled library plus the hostile paper; its openai-compatible backend is a scripted
    server whose every reply is hostile."""
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.ui.page import launch

    home = tmp_path_factory.mktemp("hostile-home")
    shutil.copytree(bundled_home, home, dirs_exist_ok=True)
    model = FakeOpenAIServer(default_text=_model_reply(foreign.host)).start()
    app = App(Settings(home=home, backend="extractive", llm_base_url=model.url, llm_model="scripted",
                       llm_max_retries=0), embedder=embedder)
    paper = tmp_path_factory.mktemp("hostile-input") / "hostile.jsonl"
    paper.write_text(json.dumps(_hostile_paper(foreign.host)) + "\n")
    assert app.ingest([paper]).new == 1
    port = free_port()
    demo = launch(app, host="127.0.0.1", port=port, auth="", prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    model.stop()


class Watched:
    """A page with every request, dialog and console line recorded."""

    def __init__(self, browser, url: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.console.append(m.text))
        self.response = self.page.goto(url)
        self.page.locator("#question textarea").wait_for(timeout=60_000)
        self.url = url

    def ask(self, question: str) -> None:
        box = self.page.locator("#question textarea")
        box.fill(question)
        box.press("Enter")
        self.page.locator(f'#sources-panel .src-footer[data-question="{question}"]').wait_for(timeout=90_000)
        time.sleep(1.0)  # let the browser load whatever the answer might have asked for

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.url) and not u.startswith("data:")]

    def assert_nothing_live(self, foreign: ForeignOrigin) -> None:
        assert foreign.hits == [] and self.foreign_requests() == []
        assert self.page.evaluate("window.__pwned") is None and self.dialogs == []
        assert self.page.locator('a[href^="javascript:"], a[href^="JAVASCRIPT:"]').count() == 0
        assert self.page.locator("#chatbot img, #sources-panel img").count() == 0


def test_hostile__a_hostile_abstract_is_quoted_and_shown_as_text(hostile_page, browser, foreign):
    w = Watched(browser, hostile_page)
    try:
        csp = w.response.headers.get("content-security-policy", "")
        assert "img-src 'self' data: blob:" in csp and "connect-src 'self'" in csp
        w.ask("How long does frost delay tulip flowering in cold gardens?")
        w.assert_nothing_live(foreign)

        bubble = w.page.locator("#chatbot .message.bot").last.inner_text()
        assert f"<img src=//{foreign.host}/abstract.png" in bubble  # quoted, as text
        assert f"![chart](//{foreign.host}/markdown.png)" in bubble and "<script>" in bubble
        card = w.page.locator("#sources-panel .src", has_text="Tulip growth").first
        title = card.locator(".src-head")
        assert f"<img src=//{foreign.host}/title.png>" in title.inner_text()
        assert title.locator("a").count() == 0  # its record's URL is javascript:, so the title is not a link
        assert "Mallory <b>Bold</b>" in card.locator(".src-meta").inner_text()
        card.locator(".src-abstract summary").click()
        assert "${window.__pwned='template'} {{7*7}}" in card.locator(".src-abstract").inner_text()
        # The answer's downloads carry no live link either.
        for link in w.page.locator("#sources-panel a.dl").all():
            text = unquote(link.get_attribute("href"))
            if text.startswith("data:text/markdown"):  # the paper's and the answer's words inert
                assert not re.search(r"(?<!\\)\]\(|(?<!\\)<(?:img|script|a|b)\b|(?<!\\)!\[", text), text
            assert not re.search(r"(?:url = \{|UR  - |<)\s*javascript:", text, re.I), text  # BibTeX, RIS: no such link
        w.assert_nothing_live(foreign)

        # The Content-Security-Policy on its own: an image from another origin, added by a script running in the page
        # (as an injected one would), is refused by the browser.
        w.page.evaluate(f"() => {{ const i = new Image(); i.src = 'http://{foreign.host}/by-script.png'; "
                        "document.body.appendChild(i); }")
        w.page.wait_for_timeout(1000)
        assert foreign.hits == []
        assert any("Content Security Policy" in line for line in w.console)
    finally:
        w.context.close()


def test_hostile__a_hostile_model_reply_is_shown_as_text(hostile_page, browser, foreign):
    w = Watched(browser, hostile_page)
    try:
        w.page.locator("#backend input").click()
        w.page.get_by_role("option", name=re.compile(r"^openai-compatible")).click()
        w.ask("How does frost affect tulip flowering in cold gardens?")
        w.assert_nothing_live(foreign)
        bubble = w.page.locator("#chatbot .message.bot").last
        assert "Frost delays tulip flowering by two weeks" in bubble.inner_text()
        for shown in (f"<img src=http://{foreign.host}/model.png", f"![chart](http://{foreign.host}/model-markdown.png)",
                      "[read more](javascript:", "<script>", "<a href="):
            assert shown in bubble.inner_text(), shown
        # Citation links, and the bare URLs the Markdown renderer links (http(s) only: a click, never a fetch).
        hrefs = [a.get_attribute("href") for a in bubble.locator("a").all()]
        assert all(h.startswith(("#src-", "http://", "https://")) for h in hrefs), hrefs
        assert any(h.startswith("#src-") for h in hrefs)
    finally:
        w.context.close()


def test_hostile__the_page_sends_its_policy_on_every_response(hostile_page):
    for path in ("", "config", "gradio_api/info", "theme.css"):
        with urllib.request.urlopen(hostile_page + path, timeout=20) as reply:
            assert "default-src 'self'" in reply.headers.get("Content-Security-Policy", ""), path
