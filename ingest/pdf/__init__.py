"""Read one PDF paper: `read_pdf(path) -> PdfDocument`, or a `PdfError` naming the file and the problem.

Text comes from PDFium (pypdfium2), chosen by measurement over pypdf and pdfplumber on the three
real papers (`python -m eval.pdf_bench --compare`; figures in eval/datasets/README.md, "PDF
extraction"): its raw text runs at ~190 pages/s against pypdf's ~9 and pdfplumber's ~3, and it
gives every character with its box and font, so reading order, headings and running headers are
decided here from geometry (the whole of read_pdf runs at ~60 pages/s) instead of trusting a
content stream that may interleave two columns; it also marks the hyphens it finds at line ends.

The stages, one module each: layout.py (characters -> lines -> reading order by XY-cut),
clean.py (running headers and page numbers, headings, paragraphs and legends, hyphenation, NFKC,
the reference list kept apart), front.py (title, authors, year, DOI, arXiv id, abstract).

Bounds: pages are read one at a time and closed, and the file is not loaded into memory. A
500-page file of full pages (50 lines each) reads in 8–14 s (by load) at ~95 MB peak RSS for the whole
process on the 2-core development machine; tests/ingest/test_pdf.py holds a 500-page file to
30 s and 400 MB. Files over `max_pages` pages (default 2,000) are refused.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.pdf.clean import assemble, body_size, drop_line_numbers, drop_running, vocabulary
from ingest.pdf.front import read_front
from ingest.pdf.layout import PageLayout, page_lines, reading_order
from ingest.pdf.model import PdfBlock, PdfDocument, PdfError, PdfPage

__all__ = ["MAX_PAGES", "PdfBlock", "PdfDocument", "PdfError", "PdfPage", "read_pdf"]

MAX_PAGES = 2000
_MIN_CHARS = 20  # a page with fewer characters than this has no usable text layer


def _sniff(path: Path) -> None:
    """Refuse, with the reason, what is not a readable PDF file before PDFium sees it."""
    if not path.exists():
        raise PdfError(f"{path}: no such file")
    if not path.is_file():
        raise PdfError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise PdfError(f"{path}: the file is empty")
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise PdfError(f"{path}: not a PDF (it starts with {_describe(head)})")


def _describe(head: bytes) -> str:
    start = head.lstrip()[:64]
    for magic, name in (
        (b"PK\x03\x04", "a ZIP archive's signature: a .docx, .epub or .zip?"),
        (b"\x89PNG", "a PNG image's signature"),
        (b"\xff\xd8\xff", "a JPEG image's signature"),
        (b"\x1f\x8b", "a gzip signature"),
        (b"{\\rtf", "an RTF document's signature"),
    ):
        if start.startswith(magic):
            return name
    low = start.lower()
    if low.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return "HTML or XML: a web page saved under a .pdf name?"
    text = start.decode("utf-8", "replace").splitlines()[0] if start else ""
    if text and all(ch.isprintable() for ch in text):
        return f"plain text: {text[:40]!r}"
    return "binary data that is not a PDF"


def _open(path: Path) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise PdfError(
                f"{path}: encrypted; it needs a password to open (save an unprotected copy and ingest that)"
            ) from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise PdfError(f"{path}: encrypted with a protection scheme that cannot be opened here") from None
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2048))
            tail = fh.read()
        if b"%%EOF" not in tail:
            raise PdfError(
                f"{path}: truncated; the file stops after {path.stat().st_size:,} bytes without the end-of-file "
                "marker (an interrupted download or copy?)"
            ) from None
        raise PdfError(f"{path}: damaged; its structure cannot be parsed (PDFium: {exc})") from None


def _metadata(doc: pdfium.PdfDocument) -> dict[str, str]:
    meta = {k: v for k, v in doc.get_metadata_dict(skip_empty=True).items()}
    for key in ("doi", "DOI"):  # Springer and others store the DOI in the info dictionary
        n = pdfium_c.FPDF_GetMetaText(doc.raw, key.encode(), None, 0)
        if n > 2:
            buf = ctypes.create_string_buffer(n)
            pdfium_c.FPDF_GetMetaText(doc.raw, key.encode(), buf, n)
            meta["doi"] = buf.raw[: n - 2].decode("utf-16-le", "replace").strip()
            break
    return meta


def read_layouts(path: Path, doc: pdfium.PdfDocument) -> list[PageLayout]:
    layouts = []
    for index in range(len(doc)):
        try:
            page = doc[index]
        except pdfium.PdfiumError as exc:
            raise PdfError(f"{path}: page {index + 1} cannot be read ({exc})") from None
        try:
            layouts.append(page_lines(page, index + 1))
        finally:
            page.close()
    return layouts


def read_pdf(path: str | Path, *, max_pages: int = MAX_PAGES) -> PdfDocument:
    """Read one PDF paper. Raises `PdfError` (a `UserError`) with one line naming the file and the problem."""
    path = Path(path)
    _sniff(path)
    doc = _open(path)
    try:
        count = len(doc)
        if count == 0:
            raise PdfError(f"{path}: the PDF has no pages")
        if count > max_pages:
            raise PdfError(f"{path}: {count:,} pages, more than the {max_pages:,} read from one file")
        metadata = _metadata(doc)
        layouts = read_layouts(path, doc)
    finally:
        doc.close()
    empty = [lay.number for lay in layouts if lay.chars < _MIN_CHARS]
    if len(empty) == count:
        if sum(lay.images for lay in layouts):
            raise PdfError(
                f"{path}: no text layer; every page is an image (a scan?). "
                "Run OCR on it first (e.g. ocrmypdf) and ingest the result"
            )
        raise PdfError(f"{path}: no text on any page (blank pages or drawings only)")
    drop_line_numbers(layouts)  # before anything reads words or sizes: "1 Residues Neighboring …" is no title
    body = body_size(layouts)
    vocab = vocabulary(layouts)
    running = drop_running(layouts)  # before ordering: a centred page number would block the gutter
    for layout in layouts:
        layout.lines = reading_order(layout.lines)
    front = read_front(layouts[:2], running, metadata, body, vocab)
    pages, references, headings = assemble(layouts, body, front.skip, vocab)
    warnings = []
    if empty:
        warnings.append(f"{len(empty)} page(s) without a text layer, read as empty: {_ranges(empty)}")
    return PdfDocument(
        path=str(path),
        title=front.title,
        authors=front.authors,
        year=front.year,
        doi=front.doi,
        arxiv_id=front.arxiv_id,
        abstract=front.abstract,
        pages=pages,
        references=references,
        page_count=count,
        sections=headings,
        warnings=warnings,
    )


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    for n in numbers:
        if parts and parts[-1].split("-")[-1] == str(n - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts)
