"""HTML and Markdown for the chat page: linked citations, the sources panel (one section per answer), paper lists.

Pure functions from answers to strings, kept apart from ``assistant.ui.page``
(which wires Gradio events) so they can be read and tested without a browser.
Nothing here retrieves, ranks or checks: the sentence highlighted for a
citation, its support score and the ⚠ on an unsupported sentence all come
from the verifier's results in the Answer.

A *turn* is one question and its answer as the page keeps and saves it:
``{"id", "question", "answer": Answer.to_dict() or None, "sources": [source dicts with abstracts], "error"}``.
Turn ``t`` (1-based in its conversation) links its [n] to the card ``#src-{n}-t{t}``; the
numbers are the conversation's, so [n] names one paper in every answer.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from assistant.answering.citations import format_mark, parse_cited_pages
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


def linkify(text: str, evidence: dict | None = None, turn: int | None = None, pdfs: dict[int, str] | None = None) -> str:
    """Answer text (the model's or the quotes') as Markdown that shows it as text (``untrusted.md_text``: no raw
    HTML, images or links of its own), each [n] a Markdown link to its source card (``#src-n``, or ``#src-n-tT`` for
    answer T of a conversation); with ``evidence`` ({n: sentence}, or {(n, page): sentence} for a full text's pages) the link's
    title is the source sentence that supports the claim (the page's popover shows it with the paper; without
    scripts the browser shows the title on hover). A page ("[3, p. 5]") links to the PDF at that page when
    ``pdfs`` ({n: stored PDF path}) knows the paper's file."""
    evidence = evidence or {}
    pdfs = pdfs or {}

    def title(hint: str) -> str:
        hint = " ".join(hint.split())
        hint = hint if len(hint) <= 300 else hint[:299] + "…"
        # A link title is Markdown too: escaped like the text (a trailing backslash would escape the closing quote).
        return f' "{md_text(hint).replace(chr(34), chr(39))}"'

    def item(n: int, page: int | None) -> str:
        hint = evidence.get((n, page)) or evidence.get(n)
        out = f"[{n}](#{anchor(n, turn)}{title(hint) if hint else ''})"
        if page is None:
            return out
        if not pdfs.get(n):
            return f"{out}, p. {page}"
        return f"{out}, [p. {page}]({pdf_url(pdfs[n], page)}{title(f'Open the PDF at page {page}')})"

    def link(m: re.Match) -> str:
        items = parse_cited_pages(m.group(0))
        if not items:
            return md_text(m.group(0))
        sep = "; " if any(page is not None for _, page in items) else ", "
        return "[" + sep.join(item(n, page) for n, page in items) + "]"

    out, last = [], 0
    for m in CITATION.finditer(text):  # the text between the citations is escaped, the citations become links
        out += [md_text(text[last : m.start()]), link(m)]
        last = m.end()
    return "".join(out) + md_text(text[last:])


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
    text = linkify(text, evidence, turn, pdfs)
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


def highlight(abstract: str, evidence: list[str], css: str = "") -> str:
    """The abstract as HTML with the verifier's evidence sentences (what the citing sentences rest on) in <mark>."""
    sentences = split_sentences(abstract)
    wanted = {_plain(e) for e in evidence if e}
    open_tag = f'<mark class="{css}">' if css else "<mark>"
    return " ".join(
        f"{open_tag}{html.escape(s)}</mark>" if _plain(s) in wanted else html.escape(s) for s in sentences
    )


def _plain(text: str) -> str:
    return " ".join(CITATION.sub(" ", text).split()).lower()


def _attr(text) -> str:
    return html.escape(str(text or ""), quote=True)


def relevance_of(source: dict) -> float | None:
    value = source.get("relevance")
    return float(value) if isinstance(value, (int, float)) else None


def _relevance_html(source: dict) -> str:
    value = relevance_of(source)
    if value is None:
        return ""
    shown = max(0.0, min(1.0, value))
    return (f'<span class="src-score" title="{_attr(RELEVANCE_HELP)}">relevance {value:.2f} '
            f'<meter min="0" max="1" value="{shown:.3f}"></meter></span>')


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
    """One source card: number, linked title, authors · year · id · file, relevance, the cited sentence first,
    the abstract folded. Its data- attributes feed the citation popover."""
    n = int(source["n"])
    colour = f"hl hl-{(n - 1) % PALETTE}"
    evidence = citation.get("evidence") if citation else ""
    page = citation.get("page") if citation else None
    meta = meta_line(source) + (f" · p. {page}" if page else "")
    link = export.link_of(source)
    title = html.escape(source.get("title", ""))
    title_html = f'<a href="{_attr(link)}" target="_blank" rel="noopener">{title}</a>' if link else title
    badge = ""
    if citation is not None:
        cls = "badge-ok" if citation["supported"] else "badge-warn"
        badge = f'<span class="badge {cls}" title="the verifier\'s score for the sentences citing it">cited · {html.escape(_verdict(citation))}</span>'
    abstract = source.get("abstract") or source.get("snippet") or ""
    body = highlight(abstract, [evidence], colour) if evidence else html.escape(abstract)
    pdf = source.get("pdf") or ""
    rested = (citation or {}).get("passages") or []
    if rested:  # a full text: each passage the answer rests on, with its page (linked to the PDF at that page)
        quote_html = "".join(
            f'<blockquote class="evidence {colour}">{_page_link(pdf, p.get("page"))}{html.escape(p.get("evidence") or "")}'
            f"</blockquote>" for p in rested[:4])
    else:
        quote_html = f'<blockquote class="evidence {colour}">{html.escape(evidence)}</blockquote>' if evidence else ""
    pdf_html = ""
    if pdf:
        label = f"Open the PDF at p. {page}" if page else f"Open the PDF ({source.get('pages') or '?'} pages)"
        pdf_html = f'<a class="pdf-link" href="{_attr(pdf_url(pdf, page))}" target="_blank" rel="noopener">{html.escape(label)}</a>'
    passages_html = ""
    if source.get("passages"):
        items = "".join(f'<li>{_page_link(pdf, p.get("page"))}{highlight(p.get("text") or "", [e.get("evidence") for e in rested], colour)}</li>'
                        for p in source["passages"])
        passages_html = f'<details class="src-passages"><summary>Passages found</summary><ul>{items}</ul></details>'
    return (
        f'<div class="src" id="{anchor(n, turn)}" data-n="{n}" data-title="{_attr(source.get("title"))}" '
        f'data-meta="{_attr(meta)}" data-evidence="{_attr(evidence)}" data-verdict="{_attr(_verdict(citation))}" '
        f'data-pdf="{_attr(pdf_url(pdf, page) if pdf else "")}" data-page="{_attr(page or "")}">'
        f'<div class="src-head"><span class="num {colour}">[{n}]</span> {title_html}</div>'
        f'<div class="src-meta">{html.escape(meta)}</div>'
        f'<div class="src-line">{_relevance_html(source)}{badge}{pdf_html}</div>'
        f"{quote_html}{passages_html}"
        f'<details class="src-abstract"><summary>Abstract</summary>{body}</details></div>'
    )


def _page_link(pdf: str, page) -> str:
    """"p. 5 · " before a passage, linked to the PDF at that page when the file is known."""
    if not page:
        return ""
    if not pdf:
        return f'<span class="page">p. {int(page)}</span> · '
    return (f'<a class="page" href="{_attr(pdf_url(pdf, page))}" target="_blank" rel="noopener" '
            f'title="Open the PDF at page {int(page)}">p. {int(page)}</a> · ')


def _by_relevance(sources: list[dict]) -> list[dict]:
    return sorted(sources, key=lambda s: (-(relevance_of(s) if relevance_of(s) is not None else -1.0), int(s["n"])))


def _download(text: str, name: str, label: str, mime: str) -> str:
    return (f'<a class="dl" href="data:{mime};charset=utf-8,{quote(redact(text))}" download="{_attr(name)}" '
            f'role="button">{html.escape(label)}</a>')


def _turn_tools(turn: dict, t: int) -> str:
    md = export.answer_markdown(turn)
    tools = [f'<button type="button" class="copy-md" data-from="md-t{t}">Copy as Markdown</button>',
             _download(md, f"answer-{t}.md", "Answer .md", "text/markdown").replace('class="dl"', f'class="dl" id="md-t{t}"')]
    papers = export.cited_sources(turn)
    if papers:
        tools += [_download(export.bibtex(papers), f"answer-{t}.bib", ".bib", "application/x-bibtex"),
                  _download(export.ris(papers), f"answer-{t}.ris", ".ris", "application/x-research-info-systems")]
    return f'<div class="tools">{"".join(tools)}</div>'


def turn_html(turn: dict, t: int | None, open_: bool = True) -> str:
    """The panel section of one answer: what it lacks, its cited papers (by relevance), then the others folded."""
    a = turn.get("answer")
    sources = turn.get("sources") or []
    parts = []
    if a is not None and a.get("declined"):
        reason = f" Why: {a['decline_reason']}." if a.get("decline_reason") else ""
        parts.append(f'<p class="warn">{html.escape(DECLINE_PHRASE + reason)}</p>')
    if a is not None and a.get("unanswered_parts"):
        parts.append(f'<p class="warn">Not in the sources: {html.escape("; ".join(a["unanswered_parts"]))}</p>')
    for n in (a or {}).get("dropped_citations") or []:
        parts.append(f'<p class="warn">[{n}] dropped: no such source</p>')
    if a is not None and a.get("unsupported_sentences"):
        items = "".join(f"<li>{html.escape(s)}</li>" for s in a["unsupported_sentences"])
        parts.append(f'<div class="warn">Not supported by the cited abstracts:<ul>{items}</ul></div>')
    if turn.get("error"):
        parts.append(f'<p class="warn">{html.escape(turn["error"])}</p>')
    if not sources and a is None and not turn.get("error"):
        parts.append('<p class="muted">Searching the library…</p>')

    citations = {c["n"]: c for c in (a or {}).get("citations") or []}
    cited = _by_relevance([s for s in sources if int(s["n"]) in citations])
    others = _by_relevance([s for s in sources if int(s["n"]) not in citations])
    if a is None and sources and not turn.get("error"):
        parts.append(f'<p class="muted">Writing the answer from {len(sources)} papers…</p>')
    if cited:
        parts.append(f"<h4>Cited papers ({len(cited)})</h4>")
        parts += [card_html(s, citations[int(s["n"])], t) for s in cited]
    if others:
        label = "Retrieved papers" if a is None else f"Other retrieved papers ({len(others)}, not cited)"
        cards = "".join(card_html(s, None, t) for s in others)
        parts.append(f"<details class=\"others\"{' open' if a is None else ''}><summary>{label}</summary>{cards}</details>")
    if a is not None and a.get("standalone_question"):
        parts.append(f'<p class="muted searched">searched for: {html.escape(a["standalone_question"])}</p>')
    if a is not None:
        secs = (a.get("timings") or {}).get("total_ms", 0) / 1000
        # data-question marks the section as finished for this question (scripts and tests wait on it).
        parts.append(f'<p class="muted src-footer" data-question="{_attr(a["question"])}">'
                     f"{html.escape(a.get('backend', ''))} · {html.escape(a.get('model', ''))} · {secs:.1f} s</p>")
    if t is None:
        return "".join(parts)
    tools = _turn_tools(turn, t) if a is not None else ""
    summary = (f'<summary><span class="turn-n">Answer {t}</span> {html.escape(export.title_line(turn["question"]))}'
               f'{f" <span class=muted>· {len(cited)} cited</span>" if a is not None else ""}</summary>')
    return f'<details class="turn" id="turn-{t}"{" open" if open_ else ""}>{summary}{tools}{"".join(parts)}</details>'


def panel_html(turns: list[dict], selected: int | None = None, title: str = "") -> str:
    """The sources panel for a conversation: the newest (or ``selected``, 0-based) answer open, older ones folded;
    the legend of the relevance scale; the whole conversation's exports when something was answered."""
    if not turns:
        return ('<div class="sources"><p class="muted">No sources yet: ask a question. Each answer keeps its own '
                "sources here, numbered once for the whole conversation.</p></div>")
    selected = len(turns) - 1 if selected is None or not 0 <= selected < len(turns) else selected
    parts = ['<div class="sources">', f'<p class="muted legend">{html.escape(RELEVANCE_HELP.capitalize())}.</p>']
    answered = [t for t in turns if t.get("answer") is not None and not t.get("error")]
    if answered:
        name = re.sub(r"[^a-z0-9]+", "-", (title or answered[0]["question"]).lower()).strip("-")[:40] or "conversation"
        tools = [_download(export.conversation_markdown(title, answered), f"{name}.md", "Conversation .md", "text/markdown")]
        papers = export.cited_papers(answered)
        if papers:
            tools += [_download(export.bibtex(papers), f"{name}.bib", "All cited .bib", "application/x-bibtex"),
                      _download(export.ris(papers), f"{name}.ris", "All cited .ris", "application/x-research-info-systems")]
        parts.append(f'<div class="tools conv-tools">{"".join(tools)}</div>')
    for i in reversed(range(len(turns))):
        parts.append(turn_html(turns[i], i + 1, open_=i == selected))
    parts.append("</div>")
    return "".join(parts)


def sources_html(sources: list, answer=None, pending: bool = False) -> str:
    """The panel for one answer outside a conversation (the /chat API and single questions): ``sources`` are the
    engine's Source objects, ``answer`` the final Answer or None while it is being written."""
    turn = {"question": answer.question if answer is not None else "", "sources": [source_dict(s) for s in sources],
            "answer": answer.to_dict() if answer is not None else None}
    if not sources and answer is None:
        return panel_html([])
    return f'<div class="sources">{turn_html(turn, None)}</div>'


def source_dict(source, cited: bool = False, paper=None) -> dict:
    """A Source (with its abstract) as the dict a turn keeps, with the paper's ids and file when known."""
    out = {"n": source.n, "paper_id": source.paper_id, "title": source.title, "abstract": source.abstract,
           "authors": list(source.authors), "date": source.date, "url": source.url, "score": round(source.score, 4),
           "relevance": None if source.relevance is None else round(source.relevance, 4), "cited": cited}
    if getattr(source, "pages", 0):  # a full text: its PDF and the passages retrieved for this question
        out.update(pdf=source.pdf, pages=source.pages, passages=[dict(p) for p in source.passages])
    if paper is not None:
        out.update(arxiv_id=paper.arxiv_id, source=paper.source, categories=list(paper.categories),
                   authors=out["authors"] or list(paper.authors), date=out["date"] or paper.date, url=out["url"] or paper.url)
    return out


# -- library tab ---------------------------------------------------------------


def paper_list_html(rows: list[dict], heading: str) -> str:
    """Papers, each {paper_id, title, abstract, authors, date, url, source, relevance (or None)}: the title and its
    facts, the abstract folded."""
    if not rows:
        return f'<p class="muted">{html.escape(heading)}: no papers.</p>'
    items = []
    for row in rows:
        link = export.link_of(row)
        title = html.escape(row["title"])
        items.append(
            f'<li><details><summary>{title} {_relevance_html(row)}</summary>'
            f'<div class="src-meta">{html.escape(meta_line(row))}'
            f'{f" · <a href={chr(34)}{_attr(link)}{chr(34)} target=_blank rel=noopener>link</a>" if link else ""}</div>'
            f'<div class="src-abstract">{html.escape(row.get("abstract", ""))}</div></details></li>'
        )
    return f'<p class="muted">{html.escape(heading)}</p><ol class="paper-list">{"".join(items)}</ol>'


def gaps_html(groups: list) -> str:
    """What the library does not know: declined and partly answered questions grouped by topic."""
    if not groups:
        return ('<p class="muted">No question has been declined or only partly answered yet. When one is, it is '
                "listed here by topic, so you know which papers to add.</p>")
    n = sum(len(g.answers) for g in groups)
    parts = [f'<p class="muted">{n} question{"s" if n != 1 else ""} the library could not fully answer, by topic (most '
             "asked first). Papers on these would fill the gaps.</p>"]
    for g in groups:
        items = "".join(
            f'<li>{html.escape(a.question)} <span class="muted">({"declined" if a.answerability == "decline" else "partial"}'
            f', {a.created[:10]})</span></li>' for a in g.answers[:8])
        missing = f'<div class="muted">missing: {html.escape("; ".join(g.missing[:3]))}</div>' if g.missing else ""
        parts.append(f'<div class="gap"><b>{html.escape(g.topic)}</b> · {len(g.answers)}{missing}<ul>{items}</ul></div>')
    return "".join(parts)


def overview_markdown(count: int, library: str, topics: list[str], files: list[tuple[str, int]]) -> str:
    """The empty chat's text: what the library holds and how to ask."""
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
