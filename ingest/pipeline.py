"""Ingest: read files → normalise and dedupe → chunk → embed chunks and sentences → store, with a report.

Only papers whose text changed (or that are new, or were left half-written by
an ingest that was killed) are chunked and embedded; the rest cost one hash
comparison. Papers are chunked, embedded and committed in small groups (their
chunks, sentence vectors and paper records together, ``GROUP_CHUNKS`` chunks a
group), so a kill or Ctrl-C loses at most the group in flight and the next
ingest embeds only what was not stored; the progress bar shows the papers left
and the time to go. Each paper's sentence vectors (ingest/sentences.py) are
stored so answering looks them up instead of embedding abstracts per question;
papers stored before that get theirs at the next ingest (nothing else is redone).
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from assistant.core.errors import UserError, write_trace
from assistant.core.types import Paper, Skipped
from ingest.chunking import BODY_TARGET_TOKENS, DEFAULT_CHUNKER, make_chunker
from ingest.fulltext import FullTextIndex, store_pdf
from ingest.normalize import dedupe
from ingest.reading import read_files
from ingest.readers.pdf import file_hash, is_pdf
from ingest.sentences import sentence_texts

INPUT_SUFFIXES = {".txt", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".bib", ".bibtex", ".pdf"}
# A file with more skipped entries than this gets one summary line and its first few examples in the report.
SKIPS_LISTED = 5
SKIP_EXAMPLES = 3
# Chunks per commit: a kill loses at most this group (about a second of work on 2 cores with int8);
# smaller groups would spend more of the time in Chroma's per-call overhead.
GROUP_CHUNKS = 64


class LibraryBusy(UserError):
    """Another ingest kept writing to this library for longer than this one would wait."""


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
    sentences_embedded: int = 0  # sentence vectors stored (titles included)
    skipped: list[Skipped] = field(default_factory=list)  # each file's first skipped entries (readers keep 100)
    skipped_more: dict[str, int] = field(default_factory=dict)  # file -> skipped entries counted, not listed
    seconds: float = 0.0
    embed_seconds: float = 0.0  # chunks and sentences
    read_seconds: float = 0.0  # reading the files (PDF text extraction included)
    unchanged_files: int = 0  # PDFs stored before byte for byte: not read, counted unchanged
    enriched: int = 0  # abstract entries of stored full-text papers: their gaps filled, nothing embedded
    pdf_files: int = 0  # PDFs read (an unchanged PDF is recognised by its bytes and not read)
    pdf_pages: int = 0
    failed: int = 0  # papers read but left out because chunking or embedding them failed (named in skipped)
    files_read: list[dict] = field(default_factory=list)  # per file read: {file, pages, seconds} (in its worker)

    @property
    def ok(self) -> bool:
        """False only when nothing at all could be read."""
        return self.papers - self.failed > 0

    @property
    def files_failed(self) -> list[str]:
        """The files (or papers) that could not be ingested at all: each is named in ``skipped`` with its reason."""
        return list(dict.fromkeys(s.file for s in self.skipped if s.line is None))

    @property
    def skipped_count(self) -> int:
        return len(self.skipped) + sum(self.skipped_more.values())

    def skipped_by_file(self) -> dict[str, tuple[int, list[Skipped]]]:
        """file -> (entries skipped, the ones listed), in the order the files were read."""
        out: dict[str, tuple[int, list[Skipped]]] = {}
        for s in self.skipped:
            out.setdefault(s.file, (0, []))[1].append(s)
        return {f: (len(listed) + self.skipped_more.get(f, 0), listed) for f, (_, listed) in out.items()}

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("skipped", "skipped_more")}
        d["skipped"] = [{"file": s.file, "line": s.line, "reason": s.reason} for s in self.skipped]
        d["files_failed"] = self.files_failed
        d["skipped_count"] = self.skipped_count
        d["skipped_files"] = [{"file": f, "skipped": n, "listed": len(listed)}
                              for f, (n, listed) in self.skipped_by_file().items()]
        return d

    def lines(self) -> list[str]:
        out = [
            f"files: {len(self.files)}",
            f"entries read: {self.entries}",
            f"unique papers: {self.papers} (duplicates merged: {self.duplicates})",
            f"new: {self.new}, updated: {self.updated}, unchanged: {self.unchanged}",
            f"chunks embedded: {self.chunks_embedded}",
        ] + ([f"PDFs read: {self.pdf_files} ({self.pdf_pages} pages, {self.read_seconds:.1f} s)"] if self.pdf_files else []) + [

            f"sentence vectors stored: {self.sentences_embedded}",
            f"skipped: {self.skipped_count}",
        ]
        for file, (count, listed) in self.skipped_by_file().items():
            if count <= SKIPS_LISTED:
                out += [f"  {s}" for s in listed]
                continue
            out.append(f"  {file}: {count:,} entries skipped; the first {SKIP_EXAMPLES}:")
            out += [f"    {f'line {s.line}: ' if s.line else ''}{s.reason}" for s in listed[:SKIP_EXAMPLES]]
            out.append(f"    (the JSON report lists the first {len(listed)})")
        if self.files_failed:
            out.append(f"files not ingested: {len(self.files_failed)} (each named above with the reason)")
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
                missing.append(Skipped(str(path), None, "folder holds no .txt, .json, .jsonl, .csv, .bib or .pdf files"))
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
    if paper.file_hash:  # a full text: the file's bytes and how its body is cut
        parts += [paper.file_hash, f"body{BODY_TARGET_TOKENS}"]
    key = "\x1f".join(parts)
    return hashlib.sha1(key.encode()).hexdigest()


WAIT_NOTE_EVERY = 60.0  # seconds between "still waiting" notes


@contextmanager
def writer_lock(lock_dir: Path, library_key: str, wait: float = 1800.0, on_wait: Callable[[str], None] | None = None):
    """One writer per library on this machine: a second one waits for the first, saying so, up to ``wait`` seconds.

    filelock's FileLock (an flock on Linux) is let go by the system when its holder dies, so a killed ingest
    never leaves the library locked. ``on_wait`` receives the notes (default: stderr)."""
    from filelock import FileLock, Timeout

    note = on_wait or (lambda text: print(text, file=sys.stderr, flush=True))
    name = library_key.split("__")[0]  # the key is <library>__<model>__chunks: users know the library's name
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_dir / f"{library_key}.lock")
    try:
        lock.acquire(blocking=False)
    except Timeout:
        started = time.monotonic()
        note(f"another ingest is writing to library {name!r}; waiting for it to finish "
             f"(up to {_duration(wait)}) …")
        while True:
            left = wait - (time.monotonic() - started)
            try:
                lock.acquire(timeout=max(0.0, min(WAIT_NOTE_EVERY, left)))
                break
            except Timeout:
                if left <= WAIT_NOTE_EVERY:
                    raise LibraryBusy(f"library busy: another ingest has been writing to library {name!r} for more than "
                                      f"{_duration(wait)}; try again when it ends") from None
                note(f"still waiting for the other ingest ({_duration(time.monotonic() - started)} so far) …")
        note(f"the other ingest has finished after {_duration(time.monotonic() - started)}; ingesting now")
    try:
        yield
    finally:
        lock.release()


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


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
    sentences: bool = True,
    pdf_dir: Path | None = None,
    workers: int | None = None,
    log_dir: Path | None = None,
    lock_wait: float = 1800.0,
    on_wait: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest files into ``library`` (a store.Library) with ``embedder``; returns the report.

    ``chunker`` names one of ``ingest.chunking.CHUNKERS``; changing it re-chunks and re-embeds every paper.
    ``on_progress(chunks done, chunks in all)`` is called after each commit (the total is estimated
    from the papers chunked so far until the last group). ``sentences``: store sentence vectors.
    ``pdf_dir``: where PDFs are kept for the chat page to open (by the hash of their bytes); None leaves
    them where they are and records their path. ``workers``: processes reading PDFs (default: one per core).
    ``log_dir``: where the trace of a bug met in one file is written (that file is skipped, the others go on).
    ``lock_wait``: how long to wait for another ingest into the same library to finish (``on_wait`` gets the
    notes saying so).

    PDFs are full texts: a PDF already stored byte for byte (with the same chunking) is not read again; a PDF
    and an abstract-dump entry of the same paper (same arXiv id or DOI, or the same normalised title), in
    this ingest or stored before, are one paper, the full text winning and the entry filling its gaps.
    """
    started = time.perf_counter()
    report = IngestReport()
    files, missing = expand_paths(paths)
    report.skipped.extend(missing)
    stored = FullTextIndex(library, lambda p: content_hash(p, embedder.name, chunk_tokens, chunker))
    papers: list[Paper] = []
    known: set[str] = set()  # stored papers whose PDF was found unchanged
    to_read: list[Path] = []
    for path in files:
        report.files.append(str(path))
        if fmt in (None, "pdf") and path.is_file() and is_pdf(path) and (pid := stored.unchanged_file(file_hash(path))):
            report.entries += 1
            report.duplicates += pid in known
            known.add(pid)
            continue
        to_read.append(path)
    t0 = time.perf_counter()
    for read in read_files(to_read, fmt, workers=workers, log_dir=log_dir, progress=progress):
        result = read.result
        report.files_read.append({"file": str(read.path), "pages": sum(p.pages for p in result.papers),
                                  "seconds": round(read.seconds, 3)})
        report.entries += result.entries
        report.skipped.extend(result.skipped)
        if result.skipped_more:
            report.skipped_more[str(read.path)] = report.skipped_more.get(str(read.path), 0) + result.skipped_more
        for paper in result.papers:
            if paper.has_full_text:
                report.pdf_files += 1
                report.pdf_pages += paper.pages
                paper.pdf = store_pdf(read.path, paper.file_hash, pdf_dir)
        papers.extend(result.papers)
    report.read_seconds = time.perf_counter() - t0  # wall time: PDFs are read side by side
    unique, duplicates = dedupe(papers)
    report.duplicates += duplicates
    report.unchanged_files = len(known)
    unique, report.enriched = stored.resolve(unique)
    report.unchanged += report.unchanged_files + report.enriched
    report.papers = report.unchanged_files + report.enriched  # ingest_papers adds the papers it is handed
    return ingest_papers(
        unique, library, embedder, chunk_tokens=chunk_tokens, chunker=chunker, lock_dir=lock_dir,
        progress=progress, on_progress=on_progress, report=report, started=started, sentences=sentences,
        log_dir=log_dir, lock_wait=lock_wait, on_wait=on_wait,
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
    sentences: bool = True,
    log_dir: Path | None = None,
    lock_wait: float = 1800.0,
    on_wait: Callable[[str], None] | None = None,
) -> IngestReport:
    """Store already-read, unique papers: embed the new or changed ones, skip the rest.

    A paper that cannot be chunked or embedded (a bug, an odd character a tokenizer refuses) is skipped
    with its reason (the trace written to ``log_dir``); the other papers are stored.

    The lower half of ``ingest``, for callers that build Paper objects themselves
    (the BEIR benchmark loader); papers are not deduplicated here.
    """
    started = time.perf_counter() if started is None else started
    report = report or IngestReport()
    chunk = make_chunker(chunker, embedder)  # an unknown name fails here, before anything is written
    unique = list(papers)
    report.papers += len(unique)
    if not unique:
        report.seconds = time.perf_counter() - started
        return report

    lock = writer_lock(lock_dir, library.key, lock_wait, on_wait) if lock_dir else nullcontext()
    with lock:
        stored = library.paper_states()
        todo: list[tuple[Paper, str]] = []
        backfill: list[Paper] = []  # stored before sentence vectors were: only those are added
        for paper in unique:
            h = content_hash(paper, embedder.name, chunk_tokens, chunker)
            state = stored.get(paper.paper_id)
            if state is not None and state[0] == h:
                report.unchanged += 1
                if sentences and state[1] is None:
                    backfill.append(paper)
                continue
            if state is not None:
                report.updated += 1
            else:
                report.new += 1
            todo.append((paper, h))
        max_tokens = min(chunk_tokens, embedder.max_tokens)
        # Each commit writes the library's new revision with its paper records (store.Library.write): what a
        # kill or Ctrl-C leaves committed is searchable at once, BM25 included, with no revision bump at the end.
        if todo:
            _embed_and_write(todo, library, embedder, chunk, max_tokens, report, progress, on_progress,
                             sentences, stored=report.unchanged, log_dir=log_dir,
                             updating=frozenset(p.paper_id for p, _ in todo if p.paper_id in stored))
        if backfill:
            _add_sentences(backfill, library, embedder, report)
    report.seconds = time.perf_counter() - started
    return report


