"""The ``assistant`` command: a thin Typer shell over App and the answer/eval functions.

Every command turns user errors into one line on stderr and a non-zero exit;
tracebacks are for bugs only. Output cut short by a closed pipe (``assistant
search … | head -1``) ends the command quietly with status 141, what a shell
reports for any Unix tool stopped by SIGPIPE (128 + 13).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from assistant.app import load_app, load_settings
from assistant.core.backends import backends
from assistant.core.errors import BackendError, UserError, write_trace
from assistant.core.secrets import redact

DEFAULT_DATA = Path("data")
CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what `set -o pipefail` sees from cat or grep in the same place
INCOMPLETE = "[answer incomplete: cut off by the error below; do not rely on the text above]"

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
            typer.echo(f"error: {redact(str(exc))}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(CLOSED_PIPE_EXIT) from None
        except (typer.Exit, typer.Abort, TyperException):  # usage errors and exits: Typer prints them
            raise
        except BaseException as exc:
            # A Rust panic in a native library (pyo3's PanicException) derives from BaseException, not Exception.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            if (ctx.obj or {}).get("debug"):
                raise
            where = write_trace(exc)
            typer.echo(f"error: unexpected {type(exc).__name__}: {_one_line(redact(str(exc)))}", err=True)
            typer.echo(f"This is a bug in the assistant, not in your input; the full trace is in {where} "
                       "(or run again with --debug).", err=True)
            raise typer.Exit(2) from None


def _quiet_stdout() -> None:
    """The reader of stdout has gone: point stdout at /dev/null so the flush at exit cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture): nothing left to flush
        pass


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


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


def _print_rows(rows: list, as_json: bool, line: Callable[[Any], str], empty: str,
                as_dict: Callable[[Any], Any] = lambda r: r) -> None:
    """A listing: JSON of every row, or one line per row (``empty`` when there are none)."""
    if as_json:
        _print_json([as_dict(r) for r in rows])
        return
    if not rows:
        typer.echo(empty)
    for r in rows:
        typer.echo(line(r))


@app.command()
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders (default: data/).")] = None,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Force a format: daily-papers, json, jsonl, arxiv, hf-daily, csv, bibtex, pdf (PDFs are found by name or content).")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Embedding variant: int8 or fp32 (default: the library's own; int8 for a new one).")] = None,
    as_json: AsJson = False,
) -> None:
    """Read paper files into a library: abstract dumps and PDFs (full text, cited by page). Unchanged papers are not embedded again; a killed ingest resumes."""
    from ingest.readers import FORMATS

    if fmt and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    a = load_app(library=library, chroma_url=chroma_url, embedding_variant=variant)
    report = a.ingest(paths or [DEFAULT_DATA], fmt=fmt, progress=not as_json and sys.stderr.isatty())
    # Exit status: 0 everything stored; 1 nothing could be; 3 some files could not be (each named with its reason).
    if as_json:
        _print_json(report.to_dict())
    else:
        for line in report.lines():
            typer.echo(line)
    if not report.ok:
        typer.echo("error: nothing could be ingested", err=True)
        raise typer.Exit(1)
    # Papers found unchanged are not written again, so a damaged vector index would go unnoticed: say so here.
    a.library.check_index()
    if report.files_failed:
        n = len(report.files_failed)
        typer.echo(f"warning: {n} file{'s' if n != 1 else ''} could not be ingested (named above with the reason); "
                   "the rest are stored", err=True)
        raise typer.Exit(3)


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
        if h.passages:  # a full text: its best passages with their pages
            for p in h.passages:
                typer.echo(f"    p. {p['page']}: {p['text'][:160]}{'…' if len(p['text']) > 160 else ''}")
        elif h.chunks:
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
    for label, value in (("id", p.paper_id), ("authors", ", ".join(p.authors)), ("date", p.date), ("url", p.url),
                         ("doi", p.doi), ("source", p.source),
                         ("full text", f"{p.pages} pages, {len(p.references)} references ({p.pdf})" if p.pages else "")):
        if value:
            typer.echo(f"{label}: {value}")
    typer.echo("")
    typer.echo(p.abstract)


