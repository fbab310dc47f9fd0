"""Answers and conversations as text a researcher pastes elsewhere: Markdown with a numbered reference list,
and the cited papers as BibTeX (written with bibtexparser) and RIS.

Pure functions over saved turns: dicts with ``question``, ``answer`` (Answer.to_dict()) and ``sources`` (every
source of that answer with its number, title, authors, date, url, ids and abstract), as
``assistant.library.history.StoredAnswer.to_dict()`` gives them and the chat page keeps them. The numbers in an
exported text are the conversation's own, so [5] in the text is [5] in the references. Used by the chat page's
copy and download buttons and by ``assistant history export``.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.core.errors import UserError
from assistant.core.secrets import redact
from assistant.ui.untrusted import md_inert, safe_url

FORMATS = {"md": "Markdown", "bib": "BibTeX", "ris": "RIS", "json": "JSON"}
_ARXIV = re.compile(r"^\d{4}\.\d{4,5}$|^[a-z-]+(?:\.[A-Z]{2})?/\d{7}$")


class NothingToExport(UserError):
    """An export of a conversation (or answer) that holds no answers."""


def title_line(text: str, limit: int = 80) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def year_of(source: dict) -> str:
    m = re.match(r"(\d{4})", str(source.get("date") or ""))
    return m.group(1) if m else ""


def arxiv_id(source: dict) -> str:
    for value in (source.get("arxiv_id"), source.get("paper_id")):
        if value and _ARXIV.match(str(value)):
            return str(value)
    return ""


def link_of(source: dict) -> str:
    """The paper's link: its record's URL when that is http(s) (never ``javascript:`` or the like), else its arXiv
    page when the id is an arXiv id, else ""."""
    url = safe_url(source.get("url"))
    if url:
        return url
    aid = arxiv_id(source)
    return f"https://arxiv.org/abs/{aid}" if aid else ""


def authors_short(authors: list[str], limit: int = 3) -> str:
    authors = [a for a in authors or [] if a]
    if len(authors) > limit:
        return ", ".join(authors[:limit]) + " et al."
    return ", ".join(authors)


def reference(source: dict) -> str:
    """One reference line: authors (year). Title. arXiv id / paper id. link (the record's words made inert, the link
    http(s) only)."""
    parts = []
    who = authors_short(source.get("authors") or [])
    year = year_of(source)
    if who or year:
        parts.append(f"{who} ({year})." if who and year else (f"{who}." if who else f"({year})."))
    parts.append(f"*{' '.join(str(source.get('title', '')).split()).rstrip('.')}*.")
    aid = arxiv_id(source)
    parts.append(f"arXiv:{aid}." if aid else f"id {source.get('paper_id', '')}.")
    line = md_inert(" ".join(" ".join(parts).split()))  # one line, whatever the record's fields hold
    link = link_of(source)
    return f"{line} <{link}>" if link else line


def cited_sources(turn: dict) -> list[dict]:
    """The sources this answer cites, by number."""
    cited = {int(c["n"]) for c in turn["answer"].get("citations") or []}
    return sorted((s for s in turn.get("sources") or [] if int(s["n"]) in cited), key=lambda s: int(s["n"]))


def cited_papers(turns: list[dict]) -> list[dict]:
    """Every paper cited in ``turns``, once, by its number in the conversation."""
    seen: dict[str, dict] = {}
    for turn in turns:
        for s in cited_sources(turn):
            seen.setdefault(s["paper_id"], s)
    return sorted(seen.values(), key=lambda s: int(s["n"]))


def _answer_body(turn: dict) -> str:
    """The answer and what it lacks; the model's and the papers' words made inert (no live HTML or links)."""
    a = turn["answer"]
    lines = [a.get("answer", "").strip()]
    if a.get("declined") and a.get("decline_reason"):
        lines.append(f"*Why it declined: {a['decline_reason']}.*")
    if a.get("unanswered_parts"):
        lines.append("*Not in the sources: " + "; ".join(a["unanswered_parts"]) + ".*")
    if a.get("unsupported_sentences"):
        lines.append("*Not supported by the cited abstracts: " + " / ".join(a["unsupported_sentences"]) + "*")
    return "\n\n".join(md_inert(line) for line in lines if line)


def _question(text: str) -> str:
    return md_inert(" ".join(str(text).split()))


def _references(sources: list[dict]) -> str:
    if not sources:
        return ""
    return "**References**\n\n" + "\n\n".join(f"[{s['n']}] {reference(s)}" for s in sources)


def answer_markdown(turn: dict) -> str:
    """One answer as Markdown: the question, the answer with its [n], what is missing, then its references."""
    if not turn or not turn.get("answer"):
        raise NothingToExport("there is no answer to export yet: ask a question first")
    parts = [f"**Q: {_question(turn['question'])}**", _answer_body(turn)]
    refs = _references(cited_sources(turn))
    if refs:
        parts.append(refs)
    return "\n\n".join(parts) + "\n"


def conversation_markdown(title: str, turns: list[dict], created: str = "") -> str:
    """A conversation as Markdown: each question and answer, then one reference list for every paper cited."""
    if not turns:
        raise NothingToExport(f"the conversation {title!r} has no answers yet: nothing to export" if title else
                              "this conversation has no answers yet: nothing to export")
    parts = [f"# {_question(title or turns[0]['question'])}"]
    if created:
        parts.append(f"*{created[:10]} · {len(turns)} questions*")
    for turn in turns:
        parts += [f"## {_question(turn['question'])}", _answer_body(turn)]
    papers = cited_papers(turns)
    if papers:
        parts.append("## References\n\n" + "\n\n".join(f"[{s['n']}] {reference(s)}" for s in papers))
    return "\n\n".join(parts) + "\n"


# -- BibTeX and RIS ----------------------------------------------------------------------

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def bibtex_key(source: dict, taken: set[str]) -> str:
    """first author's surname + year + first title word, e.g. zhang2024negative (a, b, … appended on clashes)."""
    authors = source.get("authors") or []
    surname = _ascii(authors[0].replace(",", " ").split()[-1] if authors and "," not in authors[0]
                     else (authors[0].split(",")[0] if authors else "")).lower()
    title_words = [w for w in re.findall(r"[a-z0-9]+", _ascii(source.get("title", "")).lower())
                   if w not in {"a", "an", "the", "on", "of", "for", "and", "in", "to", "with"}]
    base = re.sub(r"[^a-z0-9]", "", surname) + year_of(source) + (title_words[0] if title_words else "paper")
    key, suffix = base, ord("a")
    while key in taken:
        key, suffix = base + chr(suffix), suffix + 1
    taken.add(key)
    return key


