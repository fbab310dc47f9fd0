"""Performance benchmark (``assistant bench``): speed and memory of every user-facing path, in one run.

Measures, against the bundled library ingested into a temporary home:
the embedding engines side by side on the same chunks (torch fp32, ONNX fp32,
ONNX int8) and the ingest pipeline with each, whole-process ingest against a
bare torch encoder, re-ingest of the unchanged library (eval/bench_ingest.py),
warm search and ask latency (extractive, and an LLM
backend against an instant local server so only the pipeline's own time is
left), cold start of ``assistant search`` / ``assistant ask`` as whole
processes, the chat page's time until it answers, and peak memory. Then it
grows a synthetic library (eval/synthetic.py) through the given sizes and
measures search latency, BM25 build time and memory at each, each in a fresh
process so one size's memory does not leak into the next. Given a BEIR folder
(``--beir eval/datasets/scifact``), each variant ingests its corpus end to end
and is scored, and an ingest killed half-way is resumed. Given a folder of PDFs
(``--pdfs DIR``), the folder is ingested first as a user does it, `assistant ingest DIR`
as a whole process, and measured (eval/bench_pdf.py; ``--pdf-only`` stops there). Results go to
``report.json``, ``report.md`` and PNG charts (eval/bench_report.py).

Timings are wall-clock on whatever else the machine is doing: the report
records the load average before and after, and the CPU count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from eval.bench_common import (
    MODES,
    ROOT,
    bench_env,
    bench_settings,
    cli_command,
    free_port,
    load_average,
    peak_rss_mb,
    questions,
    run_probe,
    search_latency,
    stats,
    stop_process,
    timed_process,
)
from eval.bench_ingest import measure_beir, measure_resume, measure_variants
from eval.bench_scaling import measure_scaling


@dataclass
class BenchConfig:
    data: Path = ROOT / "data" / "daily-papers"
    sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    queries: int = 30  # distinct questions per latency measurement
    cold_reps: int = 3
    ui: bool = True
    llm: bool = True
    gpu: bool = True  # measured only when a CUDA device is visible
    seed: int = 0
    work: Path | None = None  # keep homes here (a synthetic library found there is grown, not rebuilt)
    rounds: int = 2  # interleaved rounds of the engines side by side
    beir: Path | None = None  # a BEIR folder (SciFact): each variant ingests it end to end and is scored
    beir_variants: list[str] = field(default_factory=lambda: ["int8", "int8-nosent", "fp32", "torch"])
    resume: bool = True  # with beir: an ingest of 1,000 of its abstracts killed half-way, then resumed
    pdfs: Path | None = None  # a folder of PDFs: their ingest speed, extraction and embedding apart (bench_pdf.py)
    pdf_only: bool = False  # measure only the PDFs


# -- the measurements ------------------------------------------------------------------


def measure_warm(cfg: BenchConfig, app, home: Path, log: Callable[[str], None]) -> dict:
    """Warm latency on the bundled library: search per mode, extractive ask, LLM pipeline overhead."""
    from assistant.app import App

    qs = questions(cfg.queries)
    log(f"warm search latency ({len(qs)} questions × {len(MODES)} modes)")
    section = {"search": search_latency(app, qs)}

    log("warm ask latency (extractive)")
    app.engine.ask(qs[0])
    total, retrieve, generate = [], [], []
    for q in qs:
        t0 = time.perf_counter()
        answer = app.engine.ask(q)
        total.append(1000 * (time.perf_counter() - t0))
        retrieve.append(answer.timings.get("retrieve_ms", 0.0))
        generate.append(answer.timings.get("generate_ms", 0.0))
    section["ask_extractive"] = {"total": stats(total), "retrieve": stats(retrieve), "backend": stats(generate)}

    if cfg.llm:
        from eval.llm_stub import StubLLM

        log("warm ask latency (openai-compatible backend, instant local server)")
        with StubLLM() as llm:
            llm_app = App(bench_settings(home, backend="openai-compatible", llm_base_url=llm.url, llm_model="stub"),
                          embedder=app.embedder, client=app.client)
            llm_app.engine.ask(qs[0])
            total, backend, model, pipeline = [], [], [], []
            for q in qs:
                seen = len(llm.handled_ms)
                t0 = time.perf_counter()
                answer = llm_app.engine.ask(q)
                total.append(1000 * (time.perf_counter() - t0))
                backend.append(answer.timings.get("generate_ms", 0.0))
                # A declined question never reaches the server (0 ms of model).
                model.append(sum(llm.handled_ms[seen:]))
                # The server answers at once, so what is left is the pipeline: retrieval,
                # prompt, HTTP client and SSE parsing, citation check.
                pipeline.append(total[-1] - model[-1])
        section["ask_llm"] = {"total": stats(total), "backend_call": stats(backend),
                              "server": stats(model), "pipeline": stats(pipeline)}
    return section


def measure_warm_fresh(cfg: BenchConfig, home: Path, log: Callable[[str], None]) -> dict:
    """``measure_warm`` in a fresh process that only opens the library, as a serving ``assistant ui`` does.

    In the benchmark's own process the ingest's leftovers and the torch model
    loaded for comparison share the two cores: there hybrid search measured
    28.7 ms p50 against 15.6-18.7 ms in fresh processes on the same library.
    """
    log(f"warm latency, in a fresh process ({cfg.queries} questions)")
    return run_probe("eval.bench", ["warm", str(home), str(cfg.queries), "1" if cfg.llm else "0"], home)


def _warm_probe(home: Path, queries: int, llm: bool) -> dict:
    from assistant.app import App

    app = App(bench_settings(home))
    return measure_warm(BenchConfig(queries=queries, llm=llm), app, home, lambda m: None)


def measure_cold(cfg: BenchConfig, home: Path, log: Callable[[str], None]) -> dict:
    """`assistant search` and `assistant ask` as whole new processes (wall time, peak RSS)."""
    q = "compare NPO and gradient ascent"
    env = bench_env(home)
    out = {}
    for name, args in (("search", ["search", q, "--json"]), ("ask", ["ask", q, "--json"])):
        log(f"cold start: assistant {name} × {cfg.cold_reps}")
        runs = [timed_process(cli_command() + args, env) for _ in range(cfg.cold_reps)]
        failed = [r for r in runs if r["rc"] != 0]
        out[name] = {"seconds": [r["seconds"] for r in runs], **stats([1000 * r["seconds"] for r in runs]),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                     "errors": [r["error"] for r in failed]}
    return out


def measure_ui(cfg: BenchConfig, home: Path, log: Callable[[str], None], timeout: float = 180.0) -> dict:
    """Start `assistant ui` on a free port; seconds until the page serves and until /ask answers."""
    import urllib.request

    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log("UI: start `assistant ui`, wait for a /ask answer")
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cli_command() + ["ui", "--port", str(port)], env=bench_env(home), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            page_s = None
            while page_s is None:
                if proc.poll() is not None:
                    out.seek(0)
                    raise RuntimeError(f"assistant ui exited with {proc.returncode}: {out.read()[-500:]!r}")
                if time.perf_counter() - started > timeout:
                    raise RuntimeError("assistant ui did not start in time")
                try:
                    urllib.request.urlopen(url, timeout=2).read(1)
                    page_s = time.perf_counter() - started
                except OSError:
                    time.sleep(0.1)
            client = Client(url, verbose=False)
            first = client.predict(question="compare NPO and gradient ascent", api_name="/ask")
            answer_s = time.perf_counter() - started
            t0 = time.perf_counter()
            client.predict(question="What is negative preference optimization?", api_name="/ask")
            second_ms = 1000 * (time.perf_counter() - t0)
            peak = peak_rss_mb(proc.pid)
        finally:
            stop_process(proc)
    return {"page_seconds": page_s, "first_answer_seconds": answer_s, "second_ask_ms": second_ms,
            "answered": bool(first.get("answer")), "declined": bool(first.get("declined")), "peak_rss_mb": peak}


def measure_gpu(base_texts: list[str], models: Path, log: Callable[[str], None], papers: int = 100_000) -> dict:
    """Bulk embedding (ingest) on a visible CUDA device, fp32: throughput, and the time to embed ``papers`` papers' chunks."""
    from assistant.library.embeddings import LocalEmbedder, cuda_visible

    if not cuda_visible():
        return {"available": False}
    enc = LocalEmbedder(batch_size=256, cache_dir=models, engine="auto", device="auto")
    device, engine = enc.bulk
    if device != "cuda":
        return {"available": False, "note": "a CUDA device is visible, but neither onnxruntime-gpu nor a CUDA torch is installed"}
    kind = "onnxruntime CUDA" if hasattr(engine, "run") else "torch CUDA"
    log(f"GPU: fp32 on {kind}")
    enc.embed_bulk(base_texts[:256])
    t0 = time.perf_counter()
    enc.embed_bulk(base_texts)
    cps = len(base_texts) / (time.perf_counter() - t0)
    texts = [base_texts[i % len(base_texts)] + f" ({i})" for i in range(2 * papers)]  # ~2 chunks per paper
    log(f"GPU: embedding {len(texts):,} chunks ({papers:,} papers)")
    t0 = time.perf_counter()
    enc.embed_bulk(texts)  # returns numpy: the device has finished
    seconds = time.perf_counter() - t0
    return {"available": True, "device": kind, "chunks_per_s_bundled": cps,
            "papers": papers, "chunks": len(texts), "seconds": seconds, "chunks_per_s": len(texts) / seconds}


