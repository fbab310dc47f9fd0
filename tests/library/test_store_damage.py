"""A damaged store says so in one line and what to do, loses nothing, and `assistant doctor --repair` mends a lost index.

Every command runs the real CLI in its own process on a real embedded Chroma, as a user meets the fault: a
fresh process opens the damaged files (this test process keeps its own opening of the store, which would
hide the damage). The library's index is written to its folder every 10 vectors here (Chroma's default is
every 1,000), so a 12-paper library is enough for a deleted index folder to lose vectors for good.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASSISTANT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A home with 12 papers, ingested with the index written to disk every 10 vectors; and the source file."""
    root = tmp_path_factory.mktemp("damage")
    src = root / "papers.jsonl"
    _papers_jsonl(src, 12)
    home = root / "home"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        import assistant.library.store as store
        store.INDEX_METADATA = {{"hnsw:space": "cosine", "hnsw:batch_size": 10, "hnsw:sync_threshold": 10}}
        from assistant.app import App
        from assistant.core.settings import Settings
        print(App(Settings(home={str(home)!r})).ingest([Path({str(src)!r})]).new)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.stdout.split() == ["12"], out.stderr[-3000:]
    return home, src


@pytest.fixture
def home(stored, tmp_path):
    """A copy of the stored home to damage."""
    copy = tmp_path / "home"
    shutil.copytree(stored[0], copy)
    return copy


def _counts(home) -> str:
    out = _cli(home, "libraries", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in out.stderr and "panicked" not in out.stderr
    return lines[0]


@pytest.mark.parametrize("offset", [0, 4096], ids=["header", "second-page"])
def test_store__junk_in_the_database_is_one_line_naming_the_store_and_loses_nothing(home, offset):
    counts = _counts(home)
    database = home / "chroma" / "chroma.sqlite3"
    junk = b"\xde\xad junk, not SQLite \xbe\xef" * 160
    with database.open("r+b") as f:  # at 4096 Chroma 1.5.9 panics in Rust while it opens the file
        f.seek(offset)
        original = f.read(len(junk))
        f.seek(offset)
        f.write(junk)
    for args in (["search", "npo unlearning"], ["ingest", str(home.parent / "none.jsonl")], ["doctor"]):
        out = _cli(home, *args)
        assert out.returncode == 1, (args, out.stderr[-3000:])
        line = _one_error_line(out)
        assert f"the library store at {home / 'chroma'} is damaged" in line and "backup" in line, line
    # With the junk taken out again (a restored backup), every paper is there.
    with database.open("r+b") as f:
        f.seek(offset)
        f.write(original)
    assert _counts(home) == counts


def test_store__a_lost_database_is_one_line_and_no_empty_one_is_made_beside_the_indexes(home):
    (home / "chroma" / "chroma.sqlite3").unlink()
    folders = sorted(p.name for p in (home / "chroma").iterdir())
    out = _cli(home, "libraries")
    assert out.returncode == 1
    line = _one_error_line(out)
    assert "has lost its database (chroma.sqlite3 is missing)" in line and "vector index folders" in line, line
    assert sorted(p.name for p in (home / "chroma").iterdir()) == folders


def _delete_chunk_index(home) -> None:
    """Delete the chunks collection's vector index folder (found in Chroma's own tables, as a user would not)."""
    db = sqlite3.connect(home / "chroma" / "chroma.sqlite3")
    try:
        (segment,) = db.execute("SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                                "WHERE s.scope = 'VECTOR' AND c.name LIKE '%\\_\\_chunks' ESCAPE '\\'").fetchone()
    finally:
        db.close()
    shutil.rmtree(home / "chroma" / segment)


def test_doctor__a_deleted_vector_index_is_one_clear_message_and_repair_restores_every_vector(stored, home):
    counts = _counts(home)
    _delete_chunk_index(home)

    # Counts still say every paper is there; search, ask and a re-ingest all say what is wrong and what to do.
    assert _counts(home) == counts
    for args in (["search", "npo unlearning"], ["ask", "What is negative preference optimization?"],
                 ["ingest", str(stored[1])]):
        out = _cli(home, *args)
        assert out.returncode == 1, (args, out.stdout[-2000:], out.stderr[-2000:])
        line = _one_error_line(out)
        assert "vector index holds" in line and "`assistant doctor --repair`" in line, line
    assert "unchanged: 12" in out.stdout  # the re-ingest still reports what it found

    check = _cli(home, "doctor", "--json")
    assert check.returncode == 1
    found = json.loads(check.stdout)
    assert found["before"]["chunks"]["missing"] > 0 and found["before"]["chunks"]["records"] == counts[0]["chunks"]

    repaired = _cli(home, "doctor", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    report = json.loads(repaired.stdout)
    assert report["after"]["chunks"] == {"kind": "chunks", "records": counts[0]["chunks"], "missing": 0,
                                         "missing_examples": []}
    assert report["embedded"] == found["before"]["chunks"]["missing"]  # only what was missing was embedded
    assert _counts(home) == counts
    assert _cli(home, "doctor").returncode == 0
    out = _cli(home, "search", "npo unlearning", "--json")
    assert out.returncode == 0 and json.loads(out.stdout), out.stderr[-2000:]
