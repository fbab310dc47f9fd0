"""A long-lived process answers about papers another process ingests, as soon as each group is committed.

This test process plays the chat page (one App, its engine warmed up by a first question, so Chroma's indexes
are loaded); a real `App.ingest` in a subprocess adds papers in small groups and pauses after its first
commit. Before the fix the page failed with "Error finding id" on every new paper until restarted.
`eval/serve_load.py` runs the same at full size (20 concurrent questions through the page's API during an
ingest of 1,000 abstracts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from tests.conftest import ROOT
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow


def _found(app: App, title: str) -> dict[str, bool]:
    """Whether each retriever, and an answer, finds the paper by its title."""
    out = {mode: any(h.title == title for h in app.search(title, k=3, mode=mode)) for mode in ("dense", "bm25")}
    answer = app.engine.query(f"What does the paper '{title}' find?").metadata["answer"]
    out["answer"] = any(s["title"] == title for s in answer["sources"])
    return out


def test_serving__a_long_lived_process_answers_about_papers_another_process_commits(temp_home, tmp_path, embedder):
    rows = _papers_jsonl(tmp_path / "all.jsonl", 16)
    first, more = tmp_path / "first.jsonl", tmp_path / "more.jsonl"
    first.write_text("\n".join(json.dumps(r) for r in rows[:6]) + "\n")
    more.write_text("\n".join(json.dumps(r) for r in rows[6:]) + "\n")
    page = App(Settings(home=temp_home), embedder=embedder)
    page.ingest([first])
    assert _found(page, rows[0]["title"]) == {"dense": True, "bm25": True, "answer": True}  # indexes now loaded

    paused, resume = tmp_path / "paused", tmp_path / "resume"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        import ingest.pipeline as pipeline
        from assistant.app import App
        from assistant.core.settings import Settings
        from assistant.library.embeddings import LocalEmbedder
        pipeline.GROUP_CHUNKS = 8
        def step(done, total):  # after the first commit: wait until the test has asked
            if not Path({str(paused)!r}).exists():
                Path({str(paused)!r}).touch()
                deadline = time.time() + 300
                while not Path({str(resume)!r}).exists() and time.time() < deadline:
                    time.sleep(0.1)
        app = App(Settings(home={str(temp_home)!r}), embedder=LocalEmbedder())  # the test's model and variant
        print(app.ingest([Path({str(more)!r})], on_progress=step).new)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not paused.exists():
            assert writer.poll() is None and time.time() < deadline, writer.communicate()[1][-3000:]
            time.sleep(0.1)
        committed = {p.title for p in page.library.iter_papers()} - {r["title"] for r in rows[:6]}
        assert 0 < len(committed) < 10
        for title in committed:  # committed by the other process, which is still running
            assert _found(page, title) == {"dense": True, "bm25": True, "answer": True}, title
        resume.touch()
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0 and out.split() == ["10"], err[-3000:]
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert page.library.count_papers() == 16
    assert _found(page, rows[-1]["title"]) == {"dense": True, "bm25": True, "answer": True}
