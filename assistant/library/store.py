"""All Chroma access: the chunk vectors, the sentence vectors and the papers of every library.

No module outside ``assistant/library`` talks to Chroma: ``chroma.py`` opens the store (and reopens it when
another process wrote), ``records.py`` lays papers out as records, ``health.py`` checks records against their
vectors. A library is three collections named after the library and the embedding model, variant included
(so another model or variant never mixes vectors into an old collection): ``<library>__<model>__chunks``
(chunk vectors, cosine space), ``<library>__<model>__sentences`` (the vector of each sentence answering
quotes: the title as index -1, then the abstract's sentences, ids ``<paper_id>#s<index>``; looked up by id,
never searched) and ``<library>__<model>__papers`` (one record per paper: full abstract and metadata, with its
mean chunk vector; plus one ``__meta__`` record holding the library's revision).

The revision changes with every commit of paper records, in the same Chroma call as the records: the BM25
cache keys on it, and a process that opened the store earlier reopens it when it sees a new one (``chroma.py``
says why Chroma needs that), so what any process commits is searchable everywhere at once, even after a kill.

Crash safety: a paper's chunks and sentences are written before its paper record, and the paper record
carries the content hash (and how many sentence vectors it has). An ingest killed half-way leaves papers
without a record (or with an old hash); the next ingest rewrites exactly those, and ids are deterministic,
so nothing is duplicated.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import httpx
import numpy as np

from assistant.core.types import Paper, chunk_id, paper_of
from assistant.library.chroma import Opening, Store, StoreError, damage, short, store_errors
from assistant.library.chroma import open_store  # noqa: F401 - the one way callers open a store
from assistant.library.records import (
    CHUNKS,
    META_ID,
    PAPERS,
    SENTENCES,
    chunk_metadata,
    collection_name,
    paper_from,
    paper_metadata,
    sentence_id,
    texts_digest,
)


# The chunks' and papers' vector indexes (Chroma writes an index to its folder every 1,000 vectors by default).
INDEX_METADATA = {"hnsw:space": "cosine"}
# Sentence vectors are fetched by id, never searched: the smallest index Chroma keeps (it keeps one per collection).
_SENTENCE_INDEX = {"hnsw": {"space": "cosine", "ef_construction": 16, "max_neighbors": 4}}


def chroma_errors(fn):
    """Raise what Chroma raises in ``fn`` as StoreErrors that say what to do (``chroma.store_errors``); for
    Library methods and functions that take a Library (health.py)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args, **kwargs):
            with store_errors(_where(args)):
                yield from fn(*args, **kwargs)

        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with store_errors(_where(args)):
            return fn(*args, **kwargs)

    return call


def _where(args) -> str:
    first = args[0] if args else None
    store = first.store if isinstance(first, Library) else first if isinstance(first, Store) else None
    return store.where if store is not None else "the given Chroma client"



def _missing_id(exc: BaseException) -> bool:
    return isinstance(exc, _IndexShort) or "Error finding id" in str(exc)


class _IndexShort(Exception):
    """A collection's vector index holds fewer vectors than the collection has records."""


# Chunks up to which each opening counts the chunks' vectors before its first dense search (Library.query).
QUICK_CHECK_LIMIT = 50_000


def _uses_store(vectors: bool = False, writes: bool = False):
    """A Library method that runs on one opening of the store, handed to it as ``c`` (its collections).

    ``vectors``: the call reads or writes vectors, so it must run on an opening whose indexes include what
    other processes committed: when the library's revision moved since this opening first served it, the
    store is reopened first (one indexed read of the revision record per call, about 0.3 ms). "Error finding
    id" (a stored record whose vector this opening's index lacks) reopens the store and tries once more: the
    opening was stale, or, when the retry fails too, the library's vector index lacks vectors of stored records.
    ``writes``: the call writes, holding the store's index-files lock (``chroma.Store.index_files``).
    """

    def deco(fn):
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(self, *args, **kwargs):
                with self.store.use() as opening:
                    yield from fn(self, self.collections_in(opening), *args, **kwargs)

            return chroma_errors(gen)

        @functools.wraps(fn)
        def call(self, *args, **kwargs):
            if writes:
                with self.store.index_files():
                    return run(self, *args, **kwargs)
            return run(self, *args, **kwargs)

        def run(self, *args, **kwargs):
            followed = retried = False
            while True:  # at most three rounds: a stale opening replaced, then one retry after "Error finding id"
                with self.store.use() as opening:
                    c = self.collections_in(opening)
                    if vectors and self.store.reopens and not followed:
                        followed = True
                        if _revision_of(c.papers) != opening.seen.get(self.key):
                            self.store.reopen(opening)
                            continue  # the next round uses (and holds) the fresh opening
                    try:
                        return fn(self, c, *args, **kwargs)
                    except Exception as exc:
                        if not _missing_id(exc):
                            raise
                        if retried or not self.store.reopens:
                            raise self.lacks_vectors(str(exc) if isinstance(exc, _IndexShort) else "") from None
                        retried = True
                        self.store.reopen(opening)

        return chroma_errors(call)

    return deco


