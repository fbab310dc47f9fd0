"""Tests for ingest.pdf: the three real papers, PDFs generated here with known text on known pages
(one of them in two columns), and every kind of bad file, each with its one-line message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from assistant.core.errors import UserError
from ingest.pdf import PdfError, read_pdf
from ingest.pdf.clean import normalize
from tests.ingest.pdf_papers import frame, lines

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "pdfs"
EXONUCLEASE = CORPUS / "10.1186_s12915-024-01918-w.pdf"
GLUCOKINASE = CORPUS / "10.1186_s13059-023-02935-8.pdf"
SPLICING = CORPUS / "10.7554_eLife.91357.3.pdf"

needs_corpus = pytest.mark.skipif(not EXONUCLEASE.exists(), reason=f"the real PDFs are not in {CORPUS}")


def flat(text: str) -> str:
    return " ".join(text.split())


# --- the three real papers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    return {path.name: read_pdf(path) for path in (EXONUCLEASE, GLUCOKINASE, SPLICING)}


@needs_corpus
def test_real__title_doi_year_and_authors_from_the_first_page_and_metadata(real):
    exo, gck, splicing = real[EXONUCLEASE.name], real[GLUCOKINASE.name], real[SPLICING.name]
    assert exo.title == "Exonuclease editor promotes precision of gene editing in mammalian cells"
    assert exo.doi == "10.1186/s12915-024-01918-w" and exo.year == 2024 and exo.page_count == 16
    assert exo.authors[0] == "Hui Shi" and exo.authors[-1] == "Kepin Wang" and len(exo.authors) == 10
    assert gck.title == "A comprehensive map of human glucokinase variant activity"
    assert gck.doi == "10.1186/s13059-023-02935-8" and gck.year == 2023 and gck.page_count == 23
    assert gck.authors[0] == "Sarah Gersing" and "Kresten Lindorff-Larsen" in gck.authors
    # eLife stores neither title nor DOI in its metadata: both come from the first page
    assert splicing.title == "Post-transcriptional splicing can occur in a slow-moving zone around the gene"
    assert splicing.doi == "10.7554/elife.91357" and splicing.year == 2023 and splicing.page_count == 26
    assert splicing.authors[:2] == ["Allison Coté", "Aoife O'Farrell"] and splicing.authors[-1] == "Arjun Raj"
    assert all(doc.arxiv_id == "" for doc in real.values())


@needs_corpus
def test_real__abstract_is_the_papers_abstract_and_stays_out_of_the_body(real):
    splicing = real[SPLICING.name]
    assert splicing.abstract.startswith("Splicing is the stepwise molecular process by which introns are removed")
    assert splicing.abstract.endswith("conflicting reports of co-transcriptional versus post-transcriptional splicing.")
    assert "Splicing is the stepwise molecular process" not in splicing.text
    gck = real[GLUCOKINASE.name]
    assert gck.abstract.startswith("Background: Glucokinase (GCK) regulates insulin secretion")
    assert "hyperinsulinemic hypoglycemia" in gck.abstract  # "hyperinsuline-" + "mic" across a line
    assert gck.abstract.endswith("inform development of therapeutics targeting GCK.")
    assert real[EXONUCLEASE.name].abstract.startswith("Background Many efforts have been made")


@needs_corpus
def test_real__body_sentences_in_reading_order_on_their_pages(real):
    exo, gck, splicing = real[EXONUCLEASE.name], real[GLUCOKINASE.name], real[SPLICING.name]
    # page 2 of the two-column paper: the foot of the left column runs on at the top of the right one
    assert (
        "However, the number of donor attachment sites is limited, often at the C or N terminus of Cas9"
        in flat(exo.pages[1].text)
    )
    # a superscript (10^6) splits the line in the content stream; its halves stay in order
    assert "until reaching exponential phase, at which point 100–125× 106 cells were harvested" in flat(gck.pages[13].text)
    # eLife page 1 ends mid-sentence; page 2 picks it up after the running header and the sidebar
    assert flat(splicing.pages[0].text).endswith("shortly after the RNA polymerase transcribes a particular splice")
    assert flat(splicing.pages[1].text).startswith("junction (Beyer et al., 1981;")


@needs_corpus
def test_real__running_headers_footers_and_page_numbers_are_gone(real):
    for doc in real.values():
        for page in doc.pages:
            for header in ("Shi et al. BMC Biology", "Gersing et al. Genome Biology", "eLife 2023;12:RP91357",
                           f"Page {page.number} of", f"{page.number} of 26", "Chromosomes and Gene Expression"):
                assert header not in page.text, (doc.path, page.number, header)


@needs_corpus
def test_real__references_kept_apart_from_the_body(real):
    exo, gck, splicing = real[EXONUCLEASE.name], real[GLUCOKINASE.name], real[SPLICING.name]
    assert len(exo.references) == 55 and exo.references[0].startswith("1. Ceccaldi R, Rondinelli B, D’Andrea AD.")
    assert exo.references[-1].startswith("55. Clement K, Rees H")
    assert len(gck.references) == 101 and gck.references[100].startswith("101. Gersing S")
    assert len(splicing.references) == 65 and splicing.references[0].startswith("Aebi M, Weissman C. 1987.")
    assert "Ceccaldi R" not in exo.text and "Aebi M, Weissman C" not in splicing.text
    assert "References" in exo.sections


@needs_corpus
def test_real__sections_captions_hyphens_and_ligatures(real):
    exo = real[EXONUCLEASE.name]
    culture = next(b for b in exo.pages[12].blocks if b.text.startswith("HEK293 cells were cultured"))
    assert culture.section == "Methods > Cell culture"
    legend = next(b for b in exo.pages[4].blocks if b.text.startswith("Fig. 2 EXO editor inhibits NHEJ locally"))
    assert legend.kind == "caption"
    legends = [(p.number, b.text[:6]) for p in exo.pages for b in p.blocks if b.kind == "caption"]
    assert legends == [(2, "Fig. 1"), (5, "Fig. 2"), (7, "Fig. 3"), (8, "Fig. 4"), (9, "Fig. 5"), (11, "Fig. 6")]
    assert "Background" in exo.sections and "Discussion" in exo.sections
    text = " ".join(doc.text for doc in real.values())
    assert "microhomology-mediated end joining" in exo.text  # a compound broken at its hyphen keeps it
    assert "which is inefficient (typically ~0.1–5%)" in exo.text  # "inef-" + "ficient", with the ligature
    assert "catalytic submit" in exo.text  # "cata-" + "lytic"
    assert not any("\ufb00" <= ch <= "\ufb06" for ch in text)


# --- generated papers ---------------------------------------------------------------------------

HEADER = "Journal of Synthetic Tests 12 (2023)"


def _frame(pdf: FPDF, number: int) -> None:
    frame(pdf, number, HEADER, corner="Research article")


LEFT = [
    "The left column opens the methods with a sentence",
    "about copper wire that continues on this line.",
    "We measured forty samples with a calibrated pre-",
    "training rig, the same rig as before. The left",
    "column ends with the marker sentence about",
    "walnut trees.",
]
RIGHT = [
    "The right column begins with a sentence about",
    "silver spoons that runs onto a second line.",
    "Every sample was weighed twice before use.",
    "The right column closes with the sentence about",
    "granite steps.",
]


def make_paper(path: Path) -> Path:
    """Three pages: a title page, a two-column page written row by row (so the content stream
    interleaves the columns), and a page with the discussion and the references."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_title("Column Order and Broken Words in Synthetic Papers")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    _frame(pdf, 1)
    with pdf.rotation(90, 30, 600):
        pdf.set_font("Helvetica", "", 12)
        pdf.text(30, 600, "arXiv:2301.01234v2  [cs.CL]  5 Jan 2023")
    lines(pdf, 56, 90, ["Column Order and Broken Words", "in Synthetic Papers"], size=20, lead=24, style="B")
    lines(pdf, 56, 150, ["Ada Lovelace1, Alan Turing2 and Grace Hopper1*"], size=11)
    lines(pdf, 56, 168, ["1 Department of Computing, Example University, Exampletown",
                          "2 Institute of Machines, Sample College, Sampleville",
                          "https://doi.org/10.5555/synth.2023.0042"], size=8, lead=10)
    lines(pdf, 56, 215, ["Abstract"], size=12, style="B")
    lines(pdf, 56, 232, ["We study how a reader of portable documents recovers the order of columns and repairs",
                          "words broken at the ends of lines. The abstract sentence about amber lanterns is on page one."])
    lines(pdf, 56, 275, ["1 Introduction"], size=12, style="B")
    lines(pdf, 56, 292, [
        "Researchers read papers as portable documents, and a gene-editing study is a typical case.",
        "The introduction sentence about purple kites is on page one. We compare pre-training with",
        "fine-tuning, and we note that pre-training budgets vary. Reading order is dif-",
        "ficult on pages with two columns, which is why our meth-",
        "ods test it. A method that reads a gene-",
        "editing paper must keep the hyphen of a compound word. Each method is described below.",
    ])
    pdf.add_page()
    _frame(pdf, 2)
    lines(pdf, 56, 70, ["2 Methods"], size=12, style="B")
    pdf.set_font("Helvetica", "", 10)
    for k in range(max(len(LEFT), len(RIGHT))):  # row by row: left line, then right line
        if k < len(LEFT):
            pdf.text(56, 88 + k * 13, LEFT[k])
        if k < len(RIGHT):
            pdf.text(310, 88 + k * 13, RIGHT[k])
    lines(pdf, 310, 170, ["3 Results"], size=12, style="B")
    lines(pdf, 310, 188, ["The results paragraph reports that", "ninety-two percent of the samples",
                           "passed the bending test."])
    lines(pdf, 56, 300, ["Figure 1. The caption sentence about the blue triangle is set in small type under the",
                          "figure and spans the page under both columns."], size=8, lead=10)
    pdf.add_page()
    _frame(pdf, 3)
    lines(pdf, 56, 70, ["4 Discussion"], size=12, style="B")
    lines(pdf, 56, 88, ["The discussion sentence about orange rivers is on page three, after the columns.",
                         "The text ends here, before the list of works cited."])
    lines(pdf, 56, 130, ["References"], size=12, style="B")
    lines(pdf, 56, 148, ["1. Babbage C. On the economy of machinery and manufactures. J Mech. 1832;1:1-10.",
                          "2. Lovelace A. Notes on the analytical engine. Sci Mem. 1843;3:666-731.",
                          "3. Turing A. On computable numbers. Proc Lond Math Soc. 1936;42:230-65."], size=9, lead=12)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return read_pdf(make_paper(tmp_path_factory.mktemp("pdf") / "synthetic.pdf"))


