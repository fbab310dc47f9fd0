"""Text the page did not write (paper titles and abstracts, file names, URLs from paper records, model output, error
messages), made safe to show: it stays text.

Gradio renders a chat message or a Markdown block as Markdown *with* raw HTML, so
an abstract holding ``<img src=http://…>`` or ``![](http://…)`` would make every
reader's browser fetch that URL. ``md_text`` turns such text into Markdown that
shows it literally: no raw HTML, no image, no link of its own (the page adds its
own citation links around it). ``safe_url`` keeps a record's URL only when it is
http(s), so a ``javascript:`` URL never becomes a link. HTML built by the page
itself escapes with ``html.escape`` as before; the page's Content-Security-Policy
(``assistant.ui.guard``) stands behind all of this.
"""

from __future__ import annotations

import html
import re

# Escaped for Markdown: backslash, backtick (code spans would show the escapes raw), brackets (links, images,
# reference definitions: "![x](url)" needs an unescaped "["), and * and _ (emphasis would eat "7*7*7", and could
# open in the text and close inside a citation link's title, breaking the link).
_MD_SPECIAL = re.compile(r"([\\`\[\]*_])")
_MD_ESCAPED = re.compile(r"\\([\\`\[\]*_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # browsers drop tabs and newlines inside a URL: "java\tscript:" counts
_HTTP = re.compile(r"^https?://[^/?#\s]+", re.I)


def md_text(text) -> str:
    """``text`` as Markdown that renders as exactly that text: ``<``, ``>`` and ``&`` as entities (no raw HTML,
    no autolink), ``[ ] ` * _ \\`` backslash-escaped (no link, image, code span or emphasis)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(text or ""), quote=False))


def plain_text(markdown: str) -> str:
    """What ``md_text`` escaped, back as it was (for text read back from the page, such as chat history)."""
    return html.unescape(_MD_ESCAPED.sub(r"\1", markdown))


_MD_LIVE = re.compile(r"<|!\[|\]\(|\]:")
_INERT = {"<": "\\<", "![": "!\\[", "](": "]\\(", "]:": "]\\:"}


def md_inert(text) -> str:
    """``text`` for a Markdown file a researcher pastes elsewhere (exports): readable as it is ([n] stays [n]), but
    no raw HTML, autolink, image, link or link definition can start in it."""
    return _MD_LIVE.sub(lambda m: _INERT[m.group(0)], str(text or ""))


def md_code(text) -> str:
    """``text`` (a file name, a path) as a Markdown code span: nothing inside one is interpreted, and a backtick,
    the only way out of it, is replaced."""
    return "`" + " ".join(str(text or "").replace("`", "'").split()) + "`"


def safe_url(url) -> str:
    """``url`` when it is an http(s) URL with a host, else "" (a ``javascript:``, ``data:`` or relative URL from a
    paper record never becomes a link)."""
    cleaned = _CONTROL.sub("", str(url or "")).strip().replace(" ", "%20")
    return cleaned if _HTTP.match(cleaned) else ""
