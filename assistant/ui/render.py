"""HTML and Markdown for the chat page: linked citations, the sources panel (one section per answer), paper lists.

Pure functions from answers to strings, kept apart from ``assistant.ui.page``
(which wires Gradio events) so they can be read and tested without a browser.
The HTML is written in Jinja2 templates (``templates/*.html.j2``, autoescaped:
every value is text unless a template is handed HTML this module made), the
Markdown here, escaped by ``untrusted.md_text`` (HTML escaping is not Markdown's).
Nothing here retrieves, ranks or checks: the sentence highlighted for a
citation, its support score and the ⚠ on an unsupported sentence all come
from the verifier's results in the Answer.

A *turn* is one question and its answer as ``assistant.conversation`` keeps and saves it:
``{"id", "question", "answer": Answer.to_dict() or None, "sources": [source rows with abstracts], "settings", "error"}``.
Turn ``t`` (1-based in its conversation) links its [n] to the card ``#src-{n}-t{t}``; the
numbers are the conversation's, so [n] names one paper in every answer.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

from assistant.answering.citations import format_mark, parse_cited_pages
from assistant.conversation import source_row
from assistant.core.secrets import redact
from assistant.core.text import CITATION, split_sentences
from assistant.core.types import DECLINE_PHRASE
from assistant.ui import export
from assistant.ui.untrusted import md_code, md_text, plain_text

_LINK = re.compile(r"\[(\d+)\]\(#src-\d+(?:-t\d+)?(?: \"[^\"]*\")?\)")
# The page of a full-text citation, linked to the PDF at that page: "[p. 5](gradio_api/file=…pdf#page=5 "…")".
_PAGE_LINK = re.compile(r"(?:\[p\. (\d+)\]\([^)\s]*#page=\d+(?: \"[^\"]*\")?\)|p\. (\d+))")
_LINKED_MARK = re.compile(r"\[((?:(?:" + _LINK.pattern + "|" + _PAGE_LINK.pattern + r")(?:[,;]\s*)?)+)\]")
PDF_ROUTE = "gradio_api/file="  # Gradio serves files under the page's allowed paths here (relative: works behind a proxy)
# Notes appended under an answer start with this, so follow-up history can leave them out.
NOTE_MARK = "\n\n> ⚠"
SEARCHED_MARK = "\n\n> 🔎"
PALETTE = 8  # distinct highlight colours, reused in turn: [n] and its evidence sentence share colour (n-1) % 8
RELEVANCE_HELP = ("relevance: cosine similarity between the question and the paper's closest passage, from 0 to 1 "
                  "(the same scale on every card and in the Library tab)")
_SIDE = re.compile(r"^On (.+?): ", re.S)
TITLE_CHARS = 1200  # the longest evidence sentence a citation link's title carries


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
    """Answer text as the engine wrote it: citation links back to [n], notes and layout removed, escapes undone."""
    text = text.split(SEARCHED_MARK, 1)[0].split(NOTE_MARK, 1)[0].replace(" ⚠", "")
    text = re.sub(r"</?div[^>]*>", "", text)
    text = _LINKED_MARK.sub(_unlink_mark, text)
    return plain_text(re.sub(r"\n{3,}", "\n\n", text).strip())


def _unlink_mark(m: re.Match) -> str:
    """A linked citation back to its plain form: "[[1](#src-1), [p. 5](…#page=5)]" → "[1, p. 5]"."""
    items: list[tuple[int, int | None]] = []
    for part in re.finditer(_LINK.pattern + "|" + _PAGE_LINK.pattern, m.group(1)):
        if part.group(1) is not None:
            items.append((int(part.group(1)), None))
        elif items:
            items[-1] = (items[-1][0], int(part.group(2) or part.group(3)))
    return format_mark(items)


def pdf_url(path: str, page: int | None = None) -> str:
    """The page's own URL of a stored PDF (served from the PDF folder only), opened at ``page``."""
    if not path:
        return ""
    return f"{PDF_ROUTE}{quote(str(path))}" + (f"#page={int(page)}" if page else "")


