"""The variants eval.tune replays: each is a name and a way to score every paper for every query.

Kept apart from eval/tune.py (loading the stored vectors, the command line) so
the list of what was tried reads on its own; eval/RESULTS.md quotes its output.
The few scoring helpers come first: BM25 score vectors, the fusion (the
Searcher's own ``fuse_scores``, so a replayed variant fuses as the product
does), runs and metrics. Nothing here imports eval.tune.
"""

from __future__ import annotations

import numpy as np

from eval.metrics import evaluate


class BM25:
    """bm25s over chunks or whole papers, with full score vectors for (weighted) queries."""

    def __init__(self, texts: list[str], k1: float, b: float):
        import bm25s

        from assistant.library.bm25 import tokenize

        self.tokenize = tokenize
        self.model = bm25s.BM25(k1=k1, b=b)
        self.tokens = tokenize(texts)
        self.model.index(self.tokens, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        toks = [t for t in self.tokenize([query])[0] if t in self.model.vocab_dict]
        return self.model.get_scores(toks).astype(np.float64) if toks else np.zeros(self.model.scores["num_docs"])

    def weighted(self, weights: dict[str, float]) -> np.ndarray:
        total = np.zeros(self.model.scores["num_docs"])
        for term, w in weights.items():
            if term in self.model.vocab_dict:
                total += w * self.model.get_scores([term])
        return total


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


FUSIONS = ("rrf", "convex", "zscore")


def fuse(dense: np.ndarray, sparse: np.ndarray, method: str, weight: float = 0.5, rrf_k: int = 60, pool: int = 100) -> np.ndarray:
    """Every paper's fused score, by the Searcher's own fusion (``fuse_scores``); -inf outside the candidates.

    The candidates are the Searcher's: each signal's top ``pool`` papers (BM25's
    with a positive score), BM25-only papers carrying their true dense score.
    """
    from assistant.search.retriever import FusionConfig, fuse_scores

    if method not in FUSIONS:
        raise ValueError(f"unknown fusion {method!r}: the Searcher has {', '.join(FUSIONS)}")
    d_top = np.argsort(-dense, kind="stable")[:pool]
    s_top = np.argsort(-sparse, kind="stable")[:pool]
    s_top = s_top[sparse[s_top] > 0]
    d_cand = {int(p): float(dense[p]) for p in d_top}
    for p in s_top:
        d_cand.setdefault(int(p), float(dense[p]))
    fused = fuse_scores(d_cand, {int(p): float(sparse[p]) for p in s_top},
                        FusionConfig(method=method, dense_weight=weight, rrf_k=rrf_k, pool=pool))
    out = np.full(len(dense), -np.inf)
    if fused:
        papers, scores = zip(*fused)
        out[list(papers)] = scores
    return out


def to_run(qids: list[str], scores: list[np.ndarray], paper_ids: list[str], depth: int = 100) -> dict:
    run = {}
    for qid, s in zip(qids, scores):
        top = np.argsort(-s)[:depth]
        top = top[np.isfinite(s[top])]
        run[qid] = {paper_ids[i]: float(depth - r) for r, i in enumerate(top)}
    return run


def score(run: dict, qrels: dict) -> dict:
    return evaluate(run, qrels)["mean"]




def _paper_max(chunk_scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    # Chunks are sorted by paper, so each paper's chunks are one contiguous run.
    return np.maximum.reduceat(chunk_scores, starts, axis=-1)


def _starts(chunk_paper: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, chunk_paper[1:] != chunk_paper[:-1]])


class Reporter:
    """Scores a variant, prints its line and keeps (name, metrics) in ``results``."""

    def __init__(self, qids, paper_ids, qrels):
        self.qids, self.paper_ids, self.qrels = qids, paper_ids, qrels
        self.results: list[tuple[str, dict]] = []

    def __call__(self, name: str, scores) -> dict:
        m = score(to_run(self.qids, scores, self.paper_ids), self.qrels)
        self.results.append((name, m))
        print(f"{name:<52} nDCG@10 {m['nDCG@10']:.4f}  R@100 {m['R@100']:.4f}  MRR@10 {m['RR@10']:.4f}", flush=True)
        return m


def rm3_weights(bm: BM25, query: str, fb_docs: np.ndarray, fb_scores: np.ndarray, terms: int, orig_weight: float) -> dict:
    """RM3: expansion terms from the feedback documents' term distributions, mixed with the query."""
    q_toks = [t for t in bm.tokenize([query])[0] if t in bm.model.vocab_dict]
    weights: dict[str, float] = {}
    doc_w = np.exp(fb_scores - fb_scores.max())
    doc_w /= doc_w.sum()
    for d, w in zip(fb_docs, doc_w):
        toks = bm.tokens[d]
        if not toks:
            continue
        for t in set(toks):
            weights[t] = weights.get(t, 0.0) + w * toks.count(t) / len(toks)
    top = dict(sorted(weights.items(), key=lambda kv: -kv[1])[:terms])
    norm = sum(top.values()) or 1.0
    out = {t: (1 - orig_weight) * v / norm for t, v in top.items()}
    for t in q_toks:
        out[t] = out.get(t, 0.0) + orig_weight / len(q_toks)
    return out


def signals(corpus, qids, texts, qvecs, qrels):
    """Stage 1: paper scoring, BM25 unit and parameters, fusion method and weight."""
    report = Reporter(qids, corpus.paper_ids, qrels)
    results = report.results
    starts = _starts(corpus.chunk_paper)

    # Dense: best chunk, the stored mean vector, and mixes of the two.
    chunk_sims = qvecs @ corpus.chunk_vecs.T
    d_max = _paper_max(chunk_sims, starts).astype(np.float64)
    d_mean = (qvecs @ corpus.paper_vecs.T).astype(np.float64)
    report("dense max-chunk (current)", list(d_max))
    report("dense mean-vector", list(d_mean))
    for a in (0.3, 0.5):
        report(f"dense (1-a)*max + a*mean, a={a}", list((1 - a) * d_max + a * d_mean))

    # BM25: chunk vs whole paper, parameters.
    bms = {}
    for unit in ("chunk", "paper"):
        for k1, b in ((1.2, 0.75), (0.9, 0.4), (1.5, 0.75), (1.2, 0.5), (0.9, 0.75)):
            texts_u = corpus.chunk_texts if unit == "chunk" else corpus.paper_texts
            bm = BM25(texts_u, k1, b)
            raw = [bm.scores(t) for t in texts]
            s = [_paper_max(r, starts) for r in raw] if unit == "chunk" else raw
            bms[(unit, k1, b)] = (bm, s)
            report(f"bm25 {unit} k1={k1} b={b}", s)

    def best(prefix_filter):
        return max((r for r in results if r[0].startswith(prefix_filter)), key=lambda r: r[1]["nDCG@10"])

    best_bm_name = best("bm25")[0]
    unit, k1s, bs = best_bm_name.split()[1], best_bm_name.split()[2], best_bm_name.split()[3]
    key = (unit, float(k1s.split("=")[1]), float(bs.split("=")[1]))
    bm, sparse = bms[key]
    cur_bm = bms[("chunk", 1.2, 0.75)][1]

    dense_variants = {"max": d_max, "mix.3": 0.7 * d_max + 0.3 * d_mean, "mix.5": 0.5 * d_max + 0.5 * d_mean}
    for sname, s_list in (("cur-bm25", cur_bm), (f"best-bm25({unit},{key[1]},{key[2]})", sparse)):
        for dname, dmat in dense_variants.items():
            for k in (10, 30, 60):
                report(f"rrf k={k} {dname} + {sname}", [fuse(d, s, "rrf", rrf_k=k) for d, s in zip(dmat, s_list)])
            for method in ("convex", "zscore"):  # BM25 min-max instead of / max: identical to convex (RESULTS.md)
                for w in (0.3, 0.4, 0.5, 0.6, 0.7):
                    report(f"{method} w={w} {dname} + {sname}", [fuse(d, s, method, w) for d, s in zip(dmat, s_list)])
    return results


def _second(chunk_scores: np.ndarray, chunk_paper: np.ndarray, n: int, best: np.ndarray) -> np.ndarray:
    """Each paper's second-best chunk score (0 for one-chunk papers)."""
    out = np.zeros(n)
    first_seen = np.zeros(n, dtype=bool)
    for c, p in zip(chunk_scores, chunk_paper):
        if c == best[p] and not first_seen[p]:
            first_seen[p] = True
        elif c > out[p]:
            out[p] = c
    return out


def prf(corpus, qids, texts, qvecs, qrels):
    """Stage 2: on the stage-1 base (convex, chunk BM25), multi-chunk bonus and pseudo-relevance feedback."""
    report = Reporter(qids, corpus.paper_ids, qrels)
    results = report.results
    n = len(corpus.paper_ids)
    starts = _starts(corpus.chunk_paper)

    chunk_sims = qvecs @ corpus.chunk_vecs.T
    d_max = _paper_max(chunk_sims, starts).astype(np.float64)
    bm = BM25(corpus.chunk_texts, 1.2, 0.75)
    bm_chunks = [bm.scores(t) for t in texts]
    s_max = [_paper_max(r, starts) for r in bm_chunks]
    for w in (0.5, 0.6):
        base = [fuse(d, s, "convex", w) for d, s in zip(d_max, s_max)]
        report(f"base convex w={w}", base)
    base = [fuse(d, s, "convex", 0.5) for d, s in zip(d_max, s_max)]

    # Multi-chunk bonus: a paper matching in two chunks beats one matching in one.
    d_second = np.stack([_second(cs, corpus.chunk_paper, n, dm) for cs, dm in zip(chunk_sims, d_max)])
    s_second = [_second(r, corpus.chunk_paper, n, sm) for r, sm in zip(bm_chunks, s_max)]
    for beta in (0.05, 0.1, 0.2):
        dd = d_max + beta * d_second
        ss = [sm + beta * s2 for sm, s2 in zip(s_max, s_second)]
        report(f"bonus beta={beta} (dense+bm25)", [fuse(d, s, "convex", 0.5) for d, s in zip(dd, ss)])

    # Dense Rocchio: move the query towards the mean vector of the first-pass top papers.
    for m_docs in (3, 5, 10):
        for beta in (0.3, 0.6, 1.0):
            new_q = []
            for qv, sc in zip(qvecs, base):
                top = np.argsort(-sc)[:m_docs]
                v = qv + beta * corpus.paper_vecs[top].mean(axis=0)
                new_q.append(v / np.linalg.norm(v))
            d2 = _paper_max(np.asarray(new_q) @ corpus.chunk_vecs.T, starts).astype(np.float64)
            report(f"rocchio m={m_docs} beta={beta}", [fuse(d, s, "convex", 0.5) for d, s in zip(d2, s_max)])

    # RM3 on BM25 (terms from the first-pass top papers), dense unchanged.
    paper_bm = BM25(corpus.paper_texts, 1.2, 0.75)
    for m_docs in (3, 5):
        for terms, orig in ((10, 0.5), (20, 0.5), (10, 0.7)):
            s2 = []
            for t, sc in zip(texts, base):
                top = np.argsort(-sc)[:m_docs]
                weights = rm3_weights(paper_bm, t, top, sc[top], terms, orig)
                s2.append(_paper_max(bm.weighted(weights), starts))
            report(f"rm3 m={m_docs} terms={terms} orig={orig}", [fuse(d, s, "convex", 0.5) for d, s in zip(d_max, s2)])
    return results


def fusion(corpus, qids, texts, qvecs, qrels):
    """Stage 3: where to fuse (chunk or paper level), normalisation, finer weights."""
    report = Reporter(qids, corpus.paper_ids, qrels)
    results = report.results
    starts = _starts(corpus.chunk_paper)

    chunk_sims = (qvecs @ corpus.chunk_vecs.T).astype(np.float64)
    d_max = _paper_max(chunk_sims, starts)
    d_mean = (qvecs @ corpus.paper_vecs.T).astype(np.float64)
    bm = BM25(corpus.chunk_texts, 1.2, 0.75)
    bm_chunks = [bm.scores(t) for t in texts]
    s_max = [_paper_max(r, starts) for r in bm_chunks]
    for method in ("convex", "zscore"):
        for w in (0.45, 0.5, 0.55, 0.6, 0.65):
            report(f"paper-level {method} w={w}", [fuse(d, s, method, w) for d, s in zip(d_max, s_max)])
    # Fuse each chunk's two scores, then take the paper's best chunk: rewards one
    # passage matching both ways over two passages matching one way each.
    for w in (0.4, 0.5, 0.6):
        out = []
        for cs, bs in zip(chunk_sims, bm_chunks):
            top_c = np.argsort(-cs)[:300]
            top_b = np.argsort(-bs)[:300]
            cand = np.union1d(top_c, top_b[bs[top_b] > 0])
            dn = minmax(cs[cand])
            sn = bs[cand] / bs[cand].max() if bs[cand].max() > 0 else bs[cand]
            chunk_f = np.full(len(cs), -np.inf)
            chunk_f[cand] = w * dn + (1 - w) * sn
            out.append(_paper_max(chunk_f, starts))
        report(f"chunk-level convex w={w}", out)
    # Three signals: best chunk, the paper's mean vector, BM25 (z-scored).
    for a in (0.15, 0.3):
        mix = (1 - a) * d_max + a * d_mean
        for w in (0.5, 0.55):
            report(f"zscore w={w} dense mix a={a}", [fuse(d, s, "zscore", w) for d, s in zip(mix, s_max)])
    return results


def final(corpus, qids, texts, qvecs, qrels):
    """The baselines and the candidates chosen on train, for one report on another split."""
    report = Reporter(qids, corpus.paper_ids, qrels)
    results = report.results
    starts = _starts(corpus.chunk_paper)

    d_max = _paper_max((qvecs @ corpus.chunk_vecs.T).astype(np.float64), starts)
    d_mean = (qvecs @ corpus.paper_vecs.T).astype(np.float64)
    s_max = [_paper_max(r, starts) for r in map(BM25(corpus.chunk_texts, 1.2, 0.75).scores, texts)]
    paper_bm = BM25(corpus.paper_texts, 1.2, 0.5)
    s_paper = [paper_bm.scores(t) for t in texts]
    report("dense max-chunk", list(d_max))
    report("bm25 chunk k1=1.2 b=0.75", s_max)
    report("bm25 paper k1=1.2 b=0.5", s_paper)
    report("rrf k=60", [fuse(d, s, "rrf") for d, s in zip(d_max, s_max)])
    report("convex w=0.5 (old default)", [fuse(d, s, "convex", 0.5) for d, s in zip(d_max, s_max)])
    report("zscore w=0.5", [fuse(d, s, "zscore", 0.5) for d, s in zip(d_max, s_max)])
    mix = 0.85 * d_max + 0.15 * d_mean
    report("zscore w=0.5 dense mix a=0.15", [fuse(d, s, "zscore", 0.5) for d, s in zip(mix, s_max)])
    mix3 = 0.7 * d_max + 0.3 * d_mean
    report("zscore w=0.5 mix a=0.3 + bm25 paper", [fuse(d, s, "zscore", 0.5) for d, s in zip(mix3, s_paper)])
    return results


VARIANT_SETS = {"signals": signals, "prf": prf, "fusion": fusion, "final": final}


def run_variants(corpus, qids, texts, qvecs, qrels, which: str = "signals"):
    return VARIANT_SETS[which](corpus, qids, texts, qvecs, qrels)
