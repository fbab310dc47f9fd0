"""BM25 over a library's papers or chunks (bm25s, English stemming and stopwords), cached on disk.

Two units: ``paper`` (default) indexes each paper's title twice plus its
abstract as one document, one row per paper; ``chunk`` indexes the stored
chunks (title prefixed). On SciFact train the paper unit with the title
repeated fused best with the dense signal (eval/RESULTS.md): a claim's key
terms are often in the title, and a whole abstract is the unit that is judged.

The index is built from what is stored in Chroma, so it is always in step
with the library: the cache folder is keyed by the library's revision (bumped
by every ingest that changes something). Loading a cached index is a few
memory-mapped arrays; rebuilding happens only after the library changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from pathlib import Path

from assistant.core.errors import UserError

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
        self.rows_are_papers = chunk_ids == paper_ids  # the paper unit: row id = paper id
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

    def save(self, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        self.model.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"chunk_ids": self.chunk_ids, "paper_ids": self.paper_ids,
                                                  "chunk_counts": self.chunk_counts}))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)  # atomic: a reader never sees a half-written index

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        import bm25s

        ids = json.loads((folder / "ids.json").read_text())
        model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        return cls(model, ids["chunk_ids"], ids["paper_ids"], ids.get("chunk_counts"))


UNITS = ("paper", "chunk")


def paper_text(paper) -> str:
    """The text a paper is indexed under at the paper unit: the title counts twice."""
    return f"{paper.title}. {paper.title}. {paper.abstract}"


def rows_for(library, unit: str) -> list[tuple[str, str, str]]:
    """(row id, paper_id, text) for the unit: chunk rows, or one row per paper (row id = paper id)."""
    if unit == "chunk":
        return list(library.iter_chunks())
    if unit == "paper":
        return [(p.paper_id, p.paper_id, paper_text(p)) for p in library.iter_papers()]
    raise UserError(f"unknown BM25 unit {unit!r}: choose one of {', '.join(UNITS)}")


def cache_folder(root: Path, library_key: str, location: str, revision: str) -> Path:
    where = hashlib.sha1(location.encode()).hexdigest()[:8]  # embedded store vs each server
    return root / f"{library_key}-{where}" / (revision or "empty")


_LOADED: dict[Path, BM25Index] = {}
_LOADED_LOCK = threading.Lock()


def load_or_build(library, root: Path, location: str, unit: str = "paper") -> BM25Index:
    """The BM25 index (of ``unit``) for the library's current revision: from memory, disk, or built now."""
    key = library.key if unit == "chunk" else f"{library.key}-{unit}s"  # chunk indexes keep their old folder
    folder = cache_folder(root, key, location, library.revision())
    with _LOADED_LOCK:
        if folder in _LOADED:
            return _LOADED[folder]
        if (folder / "ids.json").exists():
            index = BM25Index.load(folder)
        else:
            index = BM25Index.build(rows_for(library, unit), chunk_counts=library.chunk_counts())
            if not index.chunk_ids:  # an empty library: nothing to save (bm25s cannot save an empty index)
                return index
            index.save(folder)
            for old in folder.parent.iterdir():  # other revisions are stale now
                if old != folder and not old.name.startswith(".tmp-"):
                    shutil.rmtree(old, ignore_errors=True)
        _LOADED[folder] = index
        return index
