"""The scaling step of the benchmark: synthetic libraries of growing size, each size measured in fresh processes.

A fresh process per measurement keeps one size's memory out of the next's: one
process times the BM25 build, another the searches with the cached index
(``python -m eval.bench_scaling probe ...``).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from assistant.core.settings import LOCAL_MODEL
from eval.bench_common import (
    bench_settings,
    peak_rss_mb,
    questions,
    rss_mb,
    run_probe,
    search_latency,
)

SYNTHETIC = "synthetic"


def measure_scaling(cfg, work: Path, base_papers: list, log: Callable[[str], None]) -> list[dict]:
    """Grow a synthetic library through cfg.sizes; at each size a fresh process builds BM25, another searches."""
    from assistant.app import App
    from eval.synthetic import build_library

    home = work / "synthetic-home"
    app = App(bench_settings(home, library=f"{SYNTHETIC}-s{cfg.seed}"), embedder=_NoEmbedder())
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
    try:
        return run_probe("eval.bench_scaling", ["probe", str(home), library, str(qfile), phase], home)
    except RuntimeError as exc:  # one size failing must not lose the others
        return {"error": str(exc)}


def probe(home: Path, library: str, qfile: Path, phase: str) -> dict:
    """Run in a fresh process: 'build' times the BM25 build; 'search' times searches with the cached index."""
    from assistant.app import App

    qs = json.loads(Path(qfile).read_text())
    base = rss_mb()
    app = App(bench_settings(home, library=library))
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
        out["latency"] = search_latency(app, qs)
    out.update(rss_start_mb=base, rss_end_mb=rss_mb(), peak_rss_mb=peak_rss_mb())
    return out


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "probe":
    print(json.dumps(probe(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5])))
