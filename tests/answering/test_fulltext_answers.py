"""Answers from full-text PDFs: the engine quotes a passage and cites its page ([n, p. N]) in the text, the JSON
(citations[].page, the evidence passages) and the CLI; the verifier adds or corrects the page of an LLM's mark;
abstracts are cited as before. A generated PDF with known sentences on known pages beside the bundled library,
the real model and a real Chroma."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.answering.citations import parse_cited_pages
from assistant.answering.verify import Verifier
from assistant.app import App
from assistant.cli import app as cli
from assistant.core.settings import Settings
from assistant.core.types import Source
from tests.conftest import DATA
from tests.ingest.pdf_papers import DOI, TITLE, make_zephyr

TEMPERATURE = "What temperature was the Zephyr spectrometer cooled to before each measurement?"
ERROR = "How far did the calibration error of the Zephyr spectrometer fall after the third cooling cycle?"


@pytest.fixture(scope="module")
def pdf_home(tmp_path_factory, embedder):
    home = tmp_path_factory.mktemp("fulltext-home")
    app = App(Settings(home=home), embedder=embedder)
    report = app.ingest([DATA, make_zephyr(tmp_path_factory.mktemp("pdfs") / "zephyr.pdf")])
    assert report.pdf_files == 1 and report.papers == 242, report.lines()
    return home


@pytest.fixture
def pdf_app(pdf_home, embedder, monkeypatch):
    monkeypatch.setenv("ASSISTANT_HOME", str(pdf_home))
    return App(Settings(home=pdf_home), embedder=embedder)


def zephyr_citation(answer) -> dict:
    return next(c for c in answer.citations if c["paper_id"] == DOI)


@pytest.mark.parametrize(("question", "fact", "page"), [(TEMPERATURE, "77 kelvin", 2), (ERROR, "0.4 percent", 3)])
def test_answer__quotes_the_passage_and_cites_its_page(pdf_app, question, fact, page):
    answer = pdf_app.engine.ask(question)
    assert answer.answerability == "answer" and fact in answer.answer
    citation = zephyr_citation(answer)
    n = citation["n"]
    assert (n, page) in parse_cited_pages(answer.answer)  # "[1, p. 2]" in the text
    assert f"[{n}, p. {page}]" in answer.answer
    assert citation["supported"] and any(fact in p["evidence"] and p["page"] == page for p in citation["passages"])
    source = next(s for s in answer.sources if s["paper_id"] == DOI)
    assert source["pages"] == 4 and source["pdf"].endswith(".pdf") and source["passages"]
    # The whole contract survives JSON: citations[].page, the passages and the source's PDF.
    again = json.loads(json.dumps(answer.to_dict()))
    assert again["citations"][[c["n"] for c in again["citations"]].index(n)]["page"] in {1, 2, 3, 4}


def test_answer__an_abstract_is_cited_as_before_without_a_page(pdf_app):
    answer = pdf_app.engine.ask("What is negative preference optimization?")
    assert answer.citations and DOI not in {c["paper_id"] for c in answer.citations}
    assert all(page is None for _, page in parse_cited_pages(answer.answer))
    assert all("page" not in c for c in answer.citations)


def test_cli__ask_prints_the_page_and_the_passage_it_rests_on(pdf_app):
    out = CliRunner().invoke(cli, ["ask", TEMPERATURE])
    assert out.exit_code == 0, out.output
    assert ", p. 2]" in out.output and "] p. 2: \u201c" in out.output and "77 kelvin" in out.output  # by claim
    out = CliRunner().invoke(cli, ["ask", TEMPERATURE, "--json"])
    result = json.loads(out.stdout)
    citation = next(c for c in result["citations"] if c["paper_id"] == DOI)
    assert {"page", "section", "passages", "evidence"} <= set(citation)


def _evidence_number(server, text: str) -> str:
    """The number the last prompt gave the evidence sentence holding ``text`` ("[3]")."""
    user = server.bodies[-1]["messages"][-1]["content"]
    return next(line.split("]")[0] + "]" for line in user.splitlines() if line.startswith("[") and text in line)


def test_llm__the_evidence_shows_pages_and_the_model_s_mark_carries_the_page_by_construction(pdf_app, openai_server,
                                                                                           replies):
    settings = pdf_app.settings.with_overrides(backend="openai-compatible", llm_base_url=openai_server.url,
                                               llm_model="scripted", llm_max_retries=0, llm_answer={"structured": "off"})
    llm_app = App(settings, embedder=pdf_app.embedder)
    n = [h.paper_id for h in llm_app.search(TEMPERATURE)].index(DOI) + 1  # the engine numbers sources as retrieved
    openai_server.push(replies.sse(["It is cold there [1]."]))
    llm_app.engine.ask(TEMPERATURE)
    evidence = openai_server.bodies[-1]["messages"][-1]["content"]
    assert "; p. 2) " in evidence and "77 kelvin" in evidence  # the passage's sentence, with its page
    k = _evidence_number(openai_server, "77 kelvin")
    openai_server.push(replies.sse([f"The spectrometer was cooled to 77 kelvin with liquid nitrogen {k}."]))
    answer = llm_app.engine.ask(TEMPERATURE)
    assert answer.fallback is None and f"77 kelvin with liquid nitrogen [{n}, p. 2]." in answer.answer, answer.answer


def test_llm__a_claim_resting_on_a_passage_off_the_question_is_not_supported(pdf_app, openai_server, replies):
    # The detectors' sentence is on the same page as the answer and quoted faithfully, but it does not say how
    # cold the spectrometer was: the support check must not call it supported for this question. (The LLM's answer
    # is kept, fallback off, to read the verifier's call on it.)
    settings = pdf_app.settings.with_overrides(backend="openai-compatible", llm_base_url=openai_server.url,
                                               llm_model="scripted", llm_max_retries=0,
                                               llm_answer={"structured": "off", "fallback": False})
    llm_app = App(settings, embedder=pdf_app.embedder)
    openai_server.push(replies.sse(["It is cold there [1]."]))
    llm_app.engine.ask(TEMPERATURE)
    k = _evidence_number(openai_server, "77 kelvin")
    openai_server.push(replies.sse([f"The spectrometer was cooled to 77 kelvin with liquid nitrogen {k}. ",
                                    f"Each run used twelve silicon detectors arranged in a ring around the sample {k}."]))
    answer = llm_app.engine.ask(TEMPERATURE)
    assert "77 kelvin with liquid nitrogen" not in " ".join(answer.unsupported_sentences)
    assert any("twelve silicon detectors" in s for s in answer.unsupported_sentences), answer.unsupported_sentences


def test_verifier__adds_the_page_of_the_aligned_passage_and_leaves_abstract_claims_alone(embedder):
    source = Source(n=1, paper_id=DOI, title=TITLE, pages=4, abstract=(
        "We calibrate the Zephyr spectrometer for measurements at low temperature."), passages=[
        {"page": 2, "section": "2 Methods", "kind": "text",
         "text": "The spectrometer was cooled to 77 kelvin with liquid nitrogen before every measurement."},
        {"page": 3, "section": "3 Results", "kind": "text",
         "text": "The calibration error fell to 0.4 percent after the third cooling cycle."}])
    check = Verifier(embedder.embed).verify(
        "The Zephyr spectrometer is calibrated for low temperature [1]. "
        "The spectrometer was cooled to 77 kelvin with liquid nitrogen [1]. "
        "The calibration error fell to 0.4 percent after three cycles [1, p. 2].", [source])
    assert "low temperature [1]." in check.text  # an abstract sentence has no page
    assert "liquid nitrogen [1, p. 2]." in check.text and "three cycles [1, p. 3]." in check.text
    [citation] = check.citations
    assert {(p["page"], p["evidence"][:20]) for p in citation["passages"]} >= {(2, "The spectrometer was"),
                                                                              (3, "The calibration erro")}
    assert citation["supported"] and all(s["supported"] for s in check.sentences)
    assert [s["text"] for s in check.sentences][1].endswith("[1, p. 2].")  # the checks quote the marks as written
    assert np.isfinite(citation["support"])