def history_for_engine(history: list) -> list[dict]:
    """Chat history as [{"role", "content"}] with plain text, the shape the engine expects."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        text = message_text(content)
        if role in ("user", "assistant") and text.strip():
            out.append({"role": role, "content": unlink(text) if role == "assistant" else plain_text(text).strip()})
    return out


def anchor(n: int, turn: int | None) -> str:
    return f"src-{n}" if turn is None else f"src-{n}-t{turn}"


def linkify(text: str, evidence: dict | None = None, turn: int | None = None, pdfs: dict[int, str] | None = None,
            marks: list[dict] | None = None) -> str:
    """Answer text (the model's or the quotes') as Markdown that shows it as text (``untrusted.md_text``: no raw
    HTML, images or links of its own), each [n] a Markdown link to its source card (``#src-n``, or ``#src-n-tT`` for
    answer T of a conversation); the link's title is the source sentence that supports the claim (the page's
    popover shows it with the paper; without scripts the browser shows the title on hover). That sentence is the
    claim's own when ``marks`` gives it (one {n: sentence} per citation mark of ``text``, in order:
    ``claim_marks``), else the paper's from ``evidence`` ({n: sentence}, or {(n, page): sentence} for a full
    text's pages). A page ("[3, p. 5]") links to the PDF at that page when ``pdfs`` ({n: stored PDF path}) knows
    the paper's file."""
    evidence = evidence or {}
    pdfs = pdfs or {}

    def title(hint: str) -> str:
        hint = " ".join(hint.split())
        # The popover quotes the title: a whole sentence (a sentence is rarely longer; a runaway one is cut).
        hint = hint if len(hint) <= TITLE_CHARS else hint[: TITLE_CHARS - 1] + "…"
        # A link title is Markdown too: escaped like the text (a trailing backslash would escape the closing quote).
        return f' "{md_text(hint).replace(chr(34), chr(39))}"'

    def item(n: int, page: int | None, own: dict) -> str:
        hint = own.get(n) or evidence.get((n, page)) or evidence.get(n)
        out = f"[{n}](#{anchor(n, turn)}{title(hint) if hint else ''})"
        if page is None:
            return out
        if not pdfs.get(n):
            return f"{out}, p. {page}"
        return f"{out}, [p. {page}]({pdf_url(pdfs[n], page)}{title(f'Open the PDF at page {page}')})"

    def link(m: re.Match, own: dict) -> str:
        items = parse_cited_pages(m.group(0))
        if not items:
            return md_text(m.group(0))
        sep = "; " if any(page is not None for _, page in items) else ", "
        return "[" + sep.join(item(n, page, own) for n, page in items) + "]"

    found = list(CITATION.finditer(text))
    if marks is None or len(marks) != len(found):
        marks = [{}] * len(found)
    out, last = [], 0
    for m, own in zip(found, marks):  # the text between the citations is escaped, the citations become links
        out += [md_text(text[last : m.start()]), link(m, own)]
        last = m.end()
    return "".join(out) + md_text(text[last:])


def claim_marks(text: str, claims: list[dict]) -> list[dict] | None:
    """The evidence of each citation mark in ``text``, in order ({n: the sentence that citation of its claim rests
    on}), from the Answer's ``claims`` (one per citing sentence, in the answer's order). None when the claims do not
    hold exactly the marks of ``text`` (an answer saved before claims were kept, or edited): the caller then shows
    each paper's best sentence."""
    marks: list[dict] = []
    for claim in claims or []:
        said = {e["n"]: e["text"] for e in claim.get("evidence") or [] if e.get("text")}
        marks += [said] * len(CITATION.findall(claim.get("text") or ""))
    return marks if claims and len(marks) == len(CITATION.findall(text)) else None


def _side_by_side(text: str) -> str:
    """A comparison written as "On A: …" / "On B: …" paragraphs, laid out in columns (one column on a phone)."""
    paras = text.split("\n\n")
    sides = [i for i, p in enumerate(paras) if _SIDE.match(p)]
    if len(sides) < 2 or sides != list(range(sides[0], sides[0] + len(sides))):
        return text
    cols = "".join(f'<div class="side">\n\n{paras[i]}\n\n</div>\n' for i in sides)
    block = f'<div class="compare">\n{cols}</div>'
    return "\n\n".join(paras[: sides[0]] + [block] + paras[sides[-1] + 1 :])