def test_generated__every_marker_sentence_on_its_own_page(synthetic):
    where = {
        "purple kites": 1, "copper wire": 2, "walnut trees": 2, "silver spoons": 2, "granite steps": 2,
        "bending test": 2, "blue triangle": 2, "orange rivers": 3,
    }
    for marker, number in where.items():
        pages = [p.number for p in synthetic.pages if marker in p.text]
        assert pages == [number], marker
    assert [p.number for p in synthetic.pages] == [1, 2, 3]


def test_generated__two_columns_read_left_column_first(synthetic):
    page = flat(synthetic.pages[1].text)
    assert "about copper wire that continues on this line." in page
    assert "with the marker sentence about walnut trees." in page
    assert "about silver spoons that runs onto a second line." in page
    assert page.index("walnut trees") < page.index("silver spoons") < page.index("granite steps")
    results = next(b for b in synthetic.pages[1].blocks if "bending test" in b.text)
    assert results.section == "3 Results"
    legend = next(b for b in synthetic.pages[1].blocks if "blue triangle" in b.text)
    assert legend.kind == "caption" and legend.text.endswith("spans the page under both columns.")


def test_generated__line_end_hyphens_repaired_only_where_the_word_is_one_word(synthetic):
    text = flat(synthetic.text)
    assert "Reading order is difficult on pages" in text  # dif- + ficult: no word "dif"
    assert "which is why our methods test it." in text  # "methods" occurs elsewhere
    assert "reads a gene-editing paper" in text  # "gene-editing" occurs elsewhere
    assert "a calibrated pre-training rig" in text  # "pre-training" occurs elsewhere


