"""The page's colours, read from its stylesheet and theme: every text colour it sets reaches WCAG AA (4.5:1) against
the background it sits on, including states a browser test does not reach (an unsupported badge, a warning, the
counter over its limit, each highlight colour with the text drawn on it). tests/ui/test_ui_a11y_browser.py measures
the rendered page."""

from __future__ import annotations

import re

import pytest

from assistant.ui.assets import COLOURS, CSS, THEME

AA = 4.5
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_HEX = r"#[0-9a-fA-F]{3,6}\b"


def contrast(a: str, b: str) -> float:
    def lum(hex_: str) -> float:
        h = hex_.lstrip("#")
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        def f(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        r, g, b_ = (f(int(h[i : i + 2], 16) / 255) for i in (0, 2, 4))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    x, y = lum(a), lum(b)
    return (max(x, y) + 0.05) / (min(x, y) + 0.05)


def theme(name: str, dark: bool = False) -> str:
    """A theme variable resolved to its colour ("*neutral_950" → "#0b0f19"; "white" → "#ffffff"). In the dark
    scheme each name (the one asked for and those it refers to) is read from its ``_dark`` variant where it has one,
    as Gradio's CSS variables resolve."""
    value = "*" + name
    while value.startswith("*"):
        name = value[1:]
        value = getattr(THEME, f"{name}_dark", None) if dark else None
        value = value or getattr(THEME, name)
    return {"white": "#ffffff", "black": "#000000"}.get(value, value)


def _rules() -> list[tuple[str, str]]:
    return [(sel.strip(), body) for sel, body in _RULE.findall(CSS)]


def _prop(body: str, name: str) -> str | None:
    m = re.search(rf"(?:^|;|\s){name}\s*:\s*({_HEX})", body)
    return m.group(1) if m else None


def test_contrast__the_formula_matches_known_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#9ca3af", "#f9fafb") == pytest.approx(2.43, abs=0.01)  # the muted text before issue 23
    assert contrast("#4b5563", "#f9fafb") == pytest.approx(7.23, abs=0.01)


def test_css__every_rule_with_a_colour_and_a_background_reaches_aa():
    pairs = [(sel, _prop(body, "color"), _prop(body, "background")) for sel, body in _rules()]
    pairs = [p for p in pairs if p[1] and p[2]]
    assert len(pairs) >= 4  # badges, the warning, the skip link
    low = [(sel, fg, bg, round(contrast(fg, bg), 2)) for sel, fg, bg in pairs if contrast(fg, bg) < AA]
    assert low == []


def test_css__the_text_on_every_highlight_colour_reaches_aa():
    # [n] in the answer (#chatbot links), the card's number, the evidence quote and the <mark> in the abstract.
    texts = {_prop(body, "color") for sel, body in _rules()
             if any(k in sel for k in ('#chatbot a[href^="#src-"]', ".num", "blockquote", "mark"))} - {None}
    assert texts
    low = [(fg, bg, round(contrast(fg, bg), 2)) for fg in texts for bg in COLOURS if contrast(fg, bg) < AA]
    assert low == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_css__fixed_text_colours_reach_aa_on_the_page_backgrounds(scheme):
    dark = scheme == "dark"
    backgrounds = {theme("background_fill_primary", dark), theme("background_fill_secondary", dark)}
    # Colours set alone (no background of their own in the rule), on the page's backgrounds of this scheme.
    alone = [(sel, _prop(body, "color")) for sel, body in _rules()
             if _prop(body, "color") and not _prop(body, "background") and "hl" not in sel
             and not any(k in sel for k in ('#chatbot a[href^="#src-"]', ".num", "blockquote", "mark"))]
    mine = [(sel, fg) for sel, fg in alone if all(s.strip().startswith(".dark") for s in sel.split(","))] \
        if scheme == "dark" else [(sel, fg) for sel, fg in alone if ".dark" not in sel]
    assert mine
    low = [(sel, fg, bg, round(contrast(fg, bg), 2)) for sel, fg in mine for bg in backgrounds if contrast(fg, bg) < AA]
    assert low == []


def test_css__a_dark_rule_names_one_selector():
    # Gradio scopes each custom rule to the page and, in a selector list, rewrites only the first ".dark": a second
    # ".dark X" in the list would never match (and its colour would silently not apply).
    lists = [sel for sel, _ in _rules() if ".dark" in sel and "," in sel]
    assert lists == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme__muted_text_placeholders_labels_and_buttons_reach_aa(scheme):
    def var(name: str) -> str:
        return theme(name, scheme == "dark")

    pairs = {
        "muted text on the page": (var("body_text_color_subdued"), var("background_fill_primary")),
        "muted text on a panel": (var("body_text_color_subdued"), var("background_fill_secondary")),
        "placeholder": (var("input_placeholder_color"), var("input_background_fill")),
        **{f"{kind} button{state.replace('_', ' ')}": (var(f"button_{kind}_text_color{state}"),
                                                     var(f"button_{kind}_background_fill{state}"))
           for kind in ("primary", "secondary", "cancel") for state in ("", "_hover")},
        "selected choice": (var("checkbox_label_text_color_selected"), var("checkbox_label_background_fill_selected")),
    }
    if scheme == "light":  # labels sit on their tinted badge; dark labels are white on the block
        pairs["label"] = (var("block_label_text_color"), var("block_label_background_fill"))
        pairs["selected tab"] = (var("color_accent"), var("background_fill_secondary"))
    low = {k: round(contrast(fg, bg), 2) for k, (fg, bg) in pairs.items() if contrast(fg, bg) < AA}
    assert low == {}


# -- the files the page is built from ----------------------------------------------------------------------------------


def test_static__the_script_gets_its_config_as_json_and_the_stylesheet_its_colours():
    import json

    from assistant.ui.assets import page_script

    script = page_script(1234)
    head, _, config = script.rpartition(")(")
    assert head.startswith("() => (\n") and "(config) => {" in head and "%(" not in head
    assert json.loads(config.removesuffix(")")) == {"maxQuestionChars": 1234, "palette": len(COLOURS)}
    assert "const MAX = config.maxQuestionChars;" in script and "% config.palette" in script
    assert CSS.count("#cite-pop {") == 1 and f'a[href="#src-120"] {{ background: {COLOURS[119 % len(COLOURS)]}; }}' in CSS


def test_package_data__every_static_file_and_template_ships_in_the_wheel():
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["assistant.ui"]
    ui = root / "assistant" / "ui"
    files = [p.relative_to(ui).as_posix() for d in ("static", "templates") for p in (ui / d).iterdir() if p.is_file()]
    assert len(files) >= 8
    assert [f for f in files if not any(fnmatch(f, g) for g in globs)] == []
