"""The ``assistant`` command: a thin Typer shell over App and the answer/eval functions.

Every command turns user errors into one line on stderr and a non-zero exit;
tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from assistant.app import load_app, load_settings
from assistant.core.backends import backends
from assistant.core.errors import BackendError, UserError

DEFAULT_DATA = Path("data")

Library = Annotated[Optional[str], typer.Option("--library", "-l", help="Library name (default: 'default').")]
ChromaUrl = Annotated[Optional[str], typer.Option("--chroma-url", help="Chroma server URL, http://host:port.")]
Retriever = Annotated[Optional[str], typer.Option("--retriever", "-r", help="hybrid, dense or bm25.")]
TopK = Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, help="Number of papers.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class _Commands(TyperGroup):
    """The error boundary of every command (eval's included): a user error is one line, a bug says where its trace is."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits: Typer prints them
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            where = _write_trace(exc)
            typer.echo(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))}", err=True)
            typer.echo(f"This is a bug in the assistant, not in your input; the full trace is in {where} "
                       "(or run again with --debug).", err=True)
            raise typer.Exit(2) from None


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _write_trace(exc: BaseException) -> Path:
    """Write the traceback to <home>/logs/ (the temp folder when home cannot be written); returns the file."""
    import os
    import tempfile
    import traceback
    from datetime import datetime

    text = "".join(traceback.format_exception(exc))
    home = Path(os.environ.get("ASSISTANT_HOME") or "~/.research-assistant").expanduser()
    name = f"error-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(" ".join(sys.argv) + "\n\n" + text)
            return folder / name
        except OSError:
            continue
    return Path("(could not be written)")


