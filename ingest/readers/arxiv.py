"""Reader for the arXiv metadata snapshot (the Kaggle `arxiv-metadata-oai-snapshot.json`).

One JSON object per line with `id`, `title`, `abstract`, `authors` (one string,
"A, B and C"), `categories` (space separated), `update_date`; titles and
abstracts carry hard line breaks, which normalisation folds. Parsing is left to
`jsonl.iter_json_records`; this module only maps the snapshot's fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.core.types import Paper, ReadResult, Skipped
from ingest.readers.common import make_paper, split_authors, split_categories
from ingest.readers.jsonl import read_records


def _authors(record: dict[str, Any]) -> list[str]:
    # authors_parsed ([last, first, suffix] triples) is exact where the string
    # form is ambiguous (affiliations with commas), so it wins when present.
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed and all(isinstance(p, list) for p in parsed):
        names = []
        for parts in parsed:
            last, first, suffix = ([*map(str, parts)] + ["", "", ""])[:3]
            names.append(" ".join(x for x in (first, last, suffix) if x.strip()))
        return split_authors(names)
    return split_authors(record.get("authors"))


def to_paper(record: dict[str, Any], name: str, line: int | None) -> Paper | Skipped:
    arxiv_id = record.get("id")
    return make_paper(
        name=name,
        line=line,
        title=record.get("title"),
        abstract=record.get("abstract"),
        authors=_authors(record),
        date=record.get("update_date") or "",
        categories=split_categories(record.get("categories")),
        arxiv_id=arxiv_id if isinstance(arxiv_id, str) else "",
    )


def read(path: Path, name: str) -> ReadResult:
    return read_records(path, name, to_paper)
