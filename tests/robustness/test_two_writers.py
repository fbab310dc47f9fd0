"""Two processes on one library: an ingest writing (subprocess) while the chat page answers and uploads (it waits)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from assistant.ui.page import ChatPage
from tests.conftest import ROOT
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How can large language models unlearn with embedding-corrupted prompts?",
    "What are the tasks and methods of knowledge unlearning for LLMs?",
    "Can pre-trained language models recover abstract syntax trees?",
]


def _check_library(home, embedder, n: int) -> None:
    """A fresh client sees exactly n papers, each with its chunks, none duplicated."""
    library = App(Settings(home=home), embedder=embedder).library
    chunks = list(library.iter_chunks())
    ids = [cid for cid, _, _ in chunks]
    assert len(ids) == len(set(ids)) == library.count_chunks()
    papers = {p.paper_id for p in library.iter_papers()}
    assert len(papers) == library.count_papers() == n
    assert {pid for _, pid, _ in chunks} == papers


def test_two_writers__ingest_runs_while_the_page_answers_and_a_second_upload_waits_for_it(
    small_library, temp_home, tmp_path, embedder
):
    big = tmp_path / "more.jsonl"
    _papers_jsonl(big, 30)  # the library's 6, and 24 more
    started, release = tmp_path / "started", tmp_path / "release"
    # A slow writer: small groups, a pause after each, a flag file once it has written, and (so the busy check
    # cannot race it) it holds the lock after its last group until this test releases it.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        import ingest.pipeline as pipeline
        from assistant.app import App
        from assistant.core.settings import Settings
        pipeline.GROUP_CHUNKS = 8
        def step(done, total):
            Path({str(started)!r}).touch()
            time.sleep(0.3)
            deadline = time.time() + 300
            while done >= total and not Path({str(release)!r}).exists() and time.time() < deadline:
                time.sleep(0.1)
        report = App(Settings(home={str(temp_home)!r})).ingest([Path({str(big)!r})], on_progress=step)
        print(report.new, report.unchanged)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not started.exists():
            assert writer.poll() is None, writer.communicate()[1][-3000:]
            assert time.time() < deadline, "the writer never started writing"
            time.sleep(0.2)

        page = ChatPage(App(Settings(home=temp_home), embedder=embedder))
        answered = 0
        for question in QUESTIONS:
            text, panel = list(page.respond(question, []))[-1]
            assert "Traceback" not in text + panel
            assert "](#src-" in text, text  # answered with citations while the writer runs
            answered += 1
        assert answered == len(QUESTIONS)

        # A second writer while the first still runs: it waits for it, saying so on the page, then writes.
        upload = tmp_path / "upload.jsonl"
        upload.write_text(json.dumps({"title": "Tulip growth in cold gardens",
                                      "abstract": "We measure how tulips grow in cold gardens over three winters."}) + "\n")
        notes: list[str] = []
        uploaded: dict = {}
        uploader = threading.Thread(target=lambda: uploaded.setdefault(
            "result", page.upload(str(upload), progress=lambda *a, desc="", **k: notes.append(desc))))
        uploader.start()
        deadline = time.time() + 120
        while not any("waiting for it to finish" in n for n in notes):
            assert uploader.is_alive() and time.time() < deadline, notes
            time.sleep(0.1)
        assert writer.poll() is None and uploader.is_alive()

        release.touch()
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-3000:]
        assert out.split() == ["24", "6"]
        uploader.join(timeout=300)
        report, count, _ = uploaded["result"]
        assert "Traceback" not in report and "31 papers" in count, (report, count)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    _check_library(temp_home, embedder, 31)
    text, _ = list(page.respond("How do tulips grow in cold gardens?", []))[-1]
    assert "](#src-" in text