def test_generated__front_matter(synthetic):
    assert synthetic.title == "Column Order and Broken Words in Synthetic Papers"
    assert synthetic.authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert synthetic.doi == "10.5555/synth.2023.0042"
    assert synthetic.arxiv_id == "2301.01234"  # from the rotated margin stamp, without its version
    assert synthetic.year == 2023
    assert synthetic.abstract == (
        "We study how a reader of portable documents recovers the order of columns and repairs words broken "
        "at the ends of lines. The abstract sentence about amber lanterns is on page one."
    )
    assert "amber lanterns" not in synthetic.text and "Example University" not in synthetic.text


def test_generated__headers_footers_page_numbers_and_references_kept_out(synthetic):
    for page in synthetic.pages:
        assert HEADER not in page.text and "Research article" not in page.text
        assert not any(b.text.strip() == str(page.number) for b in page.blocks)
    assert synthetic.sections == ["1 Introduction", "2 Methods", "3 Results", "4 Discussion", "References"]
    assert synthetic.references == [
        "1. Babbage C. On the economy of machinery and manufactures. J Mech. 1832;1:1-10.",
        "2. Lovelace A. Notes on the analytical engine. Sci Mem. 1843;3:666-731.",
        "3. Turing A. On computable numbers. Proc Lond Math Soc. 1936;42:230-65.",
    ]
    assert "Babbage" not in synthetic.text


def test_generated__ligature_glyphs_come_out_as_letters(tmp_path):
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    pdf = FPDF(unit="pt", format="A4")
    pdf.add_page()
    pdf.add_font("DejaVu", fname=str(font))
    pdf.set_font("DejaVu", size=10)
    pdf.text(56, 100, "The \ufb01rst e\ufb00ect was signi\ufb01cant in the \ufb02ow cell, as the text reports.")
    path = tmp_path / "ligatures.pdf"
    pdf.output(str(path))
    assert read_pdf(path).pages[0].text == "The first effect was significant in the flow cell, as the text reports."
    assert normalize("e\ufb03cient \ufb01ne") == "efficient fine"