def answer_markdown(answer, turn: int | None = None) -> str:
    """The final answer for the chat: linked citations, each sentence the verifier could not support marked ⚠, a
    comparison side by side, then notes on what is missing, on dropped or unsupported citations, and what a
    follow-up was searched for. ``answer`` is an Answer or its dict."""
    a = answer if isinstance(answer, dict) else answer.to_dict()
    text = a["answer"]
    for sentence in a.get("unsupported_sentences") or []:
        if sentence in text:
            text = text.replace(sentence, f"{sentence} ⚠", 1)
    evidence: dict = {c["n"]: c.get("evidence") or "" for c in a.get("citations") or []}
    for c in a.get("citations") or []:
        for p in reversed(c.get("passages") or []):  # best last: it wins its page
            evidence[(c["n"], p.get("page"))] = p.get("evidence") or ""
    pdfs = {int(s["n"]): s["pdf"] for s in a.get("sources") or [] if s.get("pdf")}
    text = linkify(text, evidence, turn, pdfs, marks=claim_marks(text, a.get("claims") or []))
    if a.get("mode") == "compare":
        text = _side_by_side(text)
    notes = []
    if (a.get("fallback") or {}).get("notice"):  # an LLM answer that failed the check: the extractive one, saying so
        notes.append(md_text(a["fallback"]["notice"]))
    if a.get("declined") and a.get("decline_reason"):
        notes.append(f"why: {md_text(a['decline_reason'])}")
    if a.get("unanswered_parts"):
        notes.append("not in the sources: " + md_text("; ".join(a["unanswered_parts"])))
    if a.get("unsupported_sentences"):
        notes.append("⚠ marks a sentence the cited sources do not support")
    if a.get("dropped_citations"):
        notes.append("dropped " + ", ".join(f"[{n}]" for n in a["dropped_citations"]) + ": no such source")
    weak = [c["n"] for c in a.get("citations") or [] if not c["supported"]]
    if weak:
        notes.append(", ".join(f"[{n}]" for n in weak) + " not supported by the cited abstract")
    if notes:
        text += NOTE_MARK + " " + "; ".join(notes)
    if a.get("standalone_question"):
        text += SEARCHED_MARK + f" Searched for: *{md_text(a['standalone_question'])}*"
    return text


def turn_message(turn: dict, t: int) -> str:
    """The chat bubble of turn ``t``: the answer, or the message of what went wrong."""
    if turn.get("error"):
        return md_text(turn["error"])
    if turn.get("answer") is None:
        return "*Reading the papers…*"
    return answer_markdown(turn["answer"], t)


