"""How papers, chunks and sentences are laid out as Chroma records: collection names, ids, flat metadata.

Pure functions, no Chroma calls (``store.py`` makes those). Chroma metadata must be flat scalars, so a
paper's lists are joined (its reference list is JSON).
"""

from __future__ import annotations

import hashlib
import json
import re

from assistant.core.types import Chunk, Paper

META_ID = "__meta__"  # the papers collection's record holding the library's revision
CHUNKS = "chunks"
PAPERS = "papers"
SENTENCES = "sentences"

def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", model.split("/")[-1]).strip("-.") or "model"


def collection_name(library: str, model: str, kind: str) -> str:
    return f"{library}__{_slug(model)}__{kind}"


def sentence_id(paper_id: str, index: int) -> str:
    """The id of a paper's sentence vector: index -1 is the title, 0.. the abstract's sentences."""
    return f"{paper_id}#s{index}"


def texts_digest(texts: list[str]) -> str:
    """What a paper's stored sentence vectors were made from: a lookup with other texts finds nothing."""
    return hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]


def full_text_fields(paper: Paper) -> dict:
    """A full-text paper's record fields (absent from abstract-only records, which stay as they were)."""
    if not paper.has_full_text:
        return {"doi": paper.doi} if paper.doi else {}
    return {"doi": paper.doi, "pdf": paper.pdf, "pages": paper.pages, "file_hash": paper.file_hash,
            "references": json.dumps(paper.references, ensure_ascii=False)}


def paper_metadata(paper: Paper, content_hash: str, n_chunks: int, n_sentences: int | None = None) -> dict:
    # Chroma metadata must be flat scalars: lists are joined (the reference list is JSON).
    return ({"sentences": n_sentences} if n_sentences is not None else {}) | full_text_fields(paper) | {
        "chunks": n_chunks,  # its chunks are types.chunk_id(paper_id, 0..n-1): search fetches them by id
        "kind": "paper",
        "title": paper.title,
        "authors": "; ".join(paper.authors),
        "date": paper.date,
        "url": paper.url,
        "categories": " ".join(paper.categories),
        "arxiv_id": paper.arxiv_id,
        "source": paper.source,
        "hash": content_hash,
    }


def paper_from(pid: str, abstract: str, meta: dict) -> Paper:
    return Paper(
        paper_id=pid,
        title=meta.get("title", ""),
        abstract=abstract or "",
        authors=[a for a in (meta.get("authors") or "").split("; ") if a],
        date=meta.get("date", ""),
        url=meta.get("url", ""),
        categories=(meta.get("categories") or "").split(),
        arxiv_id=meta.get("arxiv_id", ""),
        source=meta.get("source", ""),
        doi=meta.get("doi", ""),
        pdf=meta.get("pdf", ""),
        pages=int(meta.get("pages") or 0),
        file_hash=meta.get("file_hash", ""),
        references=_json_list(meta.get("references")),
    )


def _json_list(value) -> list[str]:
    try:
        out = json.loads(value) if value else []
    except ValueError:
        return []
    return [str(v) for v in out] if isinstance(out, list) else []


def chunk_metadata(paper: Paper, chunk: Chunk) -> dict:
    meta = {"paper_id": paper.paper_id, "index": chunk.index, "title": paper.title}
    if chunk.page is not None:  # a passage of the body: where it is in the PDF
        meta |= {"page": chunk.page, "section": chunk.section, "kind": chunk.kind or "text"}
    return meta
