"""Plumbing every reader shares: whole-file checks, field lookup, and turning
raw fields into a `Paper` or a `Skipped` with a reason.

Text is UTF-8 (a BOM allowed) or UTF-16: with a BOM, or without one when its
NUL bytes fall on every other byte, as they do in UTF-16 of mostly Latin text
(Windows tools write it so). `utf16_encoding` tells which; `as_utf8` gives the
readers a UTF-8 copy of such a file, so every reader reads UTF-8 only.

Keeping these rules in one place means every format rejects the same things
for the same reasons (no abstract, absurdly long fields, control characters)
and names them the same way in `Skipped.reason`.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assistant.core.types import Paper, ReadResult, Skipped
from ingest.normalize import canonical_arxiv_id, normalize_text, paper_id_for

# Real abstracts are under ~2,000 characters (arXiv caps them at 1,920); a
# field far beyond that is a mis-parsed file, and would flood the index with
# thousands of chunks of one "paper".
MAX_ABSTRACT_CHARS = 20_000
MAX_TITLE_CHARS = 1_000

TITLE_KEYS = ("title",)
ABSTRACT_KEYS = ("abstract", "summary", "text")
AUTHOR_KEYS = ("authors", "author")
DATE_KEYS = ("date", "published", "publishedat", "published_at", "update_date", "year")
URL_KEYS = ("url", "link")
CATEGORY_KEYS = ("categories", "category", "tags")
ARXIV_KEYS = ("arxiv_id", "arxiv", "eprint", "id")

_CHECK_CHUNK = 1 << 20  # bytes per read when validating a file; keeps memory flat
# Skipped entries kept per file with their line and reason; the rest are counted. A 50 MB file of
# 672,164 bad lines kept one object per line (623 MB at peak) and printed a line for each.
SKIPPED_KEPT = 100


_UTF16_SAMPLE = 64 * 1024  # bytes looked at to tell UTF-16 without a BOM
_TEXT_CONTROLS = {"\t", "\n", "\r", "\f", "\v"}


def utf16_encoding(path: Path) -> str | None:
    """The codec of a UTF-16 file ("utf-16" with a BOM, "utf-16-le"/"utf-16-be" without one), or None.

    Without a BOM, UTF-16 of mostly Latin text has a NUL at every other byte
    (odd offsets little-endian, even ones big-endian) and almost none at the
    others; the sample must then decode to text without control characters.
    Binary files put their NULs anywhere, so they stay "binary".
    """
    with path.open("rb") as fh:
        head = fh.read(_UTF16_SAMPLE)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    head = head[: len(head) // 2 * 2]
    pairs = len(head) // 2
    if pairs < 2 or b"\x00" not in head:
        return None
    even, odd = head[0::2].count(0) / pairs, head[1::2].count(0) / pairs
    codec = "utf-16-le" if odd >= 0.3 and even < 0.01 else "utf-16-be" if even >= 0.3 and odd < 0.01 else None
    if codec is None:
        return None
    text = head.decode(codec, errors="replace").rstrip("\ufffd")  # the sample may end inside a surrogate pair
    if "\ufffd" in text or any(ch < " " and ch not in _TEXT_CONTROLS for ch in text):
        return None
    return codec


def check_file(path: Path) -> str | None:
    """Why `path` cannot be read as text (UTF-8, or UTF-16 as `utf16_encoding` finds it), or None when it can.

    Streams the file in 1 MiB chunks so that a huge file costs no memory here.
    """
    if not path.exists():
        return "file does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    try:
        codec = utf16_encoding(path)
    except OSError as err:
        return f"cannot read file: {err.strerror or err}"
    encoding = codec or "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    has_text = False
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHECK_CHUNK):
                nul = chunk.find(b"\x00")
                if nul >= 0 and codec is None:
                    return f"binary file (NUL byte at offset {offset + nul})"
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    # err.start counts from the undecoded tail of the last chunk.
                    at = offset - pending + err.start
                    if codec:
                        return f"not UTF-16 text (bad bytes at offset {at})"
                    return f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {at})"
                if codec and "\x00" in text:
                    return f"binary file (a NUL character in UTF-16 text near offset {offset})"
                has_text = has_text or bool(text.strip())
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as err:
                at = offset - len(err.object) + err.start
                if codec:
                    return f"not UTF-16 text (the file ends inside a character, offset {at})"
                return f"not UTF-8 text (file ends inside a character, byte 0x{err.object[err.start]:02x} at offset {at})"
    except OSError as err:
        return f"cannot read file: {err.strerror or err}"
    if offset == 0:
        return "empty file"
    if not has_text:
        return "empty file (only whitespace)"
    return None


@contextmanager
def as_utf8(path: Path, encoding: str) -> Iterator[Path]:
    """A UTF-8 copy of a ``encoding`` (UTF-16) file, with its name's suffix, removed afterwards.

    Copied in 1 MiB pieces, so a huge file costs no memory; line breaks are kept
    as they are, so the readers' line numbers are the file's.
    """
    fd, tmp = tempfile.mkstemp(prefix="assistant-utf8-", suffix=path.suffix)
    try:
        with path.open(encoding=encoding, newline="") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
            shutil.copyfileobj(src, dst, _CHECK_CHUNK)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def add(result: ReadResult, item: Paper | Skipped) -> None:
    """Record one entry of a file, read or skipped (past the first SKIPPED_KEPT skipped ones, only counted)."""
    result.entries += 1
    if isinstance(item, Paper):
        result.papers.append(item)
    elif len(result.skipped) < SKIPPED_KEPT:
        result.skipped.append(item)
    else:
        result.skipped_more += 1


def file_problem(name: str, reason: str) -> ReadResult:
    """A result for a file that could not be read at all: one Skipped, line None."""
    return ReadResult(skipped=[Skipped(file=name, line=None, reason=reason)])


def _as_text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{what} is a JSON {type(value).__name__}, not text")


def _optional_text(value: Any) -> str:
    try:
        return _as_text(value, "")
    except ValueError:
        return ""


def split_authors(value: Any) -> list[str]:
    """Authors from a list of names, a list of {"name": ...}, or one string.

    A string is split on ";" when it has one, else on commas and " and " (the
    arXiv style "A, B and C").
    """
    if not value:
        return []
    if isinstance(value, str):
        parts = value.split(";") if ";" in value else re.split(r",|\band\b", value)
    elif isinstance(value, Iterable):
        parts = [v.get("name", "") if isinstance(v, Mapping) else v for v in value]
    else:
        return []
    names = (normalize_text(p) for p in parts if isinstance(p, str))
    return [n for n in names if n]


def split_categories(value: Any) -> list[str]:
    if not value:
        return []
    parts = re.split(r"[\s,;]+", value) if isinstance(value, str) else value
    return [c.strip() for c in parts if isinstance(c, str) and c.strip()]


def short(text: str, limit: int = 60) -> str:
    """A title shortened for a skip reason."""
    text = normalize_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_paper(
    *,
    name: str,
    line: int | None,
    title: Any,
    abstract: Any,
    authors: Iterable[str] = (),
    date: Any = "",
    url: Any = "",
    categories: Iterable[str] = (),
    arxiv_id: Any = "",
) -> Paper | Skipped:
    """A normalised Paper from raw fields, or a Skipped saying what is wrong with them."""

    def skip(reason: str) -> Skipped:
        return Skipped(file=name, line=line, reason=reason)

    try:
        title, abstract = _as_text(title, "title"), _as_text(abstract, "abstract")
    except ValueError as err:
        return skip(str(err))
    # Optional fields of an unexpected type are dropped rather than losing the paper.
    date, url, arxiv_id = (_optional_text(v) for v in (date, url, arxiv_id))
    # Length checks come before normalising so an oversized field is never copied.
    if len(abstract) > MAX_ABSTRACT_CHARS:
        return skip(f"abstract is {len(abstract):,} characters, over the {MAX_ABSTRACT_CHARS:,} limit; not an abstract?")
    if len(title) > MAX_TITLE_CHARS:
        return skip(f"title is {len(title):,} characters, over the {MAX_TITLE_CHARS:,} limit; not a title?")
    title, abstract = normalize_text(title), normalize_text(abstract)
    if not title and not abstract:
        return skip("entry has neither a title nor an abstract")
    if not abstract:
        return skip(f"title with no abstract: {short(title)!r}")
    if not title:
        return skip(f"abstract with no title: {short(abstract)!r}")
    arxiv = canonical_arxiv_id(arxiv_id) or canonical_arxiv_id(url)
    return Paper(
        paper_id=paper_id_for(title, arxiv),
        title=title,
        abstract=abstract,
        authors=list(authors),
        date=normalize_text(date),
        url=normalize_text(url) or (f"https://arxiv.org/abs/{arxiv}" if arxiv else ""),
        categories=list(categories),
        arxiv_id=arxiv,
        source=f"{name}:{line}" if line else name,
    )


def lookup(record: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The first non-empty value among `keys`; `record` must have lower-cased keys."""
    for key in keys:
        value = record.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def paper_from_record(record: Mapping[str, Any], name: str, line: int | None) -> Paper | Skipped:
    """A Paper from a generic record (JSON object, CSV row) using the usual field aliases."""
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    return make_paper(
        name=name,
        line=line,
        title=lookup(lowered, TITLE_KEYS),
        abstract=lookup(lowered, ABSTRACT_KEYS),
        authors=split_authors(lookup(lowered, AUTHOR_KEYS)),
        date=lookup(lowered, DATE_KEYS) or "",
        url=lookup(lowered, URL_KEYS) or "",
        categories=split_categories(lookup(lowered, CATEGORY_KEYS)),
        # Only an id that parses as an arXiv id is used; other ids are ignored.
        arxiv_id=lookup(lowered, ARXIV_KEYS) or "",
    )
