"""The ingest pipeline against a real embedded Chroma and the real model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from ingest.readers import read_path
from tests.conftest import DATA, ROOT


def _papers_jsonl(path: Path, n: int) -> list[dict]:
    """The first n unique bundled papers as a JSONL file."""
    rows, seen = [], set()
    for f in sorted(DATA.glob("*.txt")):
        for p in read_path(f).papers:
            if p.paper_id not in seen:
                seen.add(p.paper_id)
                rows.append({"title": p.title, "abstract": p.abstract})
    rows = rows[:n]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


@pytest.fixture
def app(temp_home, embedder):
    return App(Settings(home=temp_home), embedder=embedder)


def test_ingest__unchanged_input_embeds_nothing_the_second_time(app, tmp_path):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 12)
    first = app.ingest([src])
    assert (first.new, first.chunks_embedded > 0) == (12, True)
    second = app.ingest([src])
    assert (second.new, second.updated, second.unchanged, second.chunks_embedded) == (0, 0, 12, 0)


def test_ingest__changed_abstract_replaces_its_chunks(app, tmp_path):
    src = tmp_path / "papers.jsonl"
    rows = _papers_jsonl(src, 3)
    app.ingest([src])
    before = app.library.count_chunks()
    rows[0]["abstract"] = "A much shorter abstract about tulip gardening."
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = app.ingest([src])
    assert (report.updated, report.unchanged) == (1, 2)
    assert app.library.count_chunks() < before
    hits = app.searcher.search("tulip gardening", k=1)
    assert hits[0].title == rows[0]["title"] and "tulip" in hits[0].abstract


def test_ingest__bad_files_are_reported_and_good_ones_still_load(app, tmp_path):
    good = tmp_path / "good.jsonl"
    _papers_jsonl(good, 2)
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\x01\x02" * 50)
    report = app.ingest([good, tmp_path / "empty.json", tmp_path / "binary.jsonl", tmp_path / "missing.csv"])
    assert report.new == 2
    reasons = " | ".join(str(s) for s in report.skipped)
    assert "missing.csv" in reasons and "empty.json" in reasons and "binary.jsonl" in reasons


def test_ingest__nothing_readable_keeps_what_is_stored(app, tmp_path):
    good = tmp_path / "good.jsonl"
    _papers_jsonl(good, 2)
    app.ingest([good])
    report = app.ingest([tmp_path / "nope.jsonl"])
    assert not report.ok
    assert app.library.count_papers() == 2


def test_ingest__killed_half_way_is_completed_by_the_next_run_without_duplicates(app, tmp_path, temp_home):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 20)
    # A real kill -9 in the middle: after the first group of chunks is written.
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import ingest.pipeline as pipeline
        from assistant.app import App
        from assistant.core.settings import Settings
        pipeline.GROUP_CHUNKS = 8
        app = App(Settings(home={str(temp_home)!r}))
        app.ingest([__import__('pathlib').Path({str(src)!r})],
                   on_progress=lambda done, total: os.kill(os.getpid(), signal.SIGKILL))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    partial = app.library.count_papers()
    assert 0 < partial < 20
    report = app.ingest([src])
    assert report.unchanged == partial and report.new == 20 - partial
    ids = [cid for cid, _, _ in app.library.iter_chunks()]
    assert len(ids) == len(set(ids)) == app.library.count_chunks()
    assert app.library.count_papers() == 20


def test_ingest__second_writer_gets_library_busy(app, tmp_path, temp_home):
    from ingest.pipeline import LibraryBusy, writer_lock

    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 1)
    with writer_lock(temp_home / "locks", app.library.key):
        with pytest.raises(LibraryBusy, match="library busy"):
            app.ingest([src])
    assert app.ingest([src]).new == 1
