"""Conversations on disk: questions, answers (the Answer JSON with its full sources), the settings used, feedback.

One SQLite file in the home folder (``<home>/history.db``); no other module opens
it. The chat page, ``assistant chat``, ``assistant history``, ``assistant
feedback``, ``assistant gaps`` and ``assistant eval from-feedback`` all go
through ``History``.

Nothing here deletes what a user wrote: undoing an answer marks it removed (its
feedback stays readable), and a file that is not a readable history database is
never written to; every call then raises ``HistoryError`` naming the file and
what to do, and the rest of the program keeps working without history.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from assistant.core.errors import UserError
from assistant.core.text import content_words, stem, words

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    library TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    question TEXT NOT NULL,
    answerability TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    sources_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    created TEXT NOT NULL,
    removed TEXT
);
CREATE INDEX IF NOT EXISTS answers_by_conversation ON answers(conversation_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    rating INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    citations_json TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_answer ON feedback(answer_id);
"""
# Why a thumbs-down: the page offers these, `assistant feedback --reason` takes them, eval.feedback reads them.
REASONS = {
    "wrong-citation": "a citation points at a paper that does not say this",
    "not-supported": "a claim is not supported by the sources",
    "should-decline": "the papers do not answer this; it should have declined",
    "missed-answer": "the papers do answer this; it declined or missed it",
    "other": "something else (say what in the comment)",
}
TITLE_CHARS = 80


class HistoryError(UserError):
    """The history cannot be read or written as asked (damaged file, unknown id); the message says what to do."""


@dataclass
class Conversation:
    id: int
    title: str
    library: str
    created: str
    updated: str
    answers: int = 0


