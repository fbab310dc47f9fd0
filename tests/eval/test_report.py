"""Reports: the files every run writes, masked configuration, and run comparison."""

from __future__ import annotations

import json
from pathlib import Path

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


# -- inputs, answer reports and significance ------------------------------------------------

# Reports written before the harness recorded its inputs and renamed its metrics (the reference reports of
# 2026-11-23, kept as fixtures: eval/reports/reference/ holds the current ones).
OLD_REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


def _answers_result(answered: list[float], inputs: dict | None = None, *, latency: float = 100.0) -> dict:
    """An answers result: answerable lookups with ``answered`` per question, plus unanswerables (no fact coverage)."""
    rows = [{"id": f"a{i}", "type": "lookup", "answered": v, "key_fact_coverage": v, "latency_ms": latency + i}
            for i, v in enumerate(answered)]
    rows += [{"id": f"u{i}", "type": "unanswerable", "answered": None, "key_fact_coverage": None,
              "near_miss_handled": 0.0, "latency_ms": latency} for i in range(3)]

    def line(subset):
        vals = lambda k: [r[k] for r in subset if r.get(k) is not None]  # noqa: E731
        mean = lambda k: sum(vals(k)) / len(vals(k)) if vals(k) else None  # noqa: E731
        return {"answered": mean("answered"), "key_fact_coverage": mean("key_fact_coverage"),
                "near_miss_handled": mean("near_miss_handled"), "latency_p50_ms": latency, "n": len(subset)}

    groups = {t: line([r for r in rows if r["type"] == t]) for t in ("lookup", "unanswerable")}
    groups["overall"] = line(rows)
    return {"retriever": "hybrid", "library": "default", "backend": "extractive", "model": "m", "judge": "not run",
            "groups": groups, "per_answer": rows, "settings": Settings(), "inputs": inputs or {}}


def test_write_report__records_what_the_run_ran_on(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "?"}\n\n{"id": "b", "question": "?"}\n')
    result = dict(_result(0.5), questions_file=str(questions))
    inputs = json.loads((write_report(result, "retrieval", "r", tmp_path) / "report.json").read_text())["inputs"]
    assert inputs["questions"]["questions"] == 2 and len(inputs["questions"]["sha256"]) == 64
    assert inputs["library"] is None  # only a runner that reads its library can fingerprint it
    assert {"judge.md", "answer.md"} <= set(inputs["prompts"]["files"]) and len(inputs["prompts"]["sha256"]) == 64
    assert inputs["packages"]["numpy"] and "llama-index-core" in inputs["packages"] and len(inputs["settings_sha256"]) == 64
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"- questions: {inputs['questions']['sha256'][:12]} (2 in" in md and "- library: not recorded" in md


def test_library_fingerprint__ignores_order_and_sees_a_changed_abstract():
    from assistant.core.types import Paper
    from eval.report import library_fingerprint

    a, b = Paper("p1", "T1", "one"), Paper("p2", "T2", "two")
    assert library_fingerprint([a, b]) == library_fingerprint([b, a]) and library_fingerprint([a, b])["papers"] == 2
    assert library_fingerprint([a, Paper("p2", "T2", "two!")])["sha256"] != library_fingerprint([a, b])["sha256"]


def test_compare_runs__old_answer_reports_with_unmeasured_metrics_compare_without_a_traceback():
    # The old dev-answers report has metrics that are None in both runs (unanswerable fact coverage),
    # which made the old comparison crash with a TypeError; its old metric names read as the new ones.
    table = compare_runs(OLD_REPORTS / "old-dev-answers", OLD_REPORTS / "old-dev-answers")
    assert "| unanswerable | key_fact_coverage | - | - | - | 0 | - | - | - | n/a |" in table
    assert "| overall | decline_accuracy | 0.846 | 0.846 | 0.000 | 65 | 0.000 | [0.000, 0.000] | 1.000 | no |" in table
    assert "- questions: not recorded in either run" in table and "- packages: not recorded in either run" in table
    assert "- settings:" not in table and "- code:" not in table
    vs_new = compare_runs(OLD_REPORTS / "old-dev-answers", OLD_REPORTS / "old-dev-retrieval")
    assert "- kind: answers → retrieval" in vs_new and "Only in A: citation_validity" in vs_new
    assert "MRR@10" in next(line for line in vs_new.splitlines() if line.startswith("Only in B: "))


