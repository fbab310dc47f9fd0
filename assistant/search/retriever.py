"""Retrieval: dense (Chroma chunks) and BM25 (whole papers by default), fused, grouped by paper.

``Searcher.search`` is the one function every caller uses (CLI, answer step,
UI, eval). A full-text paper (a PDF) is one hit like any other, carrying its
best passages for the query with their pages (``Hit.passages``). ``PaperRetriever`` wraps it as a llama-index retriever so a query
engine can plug it in. Scores:

* dense: cosine similarity of the query to the paper's best chunk (the
  scale the decline threshold is set on; not Chroma's exp(-distance));
* bm25: the paper's BM25 score — of its one row (title twice + abstract) at
  the default ``paper`` unit, of its best chunk at the ``chunk`` unit
  (settings.bm25_unit; assistant/bm25.py);
* hybrid: a fusion of the two signals (``fusion``): ``zscore`` (default) — a
  weighted sum of each signal standardised over the candidate papers;
  ``convex`` — the same with min-max / max scaling; ``rrf`` — reciprocal rank
  fusion. Chosen on SciFact train, see eval/RESULTS.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from assistant.core.errors import UserError
from assistant.core.types import Hit
from assistant.library.vectors import TextVectors

MODES = ("hybrid", "dense", "bm25")

# Words that address the library rather than say what to find ("Which papers in
# the library cover X?"): they pull the query vector towards generic paper-talk
# and match every abstract's "this paper". Only whole leading/trailing phrases go.
_ADDRESSING = [
    re.compile(r"^\s*(what|which)\s+(do(es)?|did)\s+(the|this|my|our)\s+(library|collection|corpus|papers?)\s+"
               r"(say|cover|contain|have|report|tell(\s+us)?|find)(\s+(about|on|regarding|concerning))?\s+", re.I),
    re.compile(r"^\s*(what|which)\s+(papers|studies|works|articles)(\s+(in|from)\s+(the|this|my|our)\s+(library|collection))?"
               r"(\s+(are|is))?(\s+(about|on))?\s+", re.I),
    re.compile(r"\s+(in|from|within)\s+(the|this|my|our)\s+(library|collection|corpus)\b", re.I),
]


def retrieval_query(question: str) -> str:
    """The question with library-addressing phrases removed; the question itself if little would be left."""
    text = question.strip()
    stripped = text
    for pattern in _ADDRESSING:
        stripped = pattern.sub("", stripped, count=1).strip()
    return stripped if len(stripped.split()) >= 2 else text


@dataclass
class FusionConfig:
    method: str = "zscore"  # "zscore", "convex" or "rrf"
    dense_weight: float = 0.5  # zscore / convex: weight of the dense score (BM25 gets the rest)
    rrf_k: int = 60
    # Candidate papers taken from each signal before fusing, whatever k is (so the
    # top 10 of a k=100 search are the top 10 of a k=10 search). SciFact train
    # nDCG@10: 100 papers 0.747 vs 100 chunks widened to 3k at k 100, 0.740.
    pool: int = 100
    chunks_per_paper: int = 2  # dense over-fetch: chunks asked of Chroma per candidate paper wanted
    # Within one full text the passages all share its topic: the question's own words pick the passage out.
    # Key passages of the 20 LitQA2 dev questions in a paper's first five: 0.78 at 0.5, 0.89 at 0.3 (and at 0,
    # BM25 alone); the 31 questions on the three shared PDFs: 0.90 at both.
    passage_dense_weight: float = 0.3


class Searcher:
    """Searches one library. Dependencies are injected: store.Library, an embedder, a BM25 loader."""

    # Passages of a full-text paper handed to answering: the answer quotes and cites them by page.
    passages_per_paper = 3
    passages_first = 5

    def __init__(self, library, embedder, bm25_loader: Callable[[], object], fusion: FusionConfig | None = None,
                 vectors: TextVectors | None = None):
        self.library = library
        self.embedder = embedder
        self.bm25_loader = bm25_loader
        self.fusion = fusion or FusionConfig()
        # Query vectors, shared with answering when the App gives one cache to both (a question is embedded once).
        self.vectors = vectors if vectors is not None else TextVectors(lambda texts: self.embedder.embed(texts), maxsize=256)

    # -- signals -------------------------------------------------------------------

    def query_vector(self, query: str) -> np.ndarray:
        return self.vectors.one(query)

    def dense_scores(self, query: str, papers: int) -> dict[str, tuple[float, str]]:
        """The ``papers`` nearest papers: paper_id -> (best chunk cosine similarity, chunk id), best first."""
        best: dict[str, tuple[float, str]] = {}
        for m in self.library.query(self.query_vector(query), papers * self.fusion.chunks_per_paper):
            if m.paper_id not in best:  # Chroma returns nearest first
                best[m.paper_id] = (m.similarity, m.chunk_id)
                if len(best) == papers:
                    break
        return best

    def bm25_scores(self, query: str, papers: int, index=None) -> dict[str, tuple[float, str]]:
        """The ``papers`` best papers by BM25: paper_id -> (best row score, row id), best first (a row is a paper or a chunk)."""
        index = index or self.bm25_loader()
        per_paper = 1 if index.rows_are_papers else self.fusion.chunks_per_paper
        best: dict[str, tuple[float, str]] = {}
        for row, score in index.search(query, papers * per_paper):
            pid = index.paper_ids[row]
            if pid not in best:
                best[pid] = (score, index.chunk_ids[row])
                if len(best) == papers:
                    break
        return best

    # -- search --------------------------------------------------------------------

    def search(self, query: str, k: int = 10, mode: str = "hybrid", with_abstracts: bool = True) -> list[Hit]:
        """The k most relevant papers for ``query``, best first."""
        if mode not in MODES:
            raise UserError(f"unknown retriever {mode!r}: choose one of {', '.join(MODES)}")
        query = retrieval_query(query)
        if not query or k <= 0:
            return []
        pool = max(self.fusion.pool, k)
        dense = self.dense_scores(query, pool) if mode in ("hybrid", "dense") else {}
        index = self.bm25_loader() if mode in ("hybrid", "bm25") else None  # checks the revision: once per search
        sparse = self.bm25_scores(query, pool, index) if index is not None else {}
        if mode == "dense":
            ranked = [(pid, s) for pid, (s, _) in dense.items()]
        elif mode == "bm25":
            ranked = [(pid, s) for pid, (s, _) in sparse.items()]
        else:
            self._fill_dense(query, dense, sparse, index.chunk_counts)
            ranked = self._fuse(dense, sparse)
        ranked = ranked[:k]
        if mode == "bm25" and ranked:
            # BM25 ranks alone, but every hit still carries its true dense similarity:
            # the answerability decision and the relevance users see read it.
            self._fill_dense(query, dense, {pid: sparse[pid] for pid, _ in ranked}, index.chunk_counts)
        hits = []
        dense_rank = {pid: i + 1 for i, pid in enumerate(dense)}
        sparse_rank = {pid: i + 1 for i, pid in enumerate(sparse)}
        for pid, score in ranked:
            hit = Hit(paper_id=pid, title="", score=float(score))
            if pid in dense:
                hit.dense = dense[pid][0]
                hit.ranks["dense"] = dense_rank[pid]
            if pid in sparse:
                hit.bm25 = sparse[pid][0]
                hit.ranks["bm25"] = sparse_rank[pid]
            hits.append(hit)
        self._attach_papers(hits, with_abstracts, {pid: dense[pid][1] for pid, _ in ranked if pid in dense})
        if with_abstracts:
            self._attach_passages(query, hits, index)
        return hits

    def _attach_passages(self, query: str, ranked: list[Hit], index=None) -> None:
        """The best passages of each full-text hit, best first, with their pages.

        A paper's body chunks are scored as papers are: the dense similarity to the query and the BM25 score of
        the passage's row, standardised over that paper's passages and summed with the library's fusion weight.
        The best-ranked paper gets ``passages_first`` (an answer from one paper quotes up to five sentences), the
        others ``passages_per_paper``.
        """
        hits = [h for h in ranked if h.pages]
        if not hits:
            return
        first = ranked[0].paper_id
        counts = getattr(index, "chunk_counts", None) if index is not None else None
        by_paper = self.library.passages([h.paper_id for h in hits], counts or None)
        if not by_paper:
            return
        if index is None:
            try:
                index = self.bm25_loader()
            except Exception:  # noqa: BLE001 - passages still rank by meaning without BM25
                index = None
        qvec = self.query_vector(query)
        row_ids = [p["chunk_id"] for ps in by_paper.values() for p in ps]
        lexical = index.row_scores(query, row_ids) if index is not None and hasattr(index, "row_scores") else {}
        cfg = FusionConfig(method="zscore", dense_weight=self.fusion.passage_dense_weight)
        for hit in hits:
            rows = by_paper.get(hit.paper_id) or []
            if not rows:
                continue
            dense = {p["chunk_id"]: float(p["vec"] @ qvec) for p in rows}
            sparse = dict(sorted(((cid, s) for cid in dense if (s := lexical.get(cid, 0.0)) > 0), key=lambda kv: -kv[1]))
            by_id = {p["chunk_id"]: p for p in rows}
            chosen = fuse_scores(dense, sparse, cfg)[: self.passages_first if hit.paper_id == first else self.passages_per_paper]
            hit.passages = [{"chunk_id": cid, "page": by_id[cid]["page"], "section": by_id[cid]["section"],
                             "kind": by_id[cid]["kind"], "text": _whole_sentences(by_id[cid], rows),
                             "score": round(score, 4), "dense": round(dense[cid], 4)} for cid, score in chosen]

    def _fill_dense(self, query: str, dense: dict, sparse: dict, chunk_counts: dict[str, int]) -> None:
        # Papers found only by BM25 still get their true dense similarity, so the
        # fusion and the decline threshold never see a missing signal.
        missing = [pid for pid in sparse if pid not in dense]
        if missing:
            exact = self.library.chunk_similarities(self.query_vector(query), missing, chunk_counts or None)
            for pid in missing:
                if pid in exact:
                    dense[pid] = exact[pid]

    def _fuse(self, dense: dict, sparse: dict) -> list[tuple[str, float]]:
        return fuse_scores({p: v[0] for p, v in dense.items()}, {p: v[0] for p, v in sparse.items()}, self.fusion)

    def _attach_papers(self, hits: list[Hit], with_abstracts: bool, best_chunks: dict[str, str]) -> None:
        """Titles, abstracts and the text of each hit's best chunk: fetched for the k hits only."""
        papers = {p.paper_id: p for p in self.library.get_papers([h.paper_id for h in hits])}
        texts = self.library.chunk_texts(list(best_chunks.values())) if with_abstracts else {}
        for hit in hits:
            text = texts.get(best_chunks.get(hit.paper_id, ""))
            if text:
                hit.chunks.append(text)
            paper = papers.get(hit.paper_id)
            if paper:
                hit.title = paper.title
                hit.authors, hit.date, hit.url, hit.source = list(paper.authors), paper.date, paper.url, paper.source
                hit.pdf, hit.pages = paper.pdf, paper.pages
                if with_abstracts:
                    hit.abstract = paper.abstract
                if not hit.chunks:
                    hit.chunks.append(paper.abstract[:300])


