"""Reader for the Hugging Face daily-papers API JSON (`/api/daily_papers`).

A list of objects, each with a `paper` object: `paper.id` (the arXiv id),
`paper.title`, `paper.summary`, `paper.authors` ([{"name": ...}]) and a
`publishedAt` timestamp. Parsing is left to `jsonl.iter_json_records`, so a
JSON-lines dump of the same objects also reads; this module maps fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.core.types import Paper, ReadResult, Skipped
from ingest.readers.common import make_paper, split_authors
from ingest.readers.jsonl import read_records


def to_paper(record: dict[str, Any], name: str, line: int | None) -> Paper | Skipped:
    paper = record.get("paper")
    if not isinstance(paper, dict):
        # Some dumps flatten the paper object into the record itself.
        paper = record
    published = paper.get("publishedAt") or record.get("publishedAt") or ""
    arxiv_id = paper.get("id")
    return make_paper(
        name=name,
        line=line,
        title=paper.get("title") or record.get("title"),
        abstract=paper.get("summary") or paper.get("abstract"),
        authors=split_authors(paper.get("authors")),
        # "2024-09-02T13:37:00.000Z" -> "2024-09-02": the day is what a reader cites.
        date=published[:10] if isinstance(published, str) else "",
        arxiv_id=arxiv_id if isinstance(arxiv_id, str) else "",
    )


def read(path: Path, name: str) -> ReadResult:
    return read_records(path, name, to_paper)