@app.command()
def libraries(chroma_url: ChromaUrl = None, as_json: AsJson = False) -> None:
    """List the libraries in the store."""
    from assistant.library.chroma import list_libraries

    a = load_app(chroma_url=chroma_url)
    _print_rows(list_libraries(a.client), as_json, empty="no libraries yet: run `assistant ingest`",
                line=lambda r: f"{r['library']:<20} {r['embedding_model']:<24} {r['papers']:>7} papers {r['chunks']:>8} chunks")


@app.command()
def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Re-embed the records whose vectors are missing, then check again.")] = False,
    library: Library = None,
    chroma_url: ChromaUrl = None,
    as_json: AsJson = False,
) -> None:
    """Check the library's store: every stored chunk, sentence and paper has its vector in the index."""
    a = load_app(library=library, chroma_url=chroma_url)
    result = a.doctor(repair=repair, note=lambda text: typer.echo(text, err=True))
    if as_json:
        _print_json({"store": a.library.store.where, "library": a.settings.library, **result.to_dict()})
    else:
        typer.echo(f"library {a.settings.library!r} ({a.library.model}) in {a.library.store.where}")
        for kind, gap in result.before.items():
            after = result.after[kind]
            state = "every vector in the index" if gap.ok else f"{len(gap.missing):,} vectors missing from the index"
            if repair and not gap.ok:
                state += " → " + ("all restored" if after.ok else f"{len(after.missing):,} still missing")
            typer.echo(f"  {kind:<10} {gap.records:>8,} records, {state}")
    if not result.ok:
        missing = sum(len(g.missing) for g in result.after.values())
        typer.echo(f"error: {missing:,} records have no vector" + (
            "" if repair else "; run `assistant doctor --repair` to re-embed them"), err=True)
        raise typer.Exit(1)


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
    return _show_answer(a.engine.stream(question, **kwargs), as_json)


def _show_answer(events, as_json: bool):
    """Show a streamed answer's events: the text as it comes, then the references (or the Answer's JSON); returns
    the Answer.

    An answer cut off part-way (a model error, its deadline, Ctrl-C) leaves the INCOMPLETE line under the text
    already shown, on stdout with it, so neither the terminal nor a file of the output passes it off as whole."""
    answer = None
    streamed = False
    try:
        for event in events:
            if event.kind == "delta" and not as_json:
                typer.echo(event.text, nl=False)
                sys.stdout.flush()
                streamed = True
            elif event.kind == "done":
                answer = event.answer
    except (Exception, KeyboardInterrupt) as exc:
        if streamed and not isinstance(exc, BrokenPipeError):
            typer.echo("")
            typer.echo(INCOMPLETE)
        if isinstance(exc, BackendError):
            raise UserError(str(exc)) from None
        raise
    if as_json:
        _print_json(answer.to_dict())
    else:
        typer.echo("")
        for line in render_references(answer):
            typer.echo(line)
    return answer


