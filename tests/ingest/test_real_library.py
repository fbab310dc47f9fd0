"""A researcher's real library: the 23 real PDFs of ../shared as one folder, beside the bundled abstracts.

Every file is stored or named; front matter matches the hand labels (eval/datasets/pdf_front.jsonl); no margin
line number reaches a title or a passage; a LitQA2 question finds its paper and cites its key passage; questions
about the abstracts cite no PDF, follow-ups included. Also the pieces that real PDFs needed: surrogate pairs,
text normalisation, margin line numbers, and a reader pool where a crashing or hanging file costs only itself.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from ingest.normalize import normalize_text, normalize_title
from ingest.pdf.layout import code_point
from ingest.readers.pdf import file_hash
from tests.conftest import DATA, ROOT

SHARED = ROOT.parent / "shared"
PDF_FOLDERS = [SHARED / "bench" / "litqa2-dev" / "pdfs", SHARED / "corpus" / "pdfs"]
LABELS = ROOT / "eval" / "datasets" / "pdf_front.jsonl"
LITQA = SHARED / "bench" / "litqa2-dev" / "questions.jsonl"
needs_pdfs = pytest.mark.skipif(not all(f.is_dir() for f in PDF_FOLDERS), reason="../shared PDFs are not beside the checkout")


def test_code_point__joins_a_surrogate_pair_and_drops_a_lone_half():
    units = [ord("r"), 0xD835, 0xDC5F, ord("e"), 0xDC00, 0xD835]  # r, 𝑟 (two units), e, a lone low, a lone high
    assert code_point(lambda k: units[k], 0, len(units)) == (ord("r"), False)
    assert code_point(lambda k: units[k], 1, len(units)) == (0x1D45F, True)
    assert code_point(lambda k: units[k], 4, len(units)) == (None, False)
    assert code_point(lambda k: units[k], 5, len(units)) == (None, False)  # the text ends before its pair


def test_normalize_text__what_real_pdfs_bring_becomes_plain_text():
    assert normalize_text("the rate 𝑟, time 𝜏 and base 𝑒") == "the rate r, time τ and base e"  # math letters
    assert normalize_text("a\ud835b") == "ab"  # a lone surrogate (from a JSON escape or a broken pair)
    assert normalize_text("x\ue001y\U000f0001z") == "xyz"  # private-use glyphs
    assert normalize_text("e\ufb03cient \x00\x07\x1b[2Jtext") == "efficient [2Jtext"  # ligature, controls
    assert normalize_text("a 12 A\u02da pocket") == "a 12 Å pocket"  # a spacing ring after its letter


def _numbered_preprint(path: Path) -> Path:
    """A page in the style of a line-numbered preprint: a number in the left margin beside every line, and a
    numbered list inside the text block that must stay."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="letter")
    pdf.add_page()
    rows = [("Residues Neighboring a Binding Motif", 20, "B"), ("Participate in the Interaction", 20, "B")]
    rows += [(text, 11, "") for text in [
        "Ann Author and Ben Writer", "", "Abstract",
        "We measured the binding of mutants to a domain in living cells and found that residues outside",
        "the canonical motif change the binding strength. Three mutants bound more strongly than the wild type,",
        "and six bound more weakly. We propose that a broader region sets both affinity and specificity.",
        "", "Introduction",
        "Protein interactions are often mediated by modular domains that bind short linear motifs in partners.",
        "The steps we took were as follows, in this order, for every strain used in the study:",
        "1. grow the cells overnight in rich medium", "2. dilute them into selective medium",
        "3. measure the growth of each mutant for three days",
        "Each of these steps was repeated in four biological replicates to estimate the variation between days.",
    ]]
    y = 72.0
    for number, (text, size, style) in enumerate(rows, start=1):
        pdf.set_font("Helvetica", "", 9)
        pdf.text(30, y, str(number))
        if text:
            pdf.set_font("Helvetica", style, size)
            pdf.text(90 if text[:2] in {"1.", "2.", "3."} else 72, y, text)
        y += size + 8
    pdf.output(str(path))
    return path


def test_line_numbers__a_preprints_margin_numbers_reach_no_title_and_no_passage(tmp_path):
    from ingest.pdf import read_pdf

    doc = read_pdf(_numbered_preprint(tmp_path / "preprint.pdf"))
    assert doc.title == "Residues Neighboring a Binding Motif Participate in the Interaction"
    assert doc.abstract.startswith("We measured the binding")
    text = doc.text
    assert "Protein interactions are often mediated" in text
    assert not re.search(r"(^|\n)\d{1,2} [A-Za-z]", text), text  # no block starts with a margin number
    assert "1. grow the cells" in text and "3. measure the growth" in text  # the list inside the text stays


def _copy_in(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, folder / f.name)
    return folder


