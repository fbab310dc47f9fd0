"""The conversation service under `assistant chat` and the chat page: numbering across turns, the history a
follow-up reads, saving, resuming and undo on a real History, and the CLI and the page saving the same thing."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from assistant.conversation import Conversations, engine_history, new_conversation, new_turn, numbering
from assistant.core.errors import UserError
from assistant.library.history import History
from assistant.ui.session import ChatPage
from assistant.ui.session import new_conversation as new_page_conversation

runner = CliRunner()
NPO_TITLE = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"


def _turn(question: str, text: str, papers: list[tuple[str, int]], error: str = "") -> dict:
    return dict(new_turn(question), answer={"answer": text}, error=error,
                sources=[{"paper_id": pid, "n": n} for pid, n in papers])


def test_conversation__numbers_and_history_come_from_the_answered_turns_only():
    turns = [_turn("q1", "A [1].", [("a", 1), ("b", 2)]),
             _turn("q2", "gone", [("c", 3)], error="the model server is down"),  # failed: not part of it
             _turn("q3", "B [3].", [("b", 2), ("d", 3)]),
             new_turn("q4")]  # being answered
    assert numbering(turns) == {"a": 1, "b": 2, "d": 3}
    assert engine_history(turns) == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "A [1]."},
                                     {"role": "user", "content": "q3"}, {"role": "assistant", "content": "B [3]."}]


def test_conversation__resuming_with_nothing_saved_says_how_to_start(bundled_app, tmp_path):
    talk = Conversations(bundled_app, History(tmp_path / "history.db"))
    with pytest.raises(UserError, match="no saved conversation to resume"):
        talk.resume()


@pytest.mark.slow
def test_conversation__a_follow_up_keeps_the_numbers_and_is_saved_and_resumed_intact(bundled_app, tmp_path):
    talk = Conversations(bundled_app, History(tmp_path / "history.db"))
    conv = new_conversation()
    for question in ("compare NPO and gradient ascent", "and which of them evaluates on TOFU?"):
        talk.add_question(conv, question)
        kinds = [event.kind for event in talk.stream(conv)]
        assert kinds[0] == "sources" and kinds[-1] == "done"
        talk.save(conv)
    one, two = conv["turns"]
    npo = next(s for s in one["sources"] if s["title"] == NPO_TITLE)
    assert next(s for s in two["sources"] if s["paper_id"] == npo["paper_id"])["n"] == npo["n"]
    assert two["answer"]["standalone_question"].startswith("compare NPO and gradient ascent")
    assert all(s["abstract"] and "source" in s and "arxiv_id" in s for s in two["sources"])
    assert {c["n"] for c in two["answer"]["citations"]} == {s["n"] for s in two["sources"] if s["cited"]}
    assert two["settings"]["backend"] == "extractive" and two["settings"]["top_k"] == bundled_app.settings.top_k

    # Resumed by another process (`assistant chat --resume`, the page after a restart): the same turns.
    again = Conversations(bundled_app, History(tmp_path / "history.db")).resume()
    assert (again["id"], again["title"]) == (conv["id"], "compare NPO and gradient ascent")
    assert again["turns"] == conv["turns"]

    # Undo: the last turn leaves the conversation and the history; the next answer may reuse its new numbers.
    assert talk.undo(conv) is two
    assert [a.id for a in talk.history.answers(conv["id"])] == [one["id"]]


@pytest.mark.slow
def test_conversation__the_cli_and_the_page_save_the_same_answer_the_same_way(bundled_home, bundled_app, tmp_path,
                                                                            monkeypatch):
    question = "What is negative preference optimization?"
    home = tmp_path / "home"
    shutil.copytree(bundled_home, home)
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    out = runner.invoke(cli, ["chat"], input=f"{question}\nquit\n")
    assert out.exit_code == 0, out.output
    history = History(home / "history.db")
    [from_cli] = history.answers(history.latest_conversation())

    page = ChatPage(bundled_app, history=History(tmp_path / "page-history.db"))
    conv = new_page_conversation()
    _, conv, _, pending = page.accept(question, conv)
    *_, (_, _, conv, notice) = page.answer(pending, conv)
    assert notice == ""
    [from_page] = page.history.answers(conv["id"])

    assert from_page.question == from_cli.question == question
    assert from_page.sources == from_cli.sources  # every source with its abstract, ids, file and "cited"
    assert all(s["abstract"] for s in from_page.sources)
    assert from_page.settings == from_cli.settings
    assert from_page.answer.keys() == from_cli.answer.keys()
    assert (from_page.answer["answer"], from_page.answer["citations"]) == (from_cli.answer["answer"],
                                                                         from_cli.answer["citations"])
