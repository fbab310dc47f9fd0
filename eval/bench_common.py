"""Measuring helpers shared by the benchmark's steps (eval/bench.py, eval/bench_scaling.py).

Percentiles, process memory from /proc, whole-process timing with peak RSS,
the question list, and warm search latency as the benchmark defines it (a new
question each time, so the query embedding is part of the cost).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = Path(__file__).resolve().parent / "datasets" / "dev.jsonl"
LIBRARY = "default"
MODES = ("dense", "bm25", "hybrid")

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


def cli_command() -> list[str]:
    """The installed ``assistant`` script next to this Python (what a user runs), else ``python -m``."""
    script = Path(sys.executable).parent / "assistant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant.cli"]


def bench_env(home: Path) -> dict:
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
    "out = open(os.environ['BENCH_STDOUT'], 'wb') if os.environ.get('BENCH_STDOUT') else subprocess.DEVNULL\n"
    "p = subprocess.run(sys.argv[1:], stdout=out, stderr=subprocess.PIPE)\n"
    "s = time.perf_counter() - t\n"
    "err = p.stderr.decode('utf-8', 'replace').strip().splitlines()\n"
    "print(json.dumps({'seconds': s, 'rc': p.returncode, 'error': err[-1] if p.returncode and err else '',\n"
    "                  'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def timed_process(cmd: list[str], env: dict, timeout: float = 300.0, stdout: Path | None = None) -> dict:
    """Run a command to the end: wall seconds (its own, without the timer's start-up), exit code, peak RSS.
    ``stdout``: a file that receives the command's output (else it is dropped)."""
    env = dict(env, BENCH_STDOUT=str(stdout)) if stdout else env
    proc = subprocess.run([sys.executable, "-c", _TIMER, *cmd], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"timer failed: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_probe(module: str, args: list[str], home: Path, timeout: float = 1800.0) -> dict:
    """Run ``python -m module args`` in a fresh process on ``home``; its last stdout line is the JSON result.

    A failed probe raises RuntimeError with the last line of its stderr.
    """
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=bench_env(home),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or [f"{module} failed"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """Terminate a child server, and kill it if it has not gone after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_settings(home: Path, library: str = LIBRARY, **extra):
    from assistant.core.settings import Settings

    return Settings(home=home, library=library, retriever="hybrid", **extra)


def search_latency(app, qs: list[str]) -> dict:
    searcher = app.searcher
    out = {}
    for mode in MODES:
        app.search(qs[0], mode=mode)  # warm: Chroma, BM25 index, ONNX session
        ms = []
        for q in qs:
            # A user's question is new to the process: its embedding is part of the cost.
            searcher.vectors.clear()
            t0 = time.perf_counter()
            app.search(q, mode=mode)
            ms.append(1000 * (time.perf_counter() - t0))
        out[mode] = stats(ms)
    return out
