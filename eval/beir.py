"""BEIR benchmarks (SciFact and the like): index the corpus as a library, run the queries, score them.

A BEIR folder holds ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl``
({_id, text}) and ``qrels/<split>.tsv``. Every document becomes one Paper whose
``paper_id`` is the BEIR doc id, ingested through the same pipeline as a user's
library (same chunking, embedding and BM25), into its own library
``beir-<dataset>`` next to the user's libraries in the home folder.

Re-running is cheap: a marker file next to the store records the corpus
fingerprint and the library revision it produced; when both still match, the
corpus is not read into the pipeline at all (otherwise the pipeline's own
per-paper hash check embeds only what changed).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from assistant.core.errors import UserError
from assistant.core.types import Paper

CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"


# -- reading the BEIR layout -----------------------------------------------------------


def _jsonl(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_corpus(folder: Path, ids: set[str] | None = None) -> list[Paper]:
    """One Paper per BEIR document (optionally only the given ids), in file order."""
    papers = []
    for row in _jsonl(Path(folder) / CORPUS):
        doc_id = str(row["_id"])
        if ids is not None and doc_id not in ids:
            continue
        papers.append(Paper(paper_id=doc_id, title=(row.get("title") or "").strip(),
                            abstract=(row.get("text") or "").strip(), source=f"{CORPUS}:{doc_id}"))
    return papers


def load_queries(folder: Path) -> dict[str, str]:
    return {str(row["_id"]): row["text"] for row in _jsonl(Path(folder) / QUERIES)}


def load_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """qid -> {doc id: relevance} from ``qrels/<split>.tsv`` (header line skipped)."""
    path = Path(folder) / "qrels" / f"{split}.tsv"
    if not path.exists():
        raise UserError(f"no qrels for split {split!r}: {path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (n == 0 and not parts[2].lstrip("-").isdigit()):
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def library_name(folder: Path) -> str:
    """``beir-<dataset>``: a valid library name derived from the folder name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).resolve().name).strip("-._").lower() or "dataset"
    return f"beir-{slug}"[:63]


# -- indexing --------------------------------------------------------------------------


def _fingerprint(folder: Path, settings, embedder_name: str) -> str:
    # Hashing the corpus file (a few MB) takes milliseconds; it changes when any document does.
    digest = hashlib.sha1()
    with (Path(folder) / CORPUS).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|{embedder_name}|{settings.chunk_tokens}|{settings.chunker}".encode())
    return digest.hexdigest()


def _marker(app) -> Path:
    return app.settings.home / "beir" / f"{app.library.key}.json"


def index_corpus(app, folder: Path, progress: bool = False) -> dict:
    """Make ``app.library`` hold the corpus; returns what was done (``reused`` when nothing)."""
    started = time.perf_counter()
    marker = _marker(app)
    fingerprint = _fingerprint(folder, app.settings, app.embedder.name)
    revision = app.library.revision()
    if marker.exists() and revision:
        seen = json.loads(marker.read_text())
        if seen.get("fingerprint") == fingerprint and seen.get("revision") == revision:
            return {"reused": True, "embedded": 0, "papers": seen.get("papers", 0),
                    "seconds": time.perf_counter() - started}
    from ingest.pipeline import ingest_papers

    papers = load_corpus(folder)
    report = ingest_papers(papers, app.library, app.embedder, chunk_tokens=app.settings.chunk_tokens,
                           chunker=app.settings.chunker, sentences=app.settings.sentence_vectors,
                           lock_dir=app.settings.home / "locks", progress=progress)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint, "revision": app.library.revision(),
                                  "papers": report.papers}))
    return {"reused": False, "embedded": report.chunks_embedded, "sentences": report.sentences_embedded,
            "papers": report.papers,
            "new": report.new, "updated": report.updated, "unchanged": report.unchanged,
            "seconds": time.perf_counter() - started}


def beir_app(folder: Path, settings, embedder=None, library: str | None = None):
    """An App over the benchmark's own library, with the caller's home and search settings."""
    from assistant.app import App

    return App(settings.with_overrides(library=library or library_name(folder)), embedder=embedder)


# -- evaluating ------------------------------------------------------------------------


def run_queries(app, queries: dict[str, str], retriever: str, k: int = 100, progress: bool = False) -> dict:
    """BEIR run: qid -> {doc id: score}, scores strictly decreasing with rank.

    Ranks, not raw scores, go to the scorer: trec_eval breaks score ties by doc
    id, which would reorder papers our fusion placed deliberately.
    """
    from tqdm import tqdm

    run: dict[str, dict[str, float]] = {}
    for qid, text in tqdm(queries.items(), desc="queries", unit="q", disable=not progress):
        hits = app.searcher.search(text, k=k, mode=retriever, with_abstracts=False)
        run[qid] = {h.paper_id: float(k - i) for i, h in enumerate(hits)}
    return run


def eval_beir(
    folder: Path,
    split: str = "test",
    retriever: str = "hybrid",
    settings=None,
    embedder=None,
    *,
    k: int = 100,
    progress: bool = False,
    library: str | None = None,
) -> dict:
    """Index (or reuse) the corpus, run the split's queries, and score them.

    Returns {"metrics": {nDCG@10, R@100, RR@10, ...}, "per_query": {...},
    "index": what indexing did, "queries": n, "seconds": ...}.
    """
    from assistant.core.settings import load_settings
    from eval.metrics import BEIR_MEASURES, evaluate
    from eval.report import library_fingerprint, questions_fingerprint

    folder = Path(folder)
    settings = settings or load_settings()
    app = beir_app(folder, settings, embedder, library)
    index = index_corpus(app, folder, progress=progress)
    qrels = load_qrels(folder, split)
    all_queries = load_queries(folder)
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    started = time.perf_counter()
    run = run_queries(app, queries, retriever, k=k, progress=progress)
    seconds = time.perf_counter() - started
    scores = evaluate(run, {q: qrels[q] for q in queries}, BEIR_MEASURES)
    return {
        "dataset": folder.name,
        "split": split,
        "retriever": retriever,
        "library": app.settings.library,
        "metrics": scores["mean"],
        "per_query": scores["per_query"],
        "index": index,
        "queries": len(queries),
        "seconds_per_query": seconds / max(1, len(queries)),
        "settings": app.settings,
        "inputs": {"questions": questions_fingerprint(folder / "qrels" / f"{split}.tsv"),
                   "library": library_fingerprint(load_corpus(folder))},
    }
