"""The benchmark: synthetic libraries are deterministic, and a tiny full run writes a sane report (no timing asserts)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from assistant.core.types import Paper
from eval.synthetic import BasePaper, read_bundled, synthetic_items
from tests.conftest import FIXTURES
from tests.eval.test_beir import scifact_slice  # noqa: F401  (the fixture: a 60-document SciFact slice)


def _base(n: int = 5, dim: int = 8) -> list[BasePaper]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        v = rng.normal(size=dim).astype(np.float32)
        sentences = [f"Paper {i} finds result {j} about topic {i * 10 + j}." for j in range(6)]
        out.append(BasePaper(Paper(f"p{i}", f"Title number {i} on things", " ".join(sentences)), sentences, v / np.linalg.norm(v)))
    return out


def _flatten(batches):
    return [item for batch in batches for item in batch]


def test_synthetic__same_seed_gives_the_same_papers_chunks_and_unit_vectors():
    a = _flatten(synthetic_items(_base(), 50, seed=3, batch=7))
    b = _flatten(synthetic_items(_base(), 50, seed=3, batch=50))
    assert [p.paper_id for p, *_ in a] == [f"syn-{i:06d}" for i in range(50)]
    for (pa, ha, ca, va), (pb, hb, cb, vb) in zip(a, b):
        assert (pa.title, pa.abstract, ha) == (pb.title, pb.abstract, hb)
        assert [c.text for c in ca] == [c.text for c in cb]
        np.testing.assert_array_equal(va, vb)
        assert len(ca) == len(va) and all(c.paper_id == pa.paper_id for c in ca)
        np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    assert len({p.abstract for p, *_ in a}) == 50  # recombined, not copies
    other = _flatten(synthetic_items(_base(), 50, seed=4))
    assert [p.abstract for p, *_ in other] != [p.abstract for p, *_ in a]


def test_synthetic__growing_from_an_offset_adds_what_a_fresh_build_holds():
    whole = _flatten(synthetic_items(_base(), 30, seed=0))
    grown = _flatten(synthetic_items(_base(), 10, seed=0)) + _flatten(synthetic_items(_base(), 20, seed=0, offset=10))
    assert [(p.paper_id, p.abstract) for p, *_ in whole] == [(p.paper_id, p.abstract) for p, *_ in grown]


def test_synthetic__vectors_stay_near_their_source_papers():
    base = _base(dim=64)
    for paper, _, _, vectors in _flatten(synthetic_items(base, 20, seed=0)):
        best = (np.stack([b.vector for b in base]) @ vectors.T).max(axis=0)
        assert (best > 0.5).all(), paper.paper_id


@pytest.mark.slow
def test_bench__tiny_run_writes_json_markdown_and_charts(tmp_path, scifact_slice):  # noqa: F811
    from eval.bench import BenchConfig, run_bench
    from eval.bench_report import write_report

    data = tmp_path / "data"
    data.mkdir()
    for name in ("daily_papers.txt", "papers.jsonl"):
        shutil.copy(FIXTURES / name, data / name)
    cfg = BenchConfig(data=data, sizes=[200], queries=3, cold_reps=1, ui=True, llm=True, gpu=False,
                      work=tmp_path / "work", beir=scifact_slice, beir_variants=["int8"], rounds=1)
    folder = write_report(run_bench(cfg), tmp_path / "report")

    for name in ("report.json", "report.md", "latency_vs_size.png", "memory_vs_size.png",
                 "ingest_throughput.png", "cold_start.png"):
        assert (folder / name).stat().st_size > 0, name
    report = json.loads((folder / "report.json").read_text())
    assert "errors" not in report, report.get("errors")

    ingest = report["ingest"]
    papers = len(read_bundled([data]))  # the two fixture files share a paper
    assert ingest["papers"] == papers and ingest["chunks"] >= papers and ingest["sentences"] > papers
    assert set(ingest["encoders"]) == set(ingest["pipelines"]) == {"torch-fp32", "onnx-fp32", "onnx-int8"}
    assert ingest["min_cosine_to_torch"]["onnx-fp32"] > 0.9999 and ingest["min_cosine_to_torch"]["onnx-int8"] > 0.98
    for engine, pipeline in ingest["pipelines"].items():
        assert pipeline["chunks"] == ingest["chunks"] and pipeline["chunks_per_s"] > 0, engine
        assert pipeline["sentences"] == (0 if engine == "torch-fp32" else ingest["sentences"]), engine
    assert ingest["int8_vs_torch"] > 0 and ingest["reingest_unchanged"] == papers
    assert len(ingest["process"]["seconds"]["ingest"]) == 1 and ingest["process"]["vs_bare_torch"] > 0

    warm = report["warm"]
    for mode in ("dense", "bm25", "hybrid"):
        s = warm["search"][mode]
        assert s["n"] == 3 and 0 < s["p50"] <= s["p95"]
    assert warm["ask_extractive"]["total"]["n"] == 3
    assert warm["ask_llm"]["pipeline"]["p50"] > 0

    for name in ("search", "ask"):
        cold = report["cold"][name]
        assert cold["errors"] == [] and len(cold["seconds"]) == 1
        assert 20 < cold["peak_rss_mb"] < 4000  # the child's own peak, not this process's
    assert report["ui"]["answered"] and 0 < report["ui"]["page_seconds"] < 300

    [row] = report["scaling"]
    assert row["papers"] == 200 and row["chunks"] >= 200
    assert row["build"]["papers"] == 200 and row["build"]["bm25_seconds"] > 0
    assert row["search"]["latency"]["hybrid"]["n"] == 3 and row["search"]["peak_rss_mb"] > 0
    assert {t["target"] for t in report["targets"]} >= {"int8_vs_torch", "ingest_vs_bare_torch", "hybrid_p50_ms_100k", "ask_cold_s"}
    [int8] = report["beir"]["variants"].values()
    assert int8["papers"] == 60 and int8["sentences"] > int8["chunks"] >= 60
    assert int8["ndcg10"] > 0.6 and 0 < int8["peak_rss_mb"] < 4000 and int8["end_to_end_seconds"] > 0
    resume = report["resume"]
    assert resume["chunks"] >= 60 and 0 <= resume["rerun_share"] <= 1
    md = (folder / "report.md").read_text()
    assert "## Targets" in md and "## Scaling" in md and "Load average" in md and "| onnx-int8 |" in md
    assert "## scifact: each variant" in md and "## Resume after a kill" in md
