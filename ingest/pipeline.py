"""Ingest: read files → normalise and dedupe → chunk → embed → store, with a report.

Only papers whose text changed (or that are new, or were left half-written by
an ingest that was killed) are chunked and embedded; the rest cost one hash
comparison. Papers are embedded and written in groups, so a kill loses at most
the group in flight, and the next ingest completes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from assistant.core.errors import UserError
from assistant.core.types import Paper, Skipped
from ingest.chunking import DEFAULT_CHUNKER, make_chunker
from ingest.normalize import dedupe
from ingest.readers import read_path

INPUT_SUFFIXES = {".txt", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".bib", ".bibtex"}
GROUP_CHUNKS = 512  # chunks embedded and written per step


class LibraryBusy(UserError):
    """Another ingest is writing to this library."""


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    entries: int = 0
    papers: int = 0  # unique papers in the input
    duplicates: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False only when nothing at all could be read."""
        return self.papers > 0

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "skipped"}
        d["skipped"] = [{"file": s.file, "line": s.line, "reason": s.reason} for s in self.skipped]
        return d

    def lines(self) -> list[str]:
        out = [
            f"files: {len(self.files)}",
            f"entries read: {self.entries}",
            f"unique papers: {self.papers} (duplicates merged: {self.duplicates})",
            f"new: {self.new}, updated: {self.updated}, unchanged: {self.unchanged}",
            f"chunks embedded: {self.chunks_embedded}",
            f"skipped: {len(self.skipped)}",
        ]
        out += [f"  {s}" for s in self.skipped]
        out.append(f"seconds: {self.seconds:.1f}")
        return out


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Files to read: given files as they are, folders walked for known input suffixes."""
    files: list[Path] = []
    missing: list[Skipped] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                missing.append(Skipped(str(path), None, "folder holds no .txt, .json, .jsonl, .csv or .bib files"))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            missing.append(Skipped(str(path), None, "no such file or folder"))
    return files, missing


def content_hash(paper: Paper, embedder_name: str, chunk_tokens: int, chunker: str = DEFAULT_CHUNKER) -> str:
    # "sentences" adds nothing to the key: libraries written before the chunker was a choice were chunked
    # by it, so their hashes still say so, and another chunker re-chunks (and re-embeds) them once.
    parts = [paper.title, paper.abstract, embedder_name, str(chunk_tokens)] + ([chunker] if chunker != "sentences" else [])
    key = "\x1f".join(parts)
    return hashlib.sha1(key.encode()).hexdigest()


@contextmanager
def writer_lock(lock_dir: Path, library_key: str):
    """One writer per library on this machine; a second gets LibraryBusy at once."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{library_key}.lock", os.O_CREAT | os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LibraryBusy(f"library busy: another ingest is writing to {library_key}; try again when it ends") from None
        yield
    finally:
        os.close(fd)


def ingest(
    paths: Iterable[Path],
    library,
    embedder,
    *,
    fmt: str | None = None,
    chunk_tokens: int = 256,
    chunker: str = DEFAULT_CHUNKER,
    lock_dir: Path | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest files into ``library`` (a store.Library) with ``embedder``; returns the report.

    ``chunker`` names one of ``ingest.chunking.CHUNKERS``; changing it re-chunks and re-embeds every paper.
    """
    started = time.perf_counter()
    report = IngestReport()
    files, missing = expand_paths(paths)
    report.skipped.extend(missing)
    papers: list[Paper] = []
    for path in files:
        result = read_path(path, fmt)
        report.files.append(str(path))
        report.entries += result.entries
        report.skipped.extend(result.skipped)
        papers.extend(result.papers)
    unique, report.duplicates = dedupe(papers)
    return ingest_papers(
        unique, library, embedder, chunk_tokens=chunk_tokens, chunker=chunker, lock_dir=lock_dir,
        progress=progress, on_progress=on_progress, report=report, started=started,
    )


def ingest_papers(
    papers: list[Paper],
    library,
    embedder,
    *,
    chunk_tokens: int = 256,
    chunker: str = DEFAULT_CHUNKER,
    lock_dir: Path | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    report: IngestReport | None = None,
    started: float | None = None,
) -> IngestReport:
    """Store already-read, unique papers: embed the new or changed ones, skip the rest.

    The lower half of ``ingest``, for callers that build Paper objects themselves
    (the BEIR benchmark loader); papers are not deduplicated here.
    """
    started = time.perf_counter() if started is None else started
    report = report or IngestReport()
    chunk = make_chunker(chunker, embedder)  # an unknown name fails here, before anything is written
    unique = list(papers)
    report.papers = len(unique)
    if not unique:
        report.seconds = time.perf_counter() - started
        return report

    lock = writer_lock(lock_dir, library.key) if lock_dir else nullcontext()
    with lock:
        stored = library.paper_hashes()
        todo: list[tuple[Paper, str]] = []
        for paper in unique:
            h = content_hash(paper, embedder.name, chunk_tokens, chunker)
            if stored.get(paper.paper_id) == h:
                report.unchanged += 1
                continue
            if paper.paper_id in stored:
                report.updated += 1
            else:
                report.new += 1
            todo.append((paper, h))
        if todo:
            _embed_and_write(todo, library, embedder, chunk, chunk_tokens, report, progress, on_progress)
            library.bump_revision()
    report.seconds = time.perf_counter() - started
    return report


def _embed_and_write(todo, library, embedder, chunk, chunk_tokens, report, progress, on_progress) -> None:
    chunked = [(p, h, chunk(p, max_tokens=min(chunk_tokens, embedder.max_tokens))) for p, h in todo]
    total = sum(len(c) for _, _, c in chunked)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="chunk", desc="embedding")
    done = 0
    group: list = []
    group_chunks = 0
    for item in chunked + [None]:
        if item is not None:
            group.append(item)
            group_chunks += len(item[2])
            if group_chunks < GROUP_CHUNKS:
                continue
        if not group:
            break
        texts = [c.embed_text for _, _, chunks in group for c in chunks]
        t0 = time.perf_counter()
        vectors = embedder.embed(texts)
        report.embed_seconds += time.perf_counter() - t0
        items, offset = [], 0
        for paper, h, chunks in group:
            items.append((paper, h, chunks, vectors[offset : offset + len(chunks)]))
            offset += len(chunks)
        library.write(items)
        done += len(texts)
        report.chunks_embedded += len(texts)
        if bar:
            bar.update(len(texts))
        if on_progress:
            on_progress(done, total)
        group, group_chunks = [], 0
    if bar:
        bar.close()
