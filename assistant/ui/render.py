"""HTML and Markdown for the chat page: linked citations, the sources panel, paper lists.

Pure functions from answer objects to strings, kept apart from ``assistant.ui.page``
(which wires Gradio events) so they can be read and tested without a browser.
Nothing here retrieves, ranks or checks: the sentence highlighted for a
citation, its support score and the ⚠ on an unsupported sentence all come
from the verifier's results in the Answer.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from assistant.answering.citations import (
    parse_citations,
)
from assistant.core.text import CITATION, split_sentences
from assistant.core.types import DECLINE_PHRASE

_LINK = re.compile(r"\[(\d+)\]\(#src-\d+(?: \"[^\"]*\")?\)")
# Notes appended under an answer start with this, so follow-up history can leave them out.
NOTE_MARK = "\n\n> ⚠"

CSS = """
#sources-panel { max-height: 640px; overflow-y: auto; }
.src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
.src:target { outline: 2px solid var(--color-accent); }
.src-head { font-weight: 600; }
.src-score { color: var(--body-text-color-subdued); font-size: 0.85em; font-weight: 400; }
.src-abstract { font-size: 0.9em; line-height: 1.45; }
.src-abstract mark { background: #fde68a; color: inherit; padding: 0 1px; }
.badge { font-size: 0.75em; border-radius: 4px; padding: 1px 5px; margin-left: 4px; }
.badge-ok { background: #dcfce7; color: #166534; }
.badge-warn { background: #fee2e2; color: #991b1b; }
.warn { background: #fff7ed; border-left: 3px solid #f97316; padding: 6px 10px; margin: 6px 0; font-size: 0.9em; color: #7c2d12; }
.muted { color: var(--body-text-color-subdued); font-size: 0.85em; }
.paper-list li { margin-bottom: 4px; }
"""


# -- chat messages -------------------------------------------------------------


def message_text(content) -> str:
    """The text of a chat message, whether Gradio gives a string, a block or a list of blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "") if content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return " ".join(t for t in (message_text(c) for c in content) if t)
    return ""


def unlink(text: str) -> str:
    """Answer text as the engine wrote it: citation links back to [n], notes removed."""
    text = text.split(NOTE_MARK, 1)[0].replace(" ⚠", "")
    text = re.sub(r"\[((?:" + _LINK.pattern + r"(?:,\s*)?)+)\]", lambda m: "[" + ", ".join(_LINK.findall(m.group(1))) + "]", text)
    return text.strip()


def history_for_engine(history: list) -> list[dict]:
    """Chat history as [{"role", "content"}] with plain text, the shape AnswerEngine expects."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = message_text(content)
        if role in ("user", "assistant") and text.strip():
            out.append({"role": role, "content": unlink(text) if role == "assistant" else text.strip()})
    return out


def linkify(text: str, evidence: dict[int, str] | None = None) -> str:
    """Each [n] becomes a Markdown link to its source card (#src-n); with ``evidence``, hovering the link shows
    the source sentence that supports the claim (the link's title)."""
    evidence = evidence or {}

    def target(n: int) -> str:
        hint = evidence.get(n)
        if not hint:
            return f"#src-{n}"
        hint = hint if len(hint) <= 300 else hint[:299] + "…"
        return f'#src-{n} "{hint.replace(chr(34), chr(39))}"'

    def link(m: re.Match) -> str:
        numbers = parse_citations(m.group(0))
        return "[" + ", ".join(f"[{n}]({target(n)})" for n in numbers) + "]" if numbers else m.group(0)

    return CITATION.sub(link, text)


def answer_markdown(answer) -> str:
    """The final answer for the chat: linked citations (hover: the supporting sentence), each sentence the verifier
    could not support marked ⚠, then notes on what is missing and on dropped or unsupported citations."""
    text = answer.answer
    for sentence in answer.unsupported_sentences:
        if sentence in text:
            text = text.replace(sentence, f"{sentence} ⚠", 1)
    text = linkify(text, {c["n"]: c.get("evidence") or "" for c in answer.citations})
    notes = []
    if getattr(answer, "declined", False) and getattr(answer, "decline_reason", ""):
        notes.append(f"why: {answer.decline_reason}")
    if getattr(answer, "unanswered_parts", None):
        notes.append("not in the sources: " + "; ".join(answer.unanswered_parts))
    if answer.unsupported_sentences:
        notes.append("⚠ marks a sentence the cited sources do not support")
    if answer.dropped_citations:
        notes.append("dropped " + ", ".join(f"[{n}]" for n in answer.dropped_citations) + ": no such source")
    weak = [c["n"] for c in answer.citations if not c["supported"]]
    if weak:
        notes.append(", ".join(f"[{n}]" for n in weak) + " not supported by the cited abstract")
    if notes:
        text += NOTE_MARK + " " + "; ".join(notes)
    return text


# -- sources panel -------------------------------------------------------------


def highlight(abstract: str, evidence: list[str]) -> str:
    """The abstract as HTML with the verifier's evidence sentences (what the citing sentences rest on) in <mark>."""
    sentences = split_sentences(abstract)
    wanted = {_plain(e) for e in evidence if e}
    return " ".join(
        f"<mark>{html.escape(s)}</mark>" if _plain(s) in wanted else html.escape(s) for s in sentences
    )


def _plain(text: str) -> str:
    return " ".join(CITATION.sub(" ", text).split()).lower()


def _card(source, citation: dict | None) -> str:
    badge = ""
    if citation is not None:
        support = citation.get("support")
        score = f" {support:.2f}" if isinstance(support, (int, float)) else ""
        badge = (
            f'<span class="badge badge-ok" title="support of the citing sentence by this abstract">cited · support{score}</span>'
            if citation["supported"]
            else f'<span class="badge badge-warn">cited, not supported by this abstract{score}</span>'
        )
    evidence = [citation["evidence"]] if citation and citation.get("evidence") else []
    body = highlight(source.abstract, evidence) if evidence else html.escape(source.abstract)
    return (
        f'<div class="src" id="src-{source.n}">'
        f'<div class="src-head">[{source.n}] {html.escape(source.title)} '
        f'<span class="src-score">relevance {_relevance(source)}</span>{badge}</div>'
        f'<div class="src-abstract">{body}</div></div>'
    )


def sources_html(sources: list, answer=None, pending: bool = False) -> str:
    """The panel beside the chat: cited papers first (highlighted), then the other retrieved ones.

    ``sources`` are the engine's Source objects (full abstracts); ``answer`` is the
    final Answer, or None while the answer is still being written.
    """
    parts = ['<div class="sources">']
    if answer is not None and answer.declined:
        reason = f" Why: {answer.decline_reason}." if getattr(answer, "decline_reason", "") else ""
        parts.append(f'<p class="warn">{html.escape(DECLINE_PHRASE + reason)}</p>')
    if answer is not None and getattr(answer, "unanswered_parts", None):
        parts.append(f'<p class="warn">Not in the sources: {html.escape("; ".join(answer.unanswered_parts))}</p>')
    if answer is not None and answer.dropped_citations:
        for n in answer.dropped_citations:
            parts.append(f'<p class="warn">[{n}] dropped: no such source</p>')
    if answer is not None and answer.unsupported_sentences:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in answer.unsupported_sentences)
        parts.append(f'<div class="warn">Not supported by the cited abstracts:<ul>{items}</ul></div>')
    if not sources and (answer is None or not answer.declined):
        parts.append('<p class="muted">No sources yet: ask a question.</p>')

    citations = {c["n"]: c for c in answer.citations} if answer is not None else {}
    cited = [s for s in sources if s.n in citations]
    others = [s for s in sources if s.n not in citations]
    if pending and sources:
        parts.append(f'<p class="muted">Writing the answer from {len(sources)} papers…</p>')
    if cited:
        parts.append(f"<h4>Cited papers ({len(cited)})</h4>")
        parts += [_card(s, citations[s.n]) for s in sorted(cited, key=lambda s: s.n)]
    if others:
        label = "Retrieved papers" if answer is None else f"Other retrieved papers ({len(others)}, not cited)"
        cards = "".join(_card(s, None) for s in others)
        # Uncited papers are folded away once the answer is done, but stay reachable.
        parts.append(f"<details{' open' if answer is None else ''}><summary>{label}</summary>{cards}</details>")
    if answer is not None and getattr(answer, "standalone_question", ""):
        parts.append(f'<p class="muted searched">searched for: {html.escape(answer.standalone_question)}</p>')
    if answer is not None:
        secs = answer.timings.get("total_ms", 0) / 1000
        # data-question marks the panel as finished for this question (scripts and tests wait on it).
        parts.append(
            f'<p class="muted src-footer" data-question="{html.escape(answer.question, quote=True)}">'
            f"{html.escape(answer.backend)} · {html.escape(answer.model)} · {secs:.1f} s</p>"
        )
    parts.append("</div>")
    return "".join(parts)


# -- library panel -------------------------------------------------------------


def paper_list_html(rows: list[tuple[str, str, float | None, str]], heading: str) -> str:
    """A list of papers: (paper_id, title, score or None, abstract) each, titles unfolding to abstracts."""
    if not rows:
        return f'<p class="muted">{html.escape(heading)}: no papers.</p>'
    items = []
    for pid, title, score, abstract in rows:
        score_txt = f' <span class="src-score">{score:.3f}</span>' if score is not None else ""
        items.append(
            f'<li><details><summary>{html.escape(title)}{score_txt}</summary>'
            f'<div class="src-abstract">{html.escape(abstract)}</div>'
            f'<div class="muted">{html.escape(pid)}</div></details></li>'
        )
    return f'<p class="muted">{html.escape(heading)}</p><ol class="paper-list">{"".join(items)}</ol>'


def ingest_summary(report, filename: str) -> str:
    """What an upload did, in Markdown: counts, then every skipped entry with its reason."""
    name = Path(filename).name
    if not report.ok:
        lines = [f"**Nothing could be read from `{name}`.**"]
    else:
        lines = [
            f"**`{name}`**: {report.papers} papers read — {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged. They are searchable now."
        ]
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} entries:")
        for s in report.skipped:
            where = f"{Path(s.file).name}:{s.line}" if s.line else Path(s.file).name
            lines.append(f"- {where}: {s.reason}")
    return "\n".join(lines)


def _relevance(source) -> str:
    # Cosine similarity to the question has a known scale; the fused score does not.
    value = source.relevance if getattr(source, "relevance", None) is not None else source.score
    return f"{value:.3f}"
