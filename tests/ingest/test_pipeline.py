"""The ingest pipeline against a real embedded Chroma and the real model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.app import App
from assistant.core.settings import Settings
from ingest.readers import read_path
from ingest.sentences import sentence_texts
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


def test_ingest__killed_half_way_is_completed_by_the_next_run_which_embeds_only_what_was_not_committed(
        app, tmp_path, temp_home):
    src = tmp_path / "papers.jsonl"
    rows = _papers_jsonl(src, 20)
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(json.dumps(r) for r in rows[:5]) + "\n")
    app.ingest([first])
    assert len(app.bm25().paper_ids) == 5  # the BM25 index of that revision, cached on disk and in memory
    # A real kill -9 in the middle: once half the chunks are committed (chunks, sentences and paper records together).
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import ingest.pipeline as pipeline
        from assistant.app import App
        from assistant.core.settings import Settings
        from assistant.library.embeddings import LocalEmbedder
        pipeline.GROUP_CHUNKS = 4
        app = App(Settings(home={str(temp_home)!r}), embedder=LocalEmbedder())  # the parent's model and variant

        def kill_at_half(done, total):
            if done * 2 >= total:
                os.kill(os.getpid(), signal.SIGKILL)

        app.ingest([__import__('pathlib').Path({str(src)!r})], on_progress=kill_at_half)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    partial = app.library.count_papers()
    committed = app.library.count_chunks()
    assert 5 < partial < 20
    # What the killed ingest committed is already in BM25's index: its revision was committed with the papers.
    assert sorted(app.bm25().paper_ids) == sorted(p.paper_id for p in app.library.iter_papers())
    report = app.ingest([src])
    assert report.unchanged == partial and report.new == 20 - partial
    ids = [cid for cid, _, _ in app.library.iter_chunks()]
    assert len(ids) == len(set(ids)) == app.library.count_chunks()
    assert app.library.count_papers() == 20
    # The rerun embeds what was not committed, and nothing of what was (a half-written group is redone).
    assert report.chunks_embedded <= len(ids) - committed + 4
    assert report.chunks_embedded / len(ids) <= 0.55
    papers = list(app.library.iter_papers())
    assert all(v is not None for v in app.library.sentence_vectors([(p.paper_id, sentence_texts(p)) for p in papers]))


def test_ingest__stores_each_sentence_vector_answering_would_embed(app, tmp_path, embedder):
    from assistant.answering.evidence import SentenceBank
    from assistant.core.types import Source

    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 4)
    report = app.ingest([src])
    papers = list(app.library.iter_papers())
    assert report.sentences_embedded == sum(len(sentence_texts(p)) for p in papers) > 4
    stored = app.library.sentence_vectors([(p.paper_id, sentence_texts(p)) for p in papers])
    for paper, vectors in zip(papers, stored):
        np.testing.assert_allclose(vectors, embedder.embed(sentence_texts(paper)), atol=1e-5)
    # Another text for the same paper (an abstract changed since) finds nothing rather than a wrong vector.
    assert app.library.sentence_vectors([(papers[0].paper_id, sentence_texts(papers[0])[:-1] + ["Other."])]) == [None]

    # Answering's bank finds every source's sentences in the store: it embeds none of them.
    calls: list[list[str]] = []
    bank = SentenceBank(lambda texts: calls.append(texts) or embedder.embed(texts), lookup_fn=app.library.sentence_vectors)
    sources = [Source(n=i + 1, paper_id=p.paper_id, title=p.title, abstract=p.abstract) for i, p in enumerate(papers)]
    assert [texts for texts, _ in bank.split_many(sources)] == [sentence_texts(p) for p in papers]
    assert calls == []


def test_ingest__papers_stored_without_sentence_vectors_get_them_at_the_next_ingest(app, tmp_path):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 3)
    from ingest.pipeline import ingest

    first = ingest([src], app.library, app.embedder, sentences=False)  # as libraries were stored before
    assert first.sentences_embedded == 0 and first.chunks_embedded > 0
    papers = list(app.library.iter_papers())
    assert app.library.sentence_vectors([(p.paper_id, sentence_texts(p)) for p in papers]) == [None] * 3
    second = app.ingest([src])
    assert (second.unchanged, second.chunks_embedded) == (3, 0) and second.sentences_embedded > 3
    assert all(v is not None for v in app.library.sentence_vectors([(p.paper_id, sentence_texts(p)) for p in papers]))
    assert app.ingest([src]).sentences_embedded == 0


def test_ingest__commits_small_groups_and_reports_progress_with_what_is_left(app, tmp_path, monkeypatch, capsys):
    import ingest.pipeline as pipeline

    monkeypatch.setattr(pipeline, "GROUP_CHUNKS", 4)
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 6)
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    src.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    app.ingest([src])
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    seen: list[tuple[int, int]] = []
    report = app.ingest([src], progress=True, on_progress=lambda done, total: seen.append((done, total)))
    assert len(seen) >= 2 and seen[-1] == (report.chunks_embedded, report.chunks_embedded)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and all(d <= t for d, t in seen)
    err = capsys.readouterr().err
    assert "2 papers already stored; embedding the other 4" in err and "left=0" in err


def _hold_writer_lock(temp_home, key: str, seconds: float) -> subprocess.Popen:
    """Another process holding the library's writer lock for ``seconds`` (started once it holds it)."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from ingest.pipeline import writer_lock
        with writer_lock(Path({str(temp_home / "locks")!r}), {key!r}):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_ingest__a_second_writer_waits_for_the_first_saying_so_then_writes(app, tmp_path, temp_home):
    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 1)
    holder = _hold_writer_lock(temp_home, app.library.key, 2.0)
    notes: list[str] = []
    started = time.monotonic()
    report = app.ingest([src], on_wait=notes.append)
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0
    assert report.new == 1 and app.library.count_papers() == 1
    assert waited >= 1.0, waited  # it waited for the holder rather than failing
    assert notes[0].startswith("another ingest is writing to library 'default'; waiting for it to finish"), notes
    assert "has finished" in notes[-1], notes


