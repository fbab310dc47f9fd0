"""All Chroma access: the chunk vectors, the sentence vectors and the papers of every library.

No other module talks to Chroma. A library is three collections named after the
library and the embedding model, variant included (so another model or variant
never mixes vectors into an old collection): ``<library>__<model>__chunks``
(chunk vectors, cosine space), ``<library>__<model>__sentences`` (the vector of
each sentence answering quotes: the title as index -1, then the abstract's
sentences, ids ``<paper_id>#s<index>``; looked up by id, never searched) and
``<library>__<model>__papers`` (one record per paper: full abstract and
metadata, with its mean chunk vector; plus one ``__meta__`` record holding the
library's revision, which the BM25 cache keys on).

Crash safety: a paper's chunks and sentences are written before its paper
record, and the paper record carries the content hash (and how many sentence
vectors it has). An ingest killed half-way leaves papers without a record (or
with an old hash); the next ingest rewrites exactly those, and ids are
deterministic, so nothing is duplicated.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import uuid
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

import httpx
import numpy as np

from assistant.core.errors import UserError
from assistant.core.types import Chunk, Paper, chunk_id, paper_of

META_ID = "__meta__"
CHUNKS = "chunks"
PAPERS = "papers"
SENTENCES = "sentences"
# Sentence vectors are fetched by id, never searched: the smallest index Chroma keeps (it keeps one per collection).
_SENTENCE_INDEX = {"hnsw": {"space": "cosine", "ef_construction": 16, "max_neighbors": 4}}


class StoreError(UserError):
    """The store cannot be reached or used; the message is for the user."""


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", model.split("/")[-1]).strip("-.") or "model"


def collection_name(library: str, model: str, kind: str) -> str:
    return f"{library}__{_slug(model)}__{kind}"


def sentence_id(paper_id: str, index: int) -> str:
    """The id of a paper's sentence vector: index -1 is the title, 0.. the abstract's sentences."""
    return f"{paper_id}#s{index}"


def texts_digest(texts: list[str]) -> str:
    """What a paper's stored sentence vectors were made from: a lookup with other texts finds nothing."""
    return hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]


def make_client(store_dir, chroma_url: str = ""):
    """A Chroma client: HTTP when a URL is given, else embedded under ``store_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if chroma_url:
        url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if not url.hostname:
            raise StoreError(f"bad Chroma URL {chroma_url!r}: expected http://host:port")
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:  # chromadb raises several types for an unreachable server
            raise StoreError(f"cannot reach the Chroma server at {chroma_url}: {_short(exc)}") from None
        return client
    store_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(store_dir), settings=chroma_settings)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _guarded(fn):
    """A Chroma server that stops answering mid-session becomes a StoreError, not a traceback.

    The HTTP client raises httpx transport errors (refused, reset, cut off) from
    any call once the server is gone; the embedded store never does.
    """

    def lost(exc: Exception) -> StoreError:
        return StoreError(f"lost the connection to the Chroma server ({_short(exc)}); start it and try again")

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except httpx.TransportError as exc:
                raise lost(exc) from None

        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except httpx.TransportError as exc:
            raise lost(exc) from None

    return call


def _full_text(paper: Paper) -> dict:
    """A full-text paper's record fields (absent from abstract-only records, which stay as they were)."""
    if not paper.has_full_text:
        return {"doi": paper.doi} if paper.doi else {}
    return {"doi": paper.doi, "pdf": paper.pdf, "pages": paper.pages, "file_hash": paper.file_hash,
            "references": json.dumps(paper.references, ensure_ascii=False)}


def _flat(paper: Paper, content_hash: str, n_chunks: int, n_sentences: int | None = None) -> dict:
    # Chroma metadata must be flat scalars: lists are joined (the reference list is JSON).
    return ({"sentences": n_sentences} if n_sentences is not None else {}) | _full_text(paper) | {
        "chunks": n_chunks,  # its chunks are types.chunk_id(paper_id, 0..n-1): search fetches them by id
        "kind": "paper",
        "title": paper.title,
        "authors": "; ".join(paper.authors),
        "date": paper.date,
        "url": paper.url,
        "categories": " ".join(paper.categories),
        "arxiv_id": paper.arxiv_id,
        "source": paper.source,
        "hash": content_hash,
    }


