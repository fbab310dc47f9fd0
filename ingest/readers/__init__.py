"""Input readers: one module per file format, chosen by `read_path`.

`read_path(path, fmt=None)` sends a PDF (a .pdf name, or a file starting with
`%PDF-`) to the PDF reader (readers/pdf.py, over ingest.pdf); any other file
is checked (exists, not empty, not binary, UTF-8 or UTF-16: a UTF-16 file is
read through a UTF-8 copy), its format picked from the
extension and the content (or taken from `fmt`), and a `ReadResult` returned. Bad input never raises: a whole-file problem is one
`Skipped` with line None, a bad entry is a `Skipped` naming its line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from assistant.core.types import ReadResult
from ingest.readers import arxiv, bibtex, csv_reader, daily_papers, hf_daily, jsonl, pdf
from ingest.readers.common import ABSTRACT_KEYS, as_utf8, check_file, file_problem, utf16_encoding

Reader = Callable[[Path, str], ReadResult]

FORMATS: dict[str, Reader] = {
    "daily-papers": daily_papers.read,
    "json": jsonl.read,
    "jsonl": jsonl.read,
    "arxiv": arxiv.read,
    "hf-daily": hf_daily.read,
    "csv": csv_reader.read,
    "bibtex": bibtex.read,
    "pdf": pdf.read,
}

_SNIFF_CHARS = 64 * 1024  # enough of the head to recognise every format here
_TEXT_SUFFIXES = {".txt", ".text", ""}  # not .md: a README would read as papers
_BIB_ENTRY = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_HF_PAPER = re.compile(r'"paper"\s*:\s*\{')


def _head(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        return fh.read(_SNIFF_CHARS)


def _first_json_object(head: str) -> dict | None:
    """The first object of a JSON-lines head, or the first element of an array."""
    text = head.lstrip()
    if text.startswith("["):
        text = text[1:].lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _sniff_json(head: str) -> str:
    first = _first_json_object(head)
    if _HF_PAPER.search(head) or (first is not None and isinstance(first.get("paper"), dict)):
        return "hf-daily"
    if first is not None and "id" in first and ("update_date" in first or "categories" in first):
        return "arxiv"
    return "json" if head.lstrip().startswith("[") else "jsonl"


def _looks_like_csv_header(head: str) -> bool:
    first_line = head.lstrip().split("\n", 1)[0].lower()
    cells = {c.strip().strip('"') for c in re.split(r"[,\t;|]", first_line)}
    return "title" in cells and bool(cells.intersection(ABSTRACT_KEYS))


def detect_format(path: Path) -> str | None:
    """The format name for `path` from its extension and first 64 KiB, or None."""
    suffix = path.suffix.lower()
    head = _head(path)
    stripped = head.lstrip()
    if suffix == ".bib" or (suffix not in {".json", ".jsonl", ".csv", ".tsv"} and _BIB_ENTRY.search(head)):
        return "bibtex"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    # JSON is recognised by content too: a .txt or extension-less dump of the
    # API response is still JSON.
    if suffix in {".json", ".jsonl", ".ndjson"} or stripped.startswith(("[", "{")):
        return _sniff_json(head)
    if _looks_like_csv_header(head):
        return "csv"
    if suffix in _TEXT_SUFFIXES:
        return "daily-papers"
    return None


def read_path(path: Path, fmt: str | None = None) -> ReadResult:
    """Read one file into papers and skipped entries; never raises on bad input."""
    path = Path(path)
    name = str(path)
    if fmt is not None and fmt not in FORMATS:
        return file_problem(name, f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    # Before the text checks, which would call a PDF binary.
    if fmt == "pdf" or (fmt is None and path.is_file() and pdf.is_pdf(path)):
        return pdf.read(path, name)
    problem = check_file(path)
    if problem:
        return file_problem(name, problem)
    try:
        encoding = utf16_encoding(path)
        if encoding:
            with as_utf8(path, encoding) as utf8:
                return _read_text(utf8, name, fmt)
        return _read_text(path, name, fmt)
    except OSError as err:
        return file_problem(name, f"cannot read file: {err.strerror or err}")
    except UnicodeError as err:  # changed since it was checked
        return file_problem(name, f"not {encoding.upper()} text: {err}")


def _read_text(path: Path, name: str, fmt: str | None) -> ReadResult:
    """A checked UTF-8 text file read by its reader (``fmt``, or the one its name and content call for)."""
    try:
        fmt = fmt or detect_format(path)
        if fmt is None:
            return file_problem(
                name, f"cannot tell the format of {path.suffix or 'this'} file; name one of: {', '.join(FORMATS)}"
            )
        return FORMATS[fmt](path, name)
    except OSError as err:
        return file_problem(name, f"cannot read file: {err.strerror or err}")
    except Exception as err:  # noqa: BLE001 - one odd file must not stop a whole ingest
        return file_problem(name, f"could not read as {fmt}: {type(err).__name__}: {err}")


__all__ = ["FORMATS", "detect_format", "read_path"]
