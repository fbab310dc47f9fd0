"""Performance benchmark (``assistant bench``): speed and memory of every user-facing path, in one run.

Measures, against the bundled library ingested into a temporary home:
ingest throughput next to the raw encoder's on the same chunks, re-ingest of
the unchanged library, warm search and ask latency (extractive, and an LLM
backend against an instant local server so only the pipeline's own time is
left), cold start of ``assistant search`` / ``assistant ask`` as whole
processes, the chat page's time until it answers, and peak memory. Then it
grows a synthetic library (eval/synthetic.py) through the given sizes and
measures search latency, BM25 build time and memory at each, each in a fresh
process so one size's memory does not leak into the next. Results go to
``report.json``, ``report.md`` and PNG charts (eval/bench_report.py).

Timings are wall-clock on whatever else the machine is doing: the report
records the load average before and after, and the CPU count.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.settings import LOCAL_MODEL

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = Path(__file__).resolve().parent / "datasets" / "dev.jsonl"
LIBRARY = "default"
SYNTHETIC = "synthetic"
MODES = ("dense", "bm25", "hybrid")


@dataclass
class BenchConfig:
    data: Path = ROOT / "data" / "daily-papers"
    sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    queries: int = 30  # distinct questions per latency measurement
    cold_reps: int = 3
    ui: bool = True
    llm: bool = True
    gpu: bool = True  # measured only when torch sees a CUDA device
    seed: int = 0
    work: Path | None = None  # keep homes here (a synthetic library found there is grown, not rebuilt)


# -- small measuring helpers -----------------------------------------------------------


def stats(ms: list[float]) -> dict:
    """p50 / p95 / mean / max of a list of milliseconds."""
    if not ms:
        return {"n": 0}
    a = np.asarray(ms, dtype=np.float64)
    return {"n": len(ms), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "max": float(a.max())}


def _proc_mb(field_name: str, pid: int | str = "self") -> float:
    """VmRSS (now) or VmHWM (peak) of a process, in MiB; 0 where /proc is unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int | str = "self") -> float:
    return _proc_mb("VmRSS", pid)


def peak_rss_mb(pid: int | str = "self") -> float:
    return _proc_mb("VmHWM", pid)


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def questions(n: int) -> list[str]:
    """Up to n distinct questions from the dev set (real users' kind of question)."""
    out = []
    if QUESTIONS.exists():
        for line in QUESTIONS.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return list(dict.fromkeys(out))[:n] or ["compare NPO and gradient ascent"]


def _cli() -> list[str]:
    """The installed ``assistant`` script next to this Python (what a user runs), else ``python -m``."""
    script = Path(sys.executable).parent / "assistant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant.cli"]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    return env


