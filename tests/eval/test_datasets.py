"""The hand-written dev sets pass their own checks (gold titles exist, key facts are verbatim, paraphrases share
no rare word with their paper, off-topic questions match no abstract), and the PDF front-matter labels name
files that exist."""

from __future__ import annotations

import json

from tests.conftest import ROOT


def test_researcher_set__passes_its_checks(capsys):
    from eval.datasets.check_researcher import main

    assert main() == 0, capsys.readouterr().out


def test_pdf_front_labels__name_the_shared_pdfs_with_a_title_and_authors_each():
    rows = [json.loads(line) for line in (ROOT / "eval" / "datasets" / "pdf_front.jsonl").read_text().splitlines()]
    folders = {"litqa2-dev": ROOT.parent / "shared" / "bench" / "litqa2-dev" / "pdfs",
               "corpus": ROOT.parent / "shared" / "corpus" / "pdfs"}
    assert len(rows) == 23 and len({r["file"] for r in rows}) == 23
    for r in rows:
        assert r["title"] and r["authors"] and r["doi"].startswith("10.") and isinstance(r["year"], int)
        if folders[r["folder"]].is_dir():
            assert (folders[r["folder"]] / r["file"]).is_file(), r["file"]
