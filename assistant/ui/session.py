"""The chat page's handlers: one conversation per browser session, kept, answered and saved by the conversation
service (``assistant.conversation``) that ``assistant chat`` uses too.

``ChatPage`` holds the App and the ``Conversations`` over it (which answers with
each usable backend and saves to the History). A conversation is the service's
plain dict, kept in the page's state, plus the answer whose sources the panel
shows::

    {"id": conversation id in the history or None, "title": str, "turns": [turn, ...], "selected": index or None}

Rendering lives in ``render``; no retrieval, answer or numbering logic lives
here. Known failures (backend, store, history, bad input) become a message on
the page, never a traceback, and the page keeps working.
"""

from __future__ import annotations

import html
import logging
import traceback
from collections import Counter
from pathlib import Path

import gradio as gr

from assistant.app import App
from assistant.conversation import Conversations
from assistant.conversation import new_conversation as new_service_conversation
from assistant.core.errors import UserError
from assistant.core.secrets import mask_url, redact
from assistant.library.history import REASONS, HistoryError, group_gaps
from assistant.ui import render
from assistant.ui.untrusted import md_code, md_text

log = logging.getLogger(__name__)

MODES = {"Ask": None, "Compare": "compare", "Summarize": "summarize"}
BROWSE_LIMIT = 300  # titles listed without a search; a big library is browsed by searching
OVERVIEW_LIMIT = 20_000  # papers read for the empty page's topics; a bigger library shows only its count
CONVERSATIONS_SHOWN = 30
RATINGS = {"Helpful": 1, "Not helpful": -1}
# The Chatbot's own feedback buttons: thumbs, and reasons under its flag icon.
FLAGS = {"Wrong citation": "wrong-citation", "Not supported": "not-supported", "Should have declined": "should-decline"}
VAGUE_WORDS = {"comprehensive", "systematic", "efficient", "effective", "unified", "novel", "simple", "towards",
               "toward", "via", "new", "improving", "better", "study", "approach", "framework", "method", "methods",
               "survey", "review", "using", "based", "large-scale", "pre-trained", "pretrained", "generative"}
KNOWN_ERRORS = (UserError,)  # failures a user can act on; their messages are written for users


def error_text(exc: Exception) -> str:
    """The message for a failure, as plain text with secrets masked (a URL's password, a key a server echoed);
    whoever shows it escapes it for Markdown or HTML."""
    if isinstance(exc, KNOWN_ERRORS):
        return f"⚠️ {redact(str(exc))}"
    log.error("unexpected error in the chat page: %s", redact("".join(traceback.format_exception(exc))))
    return f"⚠️ Something went wrong ({type(exc).__name__}: {redact(str(exc))}). The page still works; try again."


def cut_off(message: str, streamed: str) -> str:
    """The message that replaces a half-streamed answer: it says the text shown until then was withdrawn."""
    if not streamed.strip():
        return message
    return f"{message}\n\n*The answer was cut off part-way; the partial text is withdrawn, as it is incomplete.*"


def new_conversation() -> dict:
    """A new conversation as the page keeps it: the service's, and no answer selected in the panel."""
    return dict(new_service_conversation(), selected=None)


