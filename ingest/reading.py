"""Reading the input files: one file is one unit of work, and one file never costs the others.

``read_files(paths, fmt)`` reads every file and returns one ``FileRead`` per file, in the order given.
PDFs are read in a process pool (``workers`` processes, default one per core): laying out a page is pure
Python over PDFium's characters, so processes, not threads, spread it over the cores, and each worker
holds one document at a time (memory stays that of one PDF per core). Other formats are read here, in the
calling process (they are small next to PDFs).

Whatever happens inside one file is that file's alone:

* a file the readers refuse is a ``Skipped`` with the reason, as always;
* a bug while reading (an exception the readers did not expect) is a ``Skipped`` naming the exception,
  with its trace written to ``log_dir``;
* a worker that dies (PDFium crashing on a malformed file) breaks the pool: every file in flight is read
  again alone in a fresh one-worker pool, and the file that kills that one too is named as the cause.

``progress`` prints a line per file on stderr ("read 3/85 name.pdf: 26 pages, 1.2 s").
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.errors import write_trace
from assistant.core.types import ReadResult, Skipped
from ingest.readers import read_path
from ingest.readers.pdf import is_pdf


@dataclass
class FileRead:
    """One file's result and how long it took (in the process that read it)."""

    path: Path
    result: ReadResult = field(default_factory=ReadResult)
    seconds: float = 0.0


def _read(path: Path, fmt: str | None, log_dir: Path | None) -> FileRead:
    """Read one file; a bug is caught here, in the process that met it, so its trace is the real one."""
    started = time.perf_counter()
    try:
        result = read_path(path, fmt)
    except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the others
        where = write_trace(exc, log_dir, note=f"reading {path}")
        result = ReadResult(skipped=[Skipped(str(path), None, f"could not be read: {type(exc).__name__}: "
                                                               f"{_one_line(str(exc))} (a bug; trace in {where})")])
    return FileRead(path, result, time.perf_counter() - started)


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def read_files(paths: list[Path], fmt: str | None = None, *, workers: int | None = None,
               log_dir: Path | None = None, progress: bool = False) -> list[FileRead]:
    """Every file read, in the order of ``paths`` (PDFs in a process pool when there are several)."""
    paths = list(paths)
    pdfs = [p for p in paths if fmt in (None, "pdf") and p.is_file() and (fmt == "pdf" or is_pdf(p))]
    workers = min(workers or default_workers(), len(pdfs))
    done: dict[Path, FileRead] = {}
    meter = _Progress(len(paths), progress)
    if workers > 1:
        for read in _pooled(pdfs, fmt, workers, log_dir):
            done[read.path] = read
            meter.show(read)
    for path in paths:
        if path not in done:
            done[path] = _read(path, fmt, log_dir)
            meter.show(done[path])
    return [done[p] for p in paths]


def _pooled(pdfs: list[Path], fmt: str | None, workers: int, log_dir: Path | None):
    """Yield each PDF's FileRead as it completes; files a crashed worker took down are read again alone."""
    # spawn, not fork: the calling process may hold ONNX Runtime's threads, which a forked child would inherit
    # half-locked; a spawned worker imports only the reader.
    context = multiprocessing.get_context("spawn")
    lost: list[Path] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_read, p, fmt, log_dir): p for p in pdfs}
        for future in as_completed(futures):
            try:
                yield future.result()
            except BrokenProcessPool:
                lost.append(futures[future])
    for path in sorted(lost, key=pdfs.index):
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as alone:
            try:
                yield alone.submit(_read, path, fmt, log_dir).result()
            except BrokenProcessPool:
                reason = "the PDF reader crashed on this file (PDFium ended the process); the file may be damaged"
                yield FileRead(path, ReadResult(skipped=[Skipped(str(path), None, reason)], entries=1))


class _Progress:
    """A line per file read on stderr: its place, its name, its pages and how long it took."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.count = total, enabled, 0

    def show(self, read: FileRead) -> None:
        self.count += 1
        if not self.enabled:
            return
        pages = sum(p.pages for p in read.result.papers)
        what = f"{pages} pages" if pages else f"{len(read.result.papers)} papers"
        if read.result.skipped and not read.result.papers:
            what = "not read: " + _one_line(read.result.skipped[0].reason, 100)
        print(f"read {self.count}/{self.total} {read.path.name}: {what}, {read.seconds:.1f} s", file=sys.stderr,
              flush=True)