# --- bad files: one clear line each -------------------------------------------------------------


def _problem(path: Path) -> str:
    with pytest.raises(PdfError) as caught:
        read_pdf(path)
    message = str(caught.value)
    assert isinstance(caught.value, UserError)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_bad__scanned_pdf_without_a_text_layer(tmp_path):
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.image(Image.new("L", (300, 400), 200), 10, 10, 150)
    pdf.output(str(tmp_path / "scan.pdf"))
    message = _problem(tmp_path / "scan.pdf")
    assert "no text layer" in message and "image" in message and "OCR" in message


def test_bad__encrypted_pdf_needs_a_password(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.text(20, 20, "A locked sentence that cannot be read without the password.")
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.output(str(tmp_path / "locked.pdf"))
    assert "encrypted; it needs a password" in _problem(tmp_path / "locked.pdf")


def test_encrypted_with_an_owner_password_only_still_reads(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.text(20, 20, "Copying is restricted, but this sentence opens without a password.")
    pdf.set_encryption(owner_password="owner")
    pdf.output(str(tmp_path / "restricted.pdf"))
    assert "opens without a password" in read_pdf(tmp_path / "restricted.pdf").text


@needs_corpus
def test_bad__truncated_pdf(tmp_path):
    data = EXONUCLEASE.read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
    assert "truncated" in _problem(tmp_path / "cut.pdf")


def test_bad__truncated_generated_pdf(tmp_path, synthetic):
    data = Path(synthetic.path).read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) - 200])
    assert "truncated" in _problem(tmp_path / "cut.pdf")


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "not a PDF (it starts with HTML"),
        (b"Title: a paper\nAbstract: plain text saved with the wrong name\n", "not a PDF (it starts with plain text"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not a PDF (it starts with a ZIP archive"),
        (b"", "the file is empty"),
    ],
)
def test_bad__not_a_pdf_with_a_pdf_name(tmp_path, content, expected):
    path = tmp_path / "paper.pdf"
    path.write_bytes(content)
    assert expected in _problem(path)


def test_bad__blank_pdf_says_there_is_no_text(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(tmp_path / "blank.pdf"))
    assert "no text on any page" in _problem(tmp_path / "blank.pdf")


def test_bad__missing_file(tmp_path):
    assert "no such file" in _problem(tmp_path / "absent.pdf")


def test_500_pages__read_whole_with_bounded_memory(tmp_path):
    """A 500-page file reads to its last page with its running header removed, in bounded memory.

    Peak memory is the child's own VmHWM: ru_maxrss would inherit the (large) pytest process's RSS
    across fork and exec. Speed is measured by eval/pdf_bench.py, not here."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for n in range(1, 501):
        pdf.add_page()
        pdf.text(56, 36, "A Very Long Report")
        pdf.text(290, 810, str(n))
        for k in range(5):
            pdf.text(56, 120 + 13 * k, f"Line {k + 1} of page {n} holds a plain sentence of the long report.")
    path = tmp_path / "long.pdf"
    pdf.output(str(path))
    script = (
        "import re, sys; from pathlib import Path; from ingest.pdf import read_pdf; d = read_pdf(sys.argv[1]); "
        "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1)) // 1024; "
        "print(d.page_count, hwm, "
        "'Line 1 of page 500 holds' in d.pages[499].text, any('A Very Long Report' in p.text for p in d.pages))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True, check=True)
    pages, peak_mb, last_page_read, header_left = out.stdout.split()
    assert pages == "500" and last_page_read == "True" and header_left == "False"
    # measured ~90 MB; a reader that held every page's characters at once would go far past this
    assert int(peak_mb) < 400, out.stdout


# --- the full-text question set ------------------------------------------------------------------

FULLTEXT = ROOT / "eval" / "datasets" / "fulltext.jsonl"


@needs_corpus
def test_fulltext_questions__each_passage_is_on_its_page_and_its_facts_are_not_in_the_abstract(real):
    import json

    questions = [json.loads(line) for line in FULLTEXT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(questions) >= 25 and len({q["id"] for q in questions}) == len(questions)
    by_doi = {doc.doi: doc for doc in real.values()}
    for q in questions:
        doc = by_doi[q["gold_dois"][0]]
        assert q["gold_titles"] == [doc.title] and q["answerable"] is True, q["id"]
        on_pages = [p.number for p in doc.pages if q["passage"] in flat(p.text)]
        assert on_pages == [q["page"]], q["id"]
        assert all(fact in q["passage"] and fact not in doc.abstract for fact in q["key_facts"]), q["id"]
