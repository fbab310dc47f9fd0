"""Full-text papers on the chat page: [n, p. N] links to the source card and to the PDF at that page, the card
shows the passages with their pages, upload takes a PDF, and the page serves the stored PDFs (and nothing else)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from assistant.app import App
from assistant.conversation import source_row
from assistant.core.settings import Settings
from assistant.core.types import Answer, Source
from assistant.ui.page import launch
from assistant.ui.render import answer_markdown, card_html, linkify, pdf_url, unlink
from assistant.ui.session import ChatPage
from tests.conftest import free_port
from tests.ingest.pdf_papers import DOI, TITLE, make_zephyr

PDF = "/home/u/.research-assistant/pdfs/0123abcd.pdf"
ZEPHYR = Source(n=1, paper_id=DOI, title=TITLE, abstract="We calibrate the Zephyr spectrometer.", score=1.0,
                relevance=0.7, pdf=PDF, pages=4, passages=[
                    {"page": 2, "section": "2 Methods", "kind": "text",
                     "text": "The spectrometer was cooled to 77 kelvin with liquid nitrogen."}])
CITATION = {"n": 1, "paper_id": DOI, "title": TITLE, "supported": True, "support": 0.9, "page": 2,
            "section": "2 Methods", "evidence": "The spectrometer was cooled to 77 kelvin with liquid nitrogen.",
            "passages": [{"evidence": "The spectrometer was cooled to 77 kelvin with liquid nitrogen.", "page": 2,
                          "support": 0.9}]}


def _no_progress(*args, **kwargs):
    return None


def test_render__a_page_citation_links_the_card_and_the_pdf_at_that_page_and_reads_back():
    text = "It was cooled to 77 kelvin [1, p. 2]. Both agree [1, 2]. Mixed [2; 1, p. 3]."
    linked = linkify(text, {1: "abstract", (1, 2): "on page two"}, turn=1, pdfs={1: PDF})
    assert '[[1](#src-1-t1 "on page two"), [p. 2](gradio_api/file=' in linked
    assert f"{pdf_url(PDF, 2)} " in linked and pdf_url(PDF, 2).endswith(".pdf#page=2")
    assert "Both agree [[1](#src-1-t1 \"abstract\"), [2](#src-2-t1)]" in linked
    assert unlink(linked) == text  # history gets the plain marks back
    assert unlink(linkify(text)) == text  # without a known PDF the page stays plain text


def test_render__the_answer_and_its_card_offer_the_pdf_at_the_cited_page():
    answer = Answer(question="q", answer="It was cooled to 77 kelvin [1, p. 2].", citations=[CITATION],
                    sources=[source_row(ZEPHYR)])
    markdown = answer_markdown(answer, turn=1)
    assert "[p. 2](gradio_api/file=" in markdown and "#page=2" in markdown
    card = card_html(source_row(ZEPHYR), CITATION, 1)
    assert 'class="pdf-link"' in card and "Open the PDF at p. 2" in card and 'data-page="2"' in card
    assert 'title="Open the PDF at page 2">p. 2</a> · The spectrometer was cooled' in card
    assert "supported by these passages" in card and "Passages found" in card


def test_page__upload_takes_a_pdf_and_the_page_serves_it_at_its_page(tmp_path, embedder):
    app = App(Settings(home=tmp_path / "h", ui_port=free_port()), embedder=embedder)
    source = make_zephyr(tmp_path / "zephyr.pdf")
    report, count, _ = ChatPage(app).upload(str(source), progress=_no_progress)
    assert "1 papers read — 1 new" in report and "1 papers" in count
    stored = Path(app.library.get_papers([DOI])[0].pdf)
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(source.read_bytes())
    demo = launch(app, prevent_thread_lock=True, quiet=True)
    base = f"http://127.0.0.1:{app.settings.ui_port}/"
    try:
        with urllib.request.urlopen(base + pdf_url(str(stored), 2).split("#")[0], timeout=20) as reply:
            assert reply.status == 200 and reply.read() == source.read_bytes()
        with pytest.raises(urllib.error.HTTPError):  # only the PDF folder is served
            urllib.request.urlopen(base + pdf_url(str(outside)), timeout=20)
    finally:
        demo.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_browser__upload_a_pdf_ask_and_open_it_at_the_cited_page(browser, tmp_path, embedder):
    app = App(Settings(home=tmp_path / "h", ui_port=free_port()), embedder=embedder)
    demo = launch(app, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{app.settings.ui_port}/"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    outside: list[str] = []
    # Chromium's own PDF viewer loads from chrome-extension://; anything on the network would be http(s)
    context.on("request", lambda r: outside.append(r.url)
               if r.url.startswith(("http:", "https:")) and not r.url.startswith(url) else None)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Library").click()
        page.locator("#upload input[type=file]").set_input_files(str(make_zephyr(tmp_path / "zephyr.pdf")))
        page.locator("#upload-report").get_by_text("1 new").wait_for(timeout=90_000)
        page.get_by_role("tab", name="Chat").click()
        question = "What temperature was the Zephyr spectrometer cooled to before each measurement?"
        box = page.locator("#question textarea")
        box.fill(question)
        box.press("Enter")
        page.locator(f'#sources-panel .src-footer[data-question="{question}"]').wait_for(timeout=90_000)
        bubble = page.locator("#chatbot .message.bot").last
        assert "77 kelvin" in bubble.inner_text() and "p. 2" in bubble.inner_text()
        link = bubble.locator('a[href*="#page=2"]').first
        with context.expect_page() as opened:
            link.click()
        pdf_page = opened.value
        assert pdf_page.url.startswith(url + "gradio_api/file=") and pdf_page.url.endswith(".pdf#page=2")
        with urllib.request.urlopen(pdf_page.url.split("#")[0], timeout=20) as reply:
            assert reply.read(5) == b"%PDF-"
        card = page.locator("#sources-panel .src").first
        # the card opens the PDF, and the passage the answer rests on (p. 2) links to its page
        assert card.locator("a.pdf-link").count() == 1
        assert card.locator('blockquote.evidence a.page[href*="#page=2"]').count() == 1
    finally:
        context.close()
        demo.close()
    assert outside == []  # the PDF and the page come from 127.0.0.1 only
