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
  again alone in a fresh one-worker pool, and the file that kills that one too is named as the cause;
* a file still being read after ``FILE_SECONDS`` is given up on, its worker stopped, and named.

``progress`` prints a line per file on stderr ("read 3/85 name.pdf: 26 pages, 1.2 s").
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
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


FILE_SECONDS = 300.0  # one PDF read for longer than this is given up on (a 500-page file reads in 8-14 s)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def read_files(paths: list[Path], fmt: str | None = None, *, workers: int | None = None,
               log_dir: Path | None = None, progress: bool = False, reader=None,
               limit: float | None = None) -> list[FileRead]:
    """Every file read, in the order of ``paths`` (PDFs in a process pool when there are several).

    ``reader(path, fmt, log_dir) -> FileRead`` reads one file (default: the readers; a module-level function,
    as the pool's workers import it); ``limit``: seconds one PDF may take (default ``FILE_SECONDS``)."""
    reader = reader or _read
    paths = list(paths)
    pdfs = [p for p in paths if fmt in (None, "pdf") and p.is_file() and (fmt == "pdf" or is_pdf(p))]
    workers = min(workers or default_workers(), len(pdfs))
    done: dict[Path, FileRead] = {}
    meter = _Progress(len(paths), progress)
    if workers > 1:
        for read in _pooled(pdfs, fmt, workers, log_dir, limit or FILE_SECONDS, reader):
            done[read.path] = read
            meter.show(read)
    for path in paths:
        if path not in done:
            done[path] = reader(path, fmt, log_dir)
            meter.show(done[path])
    return [done[p] for p in paths]


def _pooled(pdfs: list[Path], fmt: str | None, workers: int, log_dir: Path | None, limit: float = FILE_SECONDS,
            reader=None):
    """Yield each PDF's FileRead as it completes. Files in flight when a worker crashes are read again alone
    (the one that crashes alone is named); a file still being read after ``limit`` seconds is given up on
    (its worker is stopped) and named."""
    # fork where there is one: a spawned (or forkserver) worker runs the caller's main script again, and a
    # user's script that ingests at its top level, without the `if __name__ == "__main__"` guard, would start
    # workers without end. A forked worker runs only the reader (pypdfium2), never the parent's ONNX Runtime.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    todo = list(pdfs)
    suspects: list[Path] = []  # in flight when a worker crashed: read again, one at a time
    while todo or suspects:
        alone = not todo
        source, width = (suspects, 1) if alone else (todo, workers)
        pool = ProcessPoolExecutor(max_workers=width, mp_context=context)
        running: dict = {}  # future -> (path, when it was handed to a free worker)
        broken = False
        try:
            while (source or running) and not broken:
                while source and len(running) < width:  # no more than run at once: each file's clock is its own
                    path = source.pop(0)
                    running[pool.submit(reader or _read, path, fmt, log_dir)] = (path, time.monotonic())
                oldest = min(started for _, started in running.values())
                done, _ = wait(running, timeout=max(0.0, oldest + limit - time.monotonic()), return_when=FIRST_COMPLETED)
                if not done:  # the oldest file ran out of time: a fresh pool reads the others again
                    path = running.pop(min(running, key=lambda f: running[f][1]))[0]
                    reason = f"reading stopped after {limit:.0f} s (a damaged PDF, or a layout the reader cannot finish)"
                    yield FileRead(path, ReadResult(skipped=[Skipped(str(path), None, reason)], entries=1), limit)
                    source[:0] = [p for p, _ in running.values()]
                    break
                for future in done:
                    path = running.pop(future)[0]
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        if alone:
                            reason = "the PDF reader crashed on this file (PDFium ended the process); it may be damaged"
                            yield FileRead(path, ReadResult(skipped=[Skipped(str(path), None, reason)], entries=1))
                        else:
                            suspects.append(path)
                if broken and not alone:  # every file in flight may be the one: each is read again alone
                    suspects += [p for p, _ in running.values()]
                    running.clear()
        finally:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting for work in flight: its workers are killed (a hung or crashed reader)."""
    # Python 3.14 has pool.kill_workers(); before it, the executor's process table is the only handle.
    for process in list(getattr(pool, "_processes", {}).values()):
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


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