@needs_pdfs
@pytest.mark.slow
def test_reading_pool__a_crashing_and_a_hanging_file_cost_only_themselves(tmp_path):
    from ingest.reading import read_files
    from tests.ingest.odd_readers import crash_or_hang

    real = sorted(PDF_FOLDERS[1].glob("*.pdf"))
    folder = tmp_path / "inbox"
    folder.mkdir()
    names = ["a.pdf", "crash.pdf", "b.pdf", "hang.pdf", "c.pdf"]
    for name, source in zip(names, real + real[:2]):
        shutil.copyfile(source, folder / name)
    started = time.monotonic()
    reads = {r.path.name: r.result for r in read_files([folder / n for n in names], workers=2,
                                                       reader=crash_or_hang, limit=8)}
    assert time.monotonic() - started < 120
    assert [len(reads[n].papers) for n in ("a.pdf", "b.pdf", "c.pdf")] == [1, 1, 1]
    assert "crashed" in reads["crash.pdf"].skipped[0].reason and not reads["crash.pdf"].papers
    assert "stopped after 8 s" in reads["hang.pdf"].skipped[0].reason and not reads["hang.pdf"].papers


# -- the 23 real PDFs as one folder, beside the bundled abstracts ------------------------------------------


@pytest.fixture(scope="module")
def real_library(tmp_path_factory, embedder):
    if not all(f.is_dir() for f in PDF_FOLDERS):
        pytest.skip("../shared PDFs are not beside the checkout")
    folder = _copy_in([p for f in PDF_FOLDERS for p in sorted(f.glob("*.pdf"))], tmp_path_factory.mktemp("papers") / "papers")
    home = tmp_path_factory.mktemp("real-home")
    app = App(Settings(home=home), embedder=embedder)
    report = app.ingest([DATA, folder])
    return home, folder, report


@pytest.fixture
def real_app(real_library, embedder, monkeypatch):
    home = real_library[0]
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    return App(Settings(home=home), embedder=embedder)


@pytest.mark.slow
def test_real_folder__every_file_is_stored_and_only_identical_bytes_merge(real_library, real_app):
    _, folder, report = real_library
    assert not report.skipped and not report.files_failed, report.lines()
    assert report.pdf_files == 23 and report.failed == 0
    by_hash = {m["file_hash"]: pid for pid, m in real_app.library.identities().items() if m.get("file_hash")}
    files = sorted(folder.glob("*.pdf"))
    hashes = {f.name: file_hash(f) for f in files}
    assert set(hashes.values()) <= set(by_hash)  # every file's paper is stored
    # 23 files, 22 papers: the one merge is the pair of files with the same bytes (one paper under two names).
    assert len(set(by_hash[h] for h in hashes.values())) == 22
    assert hashes["10.1016%2Fj.ccell.2024.03.013.pdf"] == hashes["10.1016%2Fj.cell.2024.02.016.pdf"]


@pytest.mark.slow
def test_real_folder__titles_match_the_hand_labels_and_carry_no_line_number(real_library, real_app):
    _, folder, _ = real_library
    labels = [json.loads(line) for line in LABELS.read_text().splitlines() if line.strip()]
    by_hash = {m["file_hash"]: pid for pid, m in real_app.library.identities().items() if m.get("file_hash")}
    papers = {p.paper_id: p for p in real_app.library.get_papers(list(by_hash.values()))}
    right = [normalize_title(papers[by_hash[file_hash(folder / lab["file"])]].title) == normalize_title(lab["title"])
             for lab in labels]
    assert sum(right) >= 22, [lab["file"] for lab, ok in zip(labels, right) if not ok]
    assert not any(re.match(r"\d", p.title) for p in papers.values())
    # The line-numbered preprint: its passages start with its words, not its margin numbers (169, 170, ...).
    preprint = by_hash[file_hash(folder / "10.1101%2F2024.05.13.593936.pdf")]
    passages = real_app.library.passages([preprint])[preprint]
    numbered = [p["text"][:40] for p in passages if re.match(r"\d{2,4} [A-Z][a-z]", p["text"])]
    assert len(passages) > 50 and len(numbered) <= 2, numbered


@pytest.mark.slow
def test_real_folder__a_litqa_question_finds_its_paper_and_cites_its_key_passage(real_library, real_app):
    from eval.answers_eval import fact_covered, passage_overlaps

    _, folder, _ = real_library
    question = next(json.loads(line) for line in LITQA.read_text().splitlines() if "G4-forming" in line)
    pid = next(pid for pid, m in real_app.library.identities().items()
               if m.get("file_hash") == file_hash(folder / question["files"][0]))
    answer = real_app.engine.ask(question["question"])
    assert answer.sources[0]["paper_id"] == pid
    cited = [e for c in answer.citations if c["paper_id"] == pid for e in [p["evidence"] for p in c["passages"]]]
    assert any(passage_overlaps(e, question["key_passage"]) for e in cited), cited
    assert fact_covered(question["ideal"], answer.answer)


@pytest.mark.slow
@pytest.mark.parametrize("turns", [
    ["What is negative preference optimization?"],
    ["compare NPO and gradient ascent", "which of them is more stable?"],
])
def test_real_folder__questions_about_the_abstracts_cite_no_pdf(real_app, turns):
    history: list[dict] = []
    full_texts = {pid for pid, m in real_app.library.identities().items() if m.get("pages")}
    for question in turns:
        answer = real_app.engine.ask(question, history=history)
        assert not answer.declined and answer.citations, answer.answer
        assert not {c["paper_id"] for c in answer.citations} & full_texts, answer.answer
        assert ", p. " not in answer.answer
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