def chat_messages(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for a conversation: two per turn (question, answer), so message i is turn i // 2."""
    out = []
    for t, turn in enumerate(turns, 1):
        out += [{"role": "user", "content": md_text(turn["question"])},
                {"role": "assistant", "content": turn_message(turn, t)}]
    return out


# -- sources panel -------------------------------------------------------------


def highlight(abstract: str, evidence: list[str], css: str = "") -> Markup:
    """The abstract as HTML with the verifier's evidence sentences (what the citing sentences rest on) in <mark>."""
    # A join over the abstract's sentences, each escaped: shorter here than as a template loop.
    sentences = split_sentences(abstract)
    wanted = {_plain(e) for e in evidence if e}
    open_tag = f'<mark class="{html.escape(css)}">' if css else "<mark>"
    return Markup(" ".join(
        f"{open_tag}{html.escape(s)}</mark>" if _plain(s) in wanted else html.escape(s) for s in sentences
    ))


def _plain(text: str) -> str:
    return " ".join(CITATION.sub(" ", text).split()).lower()


def relevance_of(source: dict) -> float | None:
    value = source.get("relevance")
    return float(value) if isinstance(value, (int, float)) else None


def meta_line(source: dict) -> str:
    """authors · year · arXiv id or library id · the file it came from, as plain text."""
    parts = [export.authors_short(source.get("authors") or []), export.year_of(source)]
    aid = export.arxiv_id(source)
    parts.append(f"arXiv:{aid}" if aid else f"id {source.get('paper_id', '')}")
    if source.get("categories"):
        parts.append(", ".join(source["categories"][:2]))
    if source.get("source"):
        parts.append("from " + Path(str(source["source"]).split(":")[0]).name)
    return " · ".join(p for p in parts if p)


def _verdict(citation: dict | None) -> str:
    if citation is None:
        return ""
    support = citation.get("support")
    score = f" ({support:.2f})" if isinstance(support, (int, float)) else ""
    what = "these passages" if citation.get("passages") else "this abstract"
    return (f"supported by {what}" if citation["supported"] else f"not supported by {what}") + score


def card_html(source: dict, citation: dict | None, turn: int | None) -> str:
    """One source card (``templates/card.html.j2``): number, linked title, authors · year · id · file, relevance,
    the cited sentence first, the abstract folded. Its data- attributes feed the citation popover."""
    n = int(source["n"])
    evidence = (citation.get("evidence") if citation else "") or ""
    page = citation.get("page") if citation else None
    pdf = source.get("pdf") or ""
    rested = (citation or {}).get("passages") or []
    return _render(
        "card.html.j2", n=n, anchor=anchor(n, turn), colour=f"hl hl-{(n - 1) % PALETTE}", citation=citation,
        title=source.get("title") or "", link=export.link_of(source),
        meta=meta_line(source) + (f" · p. {page}" if page else ""), relevance_value=relevance_of(source),
        evidence=evidence, verdict=_verdict(citation), page=page, pdf=pdf, pdf_href=pdf_url(pdf, page),
        pdf_label=f"Open the PDF at p. {page}" if page else f"Open the PDF ({source.get('pages') or '?'} pages)",
        rested=rested, rested_evidence=[e.get("evidence") for e in rested], passages=source.get("passages") or [],
        abstract=source.get("abstract") or source.get("snippet") or "")


def _by_relevance(sources: list[dict]) -> list[dict]:
    return sorted(sources, key=lambda s: (-(relevance_of(s) if relevance_of(s) is not None else -1.0), int(s["n"])))


def turn_html(turn: dict, t: int | None, open_: bool = True) -> str:
    """The panel section of one answer (``templates/turn.html.j2``): what it lacks, its cited papers (by relevance),
    then the others folded; for answer ``t`` of a conversation, folded under its title with its exports."""
    a = turn.get("answer")
    sources = turn.get("sources") or []
    citations = {c["n"]: c for c in (a or {}).get("citations") or []}
    # The cards are HTML this module made: Markup, so the template writes them as they are.
    cards = [(int(s["n"]) in citations, Markup(card_html(s, citations.get(int(s["n"])), t)))
             for s in _by_relevance(sources)]
    cited = [card for is_cited, card in cards if is_cited]
    others = [card for is_cited, card in cards if not is_cited]
    exports = {}
    if a is not None and t is not None:
        papers = export.cited_sources(turn)
        exports = dict(markdown=export.answer_markdown(turn), papers=papers,
                       bibtex=export.bibtex(papers) if papers else "", ris=export.ris(papers) if papers else "")
    return _render("turn.html.j2", t=t, open=open_, answer=a, sources=sources, error=turn.get("error") or "",
                   cited=cited, others=others, decline_phrase=DECLINE_PHRASE,
                   seconds=((a or {}).get("timings") or {}).get("total_ms", 0) / 1000,
                   title=export.title_line(turn["question"]) if t is not None else "", **exports)


def panel_html(turns: list[dict], selected: int | None = None, title: str = "") -> str:
    """The sources panel for a conversation (``templates/panel.html.j2``): the newest (or ``selected``, 0-based)
    answer open, older ones folded; the legend of the relevance scale; the whole conversation's exports when
    something was answered."""
    selected = len(turns) - 1 if selected is None or not 0 <= selected < len(turns) else selected
    sections = [Markup(turn_html(turns[i], i + 1, open_=i == selected)) for i in reversed(range(len(turns)))]
    answered = [t for t in turns if t.get("answer") is not None and not t.get("error")]
    exports = {"markdown": "", "papers": [], "name": "", "bibtex": "", "ris": ""}
    if answered:
        name = re.sub(r"[^a-z0-9]+", "-", (title or answered[0]["question"]).lower()).strip("-")[:40] or "conversation"
        papers = export.cited_papers(answered)
        exports = dict(markdown=export.conversation_markdown(title, answered), papers=papers, name=name,
                       bibtex=export.bibtex(papers) if papers else "", ris=export.ris(papers) if papers else "")
    return _render("panel.html.j2", sections=sections, **exports)


def sources_html(sources: list, answer=None, pending: bool = False) -> str:
    """The panel for one answer outside a conversation (the /chat API and single questions): ``sources`` are the
    engine's Source objects, ``answer`` the final Answer or None while it is being written."""
    turn = {"question": answer.question if answer is not None else "", "sources": [source_row(s) for s in sources],
            "answer": answer.to_dict() if answer is not None else None}
    if not sources and answer is None:
        return panel_html([])
    # One line of HTML around a template's output: a template of its own would say no more.
    return f'<div class="sources">{turn_html(turn, None)}</div>'


def question_counter_html(limit: int) -> str:
    """The counter under the question box (the page's script updates it as the user types)."""
    return _render("question_counter.html.j2", limit=limit)


# -- library tab ---------------------------------------------------------------


def paper_list_html(rows: list[dict], heading: str) -> str:
    """Papers, each {paper_id, title, abstract, authors, date, url, source, relevance (or None)}: the title and its
    facts, the abstract folded (``templates/paper_list.html.j2``)."""
    items = [{"title": row["title"], "relevance": relevance_of(row), "meta": meta_line(row),
              "link": export.link_of(row), "abstract": row.get("abstract", "")} for row in rows]
    return _render("paper_list.html.j2", rows=items, heading=heading)


def gaps_html(groups: list) -> str:
    """What the library does not know: declined and partly answered questions grouped by topic
    (``templates/gaps.html.j2``)."""
    return _render("gaps.html.j2", groups=groups, asked=sum(len(g.answers) for g in groups))


def overview_markdown(count: int, library: str, topics: list[str], files: list[tuple[str, int]]) -> str:
    """The empty chat's text: what the library holds and how to ask."""
    # Markdown, not HTML: Jinja's HTML escaping would not make it safe (md_text and md_code do), so no template.
    if count == 0:
        return (f"### The library {md_code(library)} is empty\nAdd papers in the **Library** tab (.txt, .json, .jsonl, .csv, "
                ".bib, PDF), or run `assistant ingest PATH`; then ask about them here.")
    lines = [f"### Ask the {count} papers in {md_code(library)}"]
    if topics:
        lines.append("Topics: " + " · ".join(md_text(t) for t in topics))
    if files:
        shown = ", ".join(f"{md_text(name)} ({n})" for name, n in files[:4])
        more = f" and {len(files) - 4} more" if len(files) > 4 else ""
        lines.append(f"From {len(files)} file{'s' if len(files) != 1 else ''}: {shown}{more}")
    lines.append("Every claim is cited [n]; hover or tap a citation to see the sentence it rests on. "
                 "Try an example:")
    return "\n\n".join(lines)


def ingest_summary(report, filename: str) -> str:
    """What an upload did, in Markdown: counts, then every skipped entry with its reason."""
    name = Path(filename).name
    if not report.ok:
        lines = [f"**Nothing could be read from {md_code(name)}.**"]
    else:
        lines = [
            f"**{md_code(name)}**: {report.papers} papers read — {report.new} new, {report.updated} updated, "
            f"{report.unchanged} unchanged. They are searchable now."
        ]
    if report.skipped:
        listed = f" (the first {len(report.skipped)} listed)" if report.skipped_count > len(report.skipped) else ""
        lines.append(f"Skipped {report.skipped_count:,} entries{listed}:")
        for s in report.skipped:
            where = f"{Path(s.file).name}:{s.line}" if s.line else Path(s.file).name
            lines.append(f"- {md_text(where)}: {md_text(s.reason)}")
    return "\n".join(lines)


# -- templates -----------------------------------------------------------------


class _LayoutLines(Extension):
    """Line breaks in a template are layout, not output: a line break and the indentation after it are dropped, or
    become one space where they fall inside an HTML tag (between its attributes). So a template reads one element a
    line and renders the compact HTML the page has always had; a space that matters between two elements is written
    inside a line."""

    _COMMENT = re.compile(r"\{#.*?#\}", re.S)
    _JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        lines = self._COMMENT.sub("", source).split("\n")
        out, in_tag = [], False
        for i, line in enumerate(lines):
            text = line if i == 0 else line.lstrip()
            if out:
                out.append(" " if in_tag else "")
            out.append(text)
            markup = self._JINJA.sub("", text)
            opened, closed = markup.rfind("<"), markup.rfind(">")
            in_tag = opened > closed or (in_tag and closed < 0)
        return "".join(out).strip()


def _html_text(value):
    """Every value a template writes, escaped as the page always has (``html.escape``: &quot; &#x27;); Markup (HTML
    this module made, or a template's own) passes as it is. Autoescaping stays on behind it."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return Markup(html.escape(value))
    return value


@cache
def _templates() -> Environment:
    env = Environment(loader=PackageLoader("assistant.ui", "templates"), autoescape=True, finalize=_html_text,
                      undefined=StrictUndefined, extensions=[_LayoutLines], keep_trailing_newline=False)
    env.globals.update(RELEVANCE_HELP=RELEVANCE_HELP, pdf_url=pdf_url, highlight=highlight,
                       data_url_text=lambda text: quote(redact(text)))
    return env


def _render(template: str, **context) -> str:
    return str(_templates().get_template(template).render(**context))
