"""Serving while the library grows: the chat page answers waves of concurrent questions while another process
ingests new papers, and every paper the ingest has committed must be answerable at once (issue 21).

    python -m eval.serve_load --new 1000 --concurrent 20 [--home DIR] [--out DIR]

Three processes, as a lab runs them: the page (`assistant ui`, extractive backend) on a home holding the bundled
library; an `assistant ingest` of ``--new`` SciFact abstracts started once the page is up; and this one, which
asks the page's ``/ask`` API ``--concurrent`` questions at a time (one client per question) until the ingest ends,
and once more after. Each wave mixes questions about bundled papers with questions about new papers that the
store already held when the wave began (read here from the store, a third process). An answer is valid when it
came back without an error, every citation names one of its sources, and nothing was dropped; a question about a
new paper is answered in time when that paper is among the answer's sources. Afterwards ``assistant doctor``
checks that every stored record has its vector. The report (JSON) holds the counts, latencies and load.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from eval.bench_common import ROOT, bench_env, cli_command, free_port, load_average, rss_mb, stats, stop_process

SCIFACT = ROOT / "eval" / "datasets" / "scifact" / "corpus.jsonl"
BUNDLED = ROOT / "data" / "daily-papers"
# Questions the bundled library answers (from the dev set's kinds: lookup, paraphrase, compare).
BUNDLED_QUESTIONS = [
    "What is negative preference optimization?",
    "How can large language models unlearn with embedding-corrupted prompts?",
    "Can pre-trained language models recover abstract syntax trees?",
    "compare NPO and gradient ascent for unlearning",
    "What are the tasks and methods of knowledge unlearning for LLMs?",
    "How is the Dolma corpus built?",
    "What does Holistic Evaluation of Language Models measure?",
    "Which methods evaluate unlearning in large language models?",
]


def new_papers(n: int, path: Path) -> list[dict]:
    """n SciFact abstracts (title and text) as a JSONL file for `assistant ingest`; returns the rows."""
    rows = []
    for line in SCIFACT.read_text().splitlines():
        r = json.loads(line)
        if r.get("title") and r.get("text"):
            rows.append({"title": r["title"], "abstract": r["text"]})
        if len(rows) == n:
            break
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def _key(title: str) -> str:
    return " ".join(title.lower().split())


def _valid(answer: dict) -> str:
    """'' when the answer is valid, else what is wrong with it."""
    if not isinstance(answer, dict) or "answer" not in answer:
        return f"no answer: {str(answer)[:120]}"
    sources = {s["n"]: s for s in answer.get("sources") or []}
    for c in answer.get("citations") or []:
        if c["n"] not in sources or sources[c["n"]]["paper_id"] != c["paper_id"]:
            return f"citation [{c['n']}] names no source"
    if answer.get("dropped_citations"):
        return f"dropped citations {answer['dropped_citations']}"
    return ""


class Asker:
    """Waves of concurrent questions to the page's /ask API; every result kept."""

    def __init__(self, url: str, concurrent: int):
        self.url, self.concurrent = url, concurrent
        self.results: list[dict] = []

    def ask(self, question: str, new_title: str | None, wave: int) -> dict:
        from gradio_client import Client

        started = time.perf_counter()
        try:
            answer, error = Client(self.url, verbose=False).predict(question=question, api_name="/ask"), ""
        except Exception as exc:  # noqa: BLE001 - recorded: the report counts failures
            answer, error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        row = {"wave": wave, "question": question, "seconds": time.perf_counter() - started,
               "error": error or _valid(answer), "new": new_title is not None}
        if new_title is not None and not row["error"]:
            row["found"] = _key(new_title) in {_key(s.get("title", "")) for s in answer.get("sources") or []}
        return row

    def wave(self, wave: int, committed: list[str], rng: random.Random) -> list[dict]:
        asked_new = rng.sample(committed, min(len(committed), self.concurrent // 2))
        bundled = [BUNDLED_QUESTIONS[(wave + i) % len(BUNDLED_QUESTIONS)] for i in range(self.concurrent - len(asked_new))]
        jobs = [(q, None) for q in bundled] + [(f"What does the paper '{t}' find?", t) for t in asked_new]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            rows = list(pool.map(lambda job: self.ask(job[0], job[1], wave), jobs))
        self.results += rows
        return rows


def committed_titles(home: Path, titles: set[str]) -> list[str]:
    """The new papers' titles that the store holds now (read in this process, as a third one on the store)."""
    from assistant.app import App
    from assistant.core.settings import Settings

    library = App(Settings(home=home)).library
    return [p.title for p in library.iter_papers() if _key(p.title) in titles]


def distinctive(rows: list[dict]) -> set[str]:
    """Titles a question can name one paper by: four words or more, and no other paper's title."""
    seen: dict[str, int] = {}
    for r in rows:
        seen[_key(r["title"])] = seen.get(_key(r["title"]), 0) + 1
    return {k for k, n in seen.items() if n == 1 and len(k.split()) >= 4}


def count_papers(home: Path) -> int:
    from assistant.app import App
    from assistant.core.settings import Settings

    return App(Settings(home=home)).library.count_papers()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the page exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("the page did not come up")


def run(args) -> dict:
    home = Path(args.home or tempfile.mkdtemp(prefix="serve-load-"))
    env = bench_env(home)
    out = subprocess.run(cli_command() + ["ingest", str(BUNDLED), "--json"], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    bundled = json.loads(out.stdout)["papers"]
    src = home / "new.jsonl"
    titles = distinctive(new_papers(args.new, src))  # the ones asked about ("Summary" names no one paper)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    page_log = (home / "page.log").open("w")  # a crash of the page leaves its threads' stacks here
    page = subprocess.Popen(cli_command() + ["ui", "--port", str(port)],
                            env={**env, "ASSISTANT_UI_CONCURRENCY": "4", "PYTHONFAULTHANDLER": "1"},
                            stdout=page_log, stderr=subprocess.STDOUT, text=True)
    asker, rng, loads, page_rss = Asker(url, args.concurrent), random.Random(0), [], []
    ingest = None
    try:
        _wait_http(url, page)
        asker.wave(0, [], rng)  # warm: the page's first answers load the model and the indexes
        started = time.perf_counter()
        ingest = subprocess.Popen(cli_command() + ["ingest", str(src), "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wave = 0
        while ingest.poll() is None:
            if page.poll() is not None:
                raise RuntimeError(f"the page exited with {page.returncode} during the ingest (see {home / 'page.log'})")
            wave += 1
            committed = committed_titles(home, titles)
            rows = asker.wave(wave, committed, rng)
            loads.append(load_average()[0])
            page_rss.append(rss_mb(page.pid))
            print(f"wave {wave}: {len(committed)} new papers committed, "
                  f"{sum(not r['error'] for r in rows)}/{len(rows)} valid, "
                  f"{sum(r.get('found', False) for r in rows)}/{sum(r['new'] for r in rows)} new found",
                  file=sys.stderr, flush=True)
        ingest_seconds = time.perf_counter() - started
        ingest_out, ingest_err = ingest.communicate()
        if ingest.returncode:
            raise RuntimeError(f"the ingest failed: {ingest_err[-2000:]}")
        final = committed_titles(home, titles)
        asker.wave(wave + 1, final, rng)
        page_rss.append(rss_mb(page.pid))
    finally:
        if ingest is not None:
            stop_process(ingest)
        stop_process(page)
        page_log.close()
    doctor = subprocess.run(cli_command() + ["doctor", "--json"], env=env, capture_output=True, text=True)
    during = [r for r in asker.results if r["wave"] >= 1]
    new = [r for r in during if r["new"]]
    return {
        "created": datetime.now().isoformat(timespec="seconds"),
        "setup": {"bundled_papers": bundled, "new_papers": args.new, "concurrent": args.concurrent,
                  "page_concurrency": 4, "home": str(home)},
        "ingest_seconds": round(ingest_seconds, 1), "ingest": json.loads(ingest_out),
        "waves": wave + 1, "answers": len(during),
        "invalid": [r for r in during if r["error"]],
        "new_paper_questions": len(new), "new_paper_found": sum(r.get("found", False) for r in new),
        "new_paper_missed": [r["question"] for r in new if not r.get("found")],
        "latency_s": stats([r["seconds"] for r in during]),
        "final_papers": count_papers(home), "asked_about": f"{len(titles)} of {args.new} new titles (distinctive)",
        "doctor": {"rc": doctor.returncode, **(json.loads(doctor.stdout) if doctor.stdout.strip() else {})},
        "load_average_1min": {"max": max(loads, default=0.0), "mean": sum(loads) / max(1, len(loads))},
        "page_rss_mb": {"first": page_rss[0] if page_rss else 0, "max": max(page_rss, default=0.0),
                        "last": page_rss[-1] if page_rss else 0},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new", type=int, default=1000, help="SciFact abstracts the other process ingests.")
    parser.add_argument("--concurrent", type=int, default=20, help="Questions asked at once, per wave.")
    parser.add_argument("--home", help="Home folder to use (default: a new temporary one).")
    parser.add_argument("--out", type=Path, help="Folder for report.json (default: eval/reports/serve-load-<time>).")
    args = parser.parse_args(argv)
    report = run(args)
    out = args.out or ROOT / "eval" / "reports" / f"serve-load-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lat = report["latency_s"]
    print(f"{report['answers']} answers in {report['waves']} waves during a {report['ingest_seconds']} s ingest of "
          f"{report['new_papers'] if 'new_papers' in report else args.new} papers: {len(report['invalid'])} invalid; "
          f"new papers found {report['new_paper_found']}/{report['new_paper_questions']}; latency p50 "
          f"{lat.get('p50', 0):.2f} s, p95 {lat.get('p95', 0):.2f} s; doctor rc {report['doctor']['rc']}; "
          f"report: {out / 'report.json'}")
    sys.exit(0 if not report["invalid"] and report["new_paper_found"] == report["new_paper_questions"]
             and report["doctor"]["rc"] == 0 else 1)


if __name__ == "__main__":
    main()
