"""The live page through gradio_client: concurrent questions, and errors as clear messages."""

from __future__ import annotations

import pytest

from tests.ui.conftest import ask_concurrently

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # gradio's own pandas deprecations

QUESTIONS = [
    "compare NPO and gradient ascent",
    "What is negative preference optimization?",
    "How can large language models unlearn data?",
    "Which methods prune large language models?",
    "How do vision language models learn prompts?",
    "What is zero-shot tokenizer transfer?",
    "How are language models adapted to African languages?",
    "What does speculative decoding do to speed up generation?",
    "What is rehearsal-free continual learning?",
    "Summarize surveys of large language models",
]


@pytest.mark.slow
def test_api__ten_concurrent_questions_are_all_answered_with_citations(live_page):
    answers = ask_concurrently(live_page.url, QUESTIONS, timeout=300)

    for question, answer in zip(QUESTIONS, answers):
        assert answer["question"] == question
        assert not answer["declined"], question
        assert answer["citations"], (question, answer["answer"])
        cited = {c["n"] for c in answer["citations"]}
        assert cited <= {s["n"] for s in answer["sources"]}


@pytest.mark.slow
def test_api__empty_question_is_a_clear_message_not_a_traceback(live_page):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(live_page.url, verbose=False)
    text, panel = client.predict("", api_name="/chat")
    assert text == "⚠️ Please type a question."
    assert "Traceback" not in text + panel

    with pytest.raises(AppError, match="Please type a question") as err:
        client.predict(question="", api_name="/ask")
    assert "Traceback" not in str(err.value)

    # The page keeps working after the error.
    text, panel = client.predict("compare NPO and gradient ascent", api_name="/chat")
    assert "](#src-" in text and "Negative Preference Optimization" in panel
