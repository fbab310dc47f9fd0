"""Bad input at scale: every bad file is a line in the ingest report, the good files still load, memory stays bounded."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from tests.ingest.test_pipeline import _papers_jsonl

pytestmark = pytest.mark.slow

MB = 1024 * 1024
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _bad_files(folder) -> dict[str, str]:
    """Write the bad inputs; returns file name -> what its report line must say."""
    rng = random.Random(7)
    (folder / "random.jsonl").write_bytes(rng.randbytes(256 * 1024))
    (folder / "random_no_nul.txt").write_bytes(bytes(rng.randrange(1, 256) for _ in range(64 * 1024)))
    rows = [{"title": f"Paper {i} on tulip genetics", "abstract": "Tulip genomes are sequenced and compared. " * 8} for i in range(3)]
    (folder / "truncated.json").write_text(json.dumps(rows)[:-60])
    (folder / "huge_line.txt").write_text("word " * (20 * MB // 5))  # 20 MB, one line, no title
    (folder / "huge_record.jsonl").write_text(json.dumps({"title": "Huge", "abstract": "lorem ipsum dolor " * (20 * MB // 18)}))
    (folder / "control_raw.txt").write_bytes(b"Title: Raw \x01\x02 control\n\nAbstract \x00\x1b text here\x7f\n")
    (folder / "broken.bib").write_text(
        "@article{broken,\n  title = {Broken {braces in the title},\n  abstract = {An abstract that never closes\n}\n\n"
        "@article{fine, title={Tulip growth in cold gardens},"
        " abstract={We measure how tulips grow in cold gardens over three winters and report the effect of frost.}}\n"
    )
    return {
        "random.jsonl": "binary",
        "random_no_nul.txt": "not UTF-8",
        "truncated.json": "truncated JSON",
        "huge_line.txt": "huge_line.txt:1",
        "huge_record.jsonl": "over the 20,000 limit",
        "control_raw.txt": "binary",
        "broken.bib": "unreadable BibTeX",
    }


def test_bad_input__each_bad_file_is_reported_good_ones_load_and_memory_stays_bounded(tmp_path, temp_home):
    folder = tmp_path / "inbox"
    folder.mkdir()
    good = _papers_jsonl(folder / "good.jsonl", 3)
    expected = _bad_files(folder)
    # Control characters inside otherwise good JSON: cleaned, not rejected.
    (folder / "control.jsonl").write_text(json.dumps({
        "title": "Control\x00 chars\x1b[31m in\x07 a title about sparse attention",
        "abstract": "An abstract with \x00 nulls, \x1b[2J escapes and \x08 backspaces about sparse attention in transformers.",
    }) + "\n")

    # In a subprocess, so its peak RSS is this ingest's alone (after the model is loaded and warm);
    # VmHWM, not ru_maxrss, which inherits the pytest process's RSS across fork and exec.
    script = textwrap.dedent(f"""
        import json, re, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from assistant.app import App
        from assistant.core.settings import Settings
        app = App(Settings(home={str(temp_home)!r}))
        app.embedder.embed(["warm up the model"])
        app.library.count_papers()
        def peak_kb():
            return int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
        before = peak_kb()
        report = app.ingest([Path({str(folder)!r})])
        after = peak_kb()
        print(json.dumps({{"report": report.to_dict(), "growth_kb": after - before,
                           "papers": [[p.title, p.abstract] for p in app.library.iter_papers()]}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    report, papers = out["report"], dict(out["papers"])

    # Generous: reading a 20 MB line costs a few copies of it; an unbounded reader would cost far more.
    assert out["growth_kb"] < 1024 * 1024, f"peak RSS grew by {out['growth_kb'] / 1024:.0f} MB"
    skipped = [f"{s['file']}:{s['line']}: {s['reason']}" for s in report["skipped"]]
    for name, says in expected.items():
        lines = [s for s in skipped if f"/{name}:" in s]
        assert lines and any(says in s for s in lines), (name, skipped)
    assert len(report["files"]) == len(expected) + 2

    # Good papers loaded, including the readable parts of the broken files; nothing bad got in.
    for row in good:
        assert papers[row["title"]] == row["abstract"]
    assert "Tulip growth in cold gardens" in papers
    assert {"Paper 0 on tulip genetics", "Paper 1 on tulip genetics"} <= set(papers)  # before the truncation
    assert "Huge" not in papers and not any(len(a) > 20_000 for a in papers.values())
    control = [t for t in papers if "sparse attention" in t]
    assert len(control) == 1 and "nulls" in papers[control[0]]
    assert not any(CONTROL.search(t) or CONTROL.search(a) for t, a in papers.items())
    assert report["new"] == report["papers"] == len(papers)