def _paper_from(pid: str, abstract: str, meta: dict) -> Paper:
    return Paper(
        paper_id=pid,
        title=meta.get("title", ""),
        abstract=abstract or "",
        authors=[a for a in (meta.get("authors") or "").split("; ") if a],
        date=meta.get("date", ""),
        url=meta.get("url", ""),
        categories=(meta.get("categories") or "").split(),
        arxiv_id=meta.get("arxiv_id", ""),
        source=meta.get("source", ""),
        doi=meta.get("doi", ""),
        pdf=meta.get("pdf", ""),
        pages=int(meta.get("pages") or 0),
        file_hash=meta.get("file_hash", ""),
        references=_json_list(meta.get("references")),
    )


def _json_list(value) -> list[str]:
    try:
        out = json.loads(value) if value else []
    except ValueError:
        return []
    return [str(v) for v in out] if isinstance(out, list) else []


def _chunk_meta(paper: Paper, chunk: Chunk) -> dict:
    meta = {"paper_id": paper.paper_id, "index": chunk.index, "title": paper.title}
    if chunk.page is not None:  # a passage of the body: where it is in the PDF
        meta |= {"page": chunk.page, "section": chunk.section, "kind": chunk.kind or "text"}
    return meta


@dataclass
class DenseMatch:
    chunk_id: str
    paper_id: str
    similarity: float  # cosine similarity, 1 - cosine distance


