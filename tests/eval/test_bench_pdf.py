"""The PDF part of `assistant bench` on a generated PDF: pages/s with extraction and embedding apart, the
whole-process ingest, the estimates, and the report's targets and section."""

from __future__ import annotations

import json

import pytest

from tests.ingest.pdf_papers import make_zephyr


@pytest.mark.slow
def test_bench_pdf__measures_extraction_embedding_and_the_whole_process(tmp_path):
    from eval.bench import BenchConfig, run_bench
    from eval.bench_report import write_report

    folder = tmp_path / "pdfs"
    folder.mkdir()
    make_zephyr(folder / "zephyr.pdf")
    result = run_bench(BenchConfig(pdfs=folder, pdf_only=True, work=tmp_path / "work"))
    assert "errors" not in result, result.get("errors")
    [row] = result["pdf"]["files"]
    assert row["pages"] == 4 and row["chunks"] > 0 and row["reingest_chunks"] == 0
    assert row["extract_pages_per_s"] > 0 and row["read_seconds"] > 0 and row["embed_seconds"] > 0
    assert abs(row["read_seconds"] + row["embed_seconds"] + row["other_seconds"] - row["ingest_seconds"]) < 1e-6
    cold, est = result["pdf"]["cold_ingest"], result["pdf"]["estimate"]
    assert cold["pages"] == 4 and cold["seconds"] > row["ingest_seconds"]
    assert est["papers_85_seconds"] > est["paper_25_pages_seconds"] > 0 and "ingest" not in result  # --pdf-only
    report = write_report(result, tmp_path / "report")
    targets = {t["target"]: t for t in json.loads((report / "report.json").read_text())["targets"]}
    assert targets["pdf_25_pages_s"]["value"] == cold["seconds"] and targets["pdf_85_papers_s"]["met"] is not None
    assert "## PDF ingest" in (report / "report.md").read_text()