# Runs a command and reports its wall time and peak RSS. Linux keeps a process's
# peak RSS across exec, so a child forked straight from this (large) process
# would report at least this process's size; a small interpreter in between
# starts the count from its own ~10 MiB.
_TIMER = (
    "import json, os, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "s = time.perf_counter() - t\n"
    "err = p.stderr.decode('utf-8', 'replace').strip().splitlines()\n"
    "print(json.dumps({'seconds': s, 'rc': p.returncode, 'error': err[-1] if p.returncode and err else '',\n"
    "                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def timed_process(cmd: list[str], env: dict, timeout: float = 300.0) -> dict:
    """Run a command to the end: wall seconds (its own, without the timer's start-up), exit code, peak RSS."""
    proc = subprocess.run([sys.executable, "-c", _TIMER, *cmd], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"timer failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _settings(home: Path, library: str = LIBRARY, **extra):
    from assistant.settings import Settings

    return Settings(home=home, library=library, retriever="hybrid", **extra)


# -- the measurements ------------------------------------------------------------------


def measure_ingest(cfg: BenchConfig, home: Path, log: Callable[[str], None]) -> tuple[dict, dict]:
    """Ingest the bundled library into ``home`` (pipeline vs raw encoder), then re-ingest it unchanged.

    Returns the section and what the later steps need (papers, chunks, vectors, embedder).
    """
    from assistant.app import App
    from assistant.embeddings import LocalEmbedder
    from eval.synthetic import read_bundled
    from ingest.chunking import chunk_paper

    app = App(_settings(home))
    embedder = app.embedder
    log("loading the embedding model (exports it to ONNX on first use)")
    started = time.perf_counter()
    engine = embedder.active_engine if hasattr(embedder, "active_engine") else "torch"
    embedder.embed(["warm-up"])
    model_load_s = time.perf_counter() - started

    papers = read_bundled([cfg.data])
    max_tokens = min(app.settings.chunk_tokens, embedder.max_tokens)
    chunks = [chunk_paper(p, embedder.count_tokens, max_tokens=max_tokens) for p in papers]
    texts = [c.embed_text for cs in chunks for c in cs]

    def raw(enc) -> tuple[float, np.ndarray]:
        t0 = time.perf_counter()
        vectors = enc.embed(texts)
        return time.perf_counter() - t0, vectors

    # Raw encoder before and after the ingest: on a shared machine the load drifts.
    log(f"raw encoder ({engine}) on {len(texts)} chunks")
    raw_before, vectors = raw(embedder)
    log("ingest")
    report = app.ingest([cfg.data])
    log("raw encoder again, then re-ingest")
    raw_after, _ = raw(embedder)
    reingest = app.ingest([cfg.data])
    raw_s = (raw_before + raw_after) / 2
    section = {
        "papers": report.papers,
        "chunks": report.chunks_embedded,
        "engine": engine,
        "model_load_seconds": model_load_s,
        "pipeline_seconds": report.seconds,
        "pipeline_embed_seconds": report.embed_seconds,
        "pipeline_chunks_per_s": report.chunks_embedded / report.seconds if report.seconds else 0.0,
        "raw_seconds": [raw_before, raw_after],
        "raw_chunks_per_s": len(texts) / raw_s if raw_s else 0.0,
        "reingest_seconds": reingest.seconds,
        "reingest_unchanged": reingest.unchanged,
    }
    section["pipeline_vs_raw"] = section["pipeline_chunks_per_s"] / section["raw_chunks_per_s"] if raw_s else 0.0
    if engine == "onnx":
        log("raw encoder (sentence-transformers on torch), for comparison")
        torch_enc = LocalEmbedder(engine="torch")
        torch_enc.embed(["warm-up"])
        seconds, torch_vectors = raw(torch_enc)
        section["torch_raw_chunks_per_s"] = len(texts) / seconds
        cos = np.sum(vectors * torch_vectors, axis=1)
        section["onnx_vs_torch_min_cosine"] = float(cos.min())
        del torch_enc
    return section, {"app": app, "papers": papers, "chunks": chunks, "vectors": vectors, "embedder": embedder}


def _search_latency(app, qs: list[str]) -> dict:
    searcher = app.searcher
    out = {}
    for mode in MODES:
        app.search(qs[0], mode=mode)  # warm: Chroma, BM25 index, ONNX session
        ms = []
        for q in qs:
            # A user's question is new to the process: its embedding is part of the cost.
            searcher._query_vectors.clear()
            t0 = time.perf_counter()
            app.search(q, mode=mode)
            ms.append(1000 * (time.perf_counter() - t0))
        out[mode] = stats(ms)
    return out


def measure_warm(cfg: BenchConfig, app, home: Path, log: Callable[[str], None]) -> dict:
    """Warm latency on the bundled library: search per mode, extractive ask, LLM pipeline overhead."""
    from assistant.app import App

    qs = questions(cfg.queries)
    log(f"warm search latency ({len(qs)} questions × {len(MODES)} modes)")
    section = {"search": _search_latency(app, qs)}

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
            llm_app = App(_settings(home, backend="openai-compatible", llm_base_url=llm.url, llm_model="stub"),
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


def measure_cold(cfg: BenchConfig, home: Path, log: Callable[[str], None]) -> dict:
    """`assistant search` and `assistant ask` as whole new processes (wall time, peak RSS)."""
    q = "compare NPO and gradient ascent"
    env = _env(home)
    out = {}
    for name, args in (("search", ["search", q, "--json"]), ("ask", ["ask", q, "--json"])):
        log(f"cold start: assistant {name} × {cfg.cold_reps}")
        runs = [timed_process(_cli() + args, env) for _ in range(cfg.cold_reps)]
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
        proc = subprocess.Popen(_cli() + ["ui", "--port", str(port)], env=_env(home), cwd=ROOT,
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
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"page_seconds": page_s, "first_answer_seconds": answer_s, "second_ask_ms": second_ms,
            "answered": bool(first.get("answer")), "declined": bool(first.get("declined")), "peak_rss_mb": peak}


def measure_scaling(cfg: BenchConfig, work: Path, base_papers: list, log: Callable[[str], None]) -> list[dict]:
    """Grow a synthetic library through cfg.sizes; at each size a fresh process builds BM25, another searches."""
    from assistant.app import App
    from eval.synthetic import build_library

    home = work / "synthetic-home"
    app = App(_settings(home, library=f"{SYNTHETIC}-s{cfg.seed}"), embedder=_NoEmbedder())
    # The probes embed queries: give them the ONNX export made during the ingest step.
    if (work / "home" / "models").exists():
        shutil.copytree(work / "home" / "models", home / "models", dirs_exist_ok=True)
    qfile = work / "questions.json"
    qfile.write_text(json.dumps(questions(cfg.queries)))
    rows = []
    for size in sorted(cfg.sizes):
        have = app.library.count_papers()
        if have > size:
            log(f"scaling: skip {size:,} papers (the kept library already holds {have:,})")
            continue
        built = {"papers": 0, "chunks": 0, "write_seconds": 0.0}
        if have < size:
            log(f"scaling: writing synthetic papers {have:,}..{size:,}")
            built = build_library(app.library, base_papers, size, seed=cfg.seed, start=have)
        row = {"papers": size, "chunks": app.library.count_chunks(), "written": built["papers"],
               "write_seconds": built["write_seconds"],
               "write_chunks_per_s": built["chunks"] / built["write_seconds"] if built["write_seconds"] else None}
        log(f"scaling: {size:,} papers — BM25 build, then search latency, each in a fresh process")
        for phase in ("build", "search"):
            result = _probe(home, app.settings.library, qfile, phase)
            row[phase] = result
        rows.append(row)
    return rows


class _NoEmbedder:
    """Stands in for the model where only the store is written (synthetic vectors come ready-made)."""

    name = LOCAL_MODEL
    max_tokens = 256

    def embed(self, texts, progress=False):
        raise RuntimeError("the synthetic library writer never embeds")


def _probe(home: Path, library: str, qfile: Path, phase: str) -> dict:
    cmd = [sys.executable, "-m", "eval.bench", "probe", str(home), library, str(qfile), phase]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def probe(home: Path, library: str, qfile: Path, phase: str) -> dict:
    """Run in a fresh process: 'build' times the BM25 build; 'search' times searches with the cached index."""
    from assistant.app import App

    qs = json.loads(Path(qfile).read_text())
    base = rss_mb()
    app = App(_settings(home, library=library))
    t0 = time.perf_counter()
    count = app.library.count_papers()
    out = {"papers": count, "open_seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    app.bm25()
    out["bm25_seconds"] = time.perf_counter() - t0  # a build in phase 'build', a cached load in 'search'
    out["rss_after_bm25_mb"] = rss_mb()
    folder = next((p for p in (home / "bm25").rglob("ids.json")), None)
    if folder:
        out["bm25_disk_mb"] = sum(f.stat().st_size for f in folder.parent.iterdir()) / 2**20
    if phase == "search":
        t0 = time.perf_counter()
        app.search(qs[0], mode="dense")
        out["first_dense_ms"] = 1000 * (time.perf_counter() - t0)
        out["latency"] = _search_latency(app, qs)
    out.update(rss_start_mb=base, rss_end_mb=rss_mb(), peak_rss_mb=peak_rss_mb())
    return out


def measure_gpu(base_texts: list[str], log: Callable[[str], None], papers: int = 100_000) -> dict:
    """Embedding throughput on a CUDA GPU and the time to embed ``papers`` synthetic papers' chunks."""
    try:
        import torch
    except ImportError:
        return {"available": False}
    if not torch.cuda.is_available():
        return {"available": False}
    from assistant.embeddings import LocalEmbedder

    log(f"GPU: {torch.cuda.get_device_name(0)}")
    enc = LocalEmbedder(batch_size=256, device="cuda", engine="torch")
    enc.embed(base_texts[:256])
    t0 = time.perf_counter()
    enc.embed(base_texts)
    cps = len(base_texts) / (time.perf_counter() - t0)
    texts = [base_texts[i % len(base_texts)] + f" ({i})" for i in range(2 * papers)]  # ~2 chunks per paper
    log(f"GPU: embedding {len(texts):,} chunks ({papers:,} papers)")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    enc.embed(texts)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"available": True, "device": torch.cuda.get_device_name(0), "chunks_per_s_bundled": cps,
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
        got = step("ingest", measure_ingest, cfg, home, log)
        ctx = None
        if got:
            result["ingest"], ctx = got
            result["warm"] = step("warm", measure_warm, cfg, ctx["app"], home, log)
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
            result["gpu"] = step("gpu", measure_gpu, texts, log)
    finally:
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


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "probe":
    print(json.dumps(probe(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5])))
