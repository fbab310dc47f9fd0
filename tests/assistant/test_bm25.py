"""The BM25 index on disk and in memory: atomic revision swaps, revisions kept while another process reads them, a bounded cache.

The library here is a small stand-in (``Shelf``: a key, a revision, papers), the
same three things ``load_or_build`` reads from the Chroma-backed Library: the
other processes in these tests could not share one embedded Chroma safely, and
what is under test is the index folder, not the store.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from assistant.core.types import Paper
from tests.conftest import in_threads

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["unlearning", "tokenizer", "diffusion", "retrieval", "quantization", "alignment", "distillation", "pruning"]


class Shelf:
    """A library as BM25 sees it: a key, a revision, and papers (one per word in ``words``)."""

    def __init__(self, words: list[str], revision: str, key: str = "shelf"):
        self.key = key
        self._revision = revision
        self.papers = [Paper(paper_id=f"p-{w}", title=f"On {w}", abstract=f"A study of {w} in models.") for w in words]
        self.reads = 0

    def revision(self) -> str:
        return self._revision

    def iter_papers(self):
        self.reads += 1
        return iter(self.papers)

    def chunk_counts(self) -> dict[str, int]:
        return {p.paper_id: 1 for p in self.papers}


def _library_dir(root: Path, key: str = "shelf") -> Path:
    from assistant.library.bm25 import cache_folder

    return cache_folder(root, f"{key}-papers", "here", "any").parent


# A reader in another process: loads revision r1 and holds it until told to search, then searches and exits.
READER = """
import sys
from pathlib import Path
from assistant.library.bm25 import load_or_build
from tests.assistant.test_bm25 import Shelf, WORDS

index = load_or_build(Shelf(WORDS[:4], "r1"), Path(sys.argv[1]), "here")
print("ready", flush=True)
sys.stdin.readline()
hits = index.search("diffusion", 3)
print(index.paper_ids[hits[0][0]], flush=True)
"""

# Polls the revision CURRENT names until told to stop; prints how often it found none.
WATCHER = """
import json, sys
from pathlib import Path
from assistant.library.bm25 import load_current

library_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
load_current(library_dir).search("unlearning", 1)  # imports done before the clock starts
loads = misses = errors = 0
print("ready", flush=True)
while not stop.exists():
    try:
        index = load_current(library_dir)
        if index is None or not index.search("unlearning", 1):
            misses += 1
        loads += 1
        del index
    except Exception as exc:
        errors += 1
        print(repr(exc), file=sys.stderr)