app = typer.Typer(
    cls=_Commands,
    help="Research assistant: cited answers over a library of paper abstracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
papers_app = typer.Typer(help="Browse the papers in a library.", no_args_is_help=True)
app.add_typer(papers_app, name="papers")


@app.callback()
def _options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


def _print_json(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


@app.command()
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders (default: data/).")] = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Force a format: daily-papers, json, jsonl, arxiv, hf-daily, csv, bibtex.")] = None,
    as_json: AsJson = False,
) -> None:
    """Read paper files into a library (unchanged papers are not embedded again)."""
    from ingest.readers import FORMATS

    if fmt and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    a = load_app(library=library, chroma_url=chroma_url)
    report = a.ingest(paths or [DEFAULT_DATA], fmt=fmt, progress=not as_json and sys.stderr.isatty())
    if as_json:
        _print_json(report.to_dict())
    else:
        for line in report.lines():
            typer.echo(line)
    if not report.ok:
        typer.echo("error: nothing could be ingested", err=True)
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Number of papers.")] = 10,
    retriever: Retriever = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    as_json: AsJson = False,
) -> None:
    """Find the papers most relevant to a query."""
    a = load_app(library=library, chroma_url=chroma_url, retriever=retriever)
    a.require_papers()
    hits = a.search(query, k=k)
    if as_json:
        _print_json([{k_: v for k_, v in h.to_dict().items() if k_ != "abstract"} for h in hits])
        return
    if not hits:
        typer.echo("no matching papers")
    for i, h in enumerate(hits, 1):
        typer.echo(f"{i:>2}. {h.title}  [{h.paper_id}]  score {h.score:.3f}")
        if h.chunks:
            snippet = h.chunks[0]
            typer.echo(f"    {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


@papers_app.command("list")
def papers_list(library: Library = None, chroma_url: ChromaUrl = None, as_json: AsJson = False) -> None:
    """List the papers in a library."""
    a = load_app(library=library, chroma_url=chroma_url)
    papers = sorted(a.library.iter_papers(), key=lambda p: p.title.lower())
    if as_json:
        _print_json([{"paper_id": p.paper_id, "title": p.title, "date": p.date} for p in papers])
        return
    for p in papers:
        typer.echo(f"{p.paper_id}  {p.title}")
    typer.echo(f"{len(papers)} papers", err=True)


@papers_app.command("show")
def papers_show(
    paper_id: Annotated[str, typer.Argument(help="A paper id from `papers list`.")],
    library: Library = None,
    chroma_url: ChromaUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show one paper: title, metadata and the full abstract."""
    a = load_app(library=library, chroma_url=chroma_url)
    found = a.library.get_papers([paper_id])
    if not found:
        raise UserError(f"no paper {paper_id!r} in library {a.settings.library!r} (see `assistant papers list`)")
    p = found[0]
    if as_json:
        _print_json(p.to_dict())
        return
    typer.echo(p.title)
    for label, value in (("id", p.paper_id), ("authors", ", ".join(p.authors)), ("date", p.date), ("url", p.url), ("source", p.source)):
        if value:
            typer.echo(f"{label}: {value}")
    typer.echo("")
    typer.echo(p.abstract)


@app.command()
def libraries(chroma_url: ChromaUrl = None, as_json: AsJson = False) -> None:
    """List the libraries in the store."""
    from assistant.library.store import list_libraries

    a = load_app(chroma_url=chroma_url)
    rows = list_libraries(a.client)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no libraries yet: run `assistant ingest`")
    for r in rows:
        typer.echo(f"{r['library']:<20} {r['embedding_model']:<24} {r['papers']:>7} papers {r['chunks']:>8} chunks")


@app.command("backends")
def list_backends(as_json: AsJson = False) -> None:
    """The answer backends (from the registry and installed plugins), what each needs, and which are ready."""
    from assistant.core.backends import missing_settings

    settings = load_settings()
    rows = [{"name": spec.name, "description": spec.description, "options": list(spec.options), "plugin": spec.plugin,
             "missing": missing_settings(spec, settings), "selected": spec.name == settings.backend}
            for spec in backends().values()]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        state = "selected" if r["selected"] else ("ready" if not r["missing"] else "needs " + ", ".join(r["missing"]))
        typer.echo(f"{r['name']:<20} {state}")
        typer.echo(f"    {r['description']}")
        if r["options"]:
            typer.echo(f"    settings: {', '.join(r['options'])}")


@app.command()
def config(as_json: AsJson = False) -> None:
    """Show the effective configuration (secrets masked)."""
    values = load_settings().masked()
    if as_json:
        _print_json(values)
        return
    for key, value in values.items():
        typer.echo(f"{key} = {value}")


Backend = Annotated[Optional[str], typer.Option("--backend", "-b", help=f"Answer backend: {', '.join(backends())} "
                                                 "(`assistant backends` says what each needs).")]
Model = Annotated[Optional[str], typer.Option("--model", help="LLM model name (LLM backends).")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL (openai-compatible backend).")]


def _answer_app(library, chroma_url, backend, model, base_url, **overrides):
    """An App for the commands that answer (ask, summarize, chat, ui): the backend options plus their own."""
    return load_app(library=library, chroma_url=chroma_url, backend=backend, llm_model=model,
                llm_base_url=base_url, **overrides)


def _run_answer(a, question: str, as_json: bool, **kwargs):
    """Stream one answer to the terminal (or print its JSON); returns the Answer."""
    answer = None
    try:
        for event in a.engine.stream(question, **kwargs):
            if event.kind == "delta" and not as_json:
                typer.echo(event.text, nl=False)
                sys.stdout.flush()
            elif event.kind == "done":
                answer = event.answer
    except BackendError as exc:
        if not as_json:
            typer.echo("")
        raise UserError(str(exc)) from None
    if as_json:
        _print_json(answer.to_dict())
    else:
        typer.echo("")
        for line in render_references(answer):
            typer.echo(line)
    return answer


def render_references(answer) -> list[str]:
    """What goes under an answer in the terminal: why it was declined or what is missing, the references with
    each one's supporting sentence, and the sentences the verifier could not support."""
    lines: list[str] = []
    if answer.declined and answer.decline_reason:
        lines += ["", f"Why: {answer.decline_reason}."]
    if answer.unanswered_parts:
        lines += ["", "Not in the sources: " + "; ".join(answer.unanswered_parts)]
    if answer.citations:
        lines += ["", "References"]
        for c in answer.citations:
            support = c.get("support")
            mark = "" if c["supported"] else "  (not supported by its abstract)"
            score = f"  support {support:.2f}" if isinstance(support, (int, float)) else ""
            lines.append(f"[{c['n']}] {c['title']}  ({c['paper_id']}){score}{mark}")
            if c.get("evidence"):
                lines.append(f"    \u201c{c['evidence']}\u201d")
    if answer.unsupported_sentences:
        lines += ["", "Not supported by the cited sources:"]
        lines += [f"  - {sentence}" for sentence in answer.unsupported_sentences]
    if answer.dropped_citations:
        nums = ", ".join(f"[{n}]" for n in answer.dropped_citations)
        lines.append(f"Dropped citations with no matching source: {nums}")
    return lines


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    k: TopK = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    retriever: Retriever = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="answer, compare or summarize (default: detected).")] = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    as_json: AsJson = False,
) -> None:
    """Answer a question with citations to the papers in the library."""
    a = _answer_app(library, chroma_url, backend, model, base_url, retriever=retriever, top_k=k)
    a.require_papers()
    _run_answer(a, question, as_json, mode=mode)


