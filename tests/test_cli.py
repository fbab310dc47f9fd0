"""The CLI through Typer's test runner, on small real libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from assistant.cli import app as cli
from tests.conftest import FIXTURES, ROOT
from tests.ingest.test_pipeline import _papers_jsonl

runner = CliRunner()


def test_cli__ingest_reports_counts_and_skips(tmp_path):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 4)
    out = runner.invoke(cli, ["ingest", str(src), str(FIXTURES / "no_abstract.csv"), "--library", "cli-test"])
    # A file that could not be read at all: named with its reason, the rest stored, and the exit status says so.
    assert out.exit_code == 3, out.output
    assert "new: 4" in out.output
    assert "no_abstract.csv" in out.output  # the skip names the file
    assert "1 file could not be ingested" in out.output
    out = runner.invoke(cli, ["libraries", "--json"])
    assert {"library": "cli-test", "papers": 4}.items() <= json.loads(out.stdout)[0].items()


def test_cli__nothing_ingestable_exits_non_zero(tmp_path):
    out = runner.invoke(cli, ["ingest", str(tmp_path / "missing.jsonl")])
    assert out.exit_code == 1
    assert "missing.jsonl" in out.output and "Traceback" not in out.output


def test_cli__unknown_format_is_rejected(tmp_path):
    out = runner.invoke(cli, ["ingest", str(tmp_path), "--format", "docx"])
    assert out.exit_code == 1 and "unknown format 'docx'" in out.output


def test_cli__bad_library_name_is_one_line(tmp_path):
    out = runner.invoke(cli, ["search", "x", "--library", "bad name!"])
    assert out.exit_code == 1 and "invalid setting library" in out.output


def test_cli__search_on_empty_library_says_to_ingest():
    out = runner.invoke(cli, ["search", "anything"])
    assert out.exit_code == 1 and "assistant ingest" in out.output


def test_cli__search_papers_list_and_show(bundled_app):
    out = runner.invoke(cli, ["search", "negative preference optimization", "-k", "3", "--json"])
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and "Negative Preference Optimization" in hits[0]["title"]
    out = runner.invoke(cli, ["papers", "list", "--json"])
    assert len(json.loads(out.stdout)) == 241
    out = runner.invoke(cli, ["papers", "show", hits[0]["paper_id"]])
    assert out.exit_code == 0 and "NPO" in out.output
    out = runner.invoke(cli, ["papers", "show", "nope"])
    assert out.exit_code == 1 and "no paper 'nope'" in out.output


def test_cli__config_masks_keys(monkeypatch):
    monkeypatch.setenv("ASSISTANT_LLM_API_KEY", "sk-secret-value-1234")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-secret-9999")
    out = runner.invoke(cli, ["config"])
    assert out.exit_code == 0
    assert "sk-secret" not in out.output and "sk-other" not in out.output
    assert "llm_api_key = ****1234" in out.output


def test_cli__zero_papers_is_rejected_not_read_as_the_default():
    for args in (["search", "x", "-k", "0"], ["ask", "x", "-k", "0"]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 2 and "'-k' / '--top-k'" in out.output and "greater than or equal" in out.output, out.output


def test_cli__a_bug_is_not_dressed_as_a_user_error(monkeypatch, temp_home):
    # A programming error (here a ValueError from deep inside) must not read as "error: <message>" with
    # nothing else: it says it is a bug and where the full trace went.
    from assistant.app import App

    def broken(self, *args, **kwargs):
        raise ValueError("list index went wrong")

    monkeypatch.setattr(App, "require_papers", broken)
    out = runner.invoke(cli, ["search", "unlearning"])
    assert out.exit_code == 2
    assert "unexpected ValueError: list index went wrong" in out.stderr
    trace = Path(out.stderr.split("full trace is in ")[1].split(" (or run")[0])
    assert trace.parent == temp_home / "logs" and "Traceback" in trace.read_text()
    assert "Traceback" not in out.output

    out = runner.invoke(cli, ["--debug", "search", "unlearning"])
    assert isinstance(out.exception, ValueError)  # --debug lets the trace through


def test_cli__a_closed_pipe_ends_quietly_with_141(temp_home):
    # `assistant search … | head -1` reported a BrokenPipeError as a bug (exit 2, a trace written). The reader
    # is gone before the first line here, so the first write fails; a real `head -1` fails a later one.
    env = {**os.environ, "ASSISTANT_HOME": str(temp_home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "backends"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports cat or grep stopped the same way
    assert stderr == ""  # no "bug" line, no "Exception ignored … BrokenPipeError" at exit
    assert not (temp_home / "logs").exists()