class _Collections(NamedTuple):
    """A library's three collections, as one opening of the store holds them."""

    chunks: object
    papers: object
    sentences: object
    opening: Opening
    key: str

    def saw(self, revision: str) -> None:
        """This opening wrote ``revision`` itself: its indexes hold what it marks (no reopen needed for it)."""
        self.opening.seen[self.key] = revision


def vector_size(client, collection) -> int:
    """How long a collection's vectors are (Chroma records it with the first vector; 384 before that)."""
    dim = collection.get_model().dimension or client.get_collection(collection.name).get_model().dimension
    return int(dim or 384)


def _revision_of(papers) -> str:
    got = papers.get(ids=[META_ID], include=["metadatas"])
    return got["metadatas"][0].get("revision", "") if got["ids"] else ""


def _meta_record(revision: str, dim: int) -> dict:
    """The library's revision record, as upserted into the papers collection beside the records it marks."""
    return {"ids": [META_ID], "documents": [""], "metadatas": [{"kind": "meta", "revision": revision}],
            "embeddings": [[1.0] + [0.0] * (dim - 1)]}


@dataclass
class DenseMatch:
    chunk_id: str
    paper_id: str
    similarity: float  # cosine similarity, 1 - cosine distance


class Library:
    """One library in one Chroma: its chunks and papers collections."""

    def __init__(self, store, library: str, model: str):
        """``store``: a ``chroma.Store`` (``open_store``), or a Chroma client used as it is."""
        self.store = store if isinstance(store, Store) else Store(client=store)
        self.library = library
        self.model = model
        with self.store.use() as opening:
            self.collections_in(opening)  # created now, so a bad name or an unreachable store fails here

    def collections_in(self, opening: Opening) -> "_Collections":
        """This library's collections in ``opening`` (opened, or created, the first time it serves this library).

        The revision read first is the one this opening's indexes include at least: Chroma loads a collection's
        index at the first call that touches the collection, which comes after."""
        got = opening.collections.get(self.key)
        if got is not None:
            return got
        meta = INDEX_METADATA | {"library": self.library, "embedding_model": self.model}
        # Chroma loads a collection's index at its first call; here, for all three, under the index-files lock.
        with self.store.index_files():
            try:
                client = opening.client
                got = _Collections(
                    client.get_or_create_collection(collection_name(self.library, self.model, CHUNKS), metadata=meta),
                    client.get_or_create_collection(collection_name(self.library, self.model, PAPERS), metadata=meta),
                    client.get_or_create_collection(
                        collection_name(self.library, self.model, SENTENCES),
                        metadata={"library": self.library, "embedding_model": self.model},
                        configuration=_SENTENCE_INDEX),
                    opening, self.key)
                opening.seen.setdefault(self.key, _revision_of(got.papers))
                if self.store.reopens:
                    got.chunks.count()
                    got.sentences.count()
            except StoreError:
                raise
            except BaseException as exc:
                if damage(exc) or isinstance(exc, httpx.TransportError) or not isinstance(exc, Exception):
                    raise  # the guard names a damaged store or a lost server; an interrupt stays one
                raise StoreError(f"cannot open library {self.library!r}: {short(exc)}") from None
        return opening.collections.setdefault(self.key, got)

    def lacks_vectors(self, counts: str = "") -> StoreError:
        """The one message for a vector index that lacks stored records' vectors (``counts``: "90 of 1,123")."""
        what = f"its chunks' vector index holds {counts} vectors" if counts else (
            "its vector index lacks the vectors of records it holds")
        return StoreError(f"library {self.library!r}: {what} (an index folder in {self.store.where} was damaged or "
                          f"deleted); run `assistant doctor --repair` to re-embed the missing ones")

    # The current opening's collections, for tools and tests that reach Chroma directly (eval/tune.py).
    @property
    def chunks(self):
        return self.collections_in(self.store._current).chunks

    @property
    def papers(self):
        return self.collections_in(self.store._current).papers

    @property
    def sentences(self):
        return self.collections_in(self.store._current).sentences

    @property
    def key(self) -> str:
        return collection_name(self.library, self.model, CHUNKS)

    # -- reading -----------------------------------------------------------------

    @_uses_store()
    def paper_hashes(self, c) -> dict[str, str]:
        """paper_id -> content hash of every completely stored paper."""
        return {pid: h for pid, (h, _) in self.paper_states().items()}

    @_uses_store()
    def paper_states(self, c) -> dict[str, tuple[str, int | None]]:
        """paper_id -> (content hash, number of stored sentence vectors or None) of every completely stored paper."""
        out: dict[str, tuple[str, int | None]] = {}
        for ids, metas, _ in self._scan(c.papers, include=["metadatas"], where={"kind": "paper"}):
            out.update({i: (m.get("hash", ""), m.get("sentences")) for i, m in zip(ids, metas)})
        return out

    @_uses_store()
    def identities(self, c) -> dict[str, dict]:
        """paper_id -> what identifies a completely stored paper and its state: {hash, sentences, title, arxiv_id,
        doi, pages, file_hash}. Ingest matches new records to stored papers with it (same DOI or title → one
        paper) and recognises an unchanged PDF by its bytes."""
        out: dict[str, dict] = {}
        for ids, metas, _ in self._scan(c.papers, include=["metadatas"], where={"kind": "paper"}):
            for i, m in zip(ids, metas):
                out[i] = {"hash": m.get("hash", ""), "sentences": m.get("sentences"), "title": m.get("title", ""),
                          "arxiv_id": m.get("arxiv_id", ""), "doi": m.get("doi", ""), "pages": int(m.get("pages") or 0),
                          "file_hash": m.get("file_hash", "")}
        return out

    @_uses_store()
    def has_full_texts(self, c) -> bool:
        """Whether any stored paper is a full text (one indexed lookup, not a scan)."""
        return bool(c.papers.get(where={"pages": {"$gte": 1}}, limit=1, include=[])["ids"])

    @_uses_store(vectors=True)
    def passages(self, c, paper_ids: list[str], counts: dict[str, int] | None = None) -> dict[str, list[dict]]:
        """paper_id -> its body chunks ({chunk_id, page, section, kind, text, vec}) for full-text papers.

        Fetched by id when ``counts`` (chunk counts) is known, else by a metadata filter; papers without a body
        are left out."""
        if not paper_ids:
            return {}
        include = ["embeddings", "documents", "metadatas"]
        ids = [chunk_id(pid, i) for pid in paper_ids if counts and pid in counts for i in range(counts[pid])]
        unknown = [pid for pid in paper_ids if not counts or pid not in counts]
        rows = []
        if ids:
            got = c.chunks.get(ids=ids, include=include)
            rows += list(zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]))
        if unknown:
            got = c.chunks.get(where={"paper_id": {"$in": unknown}}, include=include)
            rows += list(zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]))
        out: dict[str, list[dict]] = {}
        for cid, vec, doc, meta in rows:
            if meta.get("page") is None:
                continue
            out.setdefault(meta["paper_id"], []).append({
                "chunk_id": cid, "index": meta.get("index", 0), "page": int(meta["page"]),
                "section": meta.get("section", ""), "kind": meta.get("kind", "text"), "text": doc,
                "vec": np.asarray(vec, dtype=np.float32)})
        for rows_ in out.values():
            rows_.sort(key=lambda r: r["index"])
        return out

    @_uses_store()
    def iter_passages(self, c) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, paper_id, text-with-title) for every body chunk of a full-text paper."""
        for ids, metas, docs in self._scan(c.chunks, include=["metadatas", "documents"], where={"page": {"$gte": 0}}):
            for i, m, d in zip(ids, metas, docs):
                yield i, m["paper_id"], f"{m.get('title', '')}. {d}"

    @_uses_store(vectors=True, writes=True)
    def update_papers(self, c, papers: list[Paper]) -> None:
        """Rewrite the records of stored papers with these fields (their chunks, vectors and hash unchanged):
        an abstract-dump entry fills in what a stored full-text paper lacked (authors, date, categories…)."""
        if not papers:
            return
        got = c.papers.get(ids=[p.paper_id for p in papers], include=["metadatas"])
        old = dict(zip(got["ids"], got["metadatas"]))
        keep = ("hash", "chunks", "sentences", "kind")
        items = [(p, {k: old[p.paper_id][k] for k in keep if k in old[p.paper_id]}) for p in papers if p.paper_id in old]
        self._update_with_revision(c, [p.paper_id for p, _ in items],
                                   [paper_metadata(p, m.get("hash", ""), m.get("chunks", 0), m.get("sentences")) for p, m in items])

    @_uses_store(vectors=True)
    def sentence_vectors(self, c, items: list[tuple[str, list[str]]]) -> list[np.ndarray | None]:
        """For each (paper_id, texts): the stored vectors of those texts (title first), or None when the store
        does not hold vectors made from exactly these texts (another abstract, another split, never stored)."""
        ids = [sentence_id(pid, i) for pid, texts in items for i in range(-1, len(texts) - 1)]
        if not ids:
            return [None] * len(items)
        got = c.sentences.get(ids=ids, include=["embeddings", "metadatas"])
        found = {i: (v, m) for i, v, m in zip(got["ids"], got["embeddings"], got["metadatas"])}
        out: list[np.ndarray | None] = []
        for pid, texts in items:
            rows = [found.get(sentence_id(pid, i)) for i in range(-1, len(texts) - 1)]
            if not rows or any(r is None for r in rows) or (rows[0][1] or {}).get("digest") != texts_digest(texts):
                out.append(None)
            else:
                out.append(np.asarray([r[0] for r in rows], dtype=np.float32))
        return out

    @_uses_store()
    def count_papers(self, c) -> int:
        return max(0, c.papers.count() - (1 if self.revision() else 0))

    @_uses_store()
    def count_chunks(self, c) -> int:
        return c.chunks.count()

    @_uses_store()
    def get_papers(self, c, paper_ids: list[str]) -> list[Paper]:
        """Papers by id, in the order asked; unknown ids are left out."""
        if not paper_ids:
            return []
        got = c.papers.get(ids=list(dict.fromkeys(paper_ids)), include=["documents", "metadatas"])
        by_id = {i: paper_from(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
        return [by_id[i] for i in paper_ids if i in by_id]

    @_uses_store()
    def iter_papers(self, c) -> Iterator[Paper]:
        for ids, metas, docs in self._scan(c.papers, include=["metadatas", "documents"], where={"kind": "paper"}):
            for i, m, d in zip(ids, metas, docs):
                yield paper_from(i, d, m)

    @_uses_store()
    def iter_chunks(self, c) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, paper_id, text-with-title) for every chunk."""
        for ids, metas, docs in self._scan(c.chunks, include=["metadatas", "documents"]):
            for i, m, d in zip(ids, metas, docs):
                yield i, m["paper_id"], f"{m.get('title', '')}. {d}"

    @_uses_store(vectors=True)
    def query(self, c, vector: np.ndarray, n: int, where: dict | None = None) -> list[DenseMatch]:
        """The n nearest chunks, nearest first (fewer if the library is smaller).

        Distances only: the paper is in the chunk id, and at 100k papers fetching
        the documents cost four times the search itself (the metadata, twice it
        on the bundled library). ``chunk_texts`` fetches the few texts needed.
        """
        self._check_chunk_index(c)
        res = c.chunks.query(query_embeddings=[vector.tolist()], n_results=max(1, n), where=where,
                                include=["distances"])
        return [DenseMatch(cid, paper_of(cid), 1.0 - float(dist)) for cid, dist in zip(res["ids"][0], res["distances"][0])]

    @_uses_store(vectors=True)
    def check_index(self, c) -> None:
        """Raise the StoreError that says what to do when the chunks' vector index lacks stored chunks' vectors."""
        self._check_chunk_index(c)

    def _check_chunk_index(self, c) -> None:
        """Once per opening: does the chunks' vector index hold (about) as many vectors as there are chunks?

        A deleted or damaged index folder leaves Chroma's records in place and its index with only what it
        replays from its log, so a dense search would silently rank a fraction of the library. One query for
        every vector counts them (a few ms at 10,000 chunks); a library above ``QUICK_CHECK_LIMIT`` chunks is
        left to ``assistant doctor``. The count comes first, so an ingest committing meanwhile only adds vectors
        to the index the query loads; an HNSW search may miss a few unreachable vectors, hence the 1% slack.
        """
        if c.key in c.opening.checked:
            return
        records = c.chunks.count()
        if 0 < records <= QUICK_CHECK_LIMIT:
            probe = np.zeros(self._dim(c), dtype=np.float32)
            probe[0] = 1.0
            found = len(c.chunks.query(query_embeddings=[probe.tolist()], n_results=records, include=[])["ids"][0])
            if records - found > max(2, records // 100):
                raise _IndexShort(f"{found:,} of {records:,}")
        c.opening.checked.add(c.key)

    @_uses_store()
    def chunk_texts(self, c, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        got = c.chunks.get(ids=list(dict.fromkeys(chunk_ids)), include=["documents"])
        return dict(zip(got["ids"], got["documents"]))

    @_uses_store()
    def chunk_counts(self, c) -> dict[str, int]:
        """paper_id -> number of chunks, for every paper whose record carries it (all written since it does)."""
        out: dict[str, int] = {}
        for ids, metas, _ in self._scan(c.papers, include=["metadatas"], where={"kind": "paper"}):
            out.update({i: m["chunks"] for i, m in zip(ids, metas) if isinstance(m.get("chunks"), int)})
        return out

    @_uses_store(vectors=True)
    def chunk_similarities(self, c, vector: np.ndarray, paper_ids: list[str],
                           counts: dict[str, int] | None = None) -> dict[str, tuple[float, str]]:
        """paper_id -> (best chunk cosine similarity, its chunk id), computed exactly for the given papers.

        ``counts`` (from ``chunk_counts``, cached by the caller) lets the chunks be
        fetched by id, which is several times faster than a metadata filter at
        100k papers; without it the paper records are read for their counts.
        Papers stored before records carried the count fall back to the filter.
        """
        if not paper_ids:
            return {}
        if counts is None:
            got = c.papers.get(ids=list(paper_ids), include=["metadatas"])
            counts = {i: m["chunks"] for i, m in zip(got["ids"], got["metadatas"]) if isinstance(m.get("chunks"), int)}
        chunk_ids = [chunk_id(pid, i) for pid in paper_ids if pid in counts for i in range(counts[pid])]
        unknown = [pid for pid in paper_ids if pid not in counts]
        got_ids, got_vecs, got_pids = [], [], []
        if chunk_ids:
            got = c.chunks.get(ids=chunk_ids, include=["embeddings"])
            got_ids += got["ids"]
            got_vecs += list(got["embeddings"])
            got_pids += [paper_of(cid) for cid in got["ids"]]
            found = set(got_pids)  # a paper whose chunks are named otherwise falls back to the filter
            unknown += [pid for pid in paper_ids if pid in counts and pid not in found]
        if unknown:
            got = c.chunks.get(where={"paper_id": {"$in": unknown}}, include=["embeddings", "metadatas"])
            got_ids += got["ids"]
            got_vecs += list(got["embeddings"])
            got_pids += [m["paper_id"] for m in got["metadatas"]]
        if not got_ids:
            return {}
        sims = np.asarray(got_vecs, dtype=np.float32) @ vector
        best: dict[str, tuple[float, str]] = {}
        for sim, cid, pid in zip(sims.tolist(), got_ids, got_pids):
            if pid not in best or sim > best[pid][0]:
                best[pid] = (sim, cid)
        return best

    @_uses_store()
    def revision(self, c) -> str:
        """The library's revision: a new one is written with every commit of paper records (the BM25 cache and
        other processes' openings follow it)."""
        return _revision_of(c.papers)

    # -- writing -----------------------------------------------------------------

    @_uses_store(vectors=True, writes=True)
    def write(self, c, items: list[tuple]) -> None:
        """Store papers with their chunks and vectors, all or nothing per paper.

        Each item is (paper, content hash, chunks, chunk vectors) or the same with a fifth element, the paper's
        sentences (texts, vectors: title first, as ``sentence_vectors`` returns them) or None.
        """
        if not items:
            return
        items = [tuple(item) + (None,) * (5 - len(item)) for item in items]
        pids = [item[0].paper_id for item in items]
        # Old chunks and sentences of these papers go first: an abstract that changed may now have fewer of each.
        c.chunks.delete(where={"paper_id": {"$in": pids}})
        c.sentences.delete(where={"paper_id": {"$in": pids}})
        ids, docs, metas, vecs = [], [], [], []
        for paper, _, chunks, vectors, _ in items:
            for chunk, vec in zip(chunks, vectors):
                ids.append(chunk.chunk_id)
                docs.append(chunk.text)
                metas.append(chunk_metadata(paper, chunk))
                vecs.append(vec)
        for start in range(0, len(ids), 4000):  # below Chroma's max batch size
            end = start + 4000
            c.chunks.upsert(ids=ids[start:end], documents=docs[start:end], metadatas=metas[start:end],
                               embeddings=np.asarray(vecs[start:end]))
        self._write_sentences(c, [(item[0].paper_id, *item[4]) for item in items if item[4] is not None])
        # Paper records last: their presence (with the hash) marks the paper complete. The library's new revision
        # goes in the same call, so it is committed with them or not at all: a kill never leaves stored papers
        # that the BM25 index and other processes were not told about.
        paper_vecs = []
        for item in items:
            mean = np.asarray(item[3]).mean(axis=0)
            paper_vecs.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        revision = uuid.uuid4().hex
        meta = _meta_record(revision, len(paper_vecs[0]))
        c.papers.upsert(
            ids=pids + meta["ids"],
            documents=[item[0].abstract for item in items] + meta["documents"],
            metadatas=[paper_metadata(p, h, len(chunks), len(s[0]) if s is not None else None)
                       for p, h, chunks, _, s in items] + meta["metadatas"],
            embeddings=np.asarray(paper_vecs + meta["embeddings"], dtype=np.float32),
        )
        c.saw(revision)

    @_uses_store(vectors=True, writes=True)
    def add_sentences(self, c, items: list[tuple[str, list[str], np.ndarray]]) -> None:
        """Give stored papers their sentence vectors: (paper_id, texts, vectors); then their records say so."""
        if not items:
            return
        pids = [pid for pid, _, _ in items]
        c.sentences.delete(where={"paper_id": {"$in": pids}})
        self._write_sentences(c, items)
        got = c.papers.get(ids=pids, include=["metadatas"])
        counts = {pid: len(texts) for pid, texts, _ in items}
        self._update_with_revision(c, got["ids"], [{**m, "sentences": counts[i]} for i, m in zip(got["ids"], got["metadatas"])])

    def _update_with_revision(self, c, ids: list[str], metadatas: list[dict]) -> None:
        """Update paper records' metadata and, in the same call, the library's revision (other processes reopen
        to see what came with it); a library without a revision record yet gets one after."""
        revision = uuid.uuid4().hex
        if _revision_of(c.papers):
            c.papers.update(ids=ids + [META_ID], metadatas=metadatas + [{"kind": "meta", "revision": revision}])
        else:
            c.papers.update(ids=ids, metadatas=metadatas)
            c.papers.upsert(**_meta_record(revision, self._dim(c)))
        c.saw(revision)

    def _write_sentences(self, c, items: list[tuple[str, list[str], np.ndarray]]) -> None:
        ids, metas, vecs = [], [], []
        for pid, texts, vectors in items:
            for i, vec in enumerate(vectors):
                ids.append(sentence_id(pid, i - 1))
                metas.append({"paper_id": pid, "index": i - 1} | ({"digest": texts_digest(texts)} if i == 0 else {}))
                vecs.append(vec)
        for start in range(0, len(ids), 4000):
            end = start + 4000
            c.sentences.upsert(ids=ids[start:end], metadatas=metas[start:end], embeddings=np.asarray(vecs[start:end]))

    @_uses_store(vectors=True, writes=True)
    def bump_revision(self, c) -> str:
        """Mark the library changed (``write`` does it with every commit; for callers that change it otherwise)."""
        rev = uuid.uuid4().hex
        c.papers.upsert(**_meta_record(rev, self._dim(c)))
        c.saw(rev)
        return rev

    # -- helpers -----------------------------------------------------------------

    def _dim(self, c) -> int:
        """The library's vector size (the model's 384 before anything is stored)."""
        return vector_size(c.opening.client, c.chunks)

    @staticmethod
    def _scan(collection, include: list[str], where: dict | None = None, page: int = 5000):
        offset = 0
        while True:
            got = collection.get(include=include, where=where, limit=page, offset=offset)
            if not got["ids"]:
                return
            yield got["ids"], got.get("metadatas") or [{}] * len(got["ids"]), got.get("documents") or [""] * len(got["ids"])
            if len(got["ids"]) < page:
                return
            offset += page
