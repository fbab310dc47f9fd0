"""BM25 over a library's papers or chunks (bm25s, English stemming and stopwords), cached on disk.

Two units: ``paper`` (default) indexes each paper's title twice plus its
abstract as one document, one row per paper, and each passage of a full-text
paper's body as a row of its own; ``chunk`` indexes the stored chunks (title
prefixed). On SciFact train the paper unit with the title
repeated fused best with the dense signal (eval/RESULTS.md): a claim's key
terms are often in the title, and a whole abstract is the unit that is judged.

The index is built from what is stored in Chroma, so it is always in step
with the library: each revision of the library (bumped by every ingest that
changes something) gets its own folder. Loading a cached index is a few
memory-mapped arrays; rebuilding happens only after the library changed.

On disk, several processes (the chat page, a CLI command, an ingest) share one
library's folder::

    <root>/<library key>-<location hash>/
        CURRENT            the revision folder in use; replaced with os.replace, never absent once written
        <revision>/        a complete index, written under a temporary name and renamed into place
        <revision>.lock    held shared (flock) by every process whose loaded index reads that revision
        .build.lock        held exclusively (filelock) while a revision is built and old ones are cleaned

A new revision is written in full, then ``CURRENT`` is swapped to it, then
older revisions are removed, each only if an exclusive non-blocking lock on
its ``.lock`` succeeds: a process still reading one keeps it until that
process lets its index go (its lock closes when the index object is freed).
In memory, a small LRU keeps the last few libraries' indexes, one revision each.

The revision locks stay plain ``fcntl.flock``: they are shared locks held for as long as an index object lives
and let go by its finalizer, in whatever thread drops the last reference, while the cleaner probes them with a
non-blocking exclusive lock. filelock has no shared file lock of that kind (its ``ReadWriteLock`` is held per
thread and released only by the thread that took it).

A cached revision that cannot be read (junk in its files) is rebuilt from the store, with one warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import weakref
from pathlib import Path

from cachetools import LRUCache

from assistant.core.errors import UserError

log = logging.getLogger(__name__)

_STEMMER = None
_STEMMER_LOCK = threading.Lock()


def _stemmer():
    global _STEMMER
    with _STEMMER_LOCK:
        if _STEMMER is None:
            import Stemmer

            _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, stemmed tokens (the same for chunks and queries)."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


class BM25Index:
    """A bm25s index plus the chunk and paper id of each indexed row."""

    def __init__(self, model, chunk_ids: list[str], paper_ids: list[str], chunk_counts: dict[str, int] | None = None):
        self.model = model
        self.chunk_ids = chunk_ids
        self.paper_ids = paper_ids
        self.rows_are_papers = chunk_ids == paper_ids  # one row per paper, row id = paper id (no full texts)
        # Each paper's chunk count, read from the store with the rows and cached with
        # them (per revision), so search can fetch a paper's chunks by id.
        self.chunk_counts = chunk_counts or {}

    @classmethod
    def build(cls, rows: list[tuple[str, str, str]], k1: float = 1.2, b: float = 0.75,
              chunk_counts: dict[str, int] | None = None) -> "BM25Index":
        """rows: (chunk_id, paper_id, text)."""
        import bm25s

        model = bm25s.BM25(k1=k1, b=b)
        if rows:
            model.index(tokenize([r[2] for r in rows]), show_progress=False)
        return cls(model, [r[0] for r in rows], [r[1] for r in rows], chunk_counts)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(row, score) of the best k chunks with a positive score."""
        if not self.chunk_ids:
            return []
        tokens = [t for t in tokenize([query])[0] if t in self.model.vocab_dict]
        if not tokens:
            return []
        k = min(k, len(self.chunk_ids))
        rows, scores = self.model.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0]

    def row_scores(self, query: str, row_ids: list[str]) -> dict[str, float]:
        """The BM25 score of each named row for ``query`` (0 for a row that does not match or is not indexed)."""
        if not row_ids or not self.chunk_ids:
            return {}
        if getattr(self, "_row_of", None) is None:
            self._row_of = {rid: i for i, rid in enumerate(self.chunk_ids)}
        tokens = [t for t in tokenize([query])[0] if t in self.model.vocab_dict]
        if not tokens:
            return dict.fromkeys(row_ids, 0.0)
        scores = self.model.get_scores(tokens)
        return {rid: float(scores[self._row_of[rid]]) if rid in self._row_of else 0.0 for rid in row_ids}

    def paper_document_frequency(self):
        """(number of papers, per-token count of distinct papers holding it) — one paper with many rows (a full
        text's passages) counts once, so a word all over one PDF is still a rare word of the library."""
        import numpy as np

        scores = getattr(self.model, "scores", None) or {}
        if "indptr" not in scores or "indices" not in scores:
            return None
        indptr, indices = np.asarray(scores["indptr"]), np.asarray(scores["indices"])
        paper_index = {pid: i for i, pid in enumerate(dict.fromkeys(self.paper_ids))}
        row_paper = np.asarray([paper_index[pid] for pid in self.paper_ids], dtype=np.int64)
        tokens = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
        pairs = np.unique(tokens * len(paper_index) + row_paper[indices])
        return len(paper_index), np.bincount(pairs // len(paper_index), minlength=len(indptr) - 1)

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` as a whole: a reader never sees it half-written.

        If ``folder`` already exists (the same revision, written by another process),
        it is kept as it is: a folder someone may be reading is never replaced.
        """
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        try:
            self.model.save(str(tmp), show_progress=False)
            (tmp / "ids.json").write_text(json.dumps({"chunk_ids": self.chunk_ids, "paper_ids": self.paper_ids,
                                                      "chunk_counts": self.chunk_counts}))
            try:
                tmp.rename(folder)  # atomic; fails when the folder exists
            except OSError:
                if not (folder / "ids.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        """The index saved in ``folder``; ``DamagedIndex`` when its files cannot be read or do not fit together."""
        import bm25s

        try:
            ids = json.loads((folder / "ids.json").read_text())
            model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
            index = cls(model, ids["chunk_ids"], ids["paper_ids"], ids.get("chunk_counts"))
            scores = model.scores
            rows, indptr, vocab = int(scores["num_docs"]), scores["indptr"], len(model.vocab_dict)
            fits = (len(index.chunk_ids) == len(index.paper_ids) == rows and len(indptr) in (vocab, vocab + 1)
                    and int(indptr[-1]) == len(scores["indices"]) == len(scores["data"]))
        except Exception as exc:  # noqa: BLE001 - any unreadable file (junk bytes, JSON, arrays) means the same
            raise DamagedIndex(f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}") from None
        if not fits:
            raise DamagedIndex("its files do not fit together")
        return index


class DamagedIndex(Exception):
    """A cached index on disk that cannot be read; it is rebuilt from the store."""


UNITS = ("paper", "chunk")


def paper_text(paper) -> str:
    """The text a paper is indexed under at the paper unit: the title counts twice."""
    return f"{paper.title}. {paper.title}. {paper.abstract}"


def rows_for(library, unit: str) -> list[tuple[str, str, str]]:
    """(row id, paper_id, text) for the unit: chunk rows, or one row per paper (row id = paper id).

    At the paper unit a full-text paper also has one row per passage of its body (row id = chunk id, the
    title prefixed): its paper row holds only the title and abstract, a whole body in one row would drown
    every term in its length, and the passage rows are what answering ranks the paper's passages by.
    """
    if unit == "chunk":
        return list(library.iter_chunks())
    if unit == "paper":
        papers = [(p.paper_id, p.paper_id, paper_text(p)) for p in library.iter_papers()]
        iter_passages = getattr(library, "iter_passages", None)
        return papers + (list(iter_passages()) if iter_passages else [])
    raise UserError(f"unknown BM25 unit {unit!r}: choose one of {', '.join(UNITS)}")


def cache_folder(root: Path, library_key: str, location: str, revision: str) -> Path:
    """The folder of one revision of a library's index (its parent holds the library's revisions)."""
    where = hashlib.sha1(location.encode()).hexdigest()[:8]  # embedded store vs each server
    return root / f"{library_key}-{where}" / (revision or "empty")


POINTER = "CURRENT"
_BUILD_LOCK = ".build.lock"


def current_revision(library_dir: Path) -> str | None:
    """The revision ``CURRENT`` names, or None before the first index is written (or when it holds junk)."""
    try:
        name = (library_dir / POINTER).read_bytes().decode("ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return name if re.fullmatch(r"[A-Za-z0-9_-]{1,100}", name) else None


def _set_current(library_dir: Path, revision: str) -> None:
    tmp = library_dir / f".{POINTER}.{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(revision)
    os.replace(tmp, library_dir / POINTER)  # atomic: readers see the old name or the new, never none


def open_revision(library_dir: Path, revision: str) -> BM25Index | None:
    """The index of ``revision``, holding a shared lock on it for as long as the index object lives.

    None when that revision is not on disk (never written, or already cleaned away).
    """
    folder = library_dir / revision
    if not (folder / "ids.json").exists():  # not written (yet): no lock file to leave behind
        return None
    fd = os.open(library_dir / f"{revision}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a cleaner is deleting this revision
        # Checked after locking: a cleaner that got the lock first has removed the folder.
        if not (folder / "ids.json").exists():
            os.close(fd)
            return None
        index = BM25Index.load(folder)
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    weakref.finalize(index, os.close, fd)  # the lock goes with the last reference to the index
    return index


def load_current(library_dir: Path) -> BM25Index | None:
    """The index ``CURRENT`` names (for readers that do not ask the library for its revision)."""
    for _ in range(10):  # the pointer may move on between reading it and locking the revision
        revision = current_revision(library_dir)
        if revision is None:
            return None
        index = open_revision(library_dir, revision)
        if index is not None:
            return index
    return None


def clean(library_dir: Path) -> list[str]:
    """Remove every revision but the current one that no process holds; returns the names removed.

    Call with the build lock held (``load_or_build`` does), so no temporary folder
    seen here belongs to a build in progress.
    """
    keep = current_revision(library_dir)
    revisions = set()
    for entry in library_dir.iterdir():
        name = entry.name
        if name.startswith((".tmp-", f".{POINTER}.")):  # left by a build that died
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        elif name.endswith(".lock") and name != _BUILD_LOCK:
            revisions.add(name.removesuffix(".lock"))  # a lock whose folder is gone is removed too
        elif entry.is_dir():
            revisions.add(name)
    removed = []
    for revision in sorted(revisions - {keep}):
        fd = os.open(library_dir / f"{revision}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a process is reading this revision: it stays until it lets go
            shutil.rmtree(library_dir / revision, ignore_errors=True)
            (library_dir / f"{revision}.lock").unlink(missing_ok=True)
            removed.append(revision)
        finally:
            os.close(fd)
    return removed


CACHE_SIZE = 4  # libraries (or units) whose index stays in memory
_CACHE: LRUCache = LRUCache(maxsize=CACHE_SIZE)  # library folder -> (revision, index)
_CACHE_LOCK = threading.Lock()


def _cached(library_dir: Path, revision: str) -> BM25Index | None:
    with _CACHE_LOCK:
        got = _CACHE.get(library_dir)
        if got is None:
            return None
        if got[0] != revision:
            # Stale: let it go before the new revision is built, so that (once no search
            # still holds it) its lock is free and the build's clean can remove it.
            del _CACHE[library_dir]
            return None
        return got[1]


def _remember(library_dir: Path, revision: str, index: BM25Index) -> BM25Index:
    """Cache ``index`` (or return the one another thread cached first for this revision)."""
    # One revision per library: a newer one replaces the older, whose lock is released
    # once no search still holds it.
    with _CACHE_LOCK:
        got = _CACHE.get(library_dir)
        if got is not None and got[0] == revision:
            index = got[1]
        _CACHE[library_dir] = (revision, index)
        return index


def load_or_build(library, root: Path, location: str, unit: str = "paper") -> BM25Index:
    """The BM25 index (of ``unit``) for the library's current revision: from memory, disk, or built now."""
    if unit not in UNITS:
        raise UserError(f"unknown BM25 unit {unit!r}: choose one of {', '.join(UNITS)}")
    key = library.key if unit == "chunk" else f"{library.key}-{unit}s"  # chunk indexes keep their old folder
    revision = library.revision() or "empty"
    library_dir = cache_folder(root, key, location, revision).parent
    index = _cached(library_dir, revision)
    if index is not None:
        return index
    library_dir.mkdir(parents=True, exist_ok=True)
    try:
        index = open_revision(library_dir, revision)
    except DamagedIndex:
        index = None  # rebuilt below, under the build lock
    if index is None:
        # One builder at a time per library, across threads and processes; whoever waited finds the revision
        # written. filelock's FileLock (flock): the system lets it go when a builder dies. Its timeout only keeps
        # filelock from calling two threads of one process a deadlock; a build takes seconds (23 s at 100k papers).
        from filelock import FileLock

        with FileLock(library_dir / _BUILD_LOCK, is_singleton=True).acquire(timeout=3600):
            revision = library.revision() or "empty"  # it may have moved on while we waited
            try:
                index = open_revision(library_dir, revision)
            except DamagedIndex as exc:
                log.warning("BM25 index of %s (%s) could not be read (%s); rebuilding it from the store",
                            key, library_dir / revision, exc)
                _set_aside(library_dir, revision)
                index = None
            if index is None:
                built = BM25Index.build(rows_for(library, unit), chunk_counts=library.chunk_counts())
                if not built.chunk_ids:  # an empty library: nothing to save (bm25s cannot save an empty index)
                    return built
                built.save(library_dir / revision)
                _set_current(library_dir, revision)
                # Memory-mapped and held from disk (under the build lock no cleaner can remove it first).
                index = open_revision(library_dir, revision) or built
                clean(library_dir)
    return _remember(library_dir, revision, index)


def _set_aside(library_dir: Path, revision: str) -> None:
    """Move a damaged revision out of the way (a process that mapped it keeps its files) and delete it."""
    aside = library_dir / f".tmp-damaged-{revision}-{os.getpid()}"
    try:
        os.replace(library_dir / revision, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)