# -- the run ---------------------------------------------------------------------------


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda m: None) -> dict:
    """Every measurement, in order; a step that fails is recorded with its error and the run goes on."""
    from eval.report import git_commit
    from eval.synthetic import base_papers

    started = time.perf_counter()
    work = Path(cfg.work) if cfg.work else Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    if home.exists():
        shutil.rmtree(home)  # the bundled library is always ingested from scratch
    result: dict = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "machine": _machine(),
        "git": git_commit(),
        "load_before": load_average(),
    }

    def step(name: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # one broken step must not lose the rest of an expensive run
            log(f"{name} failed: {type(exc).__name__}: {exc}")
            result.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
            return None

    try:
        if cfg.pdfs:
            from eval.bench_pdf import measure_pdfs

            result["pdf"] = step("pdf", measure_pdfs, cfg.pdfs, work, log)
        if cfg.pdf_only:
            return _done(result, started, work, cfg)
        got = step("ingest", measure_variants, cfg, home, log)
        ctx = None
        if got:
            result["ingest"], ctx = got
            result["warm"] = step("warm", measure_warm_fresh, cfg, home, log)
        result["cold"] = step("cold", measure_cold, cfg, home, log)
        if cfg.ui:
            result["ui"] = step("ui", measure_ui, cfg, home, log)
        if ctx and cfg.sizes:
            base = base_papers(ctx["papers"], ctx["chunks"], ctx["vectors"])
            result["scaling"] = step("scaling", measure_scaling, cfg, work, base, log)
            result["scaling_note"] = (
                "Synthetic papers recombine sentences of the bundled abstracts under new titles; their chunk "
                "vectors are normalised mixtures of the real chunk vectors of the source papers plus seeded "
                "Gaussian noise (std 0.01 per dimension), not model output (eval/synthetic.py).")
        if cfg.gpu and ctx:
            texts = [c.embed_text for cs in ctx["chunks"] for c in cs]
            result["gpu"] = step("gpu", measure_gpu, texts, home / "models", log)
        if cfg.beir:
            result["beir"] = step("beir", measure_beir, cfg, work, log)
            if cfg.resume:
                result["resume"] = step("resume", measure_resume, cfg, work, log)
    finally:
        if not cfg.work:
            shutil.rmtree(work, ignore_errors=True)
    return _done(result, started, work, cfg)


def _done(result: dict, started: float, work: Path, cfg: BenchConfig) -> dict:
    if not cfg.work:
        shutil.rmtree(work, ignore_errors=True)
    result["load_after"] = load_average()
    result["bench_peak_rss_mb"] = peak_rss_mb()
    result["seconds"] = time.perf_counter() - started
    return result


def _machine() -> dict:
    import platform

    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "warm":
    print(json.dumps(_warm_probe(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1")))
