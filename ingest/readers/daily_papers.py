"""Reader for the daily-papers text dumps (saved Hugging Face listing pages).

The layout, as in `data/daily-papers/*.txt`: page boilerplate ("new",
"Subscribe", "Daily Papers", a date such as "Mar 11", ...), then for each paper
a title line and an abstract line, every piece on its own non-blank line.
Blank lines carry no meaning here; the structure comes from telling titles
from abstracts, which is robust to boilerplate appearing anywhere, missing or
doubled blank lines, and a title whose abstract is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from assistant.core.types import ReadResult, Skipped
from ingest.readers.common import add, make_paper, short

# Lines of the saved listing page that are not papers, compared case-folded.
BOILERPLATE = frozenset(
    s.casefold()
    for s in (
        "new",
        "Get trending papers in your email inbox!",
        "Subscribe",
        "Daily Papers",
        "byAK and the research community",
        "by AK and the research community",
        "Submitted by",
        "Upvote",
    )
)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# "Mar 11", "Sep 2", "Sep 2, 2024", "2024-09-02"; bare numbers are upvote counts.
_NOISE = re.compile(rf"^(?:{_MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?|\d{{4}}-\d{{2}}-\d{{2}}|\d+)$", re.IGNORECASE)

# Titles in the dumps are under ~140 characters and abstracts over ~1,000;
# 300 sits well clear of both.
TITLE_MAX_CHARS = 300


def is_boilerplate(line: str) -> bool:
    return line.casefold() in BOILERPLATE or bool(_NOISE.match(line))


def looks_like_abstract(line: str) -> bool:
    """Long, or a sentence ending in a period: titles are short and end without one."""
    return len(line) > TITLE_MAX_CHARS or line.endswith(".")


def read(path: Path, name: str) -> ReadResult:
    result = ReadResult()
    title: str | None = None  # the title waiting for its abstract
    title_line = 0

    def skip(line: int, reason: str) -> None:
        add(result, Skipped(file=name, line=line, reason=reason))

    # Streamed line by line: a huge file (or one huge line) is held once at most.
    with path.open(encoding="utf-8-sig") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or is_boilerplate(line):
                continue
            if title is None:
                if looks_like_abstract(line):
                    # Without a title it cannot be cited; guessing one from the
                    # first sentence would invent a paper that is not in the file.
                    skip(number, f"text with no title line before it: {short(line)!r}")
                else:
                    title, title_line = line, number
            elif looks_like_abstract(line):
                add(result, make_paper(name=name, line=title_line, title=title, abstract=line))
                title = None
            else:
                # Two title-like lines in a row: the first lost its abstract.
                skip(title_line, f"title with no abstract: {short(title)!r}")
                title, title_line = line, number
    if title is not None:
        skip(title_line, f"title with no abstract: {short(title)!r}")
    return result
