"""PDF papers: one file, one full-text `Paper` (front matter, the body as passages with their pages).

`read(path, name)` runs `ingest.pdf.read_pdf` and turns the document into a
Paper: the id from the arXiv id, else the DOI, else the title (as every reader
does, `paper_id_for`); the abstract read from the first page (empty when the
PDF has none: the pipeline fills it from an abstract-dump record of the same
paper, else from the opening of the body); the body's blocks as `Passage`s,
each with its page, section and kind; the reference list kept on the record.
A file that cannot be read is one `Skipped` with the reason, without the path
prefix `PdfError` messages start with (the report names the file already).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from assistant.core.types import Paper, Passage, ReadResult
from ingest.normalize import canonical_arxiv_id, normalize_text, paper_id_for
from ingest.readers.common import file_problem

PDF_MAGIC = b"%PDF-"


def is_pdf(path: Path) -> bool:
    """A .pdf name, or a file that starts with the PDF signature (whatever its name)."""
    if path.suffix.lower() == ".pdf":
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(64).lstrip().startswith(PDF_MAGIC)
    except OSError:
        return False


def file_hash(path: Path) -> str:
    """sha1 of the file's bytes: an unchanged PDF is recognised without reading it again."""
    h = hashlib.sha1()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def paper_from_pdf(doc, name: str, digest: str) -> Paper:
    """A full-text Paper from a `PdfDocument` (``pdf`` is set by the pipeline once the file is stored)."""
    arxiv = canonical_arxiv_id(doc.arxiv_id)
    title = normalize_text(doc.title) or Path(name).stem
    body = [Passage(page=page.number, section=block.section, text=block.text, kind=block.kind)
            for page in doc.pages for block in page.blocks if block.text.strip()]
    return Paper(
        paper_id=paper_id_for(title, arxiv, doc.doi),
        title=title,
        abstract=normalize_text(doc.abstract),
        authors=list(doc.authors),
        date=str(doc.year or ""),
        url=f"https://doi.org/{doc.doi}" if doc.doi else (f"https://arxiv.org/abs/{arxiv}" if arxiv else ""),
        arxiv_id=arxiv,
        source=name,
        doi=doc.doi,
        pages=doc.page_count,
        file_hash=digest,
        references=list(doc.references),
        body=body,
    )


def read(path: Path, name: str) -> ReadResult:
    """One PDF as a ReadResult: one paper, or one Skipped (line None) saying why the file cannot be read."""
    from ingest.pdf import PdfError, read_pdf

    try:
        digest = file_hash(path)
        doc = read_pdf(path)
    except PdfError as exc:
        return file_problem(name, _reason(str(exc), path))
    except OSError as exc:
        return file_problem(name, f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - a PDF the layout code trips on must not stop the other files
        return file_problem(name, f"could not read the PDF: {type(exc).__name__}: {exc}")
    paper = paper_from_pdf(doc, name, digest)
    if not paper.body and not paper.abstract:
        return file_problem(name, "no body text or abstract found in the PDF")
    return ReadResult(papers=[paper], entries=1)


def _reason(message: str, path: Path) -> str:
    """A PdfError's message without the path it starts with."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message
