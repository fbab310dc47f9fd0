"""The page reads for everyone, and each citation quotes its own claim's sentence: measured in a real Chromium.

Contrast: every visible text element (form values and placeholders included) against its effective background
(the first opaque background up the tree, translucent layers blended on the way), by the WCAG 2 formula, in the
light and the dark scheme, on the empty page, an answer with its sources unfolded and the popover open, a declined
question with the counter over its limit, and the Library tab. Names: read from Chromium's accessibility tree (CDP ``Accessibility.getFullAXTree``). Keyboard: Tab
reaches a citation, Enter opens its popover with the focus in it, Escape closes it and returns to the citation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.answering.citations import parse_cited_pages
from assistant.core.text import CITATION
from assistant.ui.page import QUESTION_LABEL

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
COMPARE = "compare NPO and gradient ascent"
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]

# Each visible text: its ratio and the ratio it needs (3 for large text: >= 24px, or >= 18.66px bold).
CONTRAST_JS = r"""
() => {
  const parse = c => { const m = /rgba?\(([^)]+)\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  function background(el) {  // up the tree to the first opaque background, blending translucent ones on the way
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];  // the canvas
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  }
  function opacity(el) { let o = 1; for (let e = el; e && e.nodeType === 1; e = e.parentElement) o *= +getComputedStyle(e).opacity; return o; }
  function where(el) {
    const path = [];
    for (let e = el; e && e !== document.body && path.length < 4; e = e.parentElement)
      path.unshift(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\s+/)[0] : ''));
    return path.join(' > ');
  }
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
    const field = el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && !['checkbox', 'radio', 'range', 'file', 'hidden', 'color'].includes(el.type));
    let text = '', pseudo = null;
    if (field) { text = el.value || el.placeholder || ''; if (!el.value) pseudo = '::placeholder'; }
    else for (const n of el.childNodes) if (n.nodeType === 3) text += n.textContent;
    text = text.trim();
    if (!text) continue;
    const rect = el.getClientRects()[0];
    if (!rect || rect.width <= 1 || rect.height <= 1) continue;  // not rendered, or visually hidden (read, not seen)
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || el.closest('[aria-hidden="true"]')) continue;
    const alpha = opacity(el);
    if (alpha === 0) continue;
    const bg = background(el);
    const c = parse(getComputedStyle(el, pseudo).color);
    const fg = over([c[0], c[1], c[2], c[3] * alpha], bg);
    const size = parseFloat(style.fontSize), bold = +style.fontWeight >= 700;
    out.push({text: text.slice(0, 40), ratio: ratio(fg, bg), need: size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5,
              color: getComputedStyle(el, pseudo).color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')',
              where: where(el)});
  }
  return out;
}
"""


def _open(page, url: str) -> None:
    page.goto(url)
    page.locator("#question textarea").wait_for(timeout=60_000)
    page.locator("#chatbot").get_by_text(re.compile(r"Ask the \d+ papers in")).first.wait_for(timeout=30_000)


def _ask(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    page.locator("#send").click()
    page.locator(f'#sources-panel .src-footer[data-question="{question}"]').wait_for(timeout=90_000)


def _low_contrast(page, tries: int = 6) -> tuple[int, list[str]]:
    """(texts measured, those below their ratio). Measured again a few times while some are low: Gradio fades an
    updating component (opacity), and a text is judged as it stays, not mid-fade."""
    for _ in range(tries):
        texts = page.evaluate(CONTRAST_JS)
        low = [f"{t['ratio']:.2f} < {t['need']}: {t['text']!r} {t['color']} on {t['background']} ({t['where']})"
               for t in texts if t["ratio"] < t["need"]]
        if not low:
            break
        page.wait_for_timeout(1000)
    return len(texts), low


def _per_link(claims: list[dict]) -> list[tuple[int, str]]:
    """(n, the sentence that citation rests on) for each citation link of the answer, in order."""
    out = []
    for claim in claims:
        said = {e["n"]: e["text"] for e in claim["evidence"]}
        for mark in CITATION.finditer(claim["text"]):
            out += [(n, said[n]) for n, _ in parse_cited_pages(mark.group(0))]
    return out


def _same(quote: str, sentence: str) -> bool:
    return quote.replace('"', "'") == sentence.replace('"', "'")  # a link title carries " as '


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_browser__every_visible_text_reaches_aa_contrast(live_page, browser, scheme):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    page = context.new_page()
    try:
        _open(page, live_page.url)
        assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark")
        measured, low = _low_contrast(page)
        states = {"empty page": (measured, low)}

        _ask(page, COMPARE)
        page.evaluate("document.querySelectorAll('#sources-panel details, #feedback details').forEach(d => d.open = true)")
        page.locator("#feedback").get_by_text("Feedback on an answer").click()  # its labels and controls
        page.locator('#chatbot .message.bot a[href^="#src-"]').first.hover()
        page.locator("#cite-pop").wait_for(state="visible")
        states["answer, sources unfolded, popover open"] = _low_contrast(page)
        page.screenshot(path=str(SCREENSHOTS / f"a11y-{scheme}-answer.png"))

        page.mouse.move(0, 0)
        _ask(page, "How do tulips grow in cold gardens?")  # declined: the warning, with its reason
        page.locator("#sources-panel .warn").first.wait_for()
        page.locator("#question textarea").fill("why " * 530)  # the counter over its limit
        page.locator("#q-counter.over").wait_for()
        states["a declined question, the counter over its limit"] = _low_contrast(page)
        page.locator("#question textarea").fill("")

        page.get_by_role("tab", name="Library").click()
        page.locator("#paper-results li").first.wait_for(timeout=30_000)
        page.evaluate("document.querySelectorAll('#paper-results details').forEach((d, i) => d.open = i < 5)")
        states["library tab"] = _low_contrast(page)
        page.screenshot(path=str(SCREENSHOTS / f"a11y-{scheme}-library.png"))
    finally:
        context.close()
    for state, (measured, low) in states.items():
        assert measured >= 30, (state, measured)  # the page was there to measure
        assert low == [], f"{scheme}, {state}: {len(low)} texts below WCAG AA:\n" + "\n".join(low)


def test_browser__names_keyboard_and_each_claims_own_quote(live_page, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expected = _per_link(live_page.app.engine.ask(COMPARE).claims)  # the extractive answer is the same on the page
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        _open(page, live_page.url)
        _ask(page, COMPARE)
        links = page.locator('#chatbot .message.bot a[href^="#src-"]')
        page.wait_for_function("[...document.querySelectorAll('#chatbot a[href^=\"#src-\"]')]"
                               ".every(a => (a.getAttribute('aria-label') || '').startsWith('Source '))")

        # Names, as a screen reader gets them from Chromium's accessibility tree.
        cdp = context.new_cdp_session(page)
        nodes = [n for n in cdp.send("Accessibility.getFullAXTree")["nodes"] if not n.get("ignored")]
        named = {(n.get("role", {}).get("value"), n.get("name", {}).get("value", "")) for n in nodes}
        assert ("textbox", QUESTION_LABEL) in named  # not "Textbox"
        card = page.locator(f"#sources-panel {links.first.get_attribute('href')}")
        title = card.get_attribute("data-title")
        n = card.get_attribute("data-n")
        link_names = [name for role, name in named if role == "link" and name.startswith("Source ")]
        assert f"Source {n}: {title}" in link_names
        assert not any(role == "link" and name.strip() == n for role, name in named)  # never just "1"

        # Two claims citing the same paper: each [n] quotes the sentence its own claim rests on.
        marks = [links.nth(i) for i in range(links.count())]
        assert [int(a.inner_text()) for a in marks] == [n for n, _ in expected]
        first = 0
        other = next(i for i, (n, said) in enumerate(expected) if n == expected[0][0] and said != expected[0][1])
        pop = page.locator("#cite-pop")
        quotes = []
        for i in (first, other):
            marks[i].hover()
            pop.wait_for(state="visible")
            quotes.append(pop.locator("blockquote").inner_text())
            page.mouse.move(0, 0)
        assert quotes[0] != quotes[1]
        assert _same(quotes[0], expected[first][1]) and _same(quotes[1], expected[other][1])

        # The keyboard: Tab reaches a citation; Enter opens its popover (a named dialog) with the focus inside;
        # Escape closes it and gives the focus back to the citation.
        page.keyboard.press("Escape")
        page.locator("#skip-to-question").focus()
        for _ in range(120):
            page.keyboard.press("Tab")
            if page.evaluate("!!document.activeElement.closest('#chatbot a[href^=\"#src-\"]')"):
                break
        else:
            pytest.fail("Tab never reached a citation")
        focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
        page.keyboard.press("Enter")
        pop.wait_for(state="visible")
        assert page.evaluate("document.getElementById('cite-pop').contains(document.activeElement)")
        assert pop.get_attribute("role") == "dialog" and pop.get_attribute("aria-label") == focused
        assert page.locator(".src.flash").count() == 0  # Enter opened the popover, not the source card
        assert _same(pop.locator("blockquote").inner_text(), expected[0][1])
        page.screenshot(path=str(SCREENSHOTS / "a11y-keyboard-popover.png"))
        page.keyboard.press("Escape")
        pop.wait_for(state="hidden")
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") == focused

        # Enter on another mark of the same paper: that claim's sentence.
        marks[other].focus()
        page.keyboard.press("Enter")
        pop.wait_for(state="visible")
        assert pop.locator("blockquote").inner_text() == quotes[1]
        page.keyboard.press("Escape")
        pop.wait_for(state="hidden")
    finally:
        context.close()