def render_references(answer) -> list[str]:
    """What goes under an answer in the terminal: why it was declined or what is missing, the references, the
    source sentence each claim rests on (numbered in the answer's order), and the sentences the verifier could not
    support. An answer saved before claims were recorded shows each reference's best sentence instead."""
    lines: list[str] = []
    claims = getattr(answer, "claims", None) or []
    fallback = getattr(answer, "fallback", None)
    if fallback:  # an LLM answer that failed the check: the extractive one is shown, saying why
        lines += ["", f"Note: {fallback['notice']}"]
    if answer.declined and answer.decline_reason:
        lines += ["", f"Why: {answer.decline_reason}."]
    if answer.unanswered_parts:
        lines += ["", "Not in the sources: " + "; ".join(answer.unanswered_parts)]
    if answer.citations:
        lines += ["", "References"]
        for c in answer.citations:
            support = c.get("support")
            mark = "" if c["supported"] else "  (not supported by its abstract)" if not c.get("passages") else "  (not supported by the cited passages)"
            score = f"  support {support:.2f}" if isinstance(support, (int, float)) else ""
            lines.append(f"[{c['n']}] {c['title']}  ({c['paper_id']}){score}{mark}")
            if claims:
                continue  # each claim's own evidence follows
            if c.get("passages"):  # a full text: every passage the answer rests on, with its page
                for p in c["passages"]:
                    where = f"p. {p['page']}: " if p.get("page") else "abstract: "
                    lines.append(f"    {where}\u201c{p['evidence']}\u201d")
            elif c.get("evidence"):
                lines.append(f"    \u201c{c['evidence']}\u201d")
    if claims:
        lines += ["", "Evidence for each claim"]
        lines += claim_lines(claims)
    if answer.unsupported_sentences:
        lines += ["", "Not supported by the cited sources:"]
        lines += [f"  - {sentence}" for sentence in answer.unsupported_sentences]
    if answer.dropped_citations:
        nums = ", ".join(f"[{n}]" for n in answer.dropped_citations)
        lines.append(f"Dropped citations with no matching source: {nums}")
    return lines


def claim_lines(claims: list[dict]) -> list[str]:
    """Each cited claim by its number in the answer: per citation, the source sentence it rests on and its page."""
    lines: list[str] = []
    for k, claim in enumerate(claims, 1):
        flag = "" if claim.get("supported", True) else f"  \u26a0 not supported ({claim.get('support') or 0:.2f})"
        lead = f"{k:>3}. "
        for j, e in enumerate(claim.get("evidence") or [{"n": n, "text": ""} for n in claim.get("cited") or []]):
            where = f"p. {e['page']}: " if e.get("page") else ""
            said = f"\u201c{e['text']}\u201d" if e.get("text") else "(no sentence of the source aligned to it)"
            lines.append(f"{lead if j == 0 else ' ' * len(lead)}[{e['n']}] {where}{said}{flag if j == 0 else ''}")
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
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest saved conversation.")] = False,
    conversation: Annotated[Optional[int], typer.Option("--conversation", "-c", help="Continue this saved conversation (an id from `history list`).")] = None,
) -> None:
    """A conversation in the terminal, saved to the history: follow-up questions are understood from it."""
    from assistant.conversation import Conversations, new_conversation

    a = _answer_app(library, chroma_url, backend, model, base_url, top_k=k)
    a.require_papers()
    talk = Conversations(a)
    conv = new_conversation()
    if resume or conversation is not None:
        conv = talk.resume(conversation)
        last = f" Last question: {conv['turns'][-1]['question']}" if conv["turns"] else ""
        typer.echo(f"Resuming conversation {conv['id']} ({conv['title']}, {len(conv['turns'])} answers).{last}")
    typer.echo("Ask about the papers; 'new' starts over, 'quit' or Ctrl-D ends.")
    saving = True
    while (question := _read_question()) is not None:
        if question.lower() == "new":
            conv = new_conversation()
            typer.echo("(new conversation)")
        elif question:
            saving = _chat_turn(talk, conv, question, saving)


def _read_question() -> str | None:
    """The next line typed at `assistant chat`'s prompt, stripped; None when the user ends the chat."""
    try:
        question = input("\n> ").strip()
    except EOFError:
        typer.echo("")
        return None
    return None if question.lower() in ("quit", "exit", "q") else question


