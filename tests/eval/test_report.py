"""Reports: the files every run writes, masked configuration, and run comparison."""

from __future__ import annotations

import json

import pytest

from assistant.core.errors import UserError
from assistant.core.settings import Settings
from eval.report import compare_runs, load_report, write_report


def _result(recall: float, fusion: str = "convex") -> dict:
    settings = Settings(llm_api_key="sk-secret-value-1234", fusion=fusion)
    return {
        "retriever": "hybrid", "library": "default", "k": 5,
        "groups": {"lookup": {"R@5": recall, "RR@10": 1.0, "n": 2}, "overall": {"R@5": recall, "RR@10": 1.0, "n": 2}},
        "per_question": [{"id": "q1", "type": "lookup", "question": "?", "gold": ["p1"], "ranks": {"p1": 7},
                          "top": [{"paper_id": "p9", "title": "Wrong Paper", "score": 1.0}],
                          "metrics": {"R@5": 0.0, "nDCG@10": 0.3}}],
        "unanswerable": [{"id": "u1", "question": "?", "top_dense": 0.21, "top_title": "Near Miss"}],
        "settings": settings,
    }


def test_write_report__writes_json_markdown_and_charts_with_secrets_masked(tmp_path):
    folder = write_report(_result(0.5), "retrieval", "run-a", tmp_path)
    assert {p.name for p in folder.iterdir()} == {"report.json", "report.md", "metrics.png", "ndcg_hist.png"}
    text = (folder / "report.json").read_text()
    assert "sk-secret-value-1234" not in text
    report = json.loads(text)
    assert report["config"]["llm_api_key"].startswith("****") and report["kind"] == "retrieval"
    assert set(report["git"]) == {"commit", "dirty"}
    md = (folder / "report.md").read_text()
    assert "| lookup | 2 |" in md and "Wrong Paper" in md and "u1: 0.210" in md


def test_write_report__default_run_name_is_kind_and_timestamp(tmp_path):
    folder = write_report(_result(0.5), "retrieval", root=tmp_path)
    assert folder.name.startswith("retrieval-20") and load_report(folder.name, tmp_path)["run"] == folder.name


def test_write_report__rejects_a_run_name_that_is_a_path(tmp_path):
    with pytest.raises(UserError, match="bad run name"):
        write_report(_result(0.5), "retrieval", "../escape", tmp_path)


def test_compare_runs__tabulates_differences_and_config_changes(tmp_path):
    write_report(_result(0.5), "retrieval", "a", tmp_path)
    write_report(_result(0.75, fusion="rrf"), "retrieval", "b", tmp_path)
    table = compare_runs("a", "b", tmp_path)
    assert "| overall | recall@5 | 0.500 | 0.750 | +0.250 |" in table
    assert "| overall | MRR@10 | 1.000 | 1.000 | 0.000 |" in table
    assert "fusion: convex → rrf" in table


def test_compare_cli__unknown_run_is_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, ["eval", "compare", "nope", "also-nope", "--reports-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no report for run 'nope'" in result.output
