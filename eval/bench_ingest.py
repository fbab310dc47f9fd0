"""The ingest steps of the benchmark: the embedding variants side by side, end-to-end ingest, SciFact, resume.

* ``measure_variants``: on the same chunks (and the same abstracts' sentences),
  sentence-transformers on torch (fp32, today's ingest engine), ONNX fp32 and
  ONNX int8, timed in interleaved rounds (A B C, then C B A) so the machine's
  load falls on each alike; then the ingest pipeline with each engine into a
  fresh home (its own time beyond the encoder's is the pipeline's overhead),
  the re-ingest of the unchanged library, and ``assistant ingest`` as a whole
  process into a fresh home against a bare torch encoder on the same abstracts
  (title and abstract, cut at 256 tokens), again interleaved.
* ``measure_beir``: each variant ingests a BEIR corpus (SciFact) into a fresh
  home in a fresh process (chunks, sentence vectors, BM25), reports its time
  and peak memory, then scores the split's queries (nDCG@10).
* ``measure_resume``: ``assistant ingest`` of the corpus's first 1,000
  abstracts killed (SIGKILL) half-way through the time a whole run takes, then
  run again: the share of the chunks the rerun embeds.

Model files are built once before anything is timed (their build is reported
apart: it happens once per machine, not per ingest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from eval.bench_common import ROOT, bench_env, bench_settings, cli_command, load_average, peak_rss_mb, run_probe, timed_process

ENGINES = ("torch-fp32", "onnx-fp32", "onnx-int8")  # today's ingest engine first


def encoders(models: Path) -> dict:
    """The three engines, each warmed up (model loaded, model file built)."""
    from assistant.library.embeddings import LocalEmbedder

    out = {"torch-fp32": LocalEmbedder(engine="torch"),
           "onnx-fp32": LocalEmbedder(cache_dir=models, engine="onnx"),
           "onnx-int8": LocalEmbedder(cache_dir=models, variant="int8")}
    for enc in out.values():
        enc.embed(["warm-up"])
    return out


def _interleaved(encs: dict, inputs: dict[str, list[str]], rounds: int) -> dict:
    """{input: {engine: [seconds per round]}}: rounds alternate the order (A B C, C B A, ...)."""
    out: dict = {name: {e: [] for e in encs} for name in inputs}
    for r in range(rounds):
        order = list(encs) if r % 2 == 0 else list(reversed(encs))
        for engine in order:
            for name, texts in inputs.items():
                t0 = time.perf_counter()
                encs[engine].embed(texts)
                out[name][engine].append(time.perf_counter() - t0)
    return out


def measure_variants(cfg, home: Path, log: Callable[[str], None]) -> tuple[dict, dict]:
    """The engines on the same chunks, the pipeline with each, the re-ingest, and whole-process ingest vs bare torch.

    ``home`` receives the int8 library the later steps measure. Returns the section and what later steps need.
    """
    from assistant.app import App
    from eval.synthetic import read_bundled
    from ingest.chunking import make_chunker
    from ingest.sentences import sentence_texts

    models = home / "models"
    log("building / loading the model files and the three engines")
    t0 = time.perf_counter()
    encs = encoders(models)
    load_s = time.perf_counter() - t0
    papers = read_bundled([cfg.data])
    chunk = make_chunker("llama-index", encs["onnx-int8"])
    chunks = [chunk(p, max_tokens=256) for p in papers]
    texts = [c.embed_text for cs in chunks for c in cs]
    sentences = [t for p in papers for t in sentence_texts(p)]
    abstracts = [f"{p.title}. {p.abstract}" for p in papers]  # a bare encoder cuts each at 256 tokens
    log(f"encoders side by side: {len(texts)} chunks, {len(sentences)} sentences, {len(abstracts)} abstracts, "
        f"{cfg.rounds} interleaved rounds")
    timed = _interleaved(encs, {"chunks": texts, "sentences": sentences}, cfg.rounds)
    section: dict = {"papers": len(papers), "chunks": len(texts), "sentences": len(sentences),
                     "engines_load_seconds": load_s, "load_before": load_average(), "encoders": {}}
    for engine in encs:
        med = {name: float(np.median(timed[name][engine])) for name in timed}
        section["encoders"][engine] = {
            "chunks_seconds": timed["chunks"][engine], "sentences_seconds": timed["sentences"][engine],
            "chunks_per_s": len(texts) / med["chunks"], "sentences_per_s": len(sentences) / med["sentences"]}
    torch_cps = section["encoders"]["torch-fp32"]["chunks_per_s"]
    section["int8_vs_torch"] = section["encoders"]["onnx-int8"]["chunks_per_s"] / torch_cps
    section["fp32_vs_torch"] = section["encoders"]["onnx-fp32"]["chunks_per_s"] / torch_cps
    vecs = {e: encs[e].embed(texts) for e in encs}
    section["min_cosine_to_torch"] = {e: float(np.sum(vecs[e] * vecs["torch-fp32"], axis=1).min()) for e in encs}

    # The pipeline with each engine into a fresh home; torch as today (no sentence vectors).
    section["pipelines"] = {}
    for engine in reversed(ENGINES):
        target = home if engine == "onnx-int8" else home.parent / f"home-{engine}"
        sentences_on = engine != "torch-fp32"
        log(f"ingest pipeline, {engine}{'' if sentences_on else ' (no sentence vectors: today)'}")
        app = App(bench_settings(target, sentence_vectors=sentences_on), embedder=encs[engine])
        report = app.ingest([cfg.data])
        t0 = time.perf_counter()
        app.bm25()
        bm25_s = time.perf_counter() - t0
        enc = section["encoders"][engine]
        encoder_s = len(texts) / enc["chunks_per_s"] + (len(sentences) / enc["sentences_per_s"] if sentences_on else 0)
        section["pipelines"][engine] = {
            "sentence_vectors": sentences_on, "seconds": report.seconds, "bm25_seconds": bm25_s,
            "embed_seconds": report.embed_seconds, "chunks_per_s": report.chunks_embedded / report.seconds,
            "encoder_seconds": encoder_s, "overhead_seconds": report.seconds - encoder_s,
            "chunks": report.chunks_embedded, "sentences": report.sentences_embedded}
        if engine == "onnx-int8":
            reingest = app.ingest([cfg.data])
            section["reingest_seconds"], section["reingest_unchanged"] = reingest.seconds, reingest.unchanged
            ctx = {"app": app, "papers": papers, "chunks": chunks, "vectors": vecs["onnx-int8"], "embedder": encs["onnx-int8"]}
    section["process"] = measure_process_ingest(cfg.data, abstracts, encs["torch-fp32"], home.parent, cfg.rounds, log)
    section["load_after"] = load_average()
    return section, ctx


def measure_process_ingest(data: Path, abstracts: list[str], torch_enc, work: Path, rounds: int,
                           log: Callable[[str], None]) -> dict:
    """`assistant ingest DATA` as a whole process into a fresh home (with and without sentence vectors) against
    sentence-transformers encoding the same abstracts, interleaved; the models come from the per-user cache."""
    runs: dict[str, list[float]] = {"bare_torch": [], "ingest": [], "ingest_no_sentences": []}
    for r in range(rounds):
        log(f"whole-process ingest vs bare torch encoder, round {r + 1}/{rounds}")
        steps = ["bare_torch", "ingest", "ingest_no_sentences"]
        for step in steps if r % 2 == 0 else reversed(steps):
            if step == "bare_torch":
                t0 = time.perf_counter()
                torch_enc.embed(abstracts)
                runs[step].append(time.perf_counter() - t0)
                continue
            fresh = work / f"process-{step}-{r}"
            env = bench_env(fresh)
            if step == "ingest_no_sentences":
                env["ASSISTANT_SENTENCE_VECTORS"] = "false"
            got = timed_process(cli_command() + ["ingest", str(data), "--json"], env, timeout=1800)
            if got["rc"] != 0:
                raise RuntimeError(f"assistant ingest failed: {got['error']}")
            runs[step].append(got["seconds"])
    med = {k: float(np.median(v)) for k, v in runs.items()}
    return {"seconds": runs, "abstracts": len(abstracts), "vs_bare_torch": med["bare_torch"] / med["ingest"],
            "no_sentences_vs_bare_torch": med["bare_torch"] / med["ingest_no_sentences"]}


def measure_beir(cfg, work: Path, log: Callable[[str], None]) -> dict:
    """Each variant ingests the BEIR corpus into a fresh home in a fresh process, then scores the split."""
    out: dict = {"folder": str(cfg.beir), "variants": {}}
    for variant in cfg.beir_variants:
        log(f"{Path(cfg.beir).name}: ingest and score with {variant} (fresh process, fresh home)")
        home = work / f"beir-{variant}"
        try:
            out["variants"][variant] = run_probe("eval.bench_ingest", ["beir", str(home), str(cfg.beir), variant],
                                                 home, timeout=7200)
        except RuntimeError as exc:
            out["variants"][variant] = {"error": str(exc)}
    return out


def _beir_probe(home: Path, folder: Path, variant: str) -> dict:
    """In a fresh process: ingest (chunks, sentence vectors unless the variant says not, BM25), then nDCG@10."""
    from assistant.library.embeddings import LocalEmbedder
    from eval.beir import beir_app, index_corpus, load_qrels, load_queries, run_queries
    from eval.metrics import BEIR_MEASURES, evaluate

    engine, _, options = variant.partition("-")  # "int8", "fp32", "torch", "int8-nosent"
    settings = bench_settings(home, sentence_vectors=options != "nosent")
    if engine == "torch":
        embedder = LocalEmbedder(engine="torch")
    else:
        embedder = LocalEmbedder(cache_dir=home / "models", variant=engine, engine="onnx")
    started = time.perf_counter()
    embedder.embed(["warm-up"])
    load_s = time.perf_counter() - started
    app = beir_app(folder, settings, embedder)
    t0 = time.perf_counter()
    index = index_corpus(app, folder)
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    app.bm25()
    bm25_s = time.perf_counter() - t0
    peak = peak_rss_mb()
    qrels = load_qrels(folder, "test")
    queries = {q: t for q, t in load_queries(folder).items() if q in qrels}
    run = run_queries(app, queries, "hybrid")
    scores = evaluate(run, {q: qrels[q] for q in queries}, BEIR_MEASURES)["mean"]
    dense = evaluate(run_queries(app, queries, "dense"), {q: qrels[q] for q in queries}, BEIR_MEASURES)["mean"]
    return {"variant": variant, "model_load_seconds": load_s, "ingest_seconds": ingest_s, "bm25_seconds": bm25_s,
            "end_to_end_seconds": ingest_s + bm25_s, "chunks": index["embedded"], "sentences": index.get("sentences", 0),
            "papers": index["papers"], "peak_rss_mb": peak, "ndcg10": scores["nDCG@10"], "dense_ndcg10": dense["nDCG@10"],
            "recall100": scores["R@100"], "queries": len(queries), "padding": _padding(embedder)}


def _padding(embedder) -> float | None:
    stats = getattr(embedder, "stats", {})
    return stats["padded_tokens"] / stats["tokens"] - 1 if stats.get("tokens") else None


def measure_resume(cfg, work: Path, log: Callable[[str], None], n: int = 1000) -> dict:
    """`assistant ingest` of n abstracts killed half-way through a whole run's time; the rerun's share of chunks."""
    from eval.beir import load_corpus

    src = work / f"resume-{n}.jsonl"
    src.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n"
                           for p in load_corpus(Path(cfg.beir))[:n]))
    log(f"resume: a whole `assistant ingest` of {n} abstracts")
    whole = timed_process(cli_command() + ["ingest", str(src), "--json"], bench_env(work / "resume-whole"), timeout=3600)
    if whole["rc"] != 0:
        raise RuntimeError(f"assistant ingest failed: {whole['error']}")
    home = work / "resume-killed"
    log(f"resume: the same ingest killed after {whole['seconds'] / 2:.1f} s, then run again")
    proc = subprocess.Popen(cli_command() + ["ingest", str(src), "--json"], env=bench_env(home), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(whole["seconds"] / 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(cli_command() + ["ingest", str(src), "--json"], env=bench_env(home), cwd=ROOT,
                           capture_output=True, text=True, timeout=3600)
    if rerun.returncode != 0:
        raise RuntimeError(f"the rerun failed: {rerun.stderr.strip()[-300:]}")
    report = json.loads(rerun.stdout)
    total = _count_chunks(home)
    return {"abstracts": n, "whole_seconds": whole["seconds"], "killed_after_seconds": whole["seconds"] / 2,
            "rerun_chunks": report["chunks_embedded"], "chunks": total, "rerun_share": report["chunks_embedded"] / total,
            "rerun_seconds": report["seconds"], "stored_before_rerun": report["unchanged"]}


def _count_chunks(home: Path) -> int:
    code = ("from assistant.app import App; from eval.bench_common import bench_settings; from pathlib import Path; "
            f"print(App(bench_settings(Path({str(home)!r}))).library.count_chunks())")
    out = subprocess.run([sys.executable, "-c", code], env=bench_env(home), cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "beir":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(json.dumps(_beir_probe(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])))