def _chat_turn(talk, conv: dict, question: str, saving: bool) -> bool:
    """Answer one question of `assistant chat` and save it (while ``saving``); returns whether to keep saving, which
    stops, with a warning, at the first answer the history cannot take."""
    from assistant.library.history import HistoryError

    talk.add_question(conv, question)
    try:
        _show_answer(talk.stream(conv), False)
    except UserError as exc:
        typer.echo(f"error: {redact(str(exc))}", err=True)
        return saving
    if not saving:
        return False
    try:
        answer_id = talk.save(conv)
    except HistoryError as exc:
        typer.echo(f"warning: this conversation is not being saved: {exc}", err=True)
        return False
    typer.echo(f"(saved as answer {answer_id} of conversation {conv['id']}; rate it with "
               f"`assistant feedback {answer_id} --up` or --down)", err=True)
    return True


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
    beir: Annotated[Optional[Path], typer.Option("--beir", help="A BEIR folder (eval/datasets/scifact): each embedding variant ingests it end to end and is scored; then a killed ingest is resumed.")] = None,
    beir_variants: Annotated[str, typer.Option("--beir-variants", help="Variants for --beir: int8, fp32, torch; '-nosent' leaves sentence vectors out.")] = "int8,int8-nosent,fp32,torch",
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds of the embedding engines side by side.")] = 2,
    pdfs: Annotated[Optional[Path], typer.Option("--pdfs", help="A folder of PDFs: their ingest speed (pages/s, extraction and embedding apart).")] = None,
    pdf_only: Annotated[bool, typer.Option("--pdf-only", help="Measure only the PDFs given with --pdfs.")] = False,
) -> None:
    """Benchmark ingest (embedding variants side by side), search, ask, cold start, the UI, memory and scaling."""
    from eval.bench import BenchConfig, run_bench
    from eval.bench_report import targets, write_report

    try:
        size_list = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes takes comma-separated numbers, not {sizes!r}") from None
    if not data.exists():
        raise UserError(f"no such file or folder: {data}")
    if pdf_only and pdfs is None:
        raise UserError("--pdf-only needs --pdfs FOLDER")
    if pdfs is not None and not pdfs.is_dir():
        raise UserError(f"--pdfs takes a folder of PDFs: {pdfs} is not one")
    if beir is not None and not (beir / "corpus.jsonl").exists():
        raise UserError(f"{beir} is not a BEIR folder: no corpus.jsonl")
    variants = [v.strip() for v in beir_variants.split(",") if v.strip()]
    for v in variants:
        if v.partition("-")[0] not in ("int8", "fp32", "torch") or v.partition("-")[2] not in ("", "nosent"):
            raise UserError(f"unknown variant {v!r} in --beir-variants: int8, fp32 or torch, optionally with -nosent")
    cfg = BenchConfig(data=data.resolve(), sizes=size_list, queries=queries, cold_reps=reps,
                      ui=not no_ui, llm=not no_llm, work=work, rounds=rounds,
                      beir=beir.resolve() if beir else None, beir_variants=variants,
                      pdfs=pdfs.resolve() if pdfs else None, pdf_only=pdf_only)
    result = run_bench(cfg, log=lambda msg: typer.echo(f"[bench] {msg}", err=True))
    folder = write_report(result, out)
    for t in targets(result):
        mark = {True: "ok", False: "MISSED", None: "-"}[t["met"]]
        typer.echo(f"{t['label']:<45} {t['shown']:>8}  (goal {t['goal']})  {mark}")
    typer.echo(f"report: {folder}")


history_app = typer.Typer(help="Saved conversations (SQLite in the home folder): list, show, export.", no_args_is_help=True)
app.add_typer(history_app, name="history")


@history_app.command("list")
def history_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 30,
    as_json: AsJson = False,
) -> None:
    """List saved conversations, the most recent first."""
    _print_rows(load_app().history.conversations(limit=limit), as_json, as_dict=lambda r: r.__dict__,
                empty="no saved conversations yet: `assistant chat` and the chat page save theirs",
                line=lambda r: f"{r.id:>5}  {r.updated[:16].replace('T', ' ')}  {r.answers:>3} answers  {r.title}")


