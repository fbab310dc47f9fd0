"""Rated answers as harness questions: the feedback researchers gave becomes a question set for ``eval answers``.

``questions_from_feedback(history)`` reads every answer with feedback from the
conversation history and writes one question per answer in the format of
``eval/datasets/dev.jsonl`` (``id, question, type, gold_titles, key_facts,
answerable`` and, for an unanswerable one, ``unanswerable_kind``), plus a
``feedback`` object saying where it came from. The question is the standalone
one (a follow-up as it was searched for), since a harness question has no chat
before it. The latest rating of an answer decides; wrong citations add up.

* 👍 on an answer → answerable; its gold papers are the cited ones, less any marked wrong.
* 👍 on a decline → unanswerable (the decline was right).
* 👎 "should have declined" on an answer → unanswerable: near-miss when the library had
  relevant papers (best relevance at or above the threshold it was asked with), else off-topic.
* 👎 on a decline, or "missed the answer" → answerable, gold papers unknown: the row
  says ``needs_review`` (add ``gold_titles``; until then the gold-paper metrics skip it).
* 👎 for another reason (wrong citation, not supported) → answerable; gold papers are the
  cited ones less those marked wrong (``needs_review`` when none is left).
* a comment with no rating and no wrong citation → not a question.
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.settings import AnswerabilityConfig
from assistant.core.types import DECLINE_PHRASE

TYPES = {"compare": "compare", "summarize": "topic"}
DEFAULT_MIN_RELEVANCE = AnswerabilityConfig().min_relevance  # for answers saved without their settings


def _question_row(a) -> dict | None:
    """The harness question for one rated StoredAnswer, or None when its feedback says nothing to test."""
    rated = [f for f in a.feedback if f.rating]
    wrong = sorted({n for f in a.feedback for n in f.citations})
    if not rated and not wrong:
        return None
    last = rated[-1] if rated else None
    rating = last.rating if last else -1  # a wrong citation alone is a complaint
    reasons = [f.reason for f in a.feedback if f.reason]
    answer = a.answer
    declined = bool(answer.get("declined")) or answer.get("answerability") == "decline"
    question = answer.get("standalone_question") or a.question
    citations = answer.get("citations") or []
    titles = {int(s["n"]): s["title"] for s in a.sources}
    cited = list(dict.fromkeys(titles.get(int(c["n"]), c.get("title", "")) for c in citations))
    kept = [titles.get(int(c["n"]), c.get("title", "")) for c in citations if int(c["n"]) not in wrong]
    kept = list(dict.fromkeys(t for t in kept if t))
    row = {"id": f"fb-{a.id}", "question": question, "type": TYPES.get(answer.get("mode"), "lookup"),
           "gold_titles": [], "key_facts": [], "answerable": True}
    should_decline = last is not None and last.rating < 0 and last.reason == "should-decline"
    if (declined and rating > 0) or should_decline:
        best = max((s.get("relevance") or 0.0 for s in a.sources), default=0.0)
        threshold = float((a.settings or {}).get("min_relevance") or DEFAULT_MIN_RELEVANCE)
        row.update(type="unanswerable", answerable=False,
                   unanswerable_kind="near-miss" if a.sources and best >= threshold else "off-topic")
    elif declined or (last is not None and last.reason == "missed-answer"):
        row["needs_review"] = "rated wrong for not answering: add the gold_titles that answer it"
    else:
        row["gold_titles"] = kept
        if not kept:
            row["needs_review"] = "every cited paper was marked wrong: add the gold_titles that answer it"
    row["feedback"] = {
        "answer_id": a.id, "conversation_id": a.conversation_id, "rating": rating, "reasons": reasons,
        "comments": [f.comment for f in a.feedback if f.comment], "wrong_citations": wrong,
        "answered": "declined" if declined else answer.get("answerability", "answer"), "cited_titles": cited,
        "asked": a.question, "created": a.created,
    }
    if declined:
        row["feedback"]["answer"] = DECLINE_PHRASE
    return row


def questions_from_feedback(history) -> list[dict]:
    """One harness question per rated answer in ``history`` (an ``assistant.library.history.History``)."""
    return [row for row in (_question_row(a) for a in history.rated_answers()) if row is not None]


def write_questions(rows: list[dict], path: Path) -> Path:
    """Write the questions as JSONL (replacing the file: it is regenerated from the history each time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    return path


def summary(rows: list[dict]) -> dict:
    """Counts for the command's report."""
    return {"questions": len(rows), "answerable": sum(r["answerable"] for r in rows),
            "unanswerable": sum(not r["answerable"] for r in rows),
            "needs_review": sum("needs_review" in r for r in rows)}
