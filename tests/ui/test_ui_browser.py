"""End to end in a real Chromium: ask, read the cited sources, follow up, start over, upload, find the new paper.

One browser session does the whole flow (the machine is small); a screenshot
is saved to test-output/screenshots/ after each step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
NPO_TITLE = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"
NEW_PAPER = {
    "title": "Quokka Lattices for Counting Lichen Spores with Sparse Transformers",
    "abstract": (
        "We introduce quokka lattices, a sparse transformer layout for counting lichen spores in microscope images. "
        "Quokka lattices reduce counting error by a third on a new lichen spore benchmark."
    ),
    "authors": ["A. Tester"],
}
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]


def _ask(page, question: str, timeout_ms: int = 90_000) -> None:
    """Type a question, send it, and wait until the sources panel is finished for it."""
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator(f'#sources-panel .src-footer[data-question="{question}"]').wait_for(timeout=timeout_ms)


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_browser__ask_follow_up_upload_and_find(live_page, browser, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_page.url) else None)
    try:
        page.goto(live_page.url)
        page.locator("#question textarea").wait_for(timeout=60_000)
        assert page.get_by_text("compare NPO and gradient ascent").first.is_visible()  # an example prompt
        _shot(page, "01-loaded")

        # 1. A comparison: streamed answer with [n] links, the NPO paper in the sources panel.
        _ask(page, "compare NPO and gradient ascent")
        bot = page.locator("#chatbot .message.bot")
        links = bot.last.locator('a[href^="#src-"]')
        assert links.count() >= 1
        target = links.first.get_attribute("href")
        panel = page.locator("#sources-panel")
        assert panel.locator(target).count() == 1  # the [n] points at a card in the panel
        assert NPO_TITLE in panel.inner_text()
        assert panel.locator("mark").count() >= 1  # cited sentences highlighted
        _shot(page, "02-answer")

        # 2. A follow-up that only makes sense with the history.
        _ask(page, "and which of them evaluates on TOFU?")
        assert bot.count() == 2
        assert bot.last.locator('a[href^="#src-"]').count() >= 1
        assert "searched for: compare NPO and gradient ascent" in panel.inner_text()  # the history was used
        _shot(page, "03-follow-up")

        # 3. New chat empties the conversation and the panel.
        page.locator("#new-chat").click()
        page.wait_for_function("document.querySelectorAll('#chatbot .message.bot').length === 0")
        assert "No sources yet" in panel.inner_text()

        # 4. Upload a paper in the Library tab, then find it by searching.
        page.get_by_role("tab", name="Library").click()
        count = page.locator("#paper-count")
        count.get_by_text("241 papers").wait_for()
        upload = tmp_path / "quokka.jsonl"
        upload.write_text(json.dumps(NEW_PAPER) + "\n")
        page.locator("#upload input[type=file]").set_input_files(str(upload))
        page.locator("#upload-report").get_by_text("1 new").wait_for(timeout=60_000)
        count.get_by_text("242 papers").wait_for()
        _shot(page, "04-uploaded")

        search = page.locator("#paper-search textarea, #paper-search input").first
        search.fill("counting lichen spores")
        search.press("Enter")
        results = page.locator("#paper-results")
        results.get_by_text("Best matches for").wait_for(timeout=30_000)  # the search result, not the full list
        assert results.locator("li").first.inner_text().startswith(NEW_PAPER["title"])
        _shot(page, "05-found")
    finally:
        _shot(page, "99-last")
        context.close()
    assert outside == []  # the page loads nothing from outside 127.0.0.1