@dataclass
class Feedback:
    id: int
    answer_id: int
    rating: int  # 1 up, -1 down, 0 a comment only
    reason: str = ""
    comment: str = ""
    citations: list[int] = field(default_factory=list)  # [n] marked wrong
    created: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StoredAnswer:
    """One answered question: the Answer as a dict, its sources in full (abstracts included) and the settings used."""

    id: int
    conversation_id: int
    question: str
    answer: dict
    sources: list[dict]
    settings: dict
    created: str
    removed: str | None = None
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def answerability(self) -> str:
        return self.answer.get("answerability") or ("decline" if self.answer.get("declined") else "answer")

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "feedback"}
        out["feedback"] = [f.to_dict() for f in self.feedback]
        return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def title_of(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class History:
    """The conversation store at ``path`` (created on first write). Safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    # -- connection ------------------------------------------------------------------

    def _damaged(self, detail: str) -> HistoryError:
        return HistoryError(
            f"the history database {self.path} cannot be read ({detail}). It was left untouched; nothing was saved. "
            f"Move it aside to start a new history (mv '{self.path}' '{self.path}.damaged'), "
            f"or try to recover it: sqlite3 '{self.path}' .recover | sqlite3 recovered.db")

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one operation (a transaction when ``write``)."""
        if not write and not self.path.exists():
            conn = sqlite3.connect(":memory:")  # nothing stored yet: read from an empty schema, create no file
            conn.executescript(SCHEMA)
            with closing(conn):
                yield conn
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=15, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._damaged(str(exc)) from None
        with closing(conn):
            conn.row_factory = sqlite3.Row
            try:
                self._prepare(conn)
            except sqlite3.DatabaseError as exc:
                raise self._damaged(str(exc)) from None
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file once per History (quick_check reads every page: a damaged file is found before any write)."""
        conn.execute("PRAGMA foreign_keys = ON")
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status != "ok":
                raise sqlite3.DatabaseError(status)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(f"the history database {self.path} was written by a newer version of the assistant "
                                   f"(schema {version}, this one reads {SCHEMA_VERSION}); it was left untouched")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and not {"conversations", "answers", "feedback"} <= tables:
                raise sqlite3.DatabaseError("it is an SQLite file, but not a conversation history")
            conn.execute("PRAGMA journal_mode = WAL")  # readers (the page) never wait for a writer
            conn.executescript(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._ready = True

    def check(self) -> None:
        """Raise HistoryError when the file exists and cannot be read as a history."""
        if self.path.exists():
            with self._db():
                pass

    # -- conversations ---------------------------------------------------------------

    def new_conversation(self, title: str = "", library: str = "") -> int:
        now = _now()
        with self._db(write=True) as db:
            cur = db.execute("INSERT INTO conversations (title, library, created, updated) VALUES (?, ?, ?, ?)",
                             (title_of(title), library, now, now))
            return int(cur.lastrowid)

    def conversations(self, limit: int | None = 50) -> list[Conversation]:
        """Conversations with at least one answer, the most recently updated first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.*, COUNT(a.id) AS n FROM conversations c JOIN answers a ON a.conversation_id = c.id "
                "AND a.removed IS NULL GROUP BY c.id ORDER BY c.updated DESC, c.id DESC LIMIT ?",
                (-1 if limit is None else limit,)).fetchall()
        return [Conversation(r["id"], r["title"], r["library"], r["created"], r["updated"], r["n"]) for r in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        with self._db() as db:
            row = db.execute("SELECT * FROM conversations WHERE id = ?", (int(conversation_id),)).fetchone()
            if row is None:
                raise HistoryError(f"no conversation {conversation_id} in the history (see `assistant history list`)")
            n = db.execute("SELECT COUNT(*) FROM answers WHERE conversation_id = ? AND removed IS NULL",
                           (row["id"],)).fetchone()[0]
        return Conversation(row["id"], row["title"], row["library"], row["created"], row["updated"], n)

    def latest_conversation(self) -> int | None:
        found = self.conversations(limit=1)
        return found[0].id if found else None

    # -- answers ---------------------------------------------------------------------

    def add_answer(self, conversation_id: int, answer: dict, sources: list[dict], settings: dict) -> int:
        """Store one answer (``answer``: Answer.to_dict(); ``sources``: every source with its abstract)."""
        now = _now()
        with self._db(write=True) as db:
            row = db.execute("SELECT title FROM conversations WHERE id = ?", (int(conversation_id),)).fetchone()
            if row is None:
                raise HistoryError(f"no conversation {conversation_id} in the history")
            cur = db.execute(
                "INSERT INTO answers (conversation_id, question, answerability, answer_json, sources_json, settings_json,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(conversation_id), answer.get("question", ""), answer.get("answerability") or "answer",
                 json.dumps(answer, ensure_ascii=False), json.dumps(sources, ensure_ascii=False),
                 json.dumps(settings, ensure_ascii=False, default=str), now))
            title = row["title"] or title_of(answer.get("question", ""))
            db.execute("UPDATE conversations SET updated = ?, title = ? WHERE id = ?", (now, title, int(conversation_id)))
            return int(cur.lastrowid)

    def answers(self, conversation_id: int) -> list[StoredAnswer]:
        """The conversation's answers in order (removed ones left out), with their feedback."""
        self.conversation(conversation_id)  # a clear error for an unknown id
        with self._db() as db:
            rows = db.execute("SELECT * FROM answers WHERE conversation_id = ? AND removed IS NULL ORDER BY id",
                              (int(conversation_id),)).fetchall()
            return self._with_feedback(db, [_stored(r) for r in rows])

    def answer(self, answer_id: int) -> StoredAnswer:
        """One answer by id, removed or not (``removed`` says when it was undone)."""
        with self._db() as db:
            row = db.execute("SELECT * FROM answers WHERE id = ?", (int(answer_id),)).fetchone()
            if row is None:
                raise HistoryError(f"no answer {answer_id} in the history (`assistant history show ID` lists the "
                                   "answer ids of a conversation)")
            return self._with_feedback(db, [_stored(row)])[0]

    def remove_answer(self, answer_id: int) -> None:
        """Undo: the answer leaves its conversation (it and its feedback stay in the file, marked removed)."""
        with self._db(write=True) as db:
            db.execute("UPDATE answers SET removed = ? WHERE id = ? AND removed IS NULL", (_now(), int(answer_id)))

    def numbering(self, conversation_id: int) -> dict[str, int]:
        """{paper_id: n} over the conversation's answers: the numbers its next answer must keep."""
        out: dict[str, int] = {}
        for a in self.answers(conversation_id):
            for s in a.sources:
                out.setdefault(s["paper_id"], int(s["n"]))
        return out

    # -- feedback --------------------------------------------------------------------

    def add_feedback(self, answer_id: int, rating: int, reason: str = "", comment: str = "",
                     citations: list[int] | None = None) -> int:
        """Store a rating (1 up, -1 down, 0 comment only) with its reason, comment and the [n] marked wrong."""
        if rating not in (-1, 0, 1):
            raise HistoryError("a rating is 1 (up), -1 (down) or 0 (a comment only)")
        if reason and reason not in REASONS:
            raise HistoryError(f"unknown reason {reason!r}: choose one of {', '.join(REASONS)}")
        citations = sorted({int(n) for n in citations or []})
        if rating == 0 and not (reason or comment.strip() or citations):
            raise HistoryError("nothing to save: give a rating, a reason, a comment or a wrong citation")
        with self._db(write=True) as db:
            row = db.execute("SELECT removed, sources_json FROM answers WHERE id = ?", (int(answer_id),)).fetchone()
            if row is None:
                raise HistoryError(f"no answer {answer_id} in the history: it may belong to a history that was moved "
                                   "aside; nothing was saved")
            if row["removed"]:
                raise HistoryError(f"answer {answer_id} was undone on {row['removed'][:10]}; nothing was saved")
            known = {int(s["n"]) for s in json.loads(row["sources_json"])}
            unknown = [n for n in citations if n not in known]
            if unknown:
                raise HistoryError(f"answer {answer_id} has no source {', '.join(f'[{n}]' for n in unknown)}; "
                                   "nothing was saved")
            if citations and not reason:
                reason = "wrong-citation"
            cur = db.execute(
                "INSERT INTO feedback (answer_id, rating, reason, comment, citations_json, created) VALUES (?, ?, ?, ?, ?, ?)",
                (int(answer_id), rating, reason, comment.strip(), json.dumps(citations), _now()))
            return int(cur.lastrowid)

    def rated_answers(self) -> list[StoredAnswer]:
        """Every answer with feedback (removed ones included: the rating was given before the undo), oldest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM answers WHERE id IN (SELECT answer_id FROM feedback) ORDER BY id").fetchall()
            return self._with_feedback(db, [_stored(r) for r in rows])

    def _with_feedback(self, db: sqlite3.Connection, answers: list[StoredAnswer]) -> list[StoredAnswer]:
        by_id = {a.id: a for a in answers}
        if by_id:
            marks = ",".join("?" * len(by_id))
            for r in db.execute(f"SELECT * FROM feedback WHERE answer_id IN ({marks}) ORDER BY id", list(by_id)):
                by_id[r["answer_id"]].feedback.append(Feedback(
                    r["id"], r["answer_id"], r["rating"], r["reason"], r["comment"], json.loads(r["citations_json"]),
                    r["created"]))
        return answers

    # -- gaps ------------------------------------------------------------------------

    def gaps(self) -> list[StoredAnswer]:
        """Answers that were declined or only partly answered (removed ones left out), newest first."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM answers WHERE answerability IN ('decline', 'partial') AND removed IS NULL "
                              "ORDER BY id DESC").fetchall()
            return [_stored(r) for r in rows]


