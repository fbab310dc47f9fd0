"""Readers for the process-pool tests: module-level, so the pool's spawned workers can import them."""

from __future__ import annotations

import os
import time

from ingest.reading import FileRead, _read


def crash_or_hang(path, fmt, log_dir):
    """Kill the worker on a file named *crash*, never return on *hang*, read the rest as usual."""
    if "crash" in path.name:
        os._exit(11)  # as PDFium ending the process would
    if "hang" in path.name:
        time.sleep(3600)
    return _read(path, fmt, log_dir)


def fails(path, fmt, log_dir) -> FileRead:
    raise AssertionError("the reader is not called for a file stored unchanged")