_ENDS_SENTENCE = re.compile(r"[.!?:][\"')\]]*\s*$")
_STARTS_MID_SENTENCE = re.compile(r"^[a-z,;)]")


def _whole_sentences(row: dict, rows: list[dict]) -> str:
    """A passage's text with the sentence it starts or ends in the middle of made whole.

    A sentence longer than a chunk is cut by the chunker; quoting half of it would say half of what it says.
    The neighbouring chunk's text completes it when that chunk is on the same page (a citation names one page).
    """
    text = row["text"]
    at = {r["index"]: r for r in rows}
    before, after = at.get(row["index"] - 1), at.get(row["index"] + 1)
    if _STARTS_MID_SENTENCE.match(text) and before and before["page"] == row["page"] and before["kind"] == row["kind"]:
        text = f"{before['text']} {text}"
    if not _ENDS_SENTENCE.search(text) and after and after["page"] == row["page"] and after["kind"] == row["kind"]:
        text = f"{text} {after['text']}"
    return text


def fuse_scores(dense: dict, sparse: dict, cfg: FusionConfig) -> list[tuple[str, float]]:
    """Hybrid fusion: (paper, fused score) for every candidate, best first.

    ``dense``: paper -> dense similarity of every candidate (the dense pool, and
    BM25's papers with their similarity filled in); ``sparse``: paper -> BM25
    score of BM25's pool, best first. Pure arithmetic, so the tuning replay
    (eval/tune.py) fuses exactly as the Searcher does.
    """
    ids = list(dict.fromkeys(list(dense) + list(sparse)))
    if cfg.method == "rrf":
        d_order = sorted(dense, key=lambda p: -dense[p])
        s_rank = {pid: i for i, pid in enumerate(sparse)}
        d_rank = {pid: i for i, pid in enumerate(d_order)}
        fused = {
            pid: (1.0 / (cfg.rrf_k + d_rank[pid] + 1) if pid in d_rank else 0.0)
            + (1.0 / (cfg.rrf_k + s_rank[pid] + 1) if pid in s_rank else 0.0)
            for pid in ids
        }
    else:
        d = np.asarray([dense[p] if p in dense else 0.0 for p in ids], dtype=np.float64)
        # A paper outside BM25's pool scores 0 there: below every pooled paper.
        s = np.asarray([sparse[p] if p in sparse else 0.0 for p in ids], dtype=np.float64)
        if cfg.method == "zscore":
            # Standardising measures each signal in units of its own spread over
            # this query's candidates, so the weight means the same whatever the
            # query's BM25 scale. SciFact nDCG@10 vs convex: train +0.2, test +0.7
            # points (eval/RESULTS.md).
            d_norm, s_norm = _standardise(d), _standardise(s)
        else:
            s_norm = s / s.max() if s.max() > 0 else s
            lo = d.min() if len(d) else 0.0
            d_norm = (d - lo) / (d.max() - lo) if len(d) and d.max() > lo else np.zeros_like(d)
        scores = cfg.dense_weight * d_norm + (1 - cfg.dense_weight) * s_norm
        fused = dict(zip(ids, scores.tolist()))
    return sorted(fused.items(), key=lambda kv: -kv[1])


def _standardise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std; all zeros when the values do not vary (one candidate, no BM25 match)."""
    std = x.std() if len(x) else 0.0
    return (x - x.mean()) / std if std > 1e-12 else np.zeros_like(x)
