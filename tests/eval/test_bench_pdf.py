"""The PDF part of `assistant bench` on a folder of generated PDFs: the folder ingested as a whole process and
measured (not estimated), the folder again unchanged, the longest file alone, and the report's targets and section."""

from __future__ import annotations

import json

import pytest

from tests.ingest.pdf_papers import make_zephyr


@pytest.mark.slow
def test_bench_pdf__the_folder_is_ingested_as_a_user_does_and_measured(tmp_path):
    from eval.bench import BenchConfig, run_bench
    from eval.bench_report import write_report

    folder = tmp_path / "pdfs"
    folder.mkdir()
    make_zephyr(folder / "zephyr.pdf")
    make_zephyr(folder / "other.pdf", title="Thermal Drift of the Other Spectrometer", doi="10.5555/other.2024.0008")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"x" * 200)  # truncated: named, the others stored
    result = run_bench(BenchConfig(pdfs=folder, pdf_only=True, work=tmp_path / "work"))
    assert "errors" not in result, result.get("errors")
    pdf = result["pdf"]
    ing = pdf["ingest"]
    assert pdf["files"] == 3 and ing["papers"] == 2 and ing["pages"] == 8 and ing["chunks"] > 0
    assert ing["exit"] == 3 and [f.endswith("broken.pdf") for f in ing["files_failed"]] == [True]
    assert ing["seconds"] > ing["read_seconds"] > 0 and ing["embed_seconds"] > 0
    assert pdf["reingest"]["chunks"] == 0 and pdf["reingest"]["unchanged"] == 2
    assert {f["pages"] for f in pdf["per_file"] if f["pages"]} == {4}
    assert pdf["one_file"]["pages"] == 4 and pdf["one_file"]["seconds"] > 0 and "ingest" not in result  # --pdf-only
    report = write_report(result, tmp_path / "report")
    targets = {t["target"]: t for t in json.loads((report / "report.json").read_text())["targets"]}
    assert targets["pdf_folder_s"]["value"] == ing["seconds"] and targets["pdf_folder_s"]["met"] is None  # 3, not 85
    assert targets["pdf_25_pages_s"]["value"] == pdf["one_file"]["seconds"]
    text = (report / "report.md").read_text()
    assert "## PDF ingest" in text and "broken.pdf" in text and "estimate" not in text.lower()
