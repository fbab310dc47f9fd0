"""What ``assistant doctor`` checks in a library: does every stored record have its vector in the index?

Chroma keeps a collection's records (ids, texts, metadata) in ``chroma.sqlite3`` and their vectors in an index
folder per collection. When that folder is deleted or damaged, the records stay, counts still say N, and the
index holds only what Chroma replays from its log: a dense search ranks a fraction of the library, and fetching
the vector of any other record fails with "Error finding id". ``vector_gaps`` finds the records without a
vector; ``restore_vectors`` writes vectors back for records that keep their texts and metadata (the re-embedding
itself is ingest's: ``ingest/repair.py``).

Finding them: one query for as many neighbours as there are records returns (almost) every vector the index
holds; the few records it does not return are fetched by id, and those whose vector is really missing are the
gaps. An HNSW search may not reach every node of a sparse graph (the sentences index keeps 4 links a node:
about 0.6% unreached on 5,635 sentences), which is why what the query misses is checked by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.library.store import Library, chroma_errors, vector_size

KINDS = ("chunks", "sentences", "papers")
_BATCH = 256


@dataclass
class Gap:
    """One collection of a library: how many records it has, and the ids of those whose vector is missing."""

    kind: str
    records: int
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict:
        return {"kind": self.kind, "records": self.records, "missing": len(self.missing),
                "missing_examples": self.missing[:5]}


@chroma_errors
def vector_gaps(library: Library, kind: str, fresh: bool = True) -> Gap:
    """The records of ``library``'s ``kind`` collection whose vector its index lacks.

    ``fresh``: check a newly opened store (what any new process would see), not this process's copy of the
    indexes, which holds what it wrote itself whether or not it reached the disk."""
    store = library.store
    if fresh:
        with store.use() as opening:
            store.reopen(opening)
    with store.use() as opening:
        collection = getattr(library.collections_in(opening), kind)
        ids = _all_ids(collection)
        if not ids:
            return Gap(kind, 0)
        probe = np.zeros(vector_size(opening.client, collection), dtype=np.float32)
        probe[0] = 1.0
        reached = set(collection.query(query_embeddings=[probe.tolist()], n_results=len(ids), include=[])["ids"][0])
        unreached = [i for i in ids if i not in reached]
        missing: list[str] = []
        for start in range(0, len(unreached), _BATCH):
            batch = unreached[start : start + _BATCH]
            if _has_vectors(collection, batch):
                continue
            missing += [i for i in batch if not _has_vectors(collection, [i])]
        return Gap(kind, len(ids), missing)


@chroma_errors
def restore_vectors(library: Library, kind: str, ids: list[str], vectors: np.ndarray) -> None:
    """Give records that keep their texts and metadata these vectors again (an upsert of the same record)."""
    if not ids:
        return
    with library.store.index_files(), library.store.use() as opening:
        collection = getattr(library.collections_in(opening), kind)
        for start in range(0, len(ids), 4000):  # below Chroma's max batch size
            part = ids[start : start + 4000]
            got = collection.get(ids=part, include=["documents", "metadatas"])
            rows = dict(zip(got["ids"], zip(got["documents"] or [None] * len(got["ids"]), got["metadatas"])))
            keep = [i for i in part if i in rows]
            vecs = np.asarray([vectors[ids.index(i)] for i in keep], dtype=np.float32)
            docs = [rows[i][0] for i in keep]
            collection.upsert(ids=keep, metadatas=[rows[i][1] for i in keep], embeddings=vecs,
                              **({"documents": docs} if all(d is not None for d in docs) else {}))


@chroma_errors
def chunk_rows(library: Library, ids: list[str]) -> list[tuple[str, str, str]]:
    """(chunk id, paper id, text as it was embedded: the title, then the chunk) for these chunks."""
    with library.store.use() as opening:
        got = library.collections_in(opening).chunks.get(ids=ids, include=["documents", "metadatas"])
    return [(i, m["paper_id"], f"{m.get('title', '')}. {d}") for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]


@chroma_errors
def mean_chunk_vectors(library: Library, paper_ids: list[str]) -> dict[str, np.ndarray]:
    """paper id -> its record's vector as ingest writes it: the normalised mean of its chunks' vectors."""
    out: dict[str, np.ndarray] = {}
    with library.store.use() as opening:
        chunks = library.collections_in(opening).chunks
        for start in range(0, len(paper_ids), _BATCH):
            got = chunks.get(where={"paper_id": {"$in": paper_ids[start : start + _BATCH]}},
                             include=["embeddings", "metadatas"])
            per: dict[str, list] = {}
            for vec, meta in zip(got["embeddings"], got["metadatas"]):
                per.setdefault(meta["paper_id"], []).append(vec)
            for pid, vecs in per.items():
                mean = np.asarray(vecs, dtype=np.float32).mean(axis=0)
                out[pid] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def _all_ids(collection, page: int = 20_000) -> list[str]:
    ids: list[str] = []
    while True:
        got = collection.get(include=[], limit=page, offset=len(ids))["ids"]
        ids += got
        if len(got) < page:
            return ids


def _has_vectors(collection, ids: list[str]) -> bool:
    try:
        collection.get(ids=ids, include=["embeddings"])
        return True
    except Exception as exc:
        if "Error finding id" in str(exc):
            return False
        raise