class ChatPage:
    """The handlers behind the page. ``history`` defaults to the App's (``<home>/history.db``)."""

    def __init__(self, app: App, history=None):
        self.app = app
        self.conversations = Conversations(app, history)
        self.history = self.conversations.history

    # -- backends ------------------------------------------------------------------

    def backend_choices(self) -> list[tuple[str, str]]:
        """(label, name) for each registered backend this configuration can use; an unusable one is never offered,
        even when it is the configured one (the page then starts on a usable one and says why)."""
        from assistant.core.backends import backends, missing_settings

        s = self.app.settings
        out = []
        for name, spec in backends().items():
            if missing_settings(spec, s):
                continue
            detail = "no LLM: quotes the sources" if not spec.uses_llm else (
                s.llm_class if name == "llama-index" else s.llm_model + (f" @ {mask_url(s.llm_base_url)}" if s.llm_base_url and name == "openai-compatible" else ""))
            out.append((f"{name} · {detail}", name))
        return out

    def default_backend(self) -> str:
        names = [name for _, name in self.backend_choices()]
        return self.app.settings.backend if self.app.settings.backend in names else (names[0] if names else "extractive")

    def backend_help(self) -> str:
        """How to configure the backends this page cannot use yet (and why the configured one is not selected)."""
        from assistant.core.backends import backends, missing_settings

        s = self.app.settings
        lines = []
        if s.backend != self.default_backend():
            spec = backends()[s.backend]
            lines.append(f"⚠️ The configured backend `{s.backend}` needs {', '.join(missing_settings(spec, s))}; "
                         f"answering with `{self.default_backend()}` until it is set.")
        missing = [(name, missing_settings(spec, s)) for name, spec in backends().items() if missing_settings(spec, s)]
        if missing:
            needs = "; ".join(f"`{name}` needs {', '.join(m)}" for name, m in missing)
            lines.append(f"To answer with a model, set what it needs in the environment (`ASSISTANT_…`) or "
                         f"{md_code(s.home / 'config.toml')} and restart: {needs}. `assistant backends` lists them.")
        return "\n\n".join(lines)

    def engine(self, backend: str | None):
        return self.conversations.app_for(backend or self.default_backend()).engine

    # -- questions -----------------------------------------------------------------

    def _check(self, question: str) -> str | None:
        """A message for a question that cannot be asked, or None."""
        if not question.strip():
            return "⚠️ Please type a question."
        limit = self.app.settings.max_question_chars
        if len(question) > limit:
            return f"⚠️ That question is {len(question):,} characters long; please keep it under {limit:,}."
        if self.app.library.count_papers() == 0:
            return "⚠️ The library is empty: upload papers in the Library tab first."
        return None

    def respond(self, message, history, mode="Ask", backend=None, k=None):
        """One answer outside a saved conversation (the /chat API, scripts): yields (growing answer Markdown,
        sources panel HTML); ``history`` is the earlier chat messages."""
        question = render.message_text(message)
        sources: list = []
        text = ""
        try:
            problem = self._check(question)
            if problem:
                yield md_text(problem), render.sources_html([])
                return
            events = self.engine(backend).stream(
                question, mode=MODES.get(mode), k=int(k) if k else None, history=render.history_for_engine(history))
            for event in events:
                if event.kind == "sources":
                    sources = event.sources
                    yield "*Reading the papers…*", render.sources_html(sources, pending=True)
                elif event.kind == "delta":
                    text += event.text
                    yield render.linkify(text), render.sources_html(sources, pending=True)
                elif event.kind == "done":
                    yield render.answer_markdown(event.answer), render.sources_html(sources, event.answer)
        except Exception as exc:  # the page boundary: every failure becomes a message
            yield cut_off(md_text(error_text(exc)), text), render.sources_html(sources)

    def chat_api(self, message: str, history: list | None = None, mode: str = "Ask", backend: str = "",
                 k: int = 0) -> tuple[str, str]:
        """The final (answer Markdown, sources panel HTML) of ``respond``."""
        last = ("", "")
        for last in self.respond(message, history or [], mode, backend or None, k or None):
            pass
        return last

    def ask(self, question: str, mode: str = "Ask", backend: str = "", k: int = 0, history: list[dict] | None = None) -> dict:
        """Answer one question and return the final Answer as a dict (text, citations, sources, timings)."""
        try:
            problem = self._check(question or "")
            if problem:
                raise UserError(problem.removeprefix("⚠️ "))
            answer = self.engine(backend or None).ask(
                question, mode=MODES.get(mode, mode), k=k or None, history=render.history_for_engine(history or []))
        except Exception as exc:
            # Gradio renders an Error's message as HTML in its toast: escaped, it stays text.
            raise gr.Error(html.escape(error_text(exc).removeprefix("⚠️ "), quote=False)) from None
        return answer.to_dict()

    # -- the conversation ----------------------------------------------------------

    def accept(self, message: str, conv: dict):
        """Take a question from the box: (box, conversation, notice, question to answer or None).

        A question that cannot be asked stays in the box with a message; nothing is added to the chat."""
        question = message or ""
        turns = conv["turns"]
        if turns and turns[-1].get("answer") is None and not turns[-1].get("error"):
            return question, conv, "⚠️ Still answering the last question: wait for it to finish.", None
        try:
            problem = self._check(question)
        except Exception as exc:
            problem = md_text(error_text(exc))
        if problem:
            kept = " Your text is still in the box." if question.strip() else ""
            return question, conv, problem + kept, None
        self.conversations.add_question(conv, question)
        conv["selected"] = None
        return "", conv, "", question.strip()

    def answer(self, pending: str | None, conv: dict, mode: str = "Ask", backend: str | None = None, k=None):
        """Answer the question ``accept`` took, streaming: yields (chat messages, panel, conversation, notice)."""
        turns = conv["turns"]
        if not pending or not turns:
            yield render.chat_messages(turns), render.panel_html(turns), conv, gr.skip()
            return
        turn, t = turns[-1], len(turns)
        text = ""
        try:
            for event in self.conversations.stream(conv, backend=backend or self.default_backend(),
                                                   mode=MODES.get(mode), k=k):
                if event.kind == "sources":
                    yield render.chat_messages(turns), render.panel_html(turns, title=conv["title"]), conv, gr.skip()
                elif event.kind == "delta":
                    text += event.text
                    messages = render.chat_messages(turns)
                    pdfs = {int(s["n"]): s["pdf"] for s in turn["sources"] if s.get("pdf")}
                    messages[-1]["content"] = render.linkify(text, turn=t, pdfs=pdfs)
                    yield messages, gr.skip(), gr.skip(), gr.skip()
                elif event.kind == "done":
                    notice = self._save(conv)
                    yield render.chat_messages(turns), render.panel_html(turns, title=conv["title"]), conv, notice
        except Exception as exc:  # the page boundary: every failure becomes a message
            turn["error"] = cut_off(error_text(exc), text)
            yield render.chat_messages(turns), render.panel_html(turns, title=conv["title"]), conv, gr.skip()

    def _save(self, conv: dict) -> str:
        """Save the answer just given; returns the notice to show ("" when it was saved)."""
        try:
            self.conversations.save(conv)
        except HistoryError as exc:
            return f"⚠️ This answer is shown but not saved: {md_text(exc)}"
        return ""

    def undo(self, conv: dict):
        """Take the last question back: (chat messages, panel, conversation, the question back in the box)."""
        if not conv["turns"]:
            return [], render.panel_html([]), conv, ""
        turn = self.conversations.undo(conv)
        conv["selected"] = None
        return render.chat_messages(conv["turns"]), render.panel_html(conv["turns"], title=conv["title"]), conv, turn["question"]

    def retry(self, conv: dict):
        """Ask the last question again: (chat messages, panel, conversation, question to answer)."""
        if not conv["turns"]:
            return [], render.panel_html([]), conv, None
        _, _, conv, question = self.undo(conv)
        self.conversations.add_question(conv, question)
        return render.chat_messages(conv["turns"]), render.panel_html(conv["turns"], title=conv["title"]), conv, question

    def select(self, conv: dict, index: int) -> tuple[str, dict, int | None]:
        """Show the sources of the answer at chat message ``index``: (panel, conversation, its turn number)."""
        t = int(index) // 2
        if not 0 <= t < len(conv["turns"]):
            return render.panel_html(conv["turns"], title=conv["title"]), conv, None
        conv["selected"] = t
        return render.panel_html(conv["turns"], t, title=conv["title"]), conv, t + 1

    # -- feedback ------------------------------------------------------------------

    def feedback(self, conv: dict, t: int | None, rating: str | None = None, reason: str | None = None,
                 citations: list | None = None, comment: str = "") -> str:
        """Save feedback on answer ``t`` (1-based) of the conversation; returns the message to show."""
        turns = conv["turns"]
        if not t or not 1 <= int(t) <= len(turns):
            return "⚠️ Choose an answer to give feedback on."
        turn = turns[int(t) - 1]
        if turn.get("id") is None:
            return "⚠️ That answer was not saved (it failed, or the history could not be written), so it cannot be rated."
        try:
            self.history.add_feedback(turn["id"], RATINGS.get(rating or "", 0), reason or "", comment or "",
                                      [int(n) for n in citations or []])
        except HistoryError as exc:
            return f"⚠️ {md_text(exc)}"
        return (f"✓ Feedback on answer {t} saved. `assistant eval from-feedback` turns rated answers into "
                "questions for `assistant eval answers`.")

    def like(self, conv: dict, index: int, liked) -> str:
        """The Chatbot's own buttons: a thumb (liked True / False) or a flag reason on the answer at ``index``."""
        if liked is None or liked == "":
            return ""
        if isinstance(liked, str):
            rating, reason = (1, "") if liked == "Like" else (-1, FLAGS.get(liked, "" if liked == "Dislike" else "other"))
        else:
            rating, reason = (1 if liked else -1), ""
        t = int(index) // 2 + 1
        turns = conv["turns"]
        if not 1 <= t <= len(turns) or turns[t - 1].get("id") is None:
            return "⚠️ That answer was not saved, so it cannot be rated."
        try:
            self.history.add_feedback(turns[t - 1]["id"], rating, reason)
        except HistoryError as exc:
            return f"⚠️ {md_text(exc)}"
        word = {1: "👍", -1: "👎"}[rating] + (f" ({REASONS[reason]})" if reason else "")
        return f"✓ {word} saved for answer {t}. Add a comment or mark a wrong citation under **Feedback**."

    def feedback_choices(self, conv: dict) -> list[tuple[str, int]]:
        return [(f"Answer {i}: {render.export.title_line(t['question'], 60)}", i)
                for i, t in enumerate(conv["turns"], 1) if t.get("id") is not None]

    @staticmethod
    def citation_choices(conv: dict, t: int | None) -> list[int]:
        if not t or not 1 <= int(t) <= len(conv["turns"]):
            return []
        a = conv["turns"][int(t) - 1].get("answer") or {}
        return sorted({int(c["n"]) for c in a.get("citations") or []})

    # -- saved conversations -------------------------------------------------------

    def history_status(self) -> str:
        """'' when the history works, else the message saying why it does not (the page answers all the same)."""
        try:
            self.history.check()
        except HistoryError as exc:
            return f"⚠️ Conversations are not being saved: {md_text(exc)}"
        return ""

    def conversation_choices(self) -> list[tuple[str, int]]:
        try:
            found = self.history.conversations(limit=CONVERSATIONS_SHOWN)
        except HistoryError:
            return []
        return [(f"{c.title} · {c.updated[:10]} · {c.answers} answer{'s' if c.answers != 1 else ''}", c.id) for c in found]

    def open_conversation(self, conversation_id) -> tuple[dict, str]:
        """A saved conversation as the page's state, intact (answers, their sources and numbers); and a notice."""
        if conversation_id in (None, ""):
            return new_conversation(), ""
        try:
            return dict(self.conversations.open(int(conversation_id)), selected=None), ""
        except (HistoryError, ValueError) as exc:
            return new_conversation(), f"⚠️ {md_text(exc)}"

    # -- library -------------------------------------------------------------------

    def library_count(self) -> str:
        try:
            n = self.app.library.count_papers()
        except Exception as exc:
            return md_text(error_text(exc))
        return f"**{n} papers** in library {md_code(self.app.settings.library)}"

    def overview(self) -> str:
        """The empty chat's text: papers, topics (frequent title words) and the files they came from."""
        from assistant.core.text import STOPWORDS, words

        try:
            count = self.app.library.count_papers()
            if count == 0 or count > OVERVIEW_LIMIT:
                return render.overview_markdown(count, self.app.settings.library, [], [])
            papers = list(self.app.library.iter_papers())
        except Exception as exc:
            return md_text(error_text(exc))
        titles = [[w for w in words(p.title) if not w.isdigit()] for p in papers]
        df = Counter(w for t in titles for w in set(t))
        # Words in many titles ("language", "models", "large") or vague ones say little about what the library holds;
        # a phrase may carry one of them ("in-context learning").
        generic = {w for w, n in df.items() if n > 0.1 * len(papers)} | VAGUE_WORDS
        pairs = Counter(p for t in titles for p in {f"{a} {b}" for a, b in zip(t, t[1:])
                        if a not in STOPWORDS | VAGUE_WORDS and b not in STOPWORDS | VAGUE_WORDS
                        and not (a in generic and b in generic) and len(a) > 1 and len(b) > 1})
        singles = Counter({w: n for w, n in df.items() if w not in STOPWORDS and w not in generic and len(w) > 3})
        topics: list[str] = []
        # Phrases first (they name a topic better than a word), then single words by frequency.
        for phrase, n in sorted(pairs.items(), key=lambda x: (-x[1], x[0]))[:5] + singles.most_common():
            if n < 2 or len(topics) >= 8:
                break
            if not any(phrase in t or t in phrase for t in topics):
                topics.append(phrase)
        files = Counter(Path(p.source.split(":")[0]).name for p in papers if p.source).most_common()
        return render.overview_markdown(count, self.app.settings.library, topics, files)

    def find_papers(self, query: str) -> str:
        """Search results for ``query`` (best match first), or every paper by title when it is empty."""
        try:
            query = (query or "").strip()
            if not query:
                papers = sorted(self.app.library.iter_papers(), key=lambda p: p.title.lower())
                rows = [dict(p.to_dict(), relevance=None) for p in papers[:BROWSE_LIMIT]]
                heading = f"All {len(papers)} papers" if len(papers) <= BROWSE_LIMIT else (
                    f"First {BROWSE_LIMIT} of {len(papers)} papers by title: search to narrow")
                return render.paper_list_html(rows, heading)
            hits = self.app.search(query, k=20)
            rows = [dict(h.to_dict(), relevance=h.dense) for h in hits]
            return render.paper_list_html(rows, f"Best matches for “{query}”, best first ({render.RELEVANCE_HELP})")
        except Exception as exc:
            return f"<p class='warn'>{html.escape(error_text(exc))}</p>"

    def gaps(self) -> str:
        """The Library tab's panel of questions the library could not (fully) answer, by topic."""
        try:
            rows = self.history.gaps()
            return render.gaps_html(group_gaps(rows, self.app.embedder.embed))
        except Exception as exc:
            return f"<p class='warn'>{html.escape(error_text(exc))}</p>"

    def upload(self, path, progress=gr.Progress()):
        """Ingest an uploaded file, reporting progress; returns (report Markdown, count, paper list)."""
        from ingest.pipeline import INPUT_SUFFIXES

        if not path:
            return "Choose a file to add.", self.library_count(), gr.skip()
        path = Path(path)
        if path.suffix.lower() not in INPUT_SUFFIXES:
            allowed = ", ".join(sorted(INPUT_SUFFIXES))
            return f"⚠️ {md_code(path.name)} is not a paper file: upload one of {allowed}.", self.library_count(), gr.skip()
        try:
            progress(0, desc="Reading")
            report = self.app.ingest(
                [path], on_progress=lambda done, total: progress((done, total), desc="Embedding", unit="chunks"),
                on_wait=lambda note: progress(0, desc=note[:1].upper() + note[1:]))
        except Exception as exc:
            return md_text(error_text(exc)), self.library_count(), gr.skip()
        return render.ingest_summary(report, path.name), self.library_count(), self.find_papers("")
