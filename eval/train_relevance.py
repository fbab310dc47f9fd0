"""Fit the relevance model (``assistant/answering/relevance.py``) on SciFact claims (train split only) and write
``assistant/answering/relevance_weights.json``.

    .venv/bin/python -m eval.train_relevance [--data PATH] [--corpus PATH] [--out PATH] [--dev]

Training pairs, from each claim of ``scifact-claims/train.jsonl`` and the abstract it cites: the rationale
sentences (SUPPORT or CONTRADICT: both bear on the claim) are positive; the abstract's other sentences (every
sentence of a NOT_ENOUGH_INFO abstract) are negative — the hard case, same paper and topic — and so are
``EASY_NEGATIVES`` sentences drawn (seeded) from other abstracts. IDF comes from the SciFact corpus
(``eval/datasets/scifact/corpus.jsonl``, abstracts only, no labels), as answering takes it from the library.

The fit is a standardised logistic regression (scikit-learn, lbfgs: the same bytes on every run). Grouped 5-fold
cross-validation by claim reports, beside cosine alone: ROC AUC over all pairs, AUC within the cited abstracts
(rationale against the rest), and the mean reciprocal rank of the first rationale sentence in its abstract.
``--dev`` also ranks sentences on the developer's full-text questions (LitQA2 dev and eval/datasets/fulltext.jsonl:
every sentence of the gold paper's body; the first one inside the key passage), which are never trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np

from assistant.answering.relevance import FEATURES, WEIGHTS, QuestionTerms, RelevanceModel, pair_features
from assistant.core.text import content_words

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "bench" / "scifact-claims" / "train.jsonl"
CORPUS = ROOT / "eval" / "datasets" / "scifact" / "corpus.jsonl"
EASY_NEGATIVES = 5
C = 1.0  # inverse regularisation strength
SEED = 13


def corpus_idf(path: Path):
    """IDF of stemmed words over a BEIR corpus's abstracts (title + text), as LibraryStats.idf computes it."""
    df: Counter[str] = Counter()
    n = 0
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            df.update(set(content_words(f"{doc.get('title', '')} {doc.get('text', '')}")))
            n += 1
    return lambda w: math.log((n + 1) / (df.get(w, 0) + 0.5))


