"""Full-text PDFs through the ingest pipeline, against a real embedded Chroma and the real model: chunks with their
exact page and section, one paper per work (a PDF and an abstract entry of it), unchanged PDFs not read again,
bad files reported one line each while the rest ingests, and the three real papers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.app import App
from assistant.core.settings import Settings
from assistant.core.text import split_sentences
from tests.conftest import ROOT
from tests.ingest.pdf_papers import ABSTRACT, DOI, TITLE, ZEPHYR, bad_pdfs, make_zephyr

CORPUS = ROOT.parent / "shared" / "corpus" / "pdfs"
FULLTEXT = ROOT / "eval" / "datasets" / "fulltext.jsonl"
needs_corpus = pytest.mark.skipif(not (CORPUS / "10.1186_s12915-024-01918-w.pdf").exists(),
                                  reason=f"the three real PDFs are not in {CORPUS} (../shared is missing)")


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def app(temp_home, embedder):
    return App(Settings(home=temp_home), embedder=embedder)


def body_chunks(app, paper_id: str) -> list[tuple[str, dict]]:
    got = app.library.chunks.get(where={"paper_id": paper_id}, include=["documents", "metadatas"])
    return [(d, m) for d, m in zip(got["documents"], got["metadatas"]) if m.get("page") is not None]


def dump_entry(path: Path, **fields) -> Path:
    row = {"title": TITLE, "abstract": "An abstract-dump record of the Zephyr calibration paper, shorter than the PDF.",
           "authors": "Mara Quill, Otto Fenn", "categories": "physics.ins-det", "date": "2024-03-01"} | fields
    path.write_text(json.dumps(row) + "\n")
    return path


def test_pdf__chunks_carry_the_exact_page_and_section_of_their_text(app, tmp_path):
    report = app.ingest([make_zephyr(tmp_path / "zephyr.pdf")])
    assert (report.new, report.pdf_files, report.pdf_pages) == (1, 1, 4)
    chunks = body_chunks(app, DOI)
    assert chunks and all(m["kind"] in ("text", "caption") for _, m in chunks)
    for marker, (page, section) in ZEPHYR.items():
        holding = [m for d, m in chunks if marker in flat(d)]
        assert [(m["page"], m["section"]) for m in holding] == [(page, section)], marker
    caption = next(m for d, m in chunks if "cooling cycles" in d)
    assert caption["kind"] == "caption"
    # The two columns of page 2 read left first: the left column's sentence is whole.
    assert any("cooled to 77 kelvin with liquid nitrogen before every measurement" in flat(d) for d, _ in chunks)


def test_pdf__the_record_keeps_doi_pages_references_and_a_copy_the_page_serves(app, tmp_path):
    source = make_zephyr(tmp_path / "zephyr.pdf")
    app.ingest([source])
    paper = app.library.get_papers([DOI])[0]  # the DOI is the id: no arXiv id
    assert (paper.title, paper.doi, paper.pages, paper.abstract) == (TITLE, DOI, 4, ABSTRACT)
    assert paper.authors == ["Mara Quill", "Otto Fenn"] and paper.date == "2024"
    assert [r[:16] for r in paper.references] == ["1. Quill M. Drif", "2. Fenn O. Nitro"]
    stored = Path(paper.pdf)
    assert stored.parent == app.pdf_dir and stored.read_bytes() == source.read_bytes()
    every_chunk = " ".join(d for d, _ in body_chunks(app, DOI))
    assert "Drift of cooled detectors" not in every_chunk and "Journal of Instrument Tests" not in every_chunk


def test_pdf__reingesting_an_unchanged_pdf_reads_and_embeds_nothing(app, tmp_path):
    (tmp_path / "papers").mkdir()
    source = make_zephyr(tmp_path / "papers" / "zephyr.pdf")
    first = app.ingest([source])
    chunks = app.library.count_chunks()
    again = app.ingest([tmp_path / "papers"])  # as a folder this time
    assert (again.new, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 1, 0)
    assert (again.pdf_files, again.ok) == (0, True)  # recognised by its bytes, not read
    assert app.library.count_chunks() == chunks and first.chunks_embedded == chunks


@pytest.mark.parametrize("order", ["abstract-first", "pdf-first", "together"])
def test_pdf_and_abstract_entry__are_one_paper_whichever_comes_first(app, tmp_path, order):
    pdf, entry = make_zephyr(tmp_path / "zephyr.pdf"), dump_entry(tmp_path / "dump.jsonl")
    if order == "abstract-first":
        app.ingest([entry])
        [before] = list(app.library.iter_papers())
        report = app.ingest([pdf])
        assert (report.updated, report.new) == (1, 0)  # the full text enriches the stored paper
        expected_id = before.paper_id  # ids are stable: saved answers cite them
    elif order == "pdf-first":
        app.ingest([pdf])
        chunks = app.library.count_chunks()
        report = app.ingest([entry])
        assert (report.new, report.updated, report.unchanged, report.chunks_embedded) == (0, 0, 1, 0)
        assert app.library.count_chunks() == chunks  # the entry never replaces the full text
        expected_id = DOI
    else:
        report = app.ingest([entry, pdf])
        assert (report.new, report.duplicates) == (1, 1)
        expected_id = DOI
    [paper] = list(app.library.iter_papers())
    assert paper.paper_id == expected_id
    assert (paper.abstract, paper.pages, paper.doi) == (ABSTRACT, 4, DOI)  # the PDF's abstract and body
    assert paper.categories == ["physics.ins-det"]  # a gap the entry filled
    assert body_chunks(app, expected_id)


def test_pdf__bad_files_get_one_message_each_the_rest_ingests_and_nothing_stored_is_lost(app, tmp_path):
    app.ingest([dump_entry(tmp_path / "earlier.jsonl", title="An Earlier Paper on Tulip Gardening")])
    folder = tmp_path / "pdfs"
    expected = bad_pdfs(folder)
    make_zephyr(folder / "zephyr.pdf")
    report = app.ingest([folder])
    assert (report.new, report.pdf_files, report.ok) == (1, 1, True)
    assert sorted(Path(s.file).name for s in report.skipped) == sorted(expected)
    for skipped in report.skipped:
        name = Path(skipped.file).name
        assert expected[name] in skipped.reason and "\n" not in skipped.reason, (name, skipped.reason)
        assert not skipped.reason.startswith(str(folder))  # the report names the file once
    assert {p.title for p in app.library.iter_papers()} == {TITLE, "An Earlier Paper on Tulip Gardening"}


def test_pdf_search__one_hit_per_paper_with_its_best_passages_and_their_pages(app, tmp_path):
    app.ingest([make_zephyr(tmp_path / "zephyr.pdf"),
                dump_entry(tmp_path / "other.jsonl", title="Nitrogen Cryostats for Field Spectrometers",
                           abstract="A cryostat cooled with liquid nitrogen keeps a field spectrometer stable.")])
    hits = app.search("How many detectors did each run of the Zephyr spectrometer use?", k=5)
    assert len({h.paper_id for h in hits}) == len(hits)
    top = hits[0]
    assert top.paper_id == DOI and top.pages == 4 and Path(top.pdf).exists()
    assert top.passages[0]["page"] == 2 and "twelve silicon detectors" in top.passages[0]["text"]
    # The best paper gets up to five passages (others three), best first.
    assert len(top.passages) == min(5, len(body_chunks(app, DOI)))
    assert [p["score"] for p in top.passages] == sorted((p["score"] for p in top.passages), reverse=True)
    assert all(set(p) >= {"page", "section", "kind", "text", "score"} for p in top.passages)
    assert json.loads(json.dumps(top.to_dict()))["passages"][0]["page"] == 2  # the JSON contract carries them
    assert not next(h for h in hits if h.paper_id != DOI).passages  # an abstract has none


@needs_corpus
def test_real_pdfs__ingested_with_every_answer_passage_in_a_chunk_of_its_page(app):
    report = app.ingest([CORPUS])
    assert (report.new, report.pdf_files, len(report.skipped)) == (3, 3, 0), report.lines()
    papers = {p.doi: p for p in app.library.iter_papers()}
    assert set(papers) == {"10.1186/s12915-024-01918-w", "10.1186/s13059-023-02935-8", "10.7554/elife.91357"}
    assert all(p.paper_id == p.doi and p.references and p.abstract for p in papers.values())
    for q in [json.loads(line) for line in FULLTEXT.read_text().splitlines() if line.strip()]:
        doi = q["gold_dois"][0]
        chunks = body_chunks(app, papers[doi].paper_id)
        assert all(1 <= m["page"] <= papers[doi].pages for _, m in chunks)
        for sentence in [s for s in split_sentences(q["passage"]) if len(s) >= 40]:  # not "Figure supplement 1."
            on = {m["page"] for d, m in chunks if flat(sentence)[:60] in flat(d)}
            assert on == {q["page"]}, (q["id"], sentence[:60], on)
        refs = papers[doi].references
        assert not any(refs[0][:50] in d for d, _ in chunks)  # the reference list stays on the record
