"""A real `chroma run` server: end to end through --chroma-url, killed mid-ingest, and down at question time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from tests.conftest import ROOT, ChromaServer
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow

runner = CliRunner()


def _one_error_line(output: str) -> str:
    """The single ``error:`` line of a failed command (and no traceback)."""
    assert "Traceback" not in output and 'File "' not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def _server_library(url: str, embedder):
    from assistant.app import App
    from assistant.core.settings import Settings

    return App(Settings(chroma_url=url), embedder=embedder).library


def test_chroma_server__ingest_search_and_ask_end_to_end(chroma_server, tmp_path, cli_model):
    src = tmp_path / "papers.jsonl"
    rows = _papers_jsonl(src, 6)
    url = ["--chroma-url", chroma_server.url]

    out = runner.invoke(cli, ["ingest", str(src), *url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["new"] == 6

    out = runner.invoke(cli, ["search", rows[3]["title"], *url, "--json", "-k", "3"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["title"] == rows[3]["title"]

    out = runner.invoke(cli, ["ask", "How can a large language model unlearn with corrupted prompt embeddings?", *url, "--json"])
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert not answer["declined"] and answer["citations"], answer
    titles = {s["n"]: s["title"] for s in answer["sources"]}
    assert all(titles[c["n"]] == c["title"] for c in answer["citations"])
    assert rows[0]["title"] in [c["title"] for c in answer["citations"]]

    # Nothing was written to the local home: the server holds the library.
    assert not (chroma_server.path.parent / "home" / "chroma").exists()


def test_chroma_server__killed_mid_ingest_is_one_line_and_the_rerun_completes(tmp_path, temp_home, embedder, cli_model):
    server = ChromaServer(tmp_path / "chroma-data")
    server.start()
    try:
        src = tmp_path / "papers.jsonl"
        _papers_jsonl(src, 20)
        # The real CLI in a subprocess; once its first write group has landed, the server gets kill -9.
        script = textwrap.dedent(f"""
            import os, signal, sys
            sys.path.insert(0, {str(ROOT)!r})
            import ingest.pipeline as pipeline
            import assistant.library.store as store
            pipeline.GROUP_CHUNKS = 8
            write = store.Library.write
            def write_then_kill(self, items):
                write(self, items)
                os.kill({server.proc.pid}, signal.SIGKILL)
            store.Library.write = write_then_kill
            from assistant.cli import main
            sys.argv = ["assistant", "ingest", {str(src)!r}, "--chroma-url", {server.url!r}]
            main()
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              # The variant this test's own model (fp32) reads: a new library would be int8.
                              env={**os.environ, "ASSISTANT_HOME": str(temp_home), "ASSISTANT_EMBEDDING_VARIANT": "fp32"})
        assert server.proc.wait(10) == -9
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "Chroma server" in _one_error_line(proc.stderr)

        # Back on the same data folder and port: the rerun writes what is missing, once.
        server.start()
        partial = _server_library(server.url, embedder).count_papers()
        assert 0 < partial < 20
        out = runner.invoke(cli, ["ingest", str(src), "--chroma-url", server.url, "--json"])
        assert out.exit_code == 0, out.output
        report = json.loads(out.stdout)
        assert (report["unchanged"], report["new"], report["papers"]) == (partial, 20 - partial, 20)

        library = _server_library(server.url, embedder)
        chunks = list(library.iter_chunks())
        ids = [cid for cid, _, _ in chunks]
        assert len(ids) == len(set(ids)) == library.count_chunks()
        papers = {p.paper_id for p in library.iter_papers()}
        assert len(papers) == library.count_papers() == 20
        assert {pid for _, pid, _ in chunks} == papers  # every paper has its chunks, none orphaned
    finally:
        server.stop()


def test_chroma_server__down_at_question_time_is_one_line_in_the_cli(chroma_server, tmp_path, cli_model):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 3)
    assert runner.invoke(cli, ["ingest", str(src), "--chroma-url", chroma_server.url]).exit_code == 0
    chroma_server.stop()
    out = runner.invoke(cli, ["ask", "How do language models unlearn?", "--chroma-url", chroma_server.url])
    assert out.exit_code == 1
    assert "cannot reach the Chroma server" in _one_error_line(out.output)


def test_chroma_server__down_at_question_time_is_a_message_in_the_ui(chroma_server, tmp_path, embedder):
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.ui.page import ChatPage

    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 3)
    app = App(Settings(chroma_url=chroma_server.url), embedder=embedder)
    app.ingest([src])
    page = ChatPage(app)
    question = "How do language models unlearn?"
    assert "](#src-" in list(page.respond(question, []))[-1][0]  # answered while the server is up

    chroma_server.stop()  # the page's client is already connected: the next calls fail mid-session
    text, panel = list(page.respond(question, []))[-1]
    assert text.startswith("⚠️") and "Chroma server" in text, text
    assert "Something went wrong" not in text
    assert "Traceback" not in text + panel
    assert "Chroma server" in page.library_count()
    assert "Chroma server" in page.find_papers("unlearning")
