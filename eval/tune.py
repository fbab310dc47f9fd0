"""Search-side experiments on a BEIR library whose vectors are already stored (no re-embedding).

Loads every chunk vector and text of the benchmark library once, embeds the
queries once (cached as .npy next to the store), then replays retrieval
variants in numpy: paper scoring from chunks, BM25 parameters and document
unit, fusion method and weights, pseudo-relevance feedback. Each variant is
scored with eval.metrics on a qrels split. This is for choosing defaults on
SciFact *train*; the chosen setting is then measured end to end on *test*
with ``assistant eval beir`` (the real Searcher), see eval/RESULTS.md.

    ASSISTANT_HOME=/tmp/scifact-home python -m eval.tune eval/datasets/scifact --split train

Reads the store's collections directly (bulk export of vectors is not
something the running system needs, so store.py does not offer it). The
variants and the scoring helpers they share (BM25 score vectors, the
Searcher's fusion, runs and metrics) are in eval/tune_variants.py, which
imports nothing from here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.beir import beir_app, load_qrels, load_queries
from eval.tune_variants import run_variants


@dataclass
class Corpus:
    paper_ids: list[str]  # one per paper, in chunk order
    chunk_paper: np.ndarray  # paper index of each chunk
    chunk_vecs: np.ndarray  # (chunks, dim), L2-normalised
    chunk_texts: list[str]  # "title. chunk"
    paper_texts: list[str]  # "title. abstract"
    paper_vecs: np.ndarray  # mean chunk vector per paper (normalised), as the store keeps it


def load_corpus_vectors(app) -> Corpus:
    col = app.library.chunks
    ids, metas, docs, vecs = [], [], [], []
    offset = 0
    while True:
        got = col.get(include=["embeddings", "metadatas", "documents"], limit=5000, offset=offset)
        if not got["ids"]:
            break
        ids += got["ids"]
        metas += got["metadatas"]
        docs += got["documents"]
        vecs.append(np.asarray(got["embeddings"], dtype=np.float32))
        offset += len(got["ids"])
    order = sorted(range(len(ids)), key=lambda i: (metas[i]["paper_id"], metas[i]["index"]))
    paper_ids: list[str] = []
    index_of: dict[str, int] = {}
    chunk_paper = np.empty(len(order), dtype=np.int64)
    chunk_texts = []
    for pos, i in enumerate(order):
        pid = metas[i]["paper_id"]
        if pid not in index_of:
            index_of[pid] = len(paper_ids)
            paper_ids.append(pid)
        chunk_paper[pos] = index_of[pid]
        chunk_texts.append(f"{metas[i].get('title', '')}. {docs[i]}")
    chunk_vecs = np.concatenate(vecs)[order]
    papers = {p.paper_id: p for p in app.library.get_papers(paper_ids)}
    paper_texts = [f"{papers[p].title}. {papers[p].abstract}" for p in paper_ids]
    sums = np.zeros((len(paper_ids), chunk_vecs.shape[1]), dtype=np.float32)
    np.add.at(sums, chunk_paper, chunk_vecs)
    paper_vecs = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return Corpus(paper_ids, chunk_paper, chunk_vecs, chunk_texts, paper_texts, paper_vecs)


def query_vectors(app, queries: dict[str, str]) -> np.ndarray:
    key = hashlib.sha1(json.dumps(sorted(queries.items())).encode()).hexdigest()[:12]
    cache = app.settings.home / "tune" / f"queries-{key}.npy"
    if cache.exists():
        return np.load(cache)
    vecs = app.embedder.embed(list(queries.values()), progress=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vecs)
    return vecs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--set", dest="which", default="signals", help="Variant set: signals or prf.")
    parser.add_argument("--out", type=Path, default=None, help="Write the results table as JSON here.")
    args = parser.parse_args()
    from assistant.core.settings import load_settings

    app = beir_app(args.folder, load_settings())
    qrels = load_qrels(args.folder, args.split)
    queries = {q: t for q, t in load_queries(args.folder).items() if q in qrels}
    corpus = load_corpus_vectors(app)
    qvecs = query_vectors(app, queries)
    results = run_variants(corpus, list(queries), list(queries.values()), qvecs, qrels, args.which)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