class Library:
    """One library in one Chroma: its chunks and papers collections."""

    def __init__(self, client, library: str, model: str):
        self.client = client
        self.library = library
        self.model = model
        meta = {"hnsw:space": "cosine", "library": library, "embedding_model": model}
        try:
            self.chunks = client.get_or_create_collection(collection_name(library, model, CHUNKS), metadata=meta)
            self.papers = client.get_or_create_collection(collection_name(library, model, PAPERS), metadata=meta)
            self.sentences = client.get_or_create_collection(
                collection_name(library, model, SENTENCES), metadata={"library": library, "embedding_model": model},
                configuration=_SENTENCE_INDEX)
        except Exception as exc:
            raise StoreError(f"cannot open library {library!r}: {_short(exc)}") from None

    @property
    def key(self) -> str:
        return collection_name(self.library, self.model, CHUNKS)

    # -- reading -----------------------------------------------------------------

    @_guarded
    def paper_hashes(self) -> dict[str, str]:
        """paper_id -> content hash of every completely stored paper."""
        return {pid: h for pid, (h, _) in self.paper_states().items()}

    @_guarded
    def paper_states(self) -> dict[str, tuple[str, int | None]]:
        """paper_id -> (content hash, number of stored sentence vectors or None) of every completely stored paper."""
        out: dict[str, tuple[str, int | None]] = {}
        for ids, metas, _ in self._scan(self.papers, include=["metadatas"], where={"kind": "paper"}):
            out.update({i: (m.get("hash", ""), m.get("sentences")) for i, m in zip(ids, metas)})
        return out

    @_guarded
    def identities(self) -> dict[str, dict]:
        """paper_id -> what identifies a completely stored paper and its state: {hash, sentences, title, arxiv_id,
        doi, pages, file_hash}. Ingest matches new records to stored papers with it (same DOI or title → one
        paper) and recognises an unchanged PDF by its bytes."""
        out: dict[str, dict] = {}
        for ids, metas, _ in self._scan(self.papers, include=["metadatas"], where={"kind": "paper"}):
            for i, m in zip(ids, metas):
                out[i] = {"hash": m.get("hash", ""), "sentences": m.get("sentences"), "title": m.get("title", ""),
                          "arxiv_id": m.get("arxiv_id", ""), "doi": m.get("doi", ""), "pages": int(m.get("pages") or 0),
                          "file_hash": m.get("file_hash", "")}
        return out

    @_guarded
    def has_full_texts(self) -> bool:
        """Whether any stored paper is a full text (one indexed lookup, not a scan)."""
        return bool(self.papers.get(where={"pages": {"$gte": 1}}, limit=1, include=[])["ids"])

    @_guarded
    def passages(self, paper_ids: list[str], counts: dict[str, int] | None = None) -> dict[str, list[dict]]:
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
            got = self.chunks.get(ids=ids, include=include)
            rows += list(zip(got["ids"], got["embeddings"], got["documents"], got["metadatas"]))
        if unknown:
            got = self.chunks.get(where={"paper_id": {"$in": unknown}}, include=include)
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

    @_guarded
    def iter_passages(self) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, paper_id, text-with-title) for every body chunk of a full-text paper."""
        for ids, metas, docs in self._scan(self.chunks, include=["metadatas", "documents"], where={"page": {"$gte": 0}}):
            for i, m, d in zip(ids, metas, docs):
                yield i, m["paper_id"], f"{m.get('title', '')}. {d}"

    @_guarded
    def update_papers(self, papers: list[Paper]) -> None:
        """Rewrite the records of stored papers with these fields (their chunks, vectors and hash unchanged):
        an abstract-dump entry fills in what a stored full-text paper lacked (authors, date, categories…)."""
        if not papers:
            return
        got = self.papers.get(ids=[p.paper_id for p in papers], include=["metadatas"])
        old = dict(zip(got["ids"], got["metadatas"]))
        keep = ("hash", "chunks", "sentences", "kind")
        items = [(p, {k: old[p.paper_id][k] for k in keep if k in old[p.paper_id]}) for p in papers if p.paper_id in old]
        self.papers.update(ids=[p.paper_id for p, _ in items],
                           metadatas=[_flat(p, m.get("hash", ""), m.get("chunks", 0), m.get("sentences")) for p, m in items])

    @_guarded
    def sentence_vectors(self, items: list[tuple[str, list[str]]]) -> list[np.ndarray | None]:
        """For each (paper_id, texts): the stored vectors of those texts (title first), or None when the store
        does not hold vectors made from exactly these texts (another abstract, another split, never stored)."""
        ids = [sentence_id(pid, i) for pid, texts in items for i in range(-1, len(texts) - 1)]
        if not ids:
            return [None] * len(items)
        got = self.sentences.get(ids=ids, include=["embeddings", "metadatas"])
        found = {i: (v, m) for i, v, m in zip(got["ids"], got["embeddings"], got["metadatas"])}
        out: list[np.ndarray | None] = []
        for pid, texts in items:
            rows = [found.get(sentence_id(pid, i)) for i in range(-1, len(texts) - 1)]
            if not rows or any(r is None for r in rows) or (rows[0][1] or {}).get("digest") != texts_digest(texts):
                out.append(None)
            else:
                out.append(np.asarray([r[0] for r in rows], dtype=np.float32))
        return out

    @_guarded
    def count_papers(self) -> int:
        return max(0, self.papers.count() - (1 if self.revision() else 0))

    @_guarded
    def count_chunks(self) -> int:
        return self.chunks.count()

    @_guarded
    def get_papers(self, paper_ids: list[str]) -> list[Paper]:
        """Papers by id, in the order asked; unknown ids are left out."""
        if not paper_ids:
            return []
        got = self.papers.get(ids=list(dict.fromkeys(paper_ids)), include=["documents", "metadatas"])
        by_id = {i: _paper_from(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
        return [by_id[i] for i in paper_ids if i in by_id]

    @_guarded
    def iter_papers(self) -> Iterator[Paper]:
        for ids, metas, docs in self._scan(self.papers, include=["metadatas", "documents"], where={"kind": "paper"}):
            for i, m, d in zip(ids, metas, docs):
                yield _paper_from(i, d, m)

    @_guarded
    def iter_chunks(self) -> Iterator[tuple[str, str, str]]:
        """(chunk_id, paper_id, text-with-title) for every chunk."""
        for ids, metas, docs in self._scan(self.chunks, include=["metadatas", "documents"]):
            for i, m, d in zip(ids, metas, docs):
                yield i, m["paper_id"], f"{m.get('title', '')}. {d}"

    @_guarded
    def query(self, vector: np.ndarray, n: int, where: dict | None = None) -> list[DenseMatch]:
        """The n nearest chunks, nearest first (fewer if the library is smaller).

        Distances only: the paper is in the chunk id, and at 100k papers fetching
        the documents cost four times the search itself (the metadata, twice it
        on the bundled library). ``chunk_texts`` fetches the few texts needed.
        """
        res = self.chunks.query(query_embeddings=[vector.tolist()], n_results=max(1, n), where=where,
                                include=["distances"])
        return [DenseMatch(cid, paper_of(cid), 1.0 - float(dist)) for cid, dist in zip(res["ids"][0], res["distances"][0])]

    @_guarded
    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        got = self.chunks.get(ids=list(dict.fromkeys(chunk_ids)), include=["documents"])
        return dict(zip(got["ids"], got["documents"]))

    @_guarded
    def chunk_counts(self) -> dict[str, int]:
        """paper_id -> number of chunks, for every paper whose record carries it (all written since it does)."""
        out: dict[str, int] = {}
        for ids, metas, _ in self._scan(self.papers, include=["metadatas"], where={"kind": "paper"}):
            out.update({i: m["chunks"] for i, m in zip(ids, metas) if isinstance(m.get("chunks"), int)})
        return out

    @_guarded
    def chunk_similarities(self, vector: np.ndarray, paper_ids: list[str],
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
            got = self.papers.get(ids=list(paper_ids), include=["metadatas"])
            counts = {i: m["chunks"] for i, m in zip(got["ids"], got["metadatas"]) if isinstance(m.get("chunks"), int)}
        chunk_ids = [chunk_id(pid, i) for pid in paper_ids if pid in counts for i in range(counts[pid])]
        unknown = [pid for pid in paper_ids if pid not in counts]
        got_ids, got_vecs, got_pids = [], [], []
        if chunk_ids:
            got = self.chunks.get(ids=chunk_ids, include=["embeddings"])
            got_ids += got["ids"]
            got_vecs += list(got["embeddings"])
            got_pids += [paper_of(cid) for cid in got["ids"]]
            found = set(got_pids)  # a paper whose chunks are named otherwise falls back to the filter
            unknown += [pid for pid in paper_ids if pid in counts and pid not in found]
        if unknown:
            got = self.chunks.get(where={"paper_id": {"$in": unknown}}, include=["embeddings", "metadatas"])
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

    @_guarded
    def revision(self) -> str:
        got = self.papers.get(ids=[META_ID], include=["metadatas"])
        return got["metadatas"][0].get("revision", "") if got["ids"] else ""

    # -- writing -----------------------------------------------------------------

    @_guarded
    def write(self, items: list[tuple]) -> None:
        """Store papers with their chunks and vectors, all or nothing per paper.

        Each item is (paper, content hash, chunks, chunk vectors) or the same with a fifth element, the paper's
        sentences (texts, vectors: title first, as ``sentence_vectors`` returns them) or None.
        """
        if not items:
            return
        items = [tuple(item) + (None,) * (5 - len(item)) for item in items]
        pids = [item[0].paper_id for item in items]
        # Old chunks and sentences of these papers go first: an abstract that changed may now have fewer of each.
        self.chunks.delete(where={"paper_id": {"$in": pids}})
        self.sentences.delete(where={"paper_id": {"$in": pids}})
        ids, docs, metas, vecs = [], [], [], []
        for paper, _, chunks, vectors, _ in items:
            for chunk, vec in zip(chunks, vectors):
                ids.append(chunk.chunk_id)
                docs.append(chunk.text)
                metas.append(_chunk_meta(paper, chunk))
                vecs.append(vec)
        for start in range(0, len(ids), 4000):  # below Chroma's max batch size
            end = start + 4000
            self.chunks.upsert(ids=ids[start:end], documents=docs[start:end], metadatas=metas[start:end],
                               embeddings=np.asarray(vecs[start:end]))
        self._write_sentences([(item[0].paper_id, *item[4]) for item in items if item[4] is not None])
        # Paper records last: their presence (with the hash) marks the paper complete.
        paper_vecs = []
        for item in items:
            mean = np.asarray(item[3]).mean(axis=0)
            paper_vecs.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        self.papers.upsert(
            ids=pids,
            documents=[item[0].abstract for item in items],
            metadatas=[_flat(p, h, len(chunks), len(s[0]) if s is not None else None) for p, h, chunks, _, s in items],
            embeddings=np.asarray(paper_vecs),
        )

    @_guarded
    def add_sentences(self, items: list[tuple[str, list[str], np.ndarray]]) -> None:
        """Give stored papers their sentence vectors: (paper_id, texts, vectors); then their records say so."""
        if not items:
            return
        pids = [pid for pid, _, _ in items]
        self.sentences.delete(where={"paper_id": {"$in": pids}})
        self._write_sentences(items)
        got = self.papers.get(ids=pids, include=["metadatas"])
        counts = {pid: len(texts) for pid, texts, _ in items}
        self.papers.update(ids=got["ids"], metadatas=[{**m, "sentences": counts[i]} for i, m in zip(got["ids"], got["metadatas"])])

    def _write_sentences(self, items: list[tuple[str, list[str], np.ndarray]]) -> None:
        ids, metas, vecs = [], [], []
        for pid, texts, vectors in items:
            for i, vec in enumerate(vectors):
                ids.append(sentence_id(pid, i - 1))
                metas.append({"paper_id": pid, "index": i - 1} | ({"digest": texts_digest(texts)} if i == 0 else {}))
                vecs.append(vec)
        for start in range(0, len(ids), 4000):
            end = start + 4000
            self.sentences.upsert(ids=ids[start:end], metadatas=metas[start:end], embeddings=np.asarray(vecs[start:end]))

    @_guarded
    def bump_revision(self) -> str:
        """Mark the library changed (the BM25 cache keys on this)."""
        rev = uuid.uuid4().hex
        dim = self._dim()
        self.papers.upsert(ids=[META_ID], documents=[""], metadatas=[{"kind": "meta", "revision": rev}],
                           embeddings=[[1.0] + [0.0] * (dim - 1)])
        return rev

    # -- helpers -----------------------------------------------------------------

    def _dim(self) -> int:
        got = self.chunks.peek(1)
        emb = got.get("embeddings")
        return len(emb[0]) if emb is not None and len(emb) else 384

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


@_guarded
def stored_models(client, library: str) -> list[str]:
    """The embedding models (variants included) that hold papers of ``library`` in this Chroma."""
    out = []
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        parts = name.split("__")
        if len(parts) == 3 and parts[0] == library and parts[2] == PAPERS:
            papers = client.get_collection(name)
            if papers.count():
                out.append((papers.metadata or {}).get("embedding_model", parts[1]))
    return out


@_guarded
def list_libraries(client) -> list[dict]:
    """Every library in this Chroma: name, embedding model, paper and chunk counts."""
    out = []
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        parts = name.split("__")
        if len(parts) != 3 or parts[2] != PAPERS:
            continue
        papers = client.get_collection(name)
        meta = papers.metadata or {}
        lib = meta.get("library", parts[0])
        model = meta.get("embedding_model", parts[1])
        try:
            chunks = client.get_collection(collection_name(lib, model, CHUNKS)).count()
        except Exception:
            chunks = 0
        n = papers.count()
        has_meta = bool(papers.get(ids=[META_ID])["ids"])
        out.append({"library": lib, "embedding_model": model, "papers": n - int(has_meta), "chunks": chunks})
    return sorted(out, key=lambda r: (r["library"], r["embedding_model"]))
