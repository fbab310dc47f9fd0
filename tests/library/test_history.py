"""The conversation history on a real SQLite file: saving, reading back after a restart, numbering, undo,
feedback, gaps, bad input (a damaged or foreign file, unknown ids), and the commands over it."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from assistant.core.types import DECLINE_PHRASE
from assistant.library.history import History, HistoryError, group_gaps, saved_sources
from tests.conftest import in_threads

runner = CliRunner()
NPO = {"n": 1, "paper_id": "2404.05868", "title": "Negative Preference Optimization: From Catastrophic Collapse to "
       "Effective Unlearning", "abstract": "We propose NPO. NPO avoids collapse.", "authors": ["Ruiqi Zhang", "Licong Lin"],
       "date": "2024-04-08", "url": "", "score": 1.2, "relevance": 0.61, "cited": True}
TOFU = {"n": 2, "paper_id": "t-0123456789abcdef", "title": "TOFU: A Task of Fictitious Unlearning for LLMs",
        "abstract": "TOFU is a benchmark.", "authors": [], "date": "", "url": "", "score": 0.9, "relevance": 0.44,
        "cited": False}


def answer(question: str, text: str = "NPO avoids collapse [1].", cited=(1,), answerability: str = "answer",
           **extra) -> dict:
    out = {"question": question, "answer": text, "answerability": answerability,
           "declined": answerability == "decline", "decline_reason": "", "unanswered_parts": [], "mode": "answer",
           "standalone_question": "", "dropped_citations": [], "unsupported_sentences": [], "backend": "extractive",
           "model": "sentence-selection", "timings": {"total_ms": 12.0},
           "citations": [{"n": n, "paper_id": {1: NPO, 2: TOFU}[n]["paper_id"], "title": {1: NPO, 2: TOFU}[n]["title"],
                          "supported": True, "support": 0.9, "evidence": "NPO avoids collapse."} for n in cited],
           "sources": []}
    out.update(extra)
    return out


def test_history__a_conversation_survives_a_restart_intact(tmp_path):
    path = tmp_path / "history.db"
    h = History(path)
    cid = h.new_conversation("compare NPO and gradient ascent", library="default")
    a1 = h.add_answer(cid, answer("compare NPO and gradient ascent"), [NPO, TOFU], {"backend": "extractive", "top_k": 8})
    a2 = h.add_answer(cid, answer("and which evaluates on TOFU?", "TOFU is a benchmark [2].", cited=(2,)), [TOFU],
                      {"backend": "extractive"})

    again = History(path)  # a new process would open it like this
    [conv] = again.conversations()
    assert (conv.id, conv.title, conv.library, conv.answers) == (cid, "compare NPO and gradient ascent", "default", 2)
    first, second = again.answers(cid)
    assert (first.id, second.id) == (a1, a2)
    assert first.answer["citations"][0]["evidence"] == "NPO avoids collapse."
    assert first.sources == [NPO, TOFU] and first.settings == {"backend": "extractive", "top_k": 8}
    assert again.numbering(cid) == {"2404.05868": 1, "t-0123456789abcdef": 2}
    assert again.latest_conversation() == cid


def test_history__reading_before_anything_is_saved_creates_no_file(tmp_path):
    h = History(tmp_path / "home" / "history.db")
    assert h.conversations() == [] and h.gaps() == [] and h.rated_answers() == []
    h.check()
    assert not (tmp_path / "home").exists()


def test_history__undo_removes_an_answer_from_its_conversation_but_keeps_it_and_its_feedback(tmp_path):
    h = History(tmp_path / "history.db")
    cid = h.new_conversation("q1")
    keep = h.add_answer(cid, answer("q1"), [NPO], {})
    undone = h.add_answer(cid, answer("q2", cited=(2,)), [TOFU], {})
    h.add_feedback(undone, -1, "wrong-citation", citations=[2])
    h.remove_answer(undone)

    assert [a.id for a in h.answers(cid)] == [keep]
    assert h.numbering(cid) == {"2404.05868": 1}  # the next answer may reuse the undone answer's numbers
    assert h.answer(undone).removed and h.answer(undone).feedback[0].citations == [2]  # still in the file
    with pytest.raises(HistoryError, match=f"answer {undone} was undone"):
        h.add_feedback(undone, 1)
    h.remove_answer(keep)
    assert h.conversations() == []  # a conversation with nothing left is not listed
    assert h.conversation(cid).answers == 0


def test_history__feedback_is_checked_and_kept(tmp_path):
    h = History(tmp_path / "history.db")
    aid = h.add_answer(h.new_conversation("q"), answer("q", cited=(1, 2)), [NPO, TOFU], {})
    h.add_feedback(aid, -1, comment="  [2] is about a benchmark  ", citations=[2])
    h.add_feedback(aid, 1)
    [wrong, up] = h.answer(aid).feedback
    assert (wrong.rating, wrong.reason, wrong.comment, wrong.citations) == (-1, "wrong-citation", "[2] is about a benchmark", [2])
    assert (up.rating, up.reason) == (1, "")
    assert [a.id for a in h.rated_answers()] == [aid]

    for call, message in [
        (lambda: h.add_feedback(999, 1), "no answer 999 in the history"),
        (lambda: h.add_feedback(aid, 1, citations=[7]), r"has no source \[7\]"),
        (lambda: h.add_feedback(aid, 1, reason="meh"), "unknown reason 'meh'"),
        (lambda: h.add_feedback(aid, 0), "nothing to save"),
        (lambda: h.add_feedback(aid, 5), "a rating is 1"),
    ]:
        with pytest.raises(HistoryError, match=message):
            call()
    assert len(h.answer(aid).feedback) == 2  # nothing half-written


def test_history__a_damaged_file_is_reported_and_never_written(tmp_path):
    path = tmp_path / "history.db"
    h = History(path)
    h.add_answer(h.new_conversation("q"), answer("q"), [NPO], {})
    # The file replaced by something that is not a database at all.
    garbage = b"this is not a database, it is a shopping list\n" * 100
    path.write_bytes(garbage)
    for extra in ("-wal", "-shm"):
        (tmp_path / f"history.db{extra}").unlink(missing_ok=True)
    damaged = History(path)
    with pytest.raises(HistoryError) as err:
        damaged.add_answer(damaged.new_conversation("q2"), answer("q2"), [NPO], {})
    message = str(err.value)
    assert str(path) in message and "left untouched" in message and "Move it aside" in message
    with pytest.raises(HistoryError):
        damaged.conversations()
    assert path.read_bytes() == garbage  # nothing was written over what the user had


def test_history__pages_damaged_inside_a_real_database_are_found_before_any_write(tmp_path):
    path = tmp_path / "history.db"
    h = History(path)
    cid = h.new_conversation("q")
    for i in range(40):
        h.add_answer(cid, answer(f"question {i} " + "x" * 2000), [NPO], {})
    with sqlite3.connect(path) as conn:  # fold the WAL into the file, so the bytes below are the data
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(path.read_bytes())
    page = 4096
    raw[page * 3 : page * 3 + 200] = b"\xff" * 200  # scribble over a b-tree page
    path.write_bytes(bytes(raw))
    before = path.read_bytes()
    damaged = History(path)
    with pytest.raises(HistoryError, match="cannot be read"):
        damaged.new_conversation("another")
    assert path.read_bytes() == before


def test_history__a_foreign_sqlite_file_or_a_newer_schema_is_refused(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    with pytest.raises(HistoryError, match="not a conversation history"):
        History(other).new_conversation("q")

    newer = tmp_path / "newer.db"
    History(newer).new_conversation("q")
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer version"):
        History(newer).conversations()


def test_history__threads_write_at_once_without_losing_answers(tmp_path):
    h = History(tmp_path / "history.db")
    cid = h.new_conversation("q")

    def write(i):
        for j in range(10):
            h.add_answer(cid, answer(f"q{i}-{j}"), [NPO], {})

    in_threads(write, 4)  # a failure in any thread is raised here
    assert len(h.answers(cid)) == 40


def test_history__unknown_ids_are_clear_messages(tmp_path):
    h = History(tmp_path / "history.db")
    h.new_conversation("q")
    with pytest.raises(HistoryError, match="no conversation 42"):
        h.answers(42)
    with pytest.raises(HistoryError, match="no answer 42"):
        h.answer(42)


def test_history__saved_sources_carry_the_full_abstract_and_the_papers_ids():
    from assistant.core.types import Paper

    paper = Paper("2404.05868", NPO["title"], "The full abstract. Two sentences.", authors=["Ruiqi Zhang"],
                  arxiv_id="2404.05868", source="data/x.txt:3", categories=["cs.LG"])
    rows = saved_sources([{"n": 3, "paper_id": "2404.05868", "title": NPO["title"], "authors": [], "date": "",
                           "url": "", "score": 1.0, "relevance": 0.5, "cited": True, "snippet": "The full…"},
                          {"n": 4, "paper_id": "gone", "title": "Gone", "snippet": "only a snippet"}], [paper])
    assert rows[0]["abstract"] == "The full abstract. Two sentences." and "snippet" not in rows[0]
    assert (rows[0]["arxiv_id"], rows[0]["source"], rows[0]["authors"]) == ("2404.05868", "data/x.txt:3", ["Ruiqi Zhang"])
    assert rows[1]["abstract"] == "only a snippet"


def test_gaps__declined_and_partial_questions_are_grouped_by_topic(tmp_path, embedder):
    h = History(tmp_path / "history.db")
    cid = h.new_conversation("gaps")
    asked = [
        ("How do watermarking schemes mark LLM generated text?", "decline", "the indexed papers do not cover watermarking"),
        ("Which watermarking methods detect machine-generated text?", "decline", "the indexed papers do not cover watermarking"),
        ("What learning rate did the NPO paper use on TOFU?", "partial", "the sources do not give the learning rate"),
        ("What is NPO?", "answer", ""),
    ]
    for q, verdict, reason in asked:
        extra = {"decline_reason": reason}
        if verdict == "partial":
            extra["unanswered_parts"] = ["the learning rate"]
        h.add_answer(cid, answer(q, DECLINE_PHRASE if verdict == "decline" else "NPO [1].", answerability=verdict,
                                 **extra), [NPO], {})
    groups = group_gaps(h.gaps(), embedder.embed)
    assert [len(g.answers) for g in groups] == [2, 1]
    assert "watermarking" in groups[0].topic
    assert groups[0].missing == ["the indexed papers do not cover watermarking"]
    assert {a.question for a in groups[0].answers} == {q for q, *_ in asked[:2]}
    assert "learning" in groups[1].topic and "the learning rate" in groups[1].missing
    assert json.dumps([g.to_dict() for g in groups])  # the --json shape


# -- the commands ------------------------------------------------------------------------


def _saved_conversation(home) -> tuple[int, int]:
    h = History(home / "history.db")
    cid = h.new_conversation("compare NPO and gradient ascent")
    h.add_answer(cid, answer("compare NPO and gradient ascent", "NPO avoids collapse [1]; TOFU tests it [2].",
                             cited=(1, 2)), [NPO, TOFU], {"backend": "extractive"})
    aid = h.add_answer(cid, answer("and on TOFU?", "TOFU is a benchmark [2].", cited=(2,)), [TOFU], {})
    return cid, aid


def test_cli__history_list_show_and_export(temp_home, tmp_path):
    cid, aid = _saved_conversation(temp_home)

    out = runner.invoke(cli, ["history", "list"])
    assert out.exit_code == 0 and "compare NPO and gradient ascent" in out.stdout and "2 answers" in out.stdout
    assert json.loads(runner.invoke(cli, ["history", "list", "--json"]).stdout)[0]["id"] == cid

    out = runner.invoke(cli, ["history", "show", str(cid)])
    assert out.exit_code == 0, out.output
    assert f"answer {aid}" in out.stdout and "References" in out.stdout and "TOFU is a benchmark [2]." in out.stdout

    out = runner.invoke(cli, ["history", "export", str(cid)])
    assert out.exit_code == 0
    assert out.stdout.startswith("# compare NPO and gradient ascent")
    assert "## References" in out.stdout and "[1] Ruiqi Zhang, Licong Lin (2024)." in out.stdout
    assert "arXiv:2404.05868" in out.stdout

    bib = tmp_path / "cited.bib"
    out = runner.invoke(cli, ["history", "export", str(cid), "--format", "bib", "-o", str(bib)])
    assert out.exit_code == 0 and "@misc{zhang2024negative," in bib.read_text()
    out = runner.invoke(cli, ["history", "export", str(cid), "--format", "ris", "--answer", str(aid)])
    assert out.stdout.count("TY  - ") == 1 and "TI  - TOFU" in out.stdout


def test_cli__bad_history_input_is_one_line(temp_home):
    cid, aid = _saved_conversation(temp_home)
    h = History(temp_home / "history.db")
    empty = h.new_conversation("nothing yet")

    cases = [
        (["history", "show", "77"], "no conversation 77"),
        (["history", "export", str(empty)], "has no answers yet: nothing to export"),
        (["history", "export", str(cid), "--format", "docx"], "unknown export format 'docx'"),
        (["history", "export", str(cid), "--answer", "999"], f"conversation {cid} has no answer 999"),
        (["feedback", "999", "--down"], "no answer 999 in the history"),
        (["feedback", str(aid), "--down", "--wrong-citation", "9"], r"has no source [9]"),
    ]
    for args, message in cases:
        out = runner.invoke(cli, args)
        assert out.exit_code == 1, (args, out.output)
        assert message in out.output and "Traceback" not in out.output, (args, out.output)
    assert [a.feedback for a in h.answers(cid)] == [[], []]  # nothing stored by the refused calls


def test_cli__feedback_and_a_damaged_history(temp_home):
    cid, aid = _saved_conversation(temp_home)
    out = runner.invoke(cli, ["feedback", str(aid), "--down", "--reason", "should-decline", "-m", "not in the papers"])
    assert out.exit_code == 0 and f"saved feedback on answer {aid}" in out.stdout
    [f] = History(temp_home / "history.db").answer(aid).feedback
    assert (f.rating, f.reason, f.comment) == (-1, "should-decline", "not in the papers")

    path = temp_home / "history.db"
    for extra in ("-wal", "-shm"):
        (temp_home / f"history.db{extra}").unlink(missing_ok=True)
    path.write_bytes(b"garbage" * 1000)
    for args in (["history", "list"], ["feedback", str(aid), "--up"], ["gaps"]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 1, out.output
        lines = [line for line in out.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot be read" in lines[0] and "left untouched" in lines[0]
    assert path.read_bytes() == b"garbage" * 1000


def test_cli__gaps_with_nothing_declined_says_so(temp_home):
    _saved_conversation(temp_home)
    out = runner.invoke(cli, ["gaps"])
    assert out.exit_code == 0 and "no declined or partly answered questions" in out.stdout


@pytest.mark.slow
def test_cli__chat_is_saved_and_resumed_with_stable_numbers(bundled_home, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(bundled_home, home)
    monkeypatch.setenv("ASSISTANT_HOME", str(home))

    out = runner.invoke(cli, ["chat"], input="compare NPO and gradient ascent\nquit\n")
    assert out.exit_code == 0, out.output
    h = History(home / "history.db")
    [conv] = h.conversations()
    [first] = h.answers(conv.id)
    assert first.sources and all(s["abstract"] for s in first.sources)
    npo = next(s for s in first.sources if s["title"].startswith("Negative Preference Optimization"))

    out = runner.invoke(cli, ["chat", "--resume"], input="and which of them evaluates on TOFU?\nquit\n")
    assert out.exit_code == 0, out.output
    assert f"Resuming conversation {conv.id}" in out.output
    first, second = h.answers(conv.id)
    # The follow-up was understood from the saved conversation, and the NPO paper kept its number.
    assert second.answer["standalone_question"].startswith("compare NPO and gradient ascent")
    again = next(s for s in second.sources if s["paper_id"] == npo["paper_id"])
    assert again["n"] == npo["n"]
    new = {s["n"] for s in second.sources} - {s["n"] for s in first.sources}
    assert all(n > max(s["n"] for s in first.sources) for n in new)

    out = runner.invoke(cli, ["chat", "--conversation", "999"], input="quit\n")
    assert out.exit_code == 1 and "no conversation 999" in out.output