def test_ingest__a_writer_that_waits_past_its_limit_is_told_the_library_is_busy(app, tmp_path, temp_home):
    from ingest.pipeline import LibraryBusy, ingest

    src = tmp_path / "papers.jsonl"
    _papers_jsonl(src, 1)
    holder = _hold_writer_lock(temp_home, app.library.key, 30.0)
    try:
        with pytest.raises(LibraryBusy, match="library busy: another ingest has been writing to library 'default' for more than 1 s"):
            ingest([src], app.library, app.embedder, lock_dir=temp_home / "locks", lock_wait=1.0, on_wait=lambda _: None)
        assert app.library.count_papers() == 0
    finally:
        holder.kill()
        holder.wait()
    assert app.ingest([src]).new == 1  # the lock went with the killed holder


def test_report__a_file_with_many_bad_lines_is_one_summary_with_its_first_examples():
    from assistant.core.types import Skipped
    from ingest.pipeline import IngestReport

    few = [Skipped("few.csv", 5, "title with no abstract: 'A'"), Skipped("few.csv", 9, "bad CSV row: x")]
    many = [Skipped("big.txt", n, f"text with no title line before it: 'line {n}'") for n in range(1, 101)]
    report = IngestReport(files=["few.csv", "big.txt", "gone.txt"], skipped=few + many + [Skipped("gone.txt", None, "no such file")],
                          skipped_more={"big.txt": 672_064})
    lines = report.lines()
    assert "skipped: 672167" in lines
    start = lines.index("  big.txt: 672,164 entries skipped; the first 3:")
    assert lines[start + 1 : start + 5] == [
        "    line 1: text with no title line before it: 'line 1'",
        "    line 2: text with no title line before it: 'line 2'",
        "    line 3: text with no title line before it: 'line 3'",
        "    (the JSON report lists the first 100)",
    ]
    # Files with a few skips list each, as before.
    assert "  few.csv:5: title with no abstract: 'A'" in lines and "  gone.txt: no such file" in lines
    assert len(lines) < 20

    d = json.loads(json.dumps(report.to_dict()))
    assert d["skipped_count"] == 672_167 and len(d["skipped"]) == 103
    assert d["skipped_files"] == [{"file": "few.csv", "skipped": 2, "listed": 2},
                                  {"file": "big.txt", "skipped": 672_164, "listed": 100},
                                  {"file": "gone.txt", "skipped": 1, "listed": 1}]
    assert d["skipped"][2] == {"file": "big.txt", "line": 1, "reason": "text with no title line before it: 'line 1'"}
    assert "skipped_more" not in d