def test_compare_runs__paired_test_over_shared_questions_says_which_differences_are_real(tmp_path):
    write_report(_answers_result([0.0] * 20), "answers", "a", tmp_path)
    write_report(_answers_result([1.0] * 20), "answers", "b", tmp_path)
    write_report(_answers_result([0.0] * 19 + [1.0]), "answers", "c", tmp_path)
    real = compare_runs("a", "b", tmp_path)
    assert "| lookup | answered | 0.000 | 1.000 | +1.000 | 20 | +1.000 | [+1.000, +1.000] | <0.001 | yes |" in real
    noise = compare_runs("a", "c", tmp_path)
    row = next(line for line in noise.splitlines() if line.startswith("| lookup | answered |"))
    assert row.startswith("| lookup | answered | 0.000 | 0.050 | +0.050 | 20 | +0.050 | [0.000, +") and row.endswith("| 1.000 | no |")
    # Unmeasured on both sides: no difference, no test, no crash.
    assert "| unanswerable | answered | - | - | - | 0 | - | - | - | n/a |" in real
    assert compare_runs("a", "c", tmp_path) == noise  # seeded: the same reports give the same figures


def test_compare_runs__names_the_inputs_that_differ(tmp_path):
    from eval.report import package_versions, prompts_fingerprint

    prompts = prompts_fingerprint()
    edited = {"sha256": "0" * 64, "files": dict(prompts["files"], **{"judge.md": "f" * 64})}
    old_numpy = dict(package_versions(), numpy="1.0.0")
    write_report(_answers_result([1.0] * 3, {"questions": {"sha256": "a" * 64, "questions": 65},
                                            "library": {"sha256": "c" * 64, "papers": 241}}), "answers", "a", tmp_path)
    write_report(_answers_result([1.0] * 3, {"questions": {"sha256": "b" * 64, "questions": 95},
                                            "library": {"sha256": "c" * 64, "papers": 241},
                                            "prompts": edited, "packages": old_numpy}), "answers", "b", tmp_path)
    table = compare_runs("a", "b", tmp_path)
    assert "- questions: differ (aaaaaaaaaaaa, 65 questions → bbbbbbbbbbbb, 95 questions)" in table
    assert "library" not in table.split("| group |")[0]  # the same library is not reported as a change
    assert "- prompts: differ (judge.md)" in table
    assert "Only in" not in table
    assert f"numpy {package_versions()['numpy']} → 1.0.0" in table


def test_compare_cli__two_answer_reports_print_the_significance_table(tmp_path):
    from typer.testing import CliRunner

    from assistant.cli import app

    write_report(_answers_result([0.0] * 10), "answers", "a", tmp_path)
    write_report(_answers_result([1.0] * 10), "answers", "b", tmp_path)
    result = CliRunner().invoke(app, ["eval", "compare", "a", "b", "--reports-dir", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "| overall | answered | 0.000 | 1.000 | +1.000 |" in result.output and "(seed 3)" in result.output


def test_compare_runs__beir_reports_are_tested_per_query(tmp_path):
    def beir(shift: float) -> dict:
        per_query = {f"q{i}": {"nDCG@10": min(1.0, i / 30 + shift)} for i in range(30)}
        mean = sum(v["nDCG@10"] for v in per_query.values()) / 30
        return {"dataset": "scifact", "split": "test", "retriever": "hybrid", "library": "beir-scifact",
                "metrics": {"nDCG@10": mean}, "per_query": per_query, "queries": 30, "index": {"reused": True},
                "settings": Settings()}

    write_report(beir(0.0), "beir", "a", tmp_path)
    write_report(beir(0.1), "beir", "b", tmp_path)
    row = next(line for line in compare_runs("a", "b", tmp_path).splitlines() if line.startswith("| overall | nDCG@10"))
    assert "| 30 | +0.0" in row and row.endswith("| <0.001 | yes |")


def test_compare_runs__questions_added_in_one_run_move_the_figures_but_not_the_paired_test(tmp_path):
    write_report(_answers_result([0.0] * 20), "answers", "a", tmp_path)
    write_report(_answers_result([0.0] * 20 + [1.0] * 5), "answers", "b", tmp_path)
    table = compare_runs("a", "b", tmp_path)
    assert "Questions: 23 in both runs, 0 only in A, 5 only in B; significance uses those in both." in table
    assert "| lookup | answered | 0.000 | 0.200 | +0.200 | 20 | 0.000 | [0.000, 0.000] | 1.000 | no |" in table