def build(pairs: list[dict], embed, idf) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Features, labels, claim groups, and per cited abstract the rows it spans (for ranking metrics)."""
    rng = random.Random(SEED)
    claims = list(dict.fromkeys(p["claim"] for p in pairs))
    sentences = list(dict.fromkeys(s for p in pairs for s in p["sentences"]))
    cvec = dict(zip(claims, np.asarray(embed(claims), dtype=np.float32)))
    svec = dict(zip(sentences, np.asarray(embed(sentences), dtype=np.float32)))
    stems = {s: content_words(s) for s in sentences}
    xs, ys, groups, spans = [], [], [], []
    start = 0
    for k, p in enumerate(pairs):
        terms = QuestionTerms.of(p["claim"], idf)
        own = list(p["sentences"])
        labels = [int(i in set(p.get("evidence") or []) and p["label"] != "NOT_ENOUGH_INFO") for i in range(len(own))]
        others = [s for s in rng.sample(sentences, min(len(sentences), EASY_NEGATIVES * 3)) if s not in own][:EASY_NEGATIVES]
        texts = own + others
        cos = np.stack([svec[t] for t in texts]) @ cvec[p["claim"]]
        xs.append(pair_features(terms, texts, cos, [stems[t] for t in texts]))
        ys += labels + [0] * len(others)
        groups += [claims.index(p["claim"])] * len(texts)
        if any(labels):
            spans.append({"rows": (start, start + len(own)), "labels": labels})
        start += len(texts)
    return np.concatenate(xs), np.asarray(ys), np.asarray(groups), spans


def fit(x: np.ndarray, y: np.ndarray) -> RelevanceModel:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    lr = LogisticRegression(C=C, max_iter=5000).fit((x - mean) / scale, y)
    return RelevanceModel(mean, scale, lr.coef_[0].copy(), float(lr.intercept_[0]))


def rank_metrics(scores: np.ndarray, y: np.ndarray, spans: list[dict]) -> dict:
    from sklearn.metrics import roc_auc_score

    inside = np.zeros(len(y), dtype=bool)
    rr = []
    for span in spans:
        a, b = span["rows"]
        inside[a:b] = True
        order = np.argsort(-scores[a:b], kind="stable")
        rr.append(1.0 / (1 + next(i for i, j in enumerate(order) if span["labels"][j])))
    return {"auc": float(roc_auc_score(y, scores)), "auc_within_abstract": float(roc_auc_score(y[inside], scores[inside])),
            "mrr_first_rationale": float(np.mean(rr))}


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, spans: list[dict]) -> dict:
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        scores[test] = fit(x[train], y[train]).probability(x[test])
    return {"model": rank_metrics(scores, y, spans), "cosine": rank_metrics(x[:, FEATURES.index("cos")], y, spans)}


def dev_ranking(model: RelevanceModel, embedder) -> dict:
    """Rank every body sentence of the gold paper for the developer's full-text questions (never trained on)."""
    from assistant.answering.evidence import _clean
    from assistant.core.text import split_sentences
    from eval.answers_eval import passage_overlaps
    from ingest.readers import read_path

    litqa = SHARED / "bench" / "litqa2-dev"
    sets = [(json.loads(line), litqa / "pdfs" / json.loads(line)["files"][0], "key_passage")
            for line in (litqa / "questions.jsonl").read_text().splitlines() if line.strip()]
    # The shared PDFs are named by DOI ("10.1186_s12915-024-01918-w.pdf"; eLife's with a version: ".3").
    by_name = {p.stem.replace("_", "/", 1).lower(): p for p in (SHARED / "corpus" / "pdfs").glob("*.pdf")}
    for line in (ROOT / "eval" / "datasets" / "fulltext.jsonl").read_text().splitlines():
        q = json.loads(line)
        doi = q["gold_dois"][0].lower()
        path = next((p for name, p in by_name.items() if name == doi or name.startswith(doi + ".")), None)
        if path is not None:
            sets.append((q, path, "passage"))
    papers: dict[Path, list[str]] = {}
    out = {"model": [], "cosine": [], "idf_recall": []}
    for q, path, key in sets:
        if path not in papers:
            paper = read_path(path).papers[0]
            papers[path] = [t for b in paper.body for s in split_sentences(b.text) if len(t := _clean(s)) > 20]
        texts = papers[path]
        gold = [passage_overlaps(t, q[key]) for t in texts]
        if not any(gold):
            continue
        vecs = np.asarray(embedder.embed(texts), dtype=np.float32)
        qvec = np.asarray(embedder.embed([q["question"]]), dtype=np.float32)[0]
        idf = _paper_idf(papers)
        x = pair_features(QuestionTerms.of(q["question"], idf), texts, vecs @ qvec)
        for name, scores in (("model", model.probability(x)), ("cosine", x[:, 0]), ("idf_recall", x[:, 1])):
            order = np.argsort(-scores, kind="stable")
            out[name].append(1.0 / (1 + next(i for i, j in enumerate(order) if gold[j])))
    return {name: {"mrr": round(float(np.mean(v)), 4), "top1": round(float(np.mean([r == 1 for r in v])), 4),
                   "top5": round(float(np.mean([r >= 0.2 for r in v])), 4), "n": len(v)} for name, v in out.items()}


def _paper_idf(papers: dict[Path, list[str]]):
    df: Counter[str] = Counter()
    for texts in papers.values():
        df.update(set(w for t in texts for w in content_words(t)))
    n = len(papers)
    return lambda w: math.log((n + 1) / (df.get(w, 0) + 0.5))


def main(argv: list[str] | None = None) -> None:
    from assistant.core.settings import Settings
    from assistant.library.embeddings import LocalEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="SciFact claims train.jsonl")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a corpus for IDF (BEIR corpus.jsonl)")
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where the weights go")
    parser.add_argument("--dev", action="store_true", help="also rank sentences on the full-text dev questions")
    args = parser.parse_args(argv)

    pairs = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    embedder = LocalEmbedder(cache_dir=Settings().home / "models", variant="int8")
    idf = corpus_idf(args.corpus)
    x, y, groups, spans = build(pairs, embedder.embed, idf)
    cv = cross_validate(x, y, groups, spans)
    model = fit(x, y)
    report = {
        "name": "relevance-v1",
        "embedding_model": embedder.name,
        "trained_on": {"file": args.data.name, "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
                       "pairs": len(pairs), "rows": int(len(y)), "positive": int(y.sum())},
        "idf_corpus": {"file": str(args.corpus.relative_to(ROOT)) if args.corpus.is_relative_to(ROOT) else args.corpus.name,
                       "sha256": hashlib.sha256(args.corpus.read_bytes()).hexdigest()},
        "regularisation": C,
        "cv": {k: {m: round(v, 4) for m, v in d.items()} for k, d in cv.items()},
    }
    if args.dev:
        report["dev"] = dev_ranking(model, embedder)
    args.out.write_text(json.dumps({"info": report, "model": model.to_dict()}, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("cv", "dev") if k in report}, indent=1))
    print("weights:", dict(zip(FEATURES, np.round(model.coef, 3).tolist())))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