def saved_sources(sources: list[dict], papers: list) -> list[dict]:
    """What is saved beside an answer: each of its sources (source rows, or Answer.sources dicts) with the paper's
    full abstract, arXiv id, categories and the file it came from (``papers``: the library's Paper records). A paper
    the library no longer has keeps the abstract (or snippet) it came with."""
    by_id = {p.paper_id: p for p in papers}
    out = []
    for s in sources:
        row = {k: v for k, v in s.items() if k != "snippet"}
        p = by_id.get(s["paper_id"])
        row["abstract"] = p.abstract if p is not None else s.get("abstract") or s.get("snippet", "")
        if p is not None:
            row.update(arxiv_id=p.arxiv_id, source=p.source, categories=list(p.categories),
                       authors=s.get("authors") or list(p.authors), date=s.get("date") or p.date, url=s.get("url") or p.url)
        out.append(row)
    return out


def _stored(row: sqlite3.Row) -> StoredAnswer:
    return StoredAnswer(row["id"], row["conversation_id"], row["question"], json.loads(row["answer_json"]),
                        json.loads(row["sources_json"]), json.loads(row["settings_json"]), row["created"], row["removed"])


# -- what the library does not know ------------------------------------------------------


@dataclass
class GapGroup:
    """Questions the library could not (fully) answer that are about one topic."""

    topic: str
    answers: list[StoredAnswer]
    missing: list[str]  # what the answers said was missing, most frequent first

    def to_dict(self) -> dict:
        return {"topic": self.topic, "missing": self.missing,
                "questions": [{"answer_id": a.id, "conversation_id": a.conversation_id, "question": a.question,
                               "answerability": a.answerability, "reason": a.answer.get("decline_reason", ""),
                               "unanswered_parts": a.answer.get("unanswered_parts", []), "created": a.created}
                              for a in self.answers]}


def group_gaps(answers: list[StoredAnswer], embed: Callable[[list[str]], np.ndarray],
               threshold: float = 0.55) -> list[GapGroup]:
    """Group declined / partial answers by topic: questions whose embeddings are within ``threshold`` cosine of a
    group's first question join it (one pass, newest first); the biggest groups come first.

    A group's topic is its most frequent content words; ``missing`` collects the reasons and unanswered parts.
    """
    if not answers:
        return []
    texts = [a.answer.get("standalone_question") or a.question for a in answers]
    vecs = np.asarray(embed(texts), dtype=np.float32)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
    groups: list[tuple[np.ndarray, list[int]]] = []
    for i, v in enumerate(vecs):
        best = max(range(len(groups)), key=lambda g: float(groups[g][0] @ v), default=None)
        if best is not None and float(groups[best][0] @ v) >= threshold:
            groups[best][1].append(i)
        else:
            groups.append((v, [i]))
    out = []
    for _, members in sorted(groups, key=lambda g: -len(g[1])):
        counts: dict[str, int] = {}
        surface: dict[str, str] = {}  # stem → the word as first written, for the label
        for i in members:
            for w in words(texts[i]):
                surface.setdefault(stem(w), w)
            for w in dict.fromkeys(content_words(texts[i])):
                counts[w] = counts.get(w, 0) + 1
        order = list(dict.fromkeys(content_words(texts[members[0]])))
        top = [surface.get(w, w) for w in sorted(counts, key=lambda w: (-counts[w], order.index(w) if w in order else 99))[:4]]
        missing: dict[str, int] = {}
        for i in members:
            a = answers[i].answer
            for part in [a.get("decline_reason", "")] + list(a.get("unanswered_parts") or []):
                if part:
                    missing[part] = missing.get(part, 0) + 1
        out.append(GapGroup(" ".join(top) or title_of(texts[members[0]]), [answers[i] for i in members],
                            sorted(missing, key=lambda m: -missing[m])))
    return out