print(json.dumps({"loads": loads, "misses": misses, "errors": errors}), flush=True)
"""


def _python(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"helper process did not start: {line!r} {proc.stderr.read()}")


def test_bm25__a_revision_another_process_reads_survives_a_new_revision_until_it_lets_go(tmp_path):
    from assistant.library.bm25 import load_or_build

    root = tmp_path / "bm25"
    reader = _python(READER, str(root))
    try:
        _wait_ready(reader)
        library_dir = _library_dir(root)
        assert (library_dir / "r1" / "ids.json").exists()

        newer = load_or_build(Shelf(WORDS, "r2"), root, "here")  # writes r2, then cleans what nobody holds
        assert len(newer.paper_ids) == len(WORDS)
        assert (library_dir / "r1" / "ids.json").exists()  # the reader still holds r1: it stays

        out, err = reader.communicate("search\n", timeout=60)
        assert reader.returncode == 0, err
        assert out.strip() == "p-diffusion"  # the reader searched its revision to the end
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()

    from assistant.library.bm25 import clean, current_revision

    assert current_revision(library_dir) == "r2"
    assert clean(library_dir) == ["r1"]  # released when the reader exited: now it goes
    assert sorted(p.name for p in library_dir.iterdir() if not p.name.startswith(".")) == ["CURRENT", "r2", "r2.lock"]


def test_bm25__current_always_names_a_complete_index_while_revisions_are_swapped(tmp_path):
    from assistant.library.bm25 import load_or_build

    root = tmp_path / "bm25"
    load_or_build(Shelf(WORDS, "r0"), root, "here")
    stop = tmp_path / "stop"
    watcher = _python(WATCHER, str(_library_dir(root)), str(stop))
    try:
        _wait_ready(watcher)
        for n in range(1, 9):
            load_or_build(Shelf(WORDS[: 4 + n % 4], f"r{n}"), root, "here")
            time.sleep(0.1)  # let the watcher load between swaps as well as during them
        stop.touch()
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["loads"] > 8, counts
    assert counts["misses"] == 0 and counts["errors"] == 0, (counts, err)


def test_bm25__the_memory_cache_keeps_a_few_libraries_and_one_revision_each(tmp_path):
    from assistant.library.bm25 import load_or_build

    root = tmp_path / "bm25"
    refs = [weakref.ref(load_or_build(Shelf(WORDS, "r1", key=f"lib{i}"), root, "here")) for i in range(8)]
    gc.collect()
    alive = [r() is not None for r in refs]
    assert sum(alive) <= 4, alive  # a small LRU, not every index ever loaded
    assert alive[-1]  # the newest is cached

    first = weakref.ref(load_or_build(Shelf(WORDS, "r1", key="lib7"), root, "here"))
    assert first() is not None and load_or_build(Shelf(WORDS, "r1", key="lib7"), root, "here") is first()
    load_or_build(Shelf(WORDS, "r2", key="lib7"), root, "here")
    gc.collect()
    assert first() is None  # a newer revision replaced it in memory
    assert not (_library_dir(root, "lib7") / "r1").exists()  # and nobody held it, so the build cleaned it


def test_bm25__concurrent_threads_share_one_build(tmp_path):
    from assistant.library.bm25 import load_or_build

    shelf = Shelf(WORDS, "r1")
    got = [i for i in in_threads(lambda _: load_or_build(shelf, tmp_path / "bm25", "here"), 6) if i is not None]
    assert len(got) == 6 and len({id(i) for i in got}) == 1
    assert shelf.reads == 1


def test_bm25__an_empty_library_works_and_writes_nothing_until_it_has_papers(tmp_path):
    from assistant.library.bm25 import load_or_build

    root = tmp_path / "bm25"
    assert load_or_build(Shelf([], ""), root, "here").search("unlearning", 5) == []
    assert not list(root.rglob("ids.json"))

    index = load_or_build(Shelf(WORDS, "r1"), root, "here")
    assert index.paper_ids[index.search("unlearning", 5)[0][0]] == "p-unlearning"


def test_bm25__an_unknown_unit_is_a_user_error(tmp_path):
    from assistant.core.errors import UserError
    from assistant.library.bm25 import load_or_build

    with pytest.raises(UserError, match="unknown BM25 unit"):
        load_or_build(Shelf(WORDS, "r1"), tmp_path, "here", unit="sentence")


@pytest.mark.parametrize("damaged", ["ids.json", "vocab.index.json", "params.index.json", "data.csc.index.npy",
                                     "indptr.csc.index.npy", "CURRENT"])
def test_bm25__a_cached_index_with_junk_in_a_file_is_rebuilt_with_one_warning(tmp_path, caplog, damaged):
    import assistant.library.bm25 as bm25

    root = tmp_path / "bm25"
    bm25.load_or_build(Shelf(WORDS, "r1"), root, "here")
    bm25._CACHE.clear()  # as a new process finds it: on disk only
    gc.collect()
    target = _library_dir(root) / damaged if damaged == "CURRENT" else _library_dir(root) / "r1" / damaged
    target.write_bytes(b"\xff\xfe junk \x00\x9f" * 50)

    shelf = Shelf(WORDS, "r1")
    index = bm25.load_or_build(shelf, root, "here")
    assert index.paper_ids[index.search("unlearning", 5)[0][0]] == "p-unlearning"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if damaged == "CURRENT":  # only the pointer was junk: the revision's own files were fine
        assert shelf.reads == 0 and warnings == []
    else:
        assert shelf.reads == 1 and len(warnings) == 1 and "rebuilding it from the store" in warnings[0], warnings
    bm25._CACHE.clear()
    assert bm25.load_or_build(Shelf(WORDS, "r1"), root, "here").search("unlearning", 5)  # the rebuilt one loads
