"""A conversation, for ``assistant chat`` and the chat page alike: its turns, the numbers its papers keep, the
history a follow-up is read against, one turn answered through the engine, and each answer saved with its sources.

A conversation is a plain dict (the page keeps it in its state, the CLI in a variable)::

    {"id": its id in the history, or None until its first answer is saved, "title": str, "turns": [turn, ...]}

A turn is one question and its answer, the shape the history saves and gives back::

    {"id": the answer's id in the history or None, "question": str,
     "answer": Answer.to_dict(), or None while it is being answered,
     "sources": [one row per source: the Source's fields with its abstract, the paper's ids and file, "cited"],
     "settings": the settings it was answered with, "error": "" or what went wrong}

A paper keeps its [n] for the whole conversation: each question is answered with the numbering of the answers
before it, and the earlier questions and answers as the history a follow-up is read against. The callers present
the turn (the terminal's lines; the page's Markdown and HTML) and word the failures for their readers; nothing here
retrieves, answers or renders.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from assistant.app import App
from assistant.core.errors import UserError
from assistant.core.secrets import redact
from assistant.library.history import HistoryError, saved_sources, title_of


def new_conversation() -> dict:
    return {"id": None, "title": "", "turns": []}


def new_turn(question: str) -> dict:
    return {"id": None, "question": question, "answer": None, "sources": [], "settings": {}, "error": ""}


def answered(turns: list[dict]) -> list[dict]:
    """The turns with an answer (not the one being answered, not one that failed)."""
    return [t for t in turns if t.get("answer") is not None and not t.get("error")]


def engine_history(turns: list[dict]) -> list[dict]:
    """Earlier answered turns as the engine's history (plain text, the engine's own [n])."""
    out = []
    for t in answered(turns):
        out += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]["answer"]}]
    return out


def numbering(turns: list[dict]) -> dict[str, int]:
    """{paper_id: n} over a conversation's answers: the numbers its next answer keeps."""
    out: dict[str, int] = {}
    for t in answered(turns):
        for s in t["sources"]:
            out.setdefault(s["paper_id"], int(s["n"]))
    return out


def source_row(source) -> dict:
    """A Source (with its abstract) as the row a turn keeps; ``finish`` adds the paper's ids and file, and "cited"."""
    out = {"n": source.n, "paper_id": source.paper_id, "title": source.title, "abstract": source.abstract,
           "authors": list(source.authors), "date": source.date, "url": source.url, "score": round(source.score, 4),
           "relevance": None if source.relevance is None else round(source.relevance, 4), "cited": False}
    if getattr(source, "pages", 0):  # a full text: its PDF and the passages retrieved for this question
        out.update(pdf=source.pdf, pages=source.pages, passages=[dict(p) for p in source.passages])
    return out


class Conversations:
    """Conversations answered by ``app`` (or by an App of another backend, sharing its store and model) and saved in
    ``history`` (default: the App's, ``<home>/history.db``). Safe to share between threads; a conversation is not."""

    def __init__(self, app: App, history=None):
        self.app = app
        self.history = history if history is not None else app.history
        self._apps: dict[str, App] = {app.settings.backend: app}
        self._lock = threading.Lock()

    def app_for(self, backend: str | None = None) -> App:
        """The App that answers with ``backend`` (None: the configured one): same store client and embedding model."""
        name = backend or self.app.settings.backend
        with self._lock:
            if name not in self._apps:
                settings = self.app.settings.with_overrides(backend=name)
                self._apps[name] = App(settings, embedder=self.app.embedder, client=self.app.client)
            return self._apps[name]

    # -- starting and resuming ---------------------------------------------------------

    def open(self, conversation_id: int) -> dict:
        """A saved conversation, intact (its answers with their sources, numbers and settings); HistoryError when it
        cannot be read."""
        saved = self.history.conversation(int(conversation_id))
        turns = [dict(new_turn(a.question), id=a.id, answer=a.answer, sources=a.sources, settings=a.settings)
                 for a in self.history.answers(saved.id)]
        return {"id": saved.id, "title": saved.title, "turns": turns}

    def resume(self, conversation_id: int | None = None) -> dict:
        """The saved conversation ``conversation_id``, or the latest one; a UserError when there is none."""
        if conversation_id is None:
            conversation_id = self.history.latest_conversation()
            if conversation_id is None:
                raise UserError("no saved conversation to resume: start one with `assistant chat`")
        return self.open(conversation_id)

    # -- one turn ----------------------------------------------------------------------

    def add_question(self, conv: dict, question: str) -> dict:
        """Put ``question`` at the end of the conversation, to be answered by ``stream``; returns its turn."""
        turn = new_turn(question.strip())
        conv["turns"].append(turn)
        return turn

    def stream(self, conv: dict, *, backend: str | None = None, mode: str | None = None, k: int | None = None
               ) -> Iterator:
        """Answer the conversation's last question through the engine, yielding its events ("sources", "delta",
        "done") while the turn follows them: its sources as they are found, then the answer, the sources' paper facts
        and the settings used. The caller saves it (``save``) when it is done. A failure is left on the turn as its
        error and raised."""
        turns = conv["turns"]
        turn, earlier = turns[-1], turns[:-1]
        app = self.app_for(backend)
        k = int(k) if k else None
        try:
            events = app.engine.stream(turn["question"], mode=mode, k=k, history=engine_history(earlier),
                                       numbering=numbering(earlier))
            for event in events:
                if event.kind == "sources":
                    turn["sources"] = [source_row(s) for s in event.sources]
                elif event.kind == "done":
                    self._finish(turn, event.answer, app, mode, k)
                yield event
        except Exception as exc:
            turn["error"] = redact(str(exc)) or type(exc).__name__
            raise

    def _finish(self, turn: dict, answer, app: App, mode: str | None, k: int | None) -> None:
        """Keep the answer, its sources with their papers' facts (abstract, ids, file) and the settings used."""
        turn["answer"] = answer.to_dict()
        try:
            papers = self.app.library.get_papers([s["paper_id"] for s in turn["sources"]])
        except Exception:  # the facts are extras; the answer stands without them
            papers = []
        cited = {c["n"] for c in answer.citations}
        turn["sources"] = [dict(row, cited=row["n"] in cited) for row in saved_sources(turn["sources"], papers)]
        turn["settings"] = dict(app.settings_used(), mode=mode or answer.mode, top_k=k or app.settings.top_k)

    def save(self, conv: dict) -> int:
        """Save the conversation's last answer (the conversation itself at its first); returns the answer's id.
        HistoryError when the history cannot be written: the answer stands, unsaved."""
        turn = conv["turns"][-1]
        if conv["id"] is None:
            conv["id"] = self.history.new_conversation(turn["question"], self.app.settings.library)
            conv["title"] = title_of(turn["question"])
        turn["id"] = self.history.add_answer(conv["id"], turn["answer"], turn["sources"], turn["settings"])
        return turn["id"]

    def undo(self, conv: dict) -> dict:
        """Take the last turn back: it leaves the conversation and its answer leaves the history (kept there, marked
        removed). Returns the turn."""
        turn = conv["turns"].pop()
        if turn.get("id") is not None:
            try:
                self.history.remove_answer(turn["id"])
            except HistoryError:
                pass  # undone here all the same; the damaged history says so elsewhere
        return turn
