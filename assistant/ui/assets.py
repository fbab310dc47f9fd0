"""The chat page's theme, its stylesheet and its one script (citation popover, copy buttons, question counter).

The stylesheet and the script are files shipped in the package
(``static/page.css``, ``static/page.js``: what each does is said there); this
module reads them, adds the highlight colours (one rule per citation number,
generated from ``COLOURS``), and hands the script the values it needs. The
script is installed once through ``launch(js=...)``.

Every text colour here and in the theme reaches WCAG AA against its background
(4.5:1; 3:1 for large text), in the light and the dark scheme:
tests/ui/test_ui_a11y_browser.py measures each visible text on the page.
"""

from __future__ import annotations

import json
from importlib.resources import files

import gradio as gr

from assistant.ui.render import PALETTE

# System fonts only: the default theme pulls Google Fonts, which a machine offline (or private) cannot load.
# The Soft theme's muted text (neutral 400: 2.4:1 on its light background), labels, tabs and buttons (indigo 500:
# 3.6-4.5:1, hovered ones too) are darkened to reach 4.5:1; in the dark scheme the placeholder and the accent lighten.
THEME = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]).set(
    body_text_color_subdued="*neutral_600",
    input_placeholder_color="*neutral_500",
    input_placeholder_color_dark="*neutral_300",
    block_label_text_color="*primary_700",
    block_title_text_color="*primary_700",
    color_accent="*primary_600",
    button_primary_background_fill="*primary_600",
    button_primary_background_fill_hover="*primary_700",
    button_primary_background_fill_hover_dark="*primary_700",
    button_secondary_background_fill_hover_dark="*primary_600",
    button_cancel_background_fill_hover_dark="*primary_600",
    button_primary_border_color="*primary_600",
    button_primary_border_color_hover="*primary_700",
    checkbox_label_background_fill_selected="*primary_600",
)
# Light, distinct backgrounds (one per citation number, in turn) that keep dark text readable.
COLOURS = ["#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa", "#a5f3fc", "#e9d5ff"]
assert len(COLOURS) == PALETTE


def _palette_css(limit: int = 120) -> str:
    """The highlight rules: a colour per class and one per citation number up to ``limit`` (generated here, as
    the numbers and colours are the ones render.py numbers the cards with)."""
    rules = [f".hl-{i} {{ background: {c}; }}" for i, c in enumerate(COLOURS)]
    for n in range(1, limit + 1):
        c = COLOURS[(n - 1) % PALETTE]
        rules.append(f'#chatbot a[href^="#src-{n}-"], #chatbot a[href="#src-{n}"] {{ background: {c}; }}')
    return "\n".join(rules)


def _static(name: str) -> str:
    """A file of ``assistant/ui/static`` (shipped in the package), read through importlib.resources."""
    return files("assistant.ui").joinpath("static", name).read_text(encoding="utf-8")


CSS = _static("page.css") + _palette_css()


def page_script(max_question_chars: int) -> str:
    """The page's script (``static/page.js``, a function of its config) as Gradio runs it on load: called with the
    longest question the page takes and the number of highlight colours, written as JSON (never spliced as text)."""
    config = json.dumps({"maxQuestionChars": int(max_question_chars), "palette": PALETTE})
    return f"() => (\n{_static('page.js')})({config})"