def _groups(todo, chunk, max_tokens: int, fail: Callable[[Paper, str, BaseException], None]):
    """The papers to embed, chunked as they are reached, in groups of at least ``GROUP_CHUNKS`` chunks.
    A paper the chunker fails on is handed to ``fail`` and left out."""
    group, n = [], 0
    for paper, h in todo:
        try:
            chunks = chunk(paper, max_tokens=max_tokens)
        except Exception as exc:  # noqa: BLE001 - one paper's failure is that paper's alone
            fail(paper, "could not be chunked", exc)
            continue
        group.append((paper, h, chunks))
        n += len(chunks)
        if n >= GROUP_CHUNKS:
            yield group
            group, n = [], 0
    if group:
        yield group


def _embedded(group, embed, sentences: bool, fail) -> list[tuple]:
    """(paper, hash, chunks, chunk vectors, (sentence texts, vectors) or None) for each paper of the group.

    The group is embedded in two calls (chunks, sentences); when one fails, its papers are embedded one by
    one so that only the paper the embedder fails on is left out (handed to ``fail``)."""
    per_paper = [sentence_texts(paper) if sentences else [] for paper, _, _ in group]
    try:
        vectors = embed([c.embed_text for _, _, chunks in group for c in chunks])
        flat = [t for ts in per_paper for t in ts]
        sentence_vecs = embed(flat) if flat else []
    except Exception:  # noqa: BLE001 - find the paper it was, below
        if len(group) == 1:
            paper = group[0][0]
            try:
                vectors = embed([c.embed_text for c in group[0][2]])
                sentence_vecs = embed(per_paper[0]) if per_paper[0] else []
            except Exception as exc:  # noqa: BLE001
                fail(paper, "could not be embedded", exc)
                return []
        else:
            return [item for one in group for item in _embedded([one], embed, sentences, fail)]
    items, offset, s_offset = [], 0, 0
    for (paper, h, chunks), texts in zip(group, per_paper):
        block = (texts, sentence_vecs[s_offset : s_offset + len(texts)]) if sentences else None
        s_offset += len(texts)
        items.append((paper, h, chunks, vectors[offset : offset + len(chunks)], block))
        offset += len(chunks)
    return items


