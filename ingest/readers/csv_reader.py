"""Reader for CSV/TSV tables of papers: one row per paper, a header row naming columns.

Columns are matched case-insensitively with the same aliases as JSON (title;
abstract, summary or text; optional authors, date, url, categories, arXiv id).
The delimiter is sniffed from the header line with `csv.Sniffer`, falling back
to the extension (tab for .tsv, comma otherwise). Rows are streamed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from assistant.core.types import ReadResult, Skipped
from ingest.readers.common import (
    ABSTRACT_KEYS,
    TITLE_KEYS,
    add,
    file_problem,
    paper_from_record,
)

DELIMITERS = ",\t;|"


def sniff_delimiter(header: str, suffix: str) -> str:
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return "\t" if suffix.lower() == ".tsv" else ","


def read(path: Path, name: str) -> ReadResult:
    # newline="" is what the csv module needs to read quoted multi-line fields.
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header_line = ""
        for header_line in fh:
            if header_line.strip():
                break
        fh.seek(0)
        rows = csv.reader(fh, delimiter=sniff_delimiter(header_line, path.suffix))
        header = next((r for r in rows if any(c.strip() for c in r)), [])
        columns = [c.strip() for c in header]
        lowered = {c.lower() for c in columns}
        missing = [
            (what, keys)
            for what, keys in (("title", TITLE_KEYS), ("abstract", ABSTRACT_KEYS))
            if not lowered.intersection(keys)
        ]
        if missing:
            what, keys = missing[-1]  # name the abstract first: it is the one that matters
            named = ", ".join(c for c in columns if c) or "(none)"
            return file_problem(name, f"no {what} column (looked for {', '.join(keys)}); the columns are: {named}")
        return _read_rows(rows, columns, name)


def _read_rows(rows, columns: list[str], name: str) -> ReadResult:
    """Rows after the header as papers; `rows` is the csv.reader already past the header."""
    result = ReadResult()
    start = rows.line_num + 1
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            # e.g. a field over the csv module's 128 KiB limit: skip the row, go on.
            add(result, Skipped(file=name, line=start, reason=f"bad CSV row: {err}"))
            start = rows.line_num + 1
            continue
        if any(cell.strip() for cell in row):
            # zip drops surplus cells and leaves missing trailing ones absent.
            record = {column: cell for column, cell in zip(columns, row) if column}
            add(result, paper_from_record(record, name, start))
        start = rows.line_num + 1
    return result
