"""Rated answers become harness questions (eval.feedback, `assistant eval from-feedback`), which `eval answers` runs."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from assistant.library.history import History
from eval.feedback import questions_from_feedback, write_questions
from eval.retrieval_eval import load_questions
from tests.library.test_history import NPO, TOFU, answer

runner = CliRunner()
DEV_KEYS = {"id", "question", "type", "gold_titles", "key_facts", "answerable"}


def _rate(h: History, cid: int, a: dict, sources: list, *feedback, settings=None) -> int:
    aid = h.add_answer(cid, a, sources, settings or {"min_relevance": 0.25})
    for kwargs in feedback:
        h.add_feedback(aid, **kwargs)
    return aid


def test_feedback__each_kind_of_rating_becomes_the_right_question(tmp_path):
    h = History(tmp_path / "history.db")
    cid = h.new_conversation("q")
    up = _rate(h, cid, answer("compare NPO and TOFU", cited=(1, 2), mode="compare"), [NPO, TOFU], {"rating": 1})
    should_decline = _rate(h, cid, answer("What GPU did NPO train on?", standalone_question="NPO — what GPU did it use?"),
                           [NPO], {"rating": -1, "reason": "should-decline", "comment": "the abstract says nothing"})
    offtopic = _rate(h, cid, answer("How do tulips grow?"), [dict(NPO, relevance=0.1)], {"rating": -1, "reason": "should-decline"})
    wrong = _rate(h, cid, answer("what is NPO?", cited=(1, 2)), [NPO, TOFU], {"rating": -1, "citations": [2]})
    declined_ok = _rate(h, cid, answer("watermarks?", "The indexed papers do not answer this.", cited=(),
                                       answerability="decline"), [], {"rating": 1})
    declined_bad = _rate(h, cid, answer("what is TOFU?", "The indexed papers do not answer this.", cited=(),
                                        answerability="decline"), [], {"rating": -1})
    _rate(h, cid, answer("a comment only"), [NPO], {"rating": 0, "comment": "nice layout"})
    _rate(h, cid, answer("never rated"), [NPO])

    rows = {r["id"]: r for r in questions_from_feedback(h)}
    assert set(rows) == {f"fb-{i}" for i in (up, should_decline, offtopic, wrong, declined_ok, declined_bad)}
    for r in rows.values():
        assert DEV_KEYS <= set(r)

    r = rows[f"fb-{up}"]
    assert (r["type"], r["answerable"], r["gold_titles"]) == ("compare", True, [NPO["title"], TOFU["title"]])
    r = rows[f"fb-{should_decline}"]  # the thumbs-down on an answer that should have declined
    assert (r["type"], r["answerable"], r["unanswerable_kind"], r["gold_titles"]) == ("unanswerable", False, "near-miss", [])
    assert r["question"] == "NPO — what GPU did it use?"  # the standalone question, as it was searched for
    assert r["feedback"]["comments"] == ["the abstract says nothing"] and r["feedback"]["asked"] == "What GPU did NPO train on?"
    assert rows[f"fb-{offtopic}"]["unanswerable_kind"] == "off-topic"
    r = rows[f"fb-{wrong}"]
    assert (r["answerable"], r["gold_titles"], r["feedback"]["wrong_citations"]) == (True, [NPO["title"]], [2])
    assert (rows[f"fb-{declined_ok}"]["answerable"], rows[f"fb-{declined_ok}"]["type"]) == (False, "unanswerable")
    r = rows[f"fb-{declined_bad}"]
    assert r["answerable"] is True and r["gold_titles"] == [] and "needs_review" in r


def test_feedback__the_file_loads_as_a_question_set(tmp_path):
    h = History(tmp_path / "history.db")
    cid = h.new_conversation("q")
    _rate(h, cid, answer("what is NPO?"), [NPO], {"rating": 1})
    _rate(h, cid, answer("GPU of NPO?"), [NPO], {"rating": -1, "reason": "should-decline"})
    path = write_questions(questions_from_feedback(h), tmp_path / "sets" / "feedback.jsonl")
    questions = load_questions(path)
    assert [(q["answerable"], q["type"]) for q in questions] == [(True, "lookup"), (False, "unanswerable")]
    # The same shape as the dev set's lines.
    dev = json.loads(open("eval/datasets/dev.jsonl", encoding="utf-8").readline())
    assert set(dev) <= set(questions[0]) | {"unanswerable_kind"}


def test_cli__from_feedback_with_no_ratings_is_one_line(temp_home, tmp_path):
    out = runner.invoke(cli, ["eval", "from-feedback", "-o", str(tmp_path / "f.jsonl")])
    assert out.exit_code == 1 and "no rated answers in the history yet" in out.output
    assert not (tmp_path / "f.jsonl").exists()


@pytest.mark.slow
def test_cli__from_feedback_then_eval_answers_rechecks_the_rated_answers(bundled_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(bundled_home, home)
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    assert runner.invoke(cli, ["chat"], input="What is negative preference optimization?\n"
                         "What learning rate did the NPO paper use for TOFU?\nquit\n").exit_code == 0
    h = History(home / "history.db")
    good, bad = h.answers(h.latest_conversation())
    h.add_feedback(good.id, 1)
    h.add_feedback(bad.id, -1, "should-decline", "the abstract gives no learning rate")

    out_file = tmp_path / "feedback.jsonl"
    out = runner.invoke(cli, ["eval", "from-feedback", "-o", str(out_file)])
    assert out.exit_code == 0, out.output
    assert "2 questions (1 answerable, 1 unanswerable)" in out.stdout
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert rows[1]["answerable"] is False and rows[1]["unanswerable_kind"] == "near-miss"

    reports = tmp_path / "reports"
    out = runner.invoke(cli, ["eval", "answers", "--questions", str(out_file), "--no-judge", "--run-name", "fb",
                              "--reports-dir", str(reports)])
    assert out.exit_code == 0, out.output
    report = json.loads((reports / "fb" / "report.json").read_text())
    per = {r["id"]: r for r in report["per_answer"]}
    assert per[f"fb-{good.id}"]["gold_recall"] == 1.0  # the rated answer's cited paper is found again
    assert per[f"fb-{bad.id}"]["answerable"] is False  # and the bad one is now checked as a near-miss
    assert per[f"fb-{bad.id}"]["near_miss_handled"] is not None