def _embed_and_write(todo, library, embedder, chunk, max_tokens, report, progress, on_progress, sentences,
                     stored: int = 0, log_dir: Path | None = None, updating: frozenset[str] = frozenset()) -> None:
    """Embed and commit ``todo`` group by group: chunks, sentence vectors and paper records together."""
    embed = getattr(embedder, "embed_bulk", None) or embedder.embed  # a GPU, where there is one
    meter = _Meter(len(todo), progress, stored)
    papers_done = chunks_done = 0

    def fail(paper: Paper, what: str, exc: BaseException) -> None:
        where = write_trace(exc, log_dir, note=f"ingesting {paper.source or paper.paper_id}")
        report.skipped.append(Skipped(paper.source or paper.paper_id, None,
                                      f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:160]} "
                                      f"(a bug; trace in {where})"))
        report.failed += 1
        if paper.paper_id in updating:
            report.updated -= 1
        else:
            report.new -= 1
        meter.update(1, chunks_done)

    try:
        for group in _groups(todo, chunk, max_tokens, fail):
            t0 = time.perf_counter()
            items = _embedded(group, embed, sentences, fail)
            report.embed_seconds += time.perf_counter() - t0
            if not items:
                continue
            library.write(items)
            texts = sum(len(item[2]) for item in items)
            flat = sum(len(item[4][0]) for item in items if item[4] is not None)
            papers_done += len(items)
            chunks_done += texts
            report.chunks_embedded += texts
            report.sentences_embedded += flat
            meter.update(len(items), chunks_done)
            if on_progress:
                # The total is known once every paper is chunked; until then, estimated from the papers so far.
                estimate = chunks_done if papers_done == len(todo) else round(chunks_done / papers_done * len(todo))
                on_progress(chunks_done, max(estimate, chunks_done))
    finally:
        meter.close()


