"""The answer engine end to end on the real library: extractive by default, LLM through a scripted server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.answering.engine import split_comparison
from assistant.app import App
from assistant.cli import app as cli
from assistant.core.errors import UserError
from assistant.core.types import DECLINE_PHRASE

NPO = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"


@pytest.mark.parametrize(
    "question, sides",
    [
        ("compare NPO and gradient ascent", ["NPO", "gradient ascent"]),
        ("NPO vs. gradient ascent?", ["NPO", "gradient ascent"]),
        ("What is the difference between LoRA and full fine-tuning?", ["LoRA", "full fine-tuning"]),
        ("How does ELECTRA differ from BERT?", ["ELECTRA", "BERT"]),
        ("what does the library say about continual pre-training?", []),
    ],
)
def test_split_comparison__finds_both_sides(question, sides):
    assert split_comparison(question) == sides


def test_extractive__npo_vs_gradient_ascent_cites_npo_and_covers_both(bundled_app):
    answer = bundled_app.engine.ask("compare NPO and gradient ascent")
    assert answer.mode == "compare" and not answer.declined
    cited_titles = [c["title"] for c in answer.citations]
    assert NPO in cited_titles
    text = answer.answer.lower()
    assert "npo" in text and ("gradient ascent" in text or "(ga)" in text)
    source_numbers = {s["n"] for s in answer.sources}
    assert all(c["n"] in source_numbers for c in answer.citations)
    assert answer.dropped_citations == []


def test_extractive__every_sentence_carries_a_citation_to_a_source(bundled_app):
    answer = bundled_app.engine.ask("How can a language model be made to forget specific training data?")
    from assistant.answering.citations import answer_sentences, parse_citations

    sentences = [s for s in answer_sentences(answer.answer) if len(s) > 20]
    assert sentences and all(parse_citations(s) for s in sentences)
    assert answer.timings["total_ms"] >= answer.timings["retrieve_ms"] > 0


def test_extractive__off_topic_question_declines_without_the_backend(bundled_app):
    class Exploding:
        name, model, context_window, can_stream, can_complete = "boom", "boom", 1, True, False

        def stream(self, task):
            raise AssertionError("the backend must not be called")

    app = App(bundled_app.settings, embedder=bundled_app.embedder, backend=Exploding())
    answer = app.engine.ask("best pizza dough hydration?")
    assert answer.declined and answer.answer == DECLINE_PHRASE and answer.citations == []


def test_follow_up__is_understood_from_the_history(bundled_app):
    history = [
        {"role": "user", "content": "what methods exist for unlearning in LLMs?"},
        {"role": "assistant", "content": "..."},
    ]
    answer = bundled_app.engine.ask("and which of them evaluates on TOFU?", history=history)
    assert "unlearning" in answer.standalone_question.lower()
    assert NPO in [c["title"] for c in answer.citations]


def test_summarize__chosen_papers_cites_each_of_them(bundled_app):
    hits = bundled_app.searcher.search("machine unlearning", k=3)
    ids = [h.paper_id for h in hits]
    answer = bundled_app.engine.ask("", mode="summarize", paper_ids=ids)
    assert {c["paper_id"] for c in answer.citations} == set(ids)


def test_summarize__unknown_paper_id_is_a_clear_error(bundled_app):
    with pytest.raises(UserError, match="no paper with id nope"):
        bundled_app.engine.ask("", mode="summarize", paper_ids=["nope"])


def test_query_engine__llama_index_engine_answers_with_source_nodes(bundled_app):
    response = bundled_app.query_engine().query("negative preference optimization")
    assert response.source_nodes[0].node.metadata["title"] == NPO
    assert "[1]" in str(response) and response.metadata["citations"]


# -- the LLM path: the real openai client against a scripted server on 127.0.0.1 ----------


def _llm_app(bundled_app, server, **overrides):
    settings = bundled_app.settings.with_overrides(
        backend="openai-compatible", llm_base_url=server.url, llm_model="scripted", llm_max_retries=2, **overrides
    )
    return App(settings, embedder=bundled_app.embedder)


def test_llm__citation_with_no_source_is_dropped_and_reported(bundled_app, openai_server, replies):
    openai_server.push(replies.sse(["NPO slows collapse ", "compared with gradient ascent [1][7]."]))
    answer = _llm_app(bundled_app, openai_server, top_k=5).engine.ask("compare NPO and gradient ascent")
    assert answer.dropped_citations == [7]
    assert "[7]" not in answer.answer and "[1]" in answer.answer
    assert [c["n"] for c in answer.citations] == [1]
    body = openai_server.bodies[-1]
    assert body["stream"] is True
    prompt = json.dumps(body["messages"])
    assert NPO in prompt  # the sources went to the model


def test_llm__backend_decline_phrase_is_kept(bundled_app, openai_server, replies):
    openai_server.push(replies.answer(DECLINE_PHRASE))
    answer = _llm_app(bundled_app, openai_server).engine.ask("What learning rate did the NPO paper use?")
    assert answer.declined and answer.answer == DECLINE_PHRASE


def test_llm__follow_up_is_condensed_by_the_model(bundled_app, openai_server, replies):
    openai_server.push(replies.answer("Which LLM unlearning methods evaluate on TOFU?"), replies.sse(["NPO does [1]."]))
    history = [{"role": "user", "content": "what methods exist for unlearning in LLMs?"}, {"role": "assistant", "content": "..."}]
    answer = _llm_app(bundled_app, openai_server).engine.ask("and which of them evaluates on TOFU?", history=history)
    assert answer.standalone_question == "Which LLM unlearning methods evaluate on TOFU?"
    assert "and which of them evaluates on TOFU?" in json.dumps(openai_server.bodies[0]["messages"])


def test_cli__ask_unreachable_llm_server_is_one_clear_line(bundled_app):
    from tests.conftest import free_port

    out = CliRunner().invoke(
        cli,
        ["ask", "compare NPO and gradient ascent", "--backend", "openai-compatible", "--base-url", f"http://127.0.0.1:{free_port()}/v1"],
    )
    assert out.exit_code == 1, out.output
    assert "error:" in out.output and "Traceback" not in out.output


def test_cli__ask_json_prints_the_result_object(bundled_app):
    out = CliRunner().invoke(cli, ["ask", "compare NPO and gradient ascent", "--json", "-k", "5"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert set(result) >= {"question", "answer", "citations", "sources", "dropped_citations", "backend", "model", "timings"}
    assert set(result["timings"]) == {"retrieve_ms", "generate_ms", "total_ms"}
    assert len(result["sources"]) <= 5
