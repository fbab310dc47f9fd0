"""Where an ingest's time goes: ``python -m eval.bench_profile [N] [int8|fp32]`` prints Markdown tables.

Ingests SciFact's first N abstracts (default 1,000) into a temporary home with
the given variant, timing the pipeline's phases (wall and process CPU: the
encoder for chunks and for sentences, the tokenizer inside it, chunking,
sentence splitting, Chroma writes), then runs onnxruntime's own profiler (one
thread) over a sample of the same texts for the share of each kind of op.
Wrapping the pipeline's functions is this tool's business only; nothing else
does it.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from eval.bench_common import ROOT

SCIFACT = ROOT / "eval" / "datasets" / "scifact"


def profile(n: int = 1000, variant: str = "int8") -> str:
    import ingest.pipeline as pipeline
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.library.embeddings import LocalEmbedder
    from eval.beir import load_corpus

    home = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
    embedder = LocalEmbedder(cache_dir=home / "models", variant=variant, engine="onnx")
    embedder.embed(["warm-up"])
    papers = load_corpus(SCIFACT)[:n]
    phases: dict[str, list] = collections.defaultdict(lambda: [0.0, 0.0, 0])

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                row = phases[name]
                row[0] += time.perf_counter() - wall
                row[1] += time.process_time() - cpu
                row[2] += 1
        return wrapper

    # The pipeline embeds a group's chunks, then its sentences: alternate calls.
    calls = [0]
    embed = embedder.embed

    def embed_bulk(texts, progress=False):
        calls[0] += 1
        return timed("encoder, chunks" if calls[0] % 2 else "encoder, sentences", embed)(texts)

    class _Tokenizer:
        def __init__(self, inner):
            self.inner = inner

        def encode_batch(self, texts):
            return timed("  tokenizing (inside the encoder)", self.inner.encode_batch)(texts)

    embedder.embed_bulk = embed_bulk
    embedder.__dict__["_model_tokenizer"] = _Tokenizer(embedder._model_tokenizer)
    app = App(Settings(home=home), embedder=embedder)
    library = app.library
    library.write = timed("Chroma writes", library.write)
    groups = pipeline._groups
    sentence_texts = pipeline.sentence_texts
    pipeline._groups = lambda todo, chunk, max_tokens: groups(todo, timed("chunking", chunk), max_tokens)
    pipeline.sentence_texts = timed("sentence splitting", sentence_texts)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        report = pipeline.ingest_papers(papers, library, embedder)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        pipeline._groups, pipeline.sentence_texts = groups, sentence_texts
    t0 = time.perf_counter()
    app.bm25()
    bm25 = time.perf_counter() - t0
    stats = embedder.stats
    lines = [f"{n} abstracts, {variant}: {report.chunks_embedded} chunks, {report.sentences_embedded} sentences, "
             f"{stats['tokens']:,} tokens ({stats['padded_tokens'] / max(stats['tokens'], 1) - 1:.1%} padding); "
             f"wall {wall:.1f} s, process CPU {cpu:.1f} s; BM25 build {bm25:.1f} s; load {os.getloadavg()}", "",
             "| phase | wall s | share | CPU s (all threads) | calls |", "|---|---|---|---|---|"]
    for name, (w, c, k) in sorted(phases.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {name} | {w:.1f} | {w / wall:.0%} | {c:.1f} | {k} |")
    lines += ["", *_ort_ops(embedder, papers[:60])]
    return "\n".join(lines)


def _ort_ops(embedder, papers) -> list[str]:
    """onnxruntime's profile (one thread) of the model over these papers' chunks and sentences: time per op type."""
    import onnxruntime as ort

    from assistant.library.embeddings import LocalEmbedder
    from ingest.chunking import make_chunker
    from ingest.sentences import sentence_texts

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.log_severity_level = 3
    session = ort.InferenceSession(str(embedder.model_path), options, providers=["CPUExecutionProvider"])
    one = LocalEmbedder(cache_dir=embedder.cache_dir, variant=embedder.variant, engine="onnx", threads=1)
    one.__dict__["session"] = session
    chunk = make_chunker("llama-index", one)
    one.embed([c.embed_text for p in papers for c in chunk(p, max_tokens=256)] + [t for p in papers for t in sentence_texts(p)])
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    ops: collections.Counter = collections.Counter()
    runs = run_us = 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"]
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            runs, run_us = runs + 1, run_us + e["dur"]
    kernels = sum(ops.values())
    lines = [f"onnxruntime, one thread: {runs} runs, {run_us / 1e6:.1f} s, {1 - kernels / max(run_us, 1):.0%} of it "
             "outside kernels", "", "| op | share of kernel time |", "|---|---|"]
    lines += [f"| {op} | {d / kernels:.0%} |" for op, d in ops.most_common(10)]
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    print(profile(int(args[0]) if args else 1000, args[1] if len(args) > 1 else "int8"))
