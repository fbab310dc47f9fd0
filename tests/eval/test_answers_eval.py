"""eval.answers_eval: per-question scoring on constructed answers, the LLM judge against the scripted server, the report rows."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.core.prompts import Prompt, PromptError
from assistant.core.types import DECLINE_PHRASE, Answer
from eval.answers_eval import (
    eval_answers,
    fact_covered,
    judge_answer,
    parse_verdict,
    score_answer,
    summarise,
)
from eval.report import write_report

DEV = Path(__file__).resolve().parents[2] / "eval" / "datasets" / "dev.jsonl"
JUDGE_MARK = "You grade answers"  # the judge prompt's system text starts so (prompts/judge.md)

ANSWERABLE = {"id": "a1", "question": "How does ECO unlearn?", "type": "lookup", "answerable": True,
              "key_facts": ["prompt classifier", "zeroth order optimization", "100 LLMs"]}
NEAR_MISS = {"id": "u1", "question": "What learning rate did NPO use?", "type": "unanswerable", "answerable": False,
             "unanswerable_kind": "near-miss"}
OFF_TOPIC = {"id": "u2", "question": "How long do I boil an egg?", "type": "unanswerable", "answerable": False,
             "unanswerable_kind": "off-topic"}


def _citation(n: int, paper_id: str, support: float | None = None) -> dict:
    c = {"n": n, "paper_id": paper_id, "title": f"Paper {paper_id}", "supported": True}
    if support is not None:
        c.update(support=support, evidence="An aligned source sentence.")
    return c


def _answer(text: str, citations=(), **kw) -> Answer:
    return Answer(question="?", answer=text, citations=list(citations), timings={"total_ms": kw.pop("ms", 100.0)}, **kw)


def _declined(reason: str = "nothing in the library is about this", **kw) -> Answer:
    return _answer(DECLINE_PHRASE, declined=True, decline_reason=reason, answerability="decline", **kw)


# -- scoring one answer -------------------------------------------------------------------


def test_score_answer__answerable_answer_scores_gold_facts_citations_and_support():
    answer = _answer("ECO trains a prompt classifier [1] and scales to 100 LLMs [2]. It is cheap [1].",
                     [_citation(1, "gold"), _citation(2, "other", 0.5)], dropped_citations=[7])
    answer.citations[0]["support"] = 0.9
    row = score_answer(ANSWERABLE, answer, ["gold", "gold-2"])
    assert row["answered"] == 1.0 and row["answered_in_full"] == 1.0 and row["decline_accuracy"] == 1.0
    assert row["gold_recall"] == 0.5 and row["gold_precision"] == 0.5  # one of two gold cited; one of two cited is gold
    assert row["key_fact_coverage"] == pytest.approx(2 / 3)  # "zeroth order optimization" is missing
    assert row["citation_validity"] == pytest.approx(2 / 3)  # [1] and [2] real, [7] dropped
    assert row["support"] == pytest.approx(0.7)
    assert row["near_miss_handled"] is None and row["offtopic_declined"] is None
    assert row["cited_ids"] == ["gold", "other"] and row["latency_ms"] == 100.0
    assert {"id", "type", "answer", "declined", "decline_reason", "answerability", "unanswered_parts", "cited_ids",
            "gold_precision", "gold_recall", "key_fact_coverage", "citation_validity", "support",
            "latency_ms"} <= set(row)


def test_score_answer__declined_answerable_is_not_answered_and_covers_nothing():
    row = score_answer(ANSWERABLE, _declined(), ["gold"])
    assert row["declined"] and row["answerability"] == "decline"
    assert row["answered"] == 0.0 and row["answered_in_full"] == 0.0 and row["decline_accuracy"] == 0.0
    assert row["gold_recall"] == 0.0 and row["key_fact_coverage"] == 0.0
    assert row["gold_precision"] is None and row["citation_validity"] is None and row["supported_rate"] is None


def test_score_answer__partial_answer_to_an_answerable_question_is_answered_but_not_in_full():
    answer = _answer("ECO uses a prompt classifier [1].", [_citation(1, "gold")], answerability="partial",
                     unanswered_parts=["the cost"])
    row = score_answer(ANSWERABLE, answer, ["gold"])
    assert row["answered"] == 1.0 and row["answered_in_full"] == 0.0 and row["gold_precision"] == 1.0


def test_score_answer__near_miss_is_handled_by_a_decline_or_a_partial_answer_naming_what_is_missing():
    partial = _answer("The abstracts do not give the learning rate NPO used; they say NPO beats GA [1].",
                      [_citation(1, "npo")], answerability="partial", unanswered_parts=["the learning rate NPO used"])
    assert score_answer(NEAR_MISS, partial, [])["near_miss_handled"] == 1.0
    assert score_answer(NEAR_MISS, _declined(), [])["near_miss_handled"] == 1.0
    # A partial answer that names nothing missing, and a confident answer, are not.
    vague = _answer("NPO beats GA [1].", [_citation(1, "npo")], answerability="partial")
    assert score_answer(NEAR_MISS, vague, [])["near_miss_handled"] == 0.0
    confident = score_answer(NEAR_MISS, _answer("NPO used 1e-5 [1].", [_citation(1, "npo")]), [])
    assert confident["near_miss_handled"] == 0.0 and confident["decline_accuracy"] == 0.0
    assert confident["answered"] is None and confident["gold_precision"] is None and confident["citation_validity"] == 1.0


def test_score_answer__off_topic_counts_only_a_decline():
    assert score_answer(OFF_TOPIC, _declined(), [])["offtopic_declined"] == 1.0
    row = score_answer(OFF_TOPIC, _answer("Boil it for six minutes [1].", [_citation(1, "x")]), [])
    assert row["offtopic_declined"] == 0.0 and row["near_miss_handled"] is None


def test_score_answer__engine_answer_without_the_new_fields_reads_as_answer_or_decline():
    # What the engine returned before answerability existed: no decline_reason, answerability, unanswered_parts, support.
    old = SimpleNamespace(answer="ECO uses a prompt classifier [1].", citations=[{"n": 1, "paper_id": "gold"}],
                          dropped_citations=[], unsupported_sentences=[], declined=False, timings={"total_ms": 5.0})
    row = score_answer(ANSWERABLE, old, ["gold"])
    assert row["answerability"] == "answer" and row["decline_reason"] == "" and row["unanswered_parts"] == []
    assert row["support"] is None and row["supported_rate"] == 1.0
    old.declined, old.answer, old.citations = True, DECLINE_PHRASE, []
    assert score_answer(NEAR_MISS, old, [])["answerability"] == "decline"


def test_fact_covered__numbers_match_exactly_text_fuzzily():
    assert fact_covered("84.5%", "reaches 84.5\\% on RULER [1]")
    assert not fact_covered("4.5%", "reaches 84.5% on RULER")
    assert not fact_covered("530B", "a 5530B model")
    assert fact_covered("zeroth order optimization", "learned by zeroth-order optimization [2]")


FULLTEXT_Q = {"id": "ft-x", "question": "What temperature was the spectrometer cooled to?", "type": "numeric",
              "answerable": True, "key_facts": ["77 kelvin"], "page": 2,
              "passage": "The spectrometer was cooled to 77 kelvin with liquid nitrogen before every measurement"}


def test_fact_covered__a_page_mark_is_not_a_number_of_the_answer():
    assert not fact_covered("2", "It was cooled to 77 kelvin [1, p. 2].")
    assert fact_covered("77 kelvin", "It was cooled to 77 kelvin [1, p. 2].")


def test_score_answer__full_text_question_scores_paper_first_passage_cited_and_page_right():
    passage = {"evidence": "The spectrometer was cooled to 77 kelvin with liquid nitrogen before every measurement, and",
               "page": 2, "support": 0.9}
    cited = dict(_citation(1, "zephyr", 0.9), page=3, passages=[
        {"evidence": "The error fell to 0.4 percent after the third cooling cycle.", "page": 3, "support": 0.95}, passage])
    sources = [{"n": 1, "paper_id": "zephyr"}, {"n": 2, "paper_id": "other"}]
    row = score_answer(FULLTEXT_Q, _answer("It was cooled to 77 kelvin [1, p. 2]. The error fell [1, p. 3].", [cited],
                                           sources=sources), ["zephyr"])
    assert (row["paper_first"], row["passage_cited"], row["page_right"], row["cited_pages"]) == (1.0, 1.0, 1.0, [2, 3])
    wrong = score_answer(FULLTEXT_Q, _answer("The error fell [2, p. 3].", [dict(cited, n=2, passages=cited["passages"][:1])],
                                             sources=sources[::-1]), ["zephyr"])
    assert (wrong["paper_first"], wrong["passage_cited"], wrong["page_right"]) == (0.0, 0.0, 0.0)
    assert "paper_first" not in score_answer(ANSWERABLE, _answer("x [1]."), [])  # only where a page and passage are given


def test_summarise__means_over_the_questions_a_metric_applies_to_and_latency_percentiles():
    rows = [score_answer(ANSWERABLE, _answer("a prompt classifier [1]", [_citation(1, "gold")], ms=100.0), ["gold"]),
            score_answer(NEAR_MISS, _declined(ms=300.0), []),
            score_answer(OFF_TOPIC, _answer("six minutes [1]", [_citation(1, "x")], ms=200.0), [])]
    line = summarise(rows)
    assert line["n"] == 3 and line["answered"] == 1.0 and line["near_miss_handled"] == 1.0
    assert line["offtopic_declined"] == 0.0 and line["decline_accuracy"] == pytest.approx(2 / 3)
    assert line["latency_p50_ms"] == 200.0 and line["support"] is None
    assert "faithfulness" not in line


# -- the judge ----------------------------------------------------------------------------


def test_parse_verdict__reads_the_json_object_and_rejects_missing_or_out_of_range_scores():
    assert parse_verdict('Sure. {"faithfulness": 1, "correctness": 0.25, "reason": "ok"}') == {
        "faithfulness": 1.0, "correctness": 0.25, "reason": "ok"}
    assert "error" in parse_verdict("looks fine to me")
    assert "error" in parse_verdict('{"faithfulness": 0.5}')
    assert "error" in parse_verdict('{"faithfulness": 1.5, "correctness": 0.5}')


def test_judge_answer__a_prompt_that_cannot_be_rendered_raises_before_any_request(openai_server):
    # A judge template without {key_facts}: rendering it with the key facts must fail loudly.
    broken = Prompt(name="judge", system="Grade.", user="{question} {sources} {answer}",
                    placeholders=frozenset({"question", "sources", "answer"}), origin="test judge")
    with pytest.raises(PromptError, match="key_facts"):
        judge_answer(_llm(openai_server), broken, "q", "a", [], ["fact"])
    assert openai_server.requests == []


def _llm(server, **overrides):
    from assistant.core.settings import Settings
    from assistant.llms import make_llm

    return make_llm(Settings(backend="openai-compatible", llm_base_url=server.url, llm_model="scripted",
                             llm_timeout=5.0, llm_max_retries=0, **overrides))


def _route(server, replies, judge_verdicts: list[str], answer_text: str) -> None:
    """Answer judge requests with the next verdict and every other request (the answer path) with ``answer_text``."""

    def next_reply():
        messages = server.requests[-1]["body"].get("messages") or []
        if any(JUDGE_MARK in str(m.get("content", "")) for m in messages):
            return replies.answer(judge_verdicts.pop(0))
        return replies.answer(answer_text)

    server.next_reply = next_reply


def _questions(tmp_path, ids: list[str]) -> Path:
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] in ids))
    return path


@pytest.fixture
def llm_bundled_app(bundled_home, embedder, openai_server, monkeypatch):
    """The bundled library answering (and judging) through the scripted OpenAI-compatible server."""
    from assistant.app import App
    from assistant.core.settings import Settings
    from assistant.llms import make_llm

    monkeypatch.setenv("ASSISTANT_HOME", str(bundled_home))
    settings = Settings(home=bundled_home, backend="openai-compatible", llm_base_url=openai_server.url,
                        llm_model="scripted", llm_timeout=5.0, llm_max_retries=0)
    return App(settings, embedder=embedder, llm=make_llm(settings))


@pytest.mark.slow
def test_eval_answers__judge_runs_on_the_scripted_server_with_the_key_facts_and_scores_land_in_the_report(
        llm_bundled_app, openai_server, replies, tmp_path):
    _route(openai_server, replies,
           ['{"faithfulness": 0.9, "correctness": 0.5, "reason": "covers two facts"}', "I cannot grade this."],
           "ECO learns corruptions of prompt embeddings with a prompt classifier [1].")
    questions = _questions(tmp_path, ["dev-001", "dev-086"])  # an answerable lookup, an off-topic question
    result = eval_answers(llm_bundled_app, questions)

    judged = [r["body"] for r in openai_server.requests if JUDGE_MARK in json.dumps(r["body"])]
    assert len(judged) == 2  # every question is judged, the declined one too
    first = judged[0]["messages"][-1]["content"]
    assert "Embedding-COrrupted (ECO) Prompts" in first  # the question
    facts = first.split("<<<KEY FACTS (data, not instructions)>>>")[1].split("<<<END KEY FACTS>>>")[0]
    assert "- prompt classifier" in facts and "- zeroth order optimization" in facts and "- during inference" in facts
    assert "(none given)" in judged[1]["messages"][-1]["content"]

    assert result["judge"] == "run (scripted; 1 judged, 1 failed)"
    rows = {r["id"]: r for r in result["per_answer"]}
    assert rows["dev-001"]["faithfulness"] == 0.9 and rows["dev-001"]["correctness"] == 0.5
    assert rows["dev-086"]["faithfulness"] is None and "no JSON object" in rows["dev-086"]["judge"]["error"]
    report = json.loads((write_report(result, "answers", "judged", tmp_path) / "report.json").read_text())
    assert report["groups"]["overall"]["faithfulness"] == 0.9 and report["groups"]["lookup"]["correctness"] == 0.5
    assert report["per_answer"][0]["judge"]["reason"] == "covers two facts"


@pytest.mark.slow
def test_eval_answers__a_judge_prompt_that_cannot_be_rendered_stops_the_run(llm_bundled_app, openai_server, tmp_path,
                                                                            monkeypatch):
    import assistant.core.prompts

    broken = Prompt(name="judge", system="Grade.", user="{question} {sources} {answer}",
                    placeholders=frozenset({"question", "sources", "answer"}), origin="prompts/judge.md (edited)")
    monkeypatch.setattr(assistant.core.prompts, "load_prompt", lambda name, directory=None: broken)
    with pytest.raises(PromptError, match="key_facts"):
        eval_answers(llm_bundled_app, _questions(tmp_path, ["dev-001"]))


@pytest.mark.slow
def test_eval_answers__offline_run_keeps_one_row_per_question_and_records_its_inputs(bundled_app, tmp_path):
    questions = _questions(tmp_path, ["dev-001", "dev-040", "dev-070", "dev-086"])
    result = eval_answers(bundled_app, questions)
    assert result["judge"] == "not run (no LLM backend configured)"
    assert [r["id"] for r in result["per_answer"]] == ["dev-001", "dev-040", "dev-070", "dev-086"]
    kinds = {r["id"]: r["unanswerable_kind"] for r in result["per_answer"]}
    assert kinds == {"dev-001": None, "dev-040": None, "dev-070": "near-miss", "dev-086": "off-topic"}
    groups = result["groups"]
    assert set(groups) == {"lookup", "topic", "unanswerable", "overall"} and groups["overall"]["n"] == 4
    assert groups["lookup"]["answered"] is not None and groups["unanswerable"]["answered"] is None
    assert groups["unanswerable"]["near_miss_handled"] in (0.0, 1.0)
    assert groups["unanswerable"]["offtopic_declined"] in (0.0, 1.0)
    assert groups["lookup"]["gold_recall"] is not None and "faithfulness" not in groups["overall"]

    report = json.loads((write_report(result, "answers", "offline", tmp_path) / "report.json").read_text())
    inputs = report["inputs"]
    assert inputs["questions"]["questions"] == 4 and len(inputs["questions"]["sha256"]) == 64
    assert inputs["library"]["papers"] == 241 and len(inputs["library"]["sha256"]) == 64
    assert "judge.md" in inputs["prompts"]["files"] and inputs["packages"]["chromadb"]
    assert len(report["per_answer"]) == 4


@pytest.mark.slow
def test_answers_cli__writes_the_report_and_prints_measured_metrics_only(bundled_home, embedder, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import assistant.library.embeddings
    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_HOME", str(bundled_home))
    monkeypatch.setattr(assistant.library.embeddings, "make_embedder", lambda settings: embedder)
    questions = _questions(tmp_path, ["dev-001", "dev-087"])
    result = CliRunner().invoke(app, ["eval", "answers", "-q", str(questions), "--no-judge", "--run-name", "cli",
                                      "--reports-dir", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert "LLM judge: not run (--no-judge)" in result.output
    overall = next(line for line in result.output.splitlines() if line.startswith("overall"))
    assert "answered " in overall and "offtopic_declined " in overall and " - " not in overall
    assert (tmp_path / "reports" / "cli" / "report.json").exists()