@history_app.command("show")
def history_show(
    conversation_id: Annotated[int, typer.Argument(help="A conversation id from `history list`.")],
    as_json: AsJson = False,
) -> None:
    """Show a saved conversation: each question, its answer with references, and the feedback given."""
    from assistant.core.types import Answer

    h = load_app().history
    conv = h.conversation(conversation_id)
    answers = h.answers(conversation_id)
    if as_json:
        _print_json({"conversation": conv.__dict__, "answers": [a.to_dict() for a in answers]})
        return
    typer.echo(f"{conv.title}  (conversation {conv.id}, {conv.created[:10]}, {len(answers)} answers)")
    for a in answers:
        typer.echo(f"\n── answer {a.id} · {a.created[:16].replace('T', ' ')} · {a.answerability}")
        typer.echo(f"Q: {a.question}\n")
        typer.echo(a.answer.get("answer", ""))
        for line in render_references(Answer(**a.answer)):
            typer.echo(line)
        for f in a.feedback:
            thumb = {1: "👍", -1: "👎", 0: "💬"}[f.rating]
            extra = "".join([f" {f.reason}" if f.reason else "",
                             f" wrong {', '.join(f'[{n}]' for n in f.citations)}" if f.citations else "",
                             f" “{f.comment}”" if f.comment else ""])
            typer.echo(f"feedback: {thumb}{extra}")


@history_app.command("export")
def history_export(
    conversation_id: Annotated[int, typer.Argument(help="A conversation id from `history list`.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md (Markdown with references), bib, ris (the cited papers) or json.")] = "md",
    answer: Annotated[Optional[int], typer.Option("--answer", "-a", help="Export only this answer (an id from `history show`).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file (default: print).")] = None,
) -> None:
    """Export a conversation (or one answer) as Markdown with a numbered reference list, or its cited papers as BibTeX / RIS."""
    from assistant.ui.export import export

    h = load_app().history
    conv = h.conversation(conversation_id)
    turns = [a.to_dict() for a in h.answers(conversation_id)]
    if answer is not None:
        turns = [t for t in turns if t["id"] == answer]
        if not turns:
            raise UserError(f"conversation {conversation_id} has no answer {answer} (see `assistant history show {conversation_id}`)")
    text = export(turns, fmt, title="" if answer is not None else conv.title, created=conv.created)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


@app.command()
def feedback(
    answer_id: Annotated[int, typer.Argument(help="An answer id (`history show` lists them; `chat` prints each one).")],
    rating: Annotated[Optional[bool], typer.Option("--up/--down", help="Helpful or not.")] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="wrong-citation, not-supported, should-decline, missed-answer or other.")] = None,
    comment: Annotated[str, typer.Option("--comment", "-m", help="What was right or wrong.")] = "",
    wrong_citation: Annotated[Optional[list[int]], typer.Option("--wrong-citation", "-w", help="A citation [n] whose paper does not say this (repeatable).")] = None,
) -> None:
    """Rate a saved answer (thumbs up/down, a reason, a comment, wrong citations); `eval from-feedback` learns from it."""
    value = 0 if rating is None else (1 if rating else -1)
    h = load_app().history
    h.add_feedback(answer_id, value, reason or "", comment, wrong_citation or [])
    typer.echo(f"saved feedback on answer {answer_id}")


@app.command()
def gaps(
    as_json: AsJson = False,
    threshold: Annotated[float, typer.Option("--threshold", help="Cosine similarity for two questions to share a topic.")] = 0.55,
) -> None:
    """What the library does not know: the questions it declined or only partly answered, grouped by topic."""
    from assistant.library.history import group_gaps

    a = load_app()
    rows = a.history.gaps()
    groups = group_gaps(rows, a.embedder.embed, threshold=threshold) if rows else []
    if as_json:
        _print_json([g.to_dict() for g in groups])
        return
    if not groups:
        typer.echo("no declined or partly answered questions in the history")
        return
    for g in groups:
        typer.echo(f"\n{g.topic}  ({len(g.answers)} question{'s' if len(g.answers) != 1 else ''})")
        for m in g.missing[:3]:
            typer.echo(f"  missing: {m}")
        for ans in g.answers:
            state = "declined" if ans.answerability == "decline" else "partial"
            typer.echo(f"  - {ans.question}  ({state}, {ans.created[:10]}, answer {ans.id})")


from eval.cli import eval_app  # noqa: E402  (the eval sub-app; imports nothing heavy at load)

app.add_typer(eval_app, name="eval")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
