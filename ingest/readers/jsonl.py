"""Reader for generic JSON: a JSON array of paper objects, one object, or JSON lines.

Also owns `iter_json_records`, the one place that walks a JSON file record by
record with line numbers; the arXiv and Hugging Face readers reuse it and only
map fields. Fields read: title; abstract (aliases summary, text); optionally
authors, date, url, categories and an arXiv id (see `common.paper_from_record`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.core.types import ReadResult, Skipped
from ingest.readers.common import add, paper_from_record

# Keys under which a top-level JSON object commonly wraps its list of records.
WRAPPER_KEYS = ("papers", "data", "items", "entries", "records", "results")


class RecordError(str):
    """A record that could not be parsed; the text is the reason."""


def _error_reason(err: json.JSONDecodeError, what: str) -> str:
    # An unterminated string, or a value expected where the text ends, means
    # the writer stopped early (a cut download, a full disk): say so plainly.
    at_end = err.pos >= len(err.doc.rstrip())
    if err.msg.startswith("Unterminated string") or (at_end and err.msg.startswith("Expecting")):
        return f"truncated JSON: {what} ends before it is complete ({err.msg.lower()} column {err.colno})"
    return f"malformed JSON in {what}: {err.msg} (column {err.colno})"


def _iter_array(text: str, start: int) -> Iterator[tuple[int, Any]]:
    """Elements of the JSON array at text[start] == "[", each with its line number.

    Decoding element by element (rather than json.loads of the whole text)
    keeps the elements before a truncation or a syntax error, and gives each
    its line for `Paper.source`.
    """
    decoder = json.JSONDecoder()
    line, counted_to = 1, 0
    i = start + 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            yield line, RecordError("truncated JSON: the array is never closed with ']'")
            return
        if text[i] == "]":
            return
        # Lines are counted incrementally so the whole walk stays linear.
        line += text.count("\n", counted_to, i)
        counted_to = i
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as err:
            yield line, RecordError(_error_reason(err, f"the array element at line {line}"))
            return  # after a syntax error the element boundaries are unknown
        yield line, value


def _document_records(path: Path) -> list[tuple[int | None, Any]]:
    """The records of `path` parsed as one JSON document (array, object or wrapper)."""
    text = path.read_text(encoding="utf-8-sig")
    start = len(text) - len(text.lstrip())
    if text.startswith("[", start):
        return list(_iter_array(text, start))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return [(err.lineno, RecordError(_error_reason(err, "the file")))]
    # Records inside a wrapper have no position of their own; their source names the file.
    return [(1 if item is value else None, item) for item in _unwrap(value)]


def _unwrap(value: Any) -> list[Any]:
    """The records of a top-level value: the list in {"papers": [...]}-style wrappers, else the value."""
    if isinstance(value, dict) and not any(k in value for k in ("title", "paper")):
        for key in WRAPPER_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
    return [value]


def _first_char(path: Path) -> str:
    with path.open(encoding="utf-8-sig") as fh:
        while (ch := fh.read(1)) and ch.isspace():
            pass
        return ch


def _iter_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)  # no strip(): a copy of a huge line costs its size again
            except json.JSONDecodeError:
                # Re-parse without the newline so a cut string reads as truncated,
                # not as a "control character" inside the string.
                try:
                    value = json.loads(raw.strip())
                except json.JSONDecodeError as err:
                    value = RecordError(_error_reason(err, f"line {number}"))
            yield number, value


def _any_later_line_is_object(path: Path) -> bool:
    for _, value in _iter_lines(path):
        if isinstance(value, dict):
            return True
    return False


def iter_json_records(path: Path) -> Iterator[tuple[int | None, Any]]:
    """(line, record) for each record of a JSON array, JSON object or JSON lines file.

    A record that cannot be parsed comes as a `RecordError` (a str with the
    reason). JSON lines are streamed one line at a time, so a bad line costs
    only that line; an array is decoded element by element.
    """
    if _first_char(path) == "[":
        yield from _document_records(path)
        return
    lines = _iter_lines(path)
    first = next(lines, None)
    if first is None:
        return
    if isinstance(first[1], RecordError):
        # The first line is not a whole value: most likely one pretty-printed
        # object rather than JSON lines. Only if later lines are objects is it
        # JSON lines with a bad first line; otherwise one error for the file
        # beats one per line of a broken document.
        lines.close()  # release the file handle before reading the file whole
        records = _document_records(path)
        if not records or not isinstance(records[0][1], RecordError) or not _any_later_line_is_object(path):
            yield from records
            return
        lines = _iter_lines(path)
        next(lines)  # the bad first line, already in hand
    # Each line is normally one record; a line holding a wrapper object
    # (the whole {"papers": [...]} on one line) expands to its records.
    for number, value in itertools.chain([first], lines):
        for record in _unwrap(value):
            yield number, record


def read_records(path: Path, name: str, to_paper) -> ReadResult:
    """Read every JSON record of `path` through `to_paper(record, name, line)`."""
    result = ReadResult()
    for line, record in iter_json_records(path):
        if isinstance(record, RecordError):
            add(result, Skipped(file=name, line=line, reason=str(record)))
        elif not isinstance(record, dict):
            add(result, Skipped(file=name, line=line, reason=f"expected a JSON object, found a {type(record).__name__}"))
        else:
            add(result, to_paper(record, name, line))
    return result


def read(path: Path, name: str) -> ReadResult:
    return read_records(path, name, paper_from_record)
