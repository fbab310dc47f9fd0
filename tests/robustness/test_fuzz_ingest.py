"""Fuzzing ingest: mutated PDFs and random Unicode text through the whole pipeline, as one folder.

No exception escapes a file: every file is stored or named with its reason, none of the reasons is a bug
(a trace written), the good files beside them are stored, and every stored text is clean (no lone surrogate,
no control character). The mutations are seeded, so a failure is repeatable.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from tests.ingest.pdf_papers import make_zephyr
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow

BAD_TEXT = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\uf8ff]")


def mutations(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """Damaged copies of a PDF: flipped bytes, a cut tail, a hole, a repeated block, a garbled object stream."""
    n = len(data)
    out = []
    for k in range(4):
        b = bytearray(data)
        for _ in range(rng.choice([1, 10, 200])):
            i = rng.randrange(n)
            b[i] = rng.randrange(256)
        out.append((f"flipped{k}", bytes(b)))
    out.append(("cut", data[: rng.randrange(n // 4, 3 * n // 4)]))
    a = rng.randrange(n // 2)
    out.append(("hole", data[:a] + data[a + rng.randrange(1, n // 8):]))
    a = rng.randrange(n // 2)
    out.append(("repeated", data[: a + 4096] + data[a: a + 4096] + data[a + 4096:]))
    stream = data.find(b"stream")
    if stream > 0:
        b = bytearray(data)
        for i in range(stream + 8, min(n, stream + 8 + 512)):
            b[i] = rng.randrange(256)
        out.append(("garbled-stream", bytes(b)))
    out.append(("header-only", data[:1024]))
    return out


def random_unicode(rng: random.Random, length: int) -> str:
    """Text from every corner of Unicode: letters, math letters, private use, controls, lone surrogates, emoji."""
    pools = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x4E00, 0x4FFF), (0x1D400, 0x1D7FF), (0xE000, 0xE0FF),
             (0x0, 0x1F), (0xD800, 0xDFFF), (0x1F300, 0x1F5FF), (0x300, 0x36F), (0xFFF0, 0xFFFF)]
    chars = []
    for _ in range(length):
        lo, hi = rng.choice(pools)
        chars.append(chr(rng.randint(lo, hi)))
    return "".join(chars)


REAL = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "litqa2-dev" / "pdfs" / "10.1101%2F2024.02.13.580051.pdf"


@pytest.mark.parametrize("source", ["generated", "real"])
def test_fuzz__no_exception_escapes_a_file(tmp_path, embedder, source):
    rng = random.Random(20261205)
    folder = tmp_path / "inbox"
    folder.mkdir()
    if source == "real" and not REAL.is_file():
        pytest.skip("../shared PDFs are not beside the checkout")
    pdf = REAL.read_bytes() if source == "real" else make_zephyr(tmp_path / "zephyr.pdf").read_bytes()
    for name, data in mutations(pdf, rng):
        (folder / f"{name}.pdf").write_bytes(data)
    good = _papers_jsonl(folder / "good.jsonl", 3)
    rows = [{"title": f"Paper {random_unicode(rng, 12)} on sparse attention {k}",
             "abstract": "Sparse attention " + random_unicode(rng, 400) + " in transformers."} for k in range(6)]
    # JSON escapes reach Python as lone surrogates ("\ud835" alone), as real exports of broken text do.
    (folder / "unicode.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=True) for r in rows) + "\n")
    (folder / "unicode.txt").write_text("\n".join(
        f"Title line {random_unicode(rng, 30)}\n{random_unicode(rng, 300)}" for _ in range(4)),
        encoding="utf-8", errors="surrogatepass")

    app = App(Settings(home=tmp_path / "home"), embedder=embedder)
    report = app.ingest([folder])

    files = {p.name for p in folder.iterdir()}
    assert {Path(f).name for f in report.files} == files
    stored_from = {Path(p.source.split(":")[0]).name for p in app.library.iter_papers()}
    named = {Path(s.file).name for s in report.skipped}
    # Each file stored, or named with its reason; damaged copies that still read as the paper are that one paper.
    merged = files - stored_from - named
    assert all(n.endswith(".pdf") for n in merged) and len(merged) <= report.duplicates, (merged, report.lines())
    assert not [s for s in report.skipped if "bug" in s.reason], [str(s) for s in report.skipped]
    assert report.failed == 0
    titles = {p.title: p for p in app.library.iter_papers()}
    assert all(r["title"] in titles for r in good)
    for paper in titles.values():
        assert not BAD_TEXT.search(paper.title) and not BAD_TEXT.search(paper.abstract), paper.title
    # The damaged PDFs that could still be read were read as the paper they are.
    readable = [n for n in stored_from if n.endswith(".pdf")]
    assert readable, "no damaged copy of the PDF was readable at all"