@app.command()
def summarize(
    topic: Annotated[Optional[str], typer.Argument(help="Topic to summarise (or use --paper).")] = None,
    paper: Annotated[Optional[list[str]], typer.Option("--paper", "-p", help="Summarise these paper ids (repeatable).")] = None,
    k: TopK = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    as_json: AsJson = False,
) -> None:
    """Write a cited summary of a topic, or of chosen papers."""
    if not topic and not paper:
        raise UserError("give a topic or at least one --paper ID")
    a = _answer_app(library, chroma_url, backend, model, base_url, top_k=k)
    a.require_papers()
    _run_answer(a, topic or "", as_json, mode="summarize", paper_ids=paper or None)


@app.command()
def chat(
    k: TopK = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """A conversation in the terminal: follow-up questions are understood from the history."""
    a = _answer_app(library, chroma_url, backend, model, base_url, top_k=k)
    a.require_papers()
    typer.echo("Ask about the papers; 'new' starts over, 'quit' or Ctrl-D ends.")
    history: list[dict] = []
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            typer.echo("")
            return
        if question.lower() in ("quit", "exit", "q"):
            return
        if question.lower() == "new":
            history = []
            typer.echo("(new conversation)")
            continue
        if not question:
            continue
        try:
            answer = _run_answer(a, question, False, history=history)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


@app.command()
def ui(
    host: Annotated[Optional[str], typer.Option("--host", help="Address to bind (default 127.0.0.1; 0.0.0.0 exposes it).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default 7860).")] = None,
    backend: Backend = None,
    model: Model = None,
    base_url: BaseUrl = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
) -> None:
    """Serve the chat page in the browser (login from ASSISTANT_UI_AUTH='user:password' when set)."""
    a = _answer_app(library, chroma_url, backend, model, base_url, ui_host=host, ui_port=port)
    from assistant.ui.page import launch

    launch(a)


@app.command()
def bench(
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default: eval/reports/bench-<timestamp>).")] = None,
    sizes: Annotated[str, typer.Option("--sizes", help="Synthetic library sizes, comma-separated ('' skips scaling).")] = "1000,10000,100000",
    queries: Annotated[int, typer.Option("--queries", help="Distinct questions per latency measurement.")] = 30,
    reps: Annotated[int, typer.Option("--reps", help="Repetitions of each cold start.")] = 3,
    data: Annotated[Path, typer.Option("--data", help="Library to ingest and measure.")] = DEFAULT_DATA / "daily-papers",
    work: Annotated[Optional[Path], typer.Option("--work", help="Keep temporary homes here (a synthetic library found there is reused).")] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Skip the chat page start-up.")] = False,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Skip the LLM pipeline overhead.")] = False,
) -> None:
    """Benchmark ingest, search, ask, cold start, the UI, memory and scaling; writes JSON, Markdown and charts."""
    from eval.bench import BenchConfig, run_bench
    from eval.bench_report import targets, write_report

    try:
        size_list = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes takes comma-separated numbers, not {sizes!r}") from None
    if not data.exists():
        raise UserError(f"no such file or folder: {data}")
    cfg = BenchConfig(data=data.resolve(), sizes=size_list, queries=queries, cold_reps=reps,
                      ui=not no_ui, llm=not no_llm, work=work)
    result = run_bench(cfg, log=lambda msg: typer.echo(f"[bench] {msg}", err=True))
    folder = write_report(result, out)
    for t in targets(result):
        mark = {True: "ok", False: "MISSED", None: "-"}[t["met"]]
        typer.echo(f"{t['label']:<45} {t['shown']:>8}  (goal {t['goal']})  {mark}")
    typer.echo(f"report: {folder}")


from eval.cli import eval_app  # noqa: E402  (the eval sub-app; imports nothing heavy at load)

app.add_typer(eval_app, name="eval")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
