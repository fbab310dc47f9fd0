"""The server path: a real `chroma run` on 127.0.0.1, used through --chroma-url."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow


def test_server__ingest_search_and_show_through_chroma_url(chroma_server, tmp_path):
    src = tmp_path / "papers.jsonl"
    rows = _papers_jsonl(src, 6)
    runner = CliRunner()
    out = runner.invoke(cli, ["ingest", str(src), "--chroma-url", chroma_server.url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["new"] == 6

    out = runner.invoke(cli, ["search", rows[2]["title"], "--chroma-url", chroma_server.url, "--json", "-k", "3"])
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)
    assert hits[0]["title"] == rows[2]["title"]

    # The papers live in the server too: a second home with no local files can show them.
    out = runner.invoke(cli, ["papers", "show", hits[0]["paper_id"], "--chroma-url", chroma_server.url, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["abstract"] == rows[2]["abstract"]

    out = runner.invoke(cli, ["libraries", "--chroma-url", chroma_server.url, "--json"])
    assert json.loads(out.stdout)[0]["papers"] == 6


def test_server__unreachable_server_is_one_clear_line(tmp_path):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    out = CliRunner().invoke(cli, ["search", "anything", "--chroma-url", url])
    assert out.exit_code == 1
    assert "cannot reach the Chroma server" in out.output and "Traceback" not in out.output
