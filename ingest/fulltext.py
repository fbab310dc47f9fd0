"""Full texts against what is stored: one paper per work, unchanged PDFs skipped, PDFs kept for the page.

The same paper may reach a library as an abstract-dump entry and as its PDF, in
one ingest (``normalize.dedupe`` merges them) or in two. ``FullTextIndex``
matches new records against the stored papers: same id (arXiv id or DOI), same
DOI, or the same normalised title (when their arXiv ids do not disagree), if
either side is a full text or carries a DOI (abstract dumps among themselves
keep the rules they always had). A match keeps the stored paper's id (ids are
stable: saved conversations cite them). Then:

* a PDF of a stored abstract-only paper replaces it (its chunks and sentence
  vectors), taking the gaps it lacks (authors, date, categories, an abstract it
  has none of) from the stored record: the full text enriches the paper;
* an abstract entry of a stored full-text paper never replaces the full text:
  it only fills the record's gaps, and nothing is embedded;
* a PDF whose bytes (and chunking) are those of a stored paper is not read.

A PDF without an abstract (none found on its first page, none from a dump)
takes the opening of its body as its abstract.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from assistant.core.types import Paper
from ingest.normalize import canonical_arxiv_id, normalize_title

_GAPS = ("authors", "date", "url", "categories", "arxiv_id", "doi")
FALLBACK_ABSTRACT_CHARS = 1200


def store_pdf(path: Path, digest: str, pdf_dir: Path | None) -> str:
    """Where the chat page finds this PDF: a copy named by its bytes' hash in ``pdf_dir``, else its own path."""
    if pdf_dir is None:
        return str(Path(path).resolve())
    pdf_dir.mkdir(parents=True, exist_ok=True)
    target = pdf_dir / f"{digest[:20]}.pdf"
    if not target.exists():
        tmp = target.with_suffix(f".tmp{id(target)}")
        shutil.copyfile(path, tmp)
        tmp.replace(target)  # whole or absent: the page never serves half a file
    return str(target)


def opening(paper: Paper) -> str:
    """The first paragraphs of the body, up to about ``FALLBACK_ABSTRACT_CHARS`` characters."""
    parts: list[str] = []
    for passage in paper.body:
        if passage.kind != "text":
            continue
        parts.append(passage.text.strip())
        if sum(len(p) for p in parts) >= FALLBACK_ABSTRACT_CHARS:
            break
    text = " ".join(parts)
    return text if len(text) <= FALLBACK_ABSTRACT_CHARS * 2 else text[: FALLBACK_ABSTRACT_CHARS * 2].rsplit(" ", 1)[0]


class FullTextIndex:
    """The stored papers' identities, read once per ingest (``library.identities()``, one scan of the records)."""

    def __init__(self, library, hash_of: Callable[[Paper], str]):
        self.library = library
        self.hash_of = hash_of  # the content hash the pipeline would store for a paper now
        self._ids: dict[str, dict] | None = None
        self._titles: dict = {}  # lookups built on first use: by title (True: full texts only), "files", "dois"

    @property
    def ids(self) -> dict[str, dict]:
        if self._ids is None:
            identities = getattr(self.library, "identities", None)
            self._ids = identities() if identities else {}
        return self._ids

    def unchanged_file(self, digest: str) -> str | None:
        """The stored full-text paper that came from these bytes and was chunked as it would be now, or None."""
        pid = self._lookup("files").get(digest)
        if pid is None:
            return None
        papers = self.library.get_papers([pid])
        return pid if papers and self.hash_of(papers[0]) == self.ids[pid].get("hash") else None

    def _lookup(self, name: str) -> dict[str, str]:
        """file hash -> paper id ("files") or DOI -> paper id ("dois") over the stored papers."""
        if name not in self._titles:
            field = "file_hash" if name == "files" else "doi"
            self._titles[name] = {m[field].lower(): pid for pid, m in self.ids.items() if m.get(field)}
        return self._titles[name]

    def _by_title(self, full_text_only: bool) -> dict[str, list[str]]:
        """Normalised title -> stored paper ids (of full texts only, or of every paper), built on first use."""
        if full_text_only not in self._titles:
            out: dict[str, list[str]] = {}
            for pid, meta in self.ids.items():
                if meta.get("pages") or not full_text_only:
                    out.setdefault(normalize_title(meta.get("title")), []).append(pid)
            self._titles[full_text_only] = out
        return self._titles[full_text_only]

    def _match(self, paper: Paper) -> str | None:
        """The stored paper this record is, when one side is a full text; None otherwise."""
        full = paper.has_full_text
        if paper.paper_id in self.ids:
            return paper.paper_id if full or self.ids[paper.paper_id].get("pages") else None
        if paper.doi:
            pid = self._lookup("dois").get(paper.doi.lower())
            if pid is not None and (full or self.ids[pid].get("pages")):
                return pid
        own = canonical_arxiv_id(paper.arxiv_id)
        for pid in self._by_title(full_text_only=not full).get(normalize_title(paper.title), []):
            theirs = canonical_arxiv_id(self.ids[pid].get("arxiv_id"))
            if not (own and theirs and own != theirs):
                return pid
        return None

    def resolve(self, papers: list[Paper]) -> tuple[list[Paper], int]:
        """The papers to store (a full text re-identified as the stored paper it is), and how many abstract
        entries of stored full texts were absorbed (their gaps filled on the record, nothing embedded)."""
        stored_full = getattr(self.library, "has_full_texts", lambda: True)
        if not any(p.has_full_text for p in papers) and not stored_full():
            return papers, 0  # abstracts only, on both sides: the rules they always had, and no scan
        if not self.ids:
            return [_with_abstract(p) for p in papers], 0
        matches = {id(p): self._match(p) for p in papers}
        wanted = [pid for pid in dict.fromkeys(matches.values()) if pid]
        stored = {p.paper_id: p for p in self.library.get_papers(wanted)} if wanted else {}
        out: list[Paper] = []
        fill: list[Paper] = []
        absorbed = 0
        for paper in papers:
            before = stored.get(matches[id(paper)] or "")
            if before is None:
                out.append(_with_abstract(paper))
            elif before.has_full_text and not paper.has_full_text:
                absorbed += 1  # the full text stays; the entry only fills what its record lacks
                merged = _fill(before, paper)
                if merged != before:
                    fill.append(merged)
            else:
                out.append(_with_abstract(_fill(replace(paper, paper_id=before.paper_id), before)))
        if fill:
            self.library.update_papers(fill)
        return out, absorbed


def _fill(paper: Paper, other: Paper) -> Paper:
    """``paper`` with its empty fields (and an empty abstract) taken from ``other``."""
    changes = {name: getattr(other, name) for name in _GAPS if not getattr(paper, name) and getattr(other, name)}
    if not paper.abstract and other.abstract:
        changes["abstract"] = other.abstract
    return replace(paper, **changes) if changes else paper


def _with_abstract(paper: Paper) -> Paper:
    if paper.has_full_text and not paper.abstract.strip():
        return replace(paper, abstract=opening(paper))
    return paper
