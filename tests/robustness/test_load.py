"""Load: twenty users asking the running chat page at once (extractive backend), all answered with valid citations."""

from __future__ import annotations

import pytest

from tests.conftest import DATA
from tests.ui.conftest import ask_concurrently
from tests.ui.test_ui_api import QUESTIONS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]


def _title_questions(n: int) -> list[str]:
    """Questions about papers of the bundled library, by title (so each one has an answer)."""
    from ingest.readers import read_path

    titles: list[str] = []
    for f in sorted(DATA.glob("*.txt"))[::-1]:
        titles += [p.title for p in read_path(f).papers if p.title not in titles]
    return [f"What does the paper '{t}' find?" for t in titles[:: max(1, len(titles) // n)][:n]]


def test_load__twenty_concurrent_questions_are_all_answered_with_valid_citations(live_page):
    questions = QUESTIONS + _title_questions(20 - len(QUESTIONS))
    assert len(set(questions)) == 20

    answers = ask_concurrently(live_page.url, questions, timeout=600)

    for question, answer in zip(questions, answers):
        assert answer["question"] == question  # no answer crossed over to another user
        assert not answer["declined"], question
        assert answer["citations"], (question, answer["answer"])
        sources = {s["n"]: s for s in answer["sources"]}
        for c in answer["citations"]:
            assert c["n"] in sources and sources[c["n"]]["paper_id"] == c["paper_id"], (question, c)
        assert not answer["dropped_citations"]