def bibtex(papers: list[dict]) -> str:
    """The papers as BibTeX entries (@misc with arXiv eprint fields when the id is an arXiv id)."""
    import bibtexparser
    from bibtexparser import Library
    from bibtexparser.model import Entry, Field

    taken: set[str] = set()
    entries = []
    for s in papers:
        fields = [Field("title", "{" + _tex(s.get("title", "")) + "}")]
        if s.get("authors"):
            fields.append(Field("author", " and ".join(_tex(a) for a in s["authors"])))
        if year_of(s):
            fields.append(Field("year", year_of(s)))
        aid = arxiv_id(s)
        if aid:
            fields += [Field("eprint", aid), Field("archiveprefix", "arXiv")]
        if link_of(s):
            fields.append(Field("url", link_of(s)))
        if not aid:
            fields.append(Field("note", _tex(f"Library id {s.get('paper_id', '')}")))
        entries.append(Entry("misc", bibtex_key(s, taken), fields))
    return bibtexparser.write_string(Library(entries))


def ris(papers: list[dict]) -> str:
    """The papers as RIS records (Zotero, EndNote, Mendeley import them)."""
    out = []
    for s in papers:
        aid = arxiv_id(s)
        lines = [f"TY  - {'JOUR' if aid else 'GEN'}", f"TI  - {' '.join(s.get('title', '').split())}"]
        lines += [f"AU  - {' '.join(str(a).split())}" for a in s.get("authors") or []]  # one line each
        if year_of(s):
            lines.append(f"PY  - {year_of(s)}")
        date = str(s.get("date") or "")
        if re.match(r"\d{4}-\d{2}-\d{2}", date):
            lines.append(f"DA  - {date[:10].replace('-', '/')}")
        if aid:
            lines += ["JO  - arXiv preprint", f"M3  - arXiv:{aid}"]
        if link_of(s):
            lines.append(f"UR  - {link_of(s)}")
        if s.get("abstract"):
            lines.append(f"AB  - {' '.join(s['abstract'].split())}")
        lines += [f"ID  - {s.get('paper_id', '')}", "ER  - "]
        out.append("\n".join(lines))
    return "\n\n".join(out) + ("\n" if out else "")


def export(turns: list[dict], fmt: str, title: str = "", created: str = "") -> str:
    """``turns`` (one answer or a conversation) in ``fmt``: md, bib, ris or json."""
    import json

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not turns:
        raise NothingToExport(f"the conversation {title!r} has no answers yet: nothing to export" if title else
                              "this conversation has no answers yet: nothing to export")
    if fmt == "md":
        text = answer_markdown(turns[0]) if len(turns) == 1 and not title else conversation_markdown(title, turns, created)
    elif fmt == "json":
        text = json.dumps({"title": title, "created": created, "answers": turns}, indent=2, ensure_ascii=False) + "\n"
    else:
        papers = cited_papers(turns)
        if not papers:
            raise NothingToExport("no paper is cited in what was chosen: nothing to write as " + FORMATS[fmt])
        text = bibtex(papers) if fmt == "bib" else ris(papers)
    return redact(text)  # a key or a URL password that reached an answer or a record goes no further