def _add_sentences(papers: list[Paper], library, embedder, report, group: int = 64) -> None:
    """Store sentence vectors for papers whose chunks are already stored."""
    embed = getattr(embedder, "embed_bulk", None) or embedder.embed
    for start in range(0, len(papers), group):
        part = papers[start : start + group]
        per_paper = [sentence_texts(p) for p in part]
        flat = [t for ts in per_paper for t in ts]
        t0 = time.perf_counter()
        vecs = embed(flat)
        report.embed_seconds += time.perf_counter() - t0
        items, offset = [], 0
        for paper, texts in zip(part, per_paper):
            items.append((paper.paper_id, texts, vecs[offset : offset + len(texts)]))
            offset += len(texts)
        library.add_sentences(items)
        report.sentences_embedded += len(flat)


class _Meter:
    """The progress bar on stderr: papers embedded of those to do, chunks, papers left, and tqdm's time to go."""

    def __init__(self, total: int, enabled: bool, stored: int):
        self.bar = None
        self.total = total
        if enabled:
            from tqdm import tqdm

            if stored:
                tqdm.write(f"{stored:,} papers already stored; embedding the other {total:,}", file=sys.stderr)
            self.bar = tqdm(total=total, unit="paper", desc="embedding", file=sys.stderr)
        self.done = 0

    def update(self, papers: int, chunks: int) -> None:
        self.done += papers
        if self.bar:
            self.bar.set_postfix(chunks=chunks, left=self.total - self.done, refresh=False)
            self.bar.update(papers)

    def close(self) -> None:
        if self.bar:
            self.bar.close()
