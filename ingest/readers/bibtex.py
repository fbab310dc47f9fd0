"""Reader for BibTeX files, parsed with the maintained `bibtexparser` (v2).

Entries with an `abstract` field become papers; the arXiv id comes from
`eprint` (or `arxiv`/`arxivid`, or an arxiv.org `url`) when present; LaTeX is
decoded to Unicode and authors ("Last, First and ...") become "First Last".
bibtexparser v2 reports blocks it cannot parse (broken braces, duplicate
keys) in `library.failed_blocks` and goes on with the next `@entry`, so good
entries around a broken one still load; each failed block becomes a Skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import bibtexparser
from bibtexparser import middlewares as mw
from bibtexparser.model import Entry

from assistant.core.types import Paper, ReadResult, Skipped
from ingest.readers.common import add, make_paper, split_categories

ARXIV_FIELDS = ("eprint", "arxiv", "arxivid", "arxiv_id")
_BLOCK_HEAD = re.compile(r"\s*@\s*(\w+)\s*[{(]\s*([^,\s]*)")


def _parse_stack() -> list[mw.Middleware]:
    # The library's default stack (@string references resolved, enclosing
    # braces removed) plus LaTeX decoded to Unicode and "Last, First" names
    # turned into "First Last" like every other format gives them.
    return [
        *mw.default_parse_stack(),
        mw.LatexDecodingMiddleware(),
        mw.SeparateCoAuthors(),
        mw.SplitNameParts(),
        mw.MergeNameParts(style="first"),
    ]


def _text(value) -> str:
    if isinstance(value, list):
        return " and ".join(str(v) for v in value)
    return "" if value is None else str(value)


def to_paper(entry: Entry, name: str) -> Paper | Skipped:
    fields = {key.lower(): field.value for key, field in entry.fields_dict.items()}
    authors = fields.get("author") or []
    if isinstance(authors, str):
        authors = [authors]
    arxiv_id = next((_text(fields[k]) for k in ARXIV_FIELDS if fields.get(k)), "")
    date = _text(fields.get("date") or fields.get("year") or "")
    return make_paper(
        name=name,
        line=(entry.start_line or 0) + 1,  # bibtexparser counts lines from 0
        title=_text(fields.get("title")),
        abstract=_text(fields.get("abstract")),
        authors=[a for a in (str(x).strip() for x in authors) if a],
        date=date,
        url=_text(fields.get("url")),
        categories=split_categories(_text(fields.get("primaryclass"))),
        arxiv_id=arxiv_id,
    )


def _failure_reason(block) -> str:
    error = getattr(block, "error", None)
    # BlockAbortedException keeps its message in abort_reason, not in str().
    message = getattr(error, "abort_reason", None) or str(error or "")
    # Duplicate-key messages end with a hint about the library's own API.
    message = " ".join(message.split(". Note:")[0].split()) or "syntax error"
    head = _BLOCK_HEAD.match(getattr(block, "raw", None) or "")
    what = f"@{head.group(1)}{{{head.group(2)}}}" if head else "entry"
    return f"unreadable BibTeX {what}: {message}"


def read(path: Path, name: str) -> ReadResult:
    text = path.read_text(encoding="utf-8-sig")
    result = ReadResult()
    try:
        library = bibtexparser.parse_string(text, parse_stack=_parse_stack())
    except Exception as err:  # noqa: BLE001 - a parser crash must not lose the whole run
        result.skipped.append(Skipped(file=name, line=None, reason=f"BibTeX parser failed: {err}"))
        return result
    items: list[tuple[int, Paper | Skipped]] = []
    for entry in library.entries:
        items.append(((entry.start_line or 0), to_paper(entry, name)))
    for block in library.failed_blocks:
        line = (block.start_line or 0) + 1
        items.append((line - 1, Skipped(file=name, line=line, reason=_failure_reason(block))))
    # Report in file order, good and bad entries interleaved as they appear.
    for _, item in sorted(items, key=lambda pair: pair[0]):
        add(result, item)
    return result
