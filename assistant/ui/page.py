"""The Gradio chat page: a thin shell over App — streamed cited answers, sources panel, library panel.

Every handler calls App / AnswerEngine functions and renders what they return
(rendering lives in ``assistant.ui.render``); no retrieval or answer logic
lives here. Known failures (backend, store, bad input) become a message in the
chat or panel, never a traceback, and the page keeps working.

Endpoints for scripts (gradio_client): ``/chat`` (the ChatInterface: message,
history → text) and ``/ask`` (question → the final Answer as a dict).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import gradio as gr

from assistant.app import App
from assistant.core.errors import UserError
from assistant.ui.render import (
    CSS,
    answer_markdown,
    history_for_engine,
    ingest_summary,
    linkify,
    message_text,
    paper_list_html,
    sources_html,
)
from ingest.pipeline import INPUT_SUFFIXES

log = logging.getLogger(__name__)

MODES = {"Ask": None, "Compare": "compare", "Summarize": "summarize"}
MAX_QUESTION = 2000
BROWSE_LIMIT = 300  # titles listed without a search; a big library is browsed by searching
EXAMPLES = [
    "compare NPO and gradient ascent",
    "What is negative preference optimization?",
    "Summarize work on machine unlearning for LLMs",
    "Which papers evaluate on TOFU?",
]
# Failures a user can act on; their messages are written for users.
KNOWN_ERRORS = (UserError,)
# System fonts only: the default theme pulls Google Fonts, which a machine offline (or private) cannot load.
THEME = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def _error_text(exc: Exception) -> str:
    if isinstance(exc, KNOWN_ERRORS):
        return f"⚠️ {exc}"
    log.exception("unexpected error in the chat page")
    return f"⚠️ Something went wrong ({type(exc).__name__}: {exc}). The page still works; try again."


class ChatPage:
    """The handlers behind the page, holding the App and one App per other configured backend."""

    def __init__(self, app: App):
        self.app = app
        self._apps: dict[str, App] = {app.settings.backend: app}
        self._lock = threading.Lock()

    # -- backends ------------------------------------------------------------------

    def backend_choices(self) -> list[tuple[str, str]]:
        """(label, name) for each registered backend this configuration can use (the configured one always)."""
        from assistant.core.backends import backends, missing_settings

        s = self.app.settings
        out = []
        for name, spec in backends().items():
            if name != s.backend and missing_settings(spec, s):
                continue
            detail = "no LLM: quotes the sources" if not spec.uses_llm else (
                s.llm_class if name == "llama-index" else s.llm_model + (f" @ {s.llm_base_url}" if s.llm_base_url and name == "openai-compatible" else ""))
            out.append((f"{name} · {detail}", name))
        return out

    def engine(self, backend: str | None):
        name = backend or self.app.settings.backend
        with self._lock:
            if name not in self._apps:
                # Same store client and embedding model; only the backend differs.
                settings = self.app.settings.with_overrides(backend=name)
                self._apps[name] = App(settings, embedder=self.app.embedder, client=self.app.client)
            return self._apps[name].engine

    # -- chat ----------------------------------------------------------------------

    def _check(self, question: str) -> str | None:
        """A message for a question that cannot be asked, or None."""
        if not question.strip():
            return "⚠️ Please type a question."
        if len(question) > MAX_QUESTION:
            return f"⚠️ That question is {len(question)} characters long; please keep it under {MAX_QUESTION}."
        if self.app.library.count_papers() == 0:
            return "⚠️ The library is empty: upload papers in the Library tab first."
        return None

    def respond(self, message, history, mode="Ask", backend=None, k=None):
        """ChatInterface handler: yields (growing answer Markdown, sources panel HTML)."""
        question = message_text(message)
        sources: list = []
        try:
            problem = self._check(question)
            if problem:
                yield problem, sources_html([])
                return
            events = self.engine(backend).stream(
                question, mode=MODES.get(mode), k=int(k) if k else None, history=history_for_engine(history)
            )
            text = ""
            for event in events:
                if event.kind == "sources":
                    sources = event.sources
                    yield "*Reading the papers…*", sources_html(sources, pending=True)
                elif event.kind == "delta":
                    text += event.text
                    yield linkify(text), gr.skip()  # the panel is unchanged until the answer is done
                elif event.kind == "done":
                    yield answer_markdown(event.answer), sources_html(sources, event.answer)
        except Exception as exc:  # the page boundary: every failure becomes a message
            yield _error_text(exc), sources_html(sources)

    def ask(self, question: str, mode: str = "Ask", backend: str = "", k: int = 0, history: list[dict] | None = None) -> dict:
        """Answer one question and return the final Answer as a dict (text, citations, sources, timings)."""
        try:
            problem = self._check(question or "")
            if problem:
                raise UserError(problem.removeprefix("⚠️ "))
            answer = self.engine(backend or None).ask(
                question, mode=MODES.get(mode, mode), k=k or None, history=history_for_engine(history or [])
            )
        except Exception as exc:
            raise gr.Error(_error_text(exc).removeprefix("⚠️ ")) from None
        return answer.to_dict()

    # -- library -------------------------------------------------------------------

    def library_count(self) -> str:
        try:
            n = self.app.library.count_papers()
        except Exception as exc:
            return _error_text(exc)
        return f"**{n} papers** in library `{self.app.settings.library}`"

    def find_papers(self, query: str) -> str:
        """Search results for ``query``, or every paper by title when it is empty."""
        try:
            query = (query or "").strip()
            if not query:
                papers = sorted(self.app.library.iter_papers(), key=lambda p: p.title.lower())
                rows = [(p.paper_id, p.title, None, p.abstract) for p in papers[:BROWSE_LIMIT]]
                heading = f"All {len(papers)} papers" if len(papers) <= BROWSE_LIMIT else (
                    f"First {BROWSE_LIMIT} of {len(papers)} papers by title: search to narrow")
                return paper_list_html(rows, heading)
            hits = self.app.search(query, k=20)
            rows = [(h.paper_id, h.title, h.score, h.abstract) for h in hits]
            return paper_list_html(rows, f"Best matches for “{query}”")
        except Exception as exc:
            return f"<p class='warn'>{_error_text(exc)}</p>"

    def upload(self, path, progress=gr.Progress()):
        """Ingest an uploaded file, reporting progress; returns (report Markdown, count, paper list)."""
        if not path:
            return "Choose a file to add.", self.library_count(), gr.skip()
        path = Path(path)
        if path.suffix.lower() not in INPUT_SUFFIXES:
            allowed = ", ".join(sorted(INPUT_SUFFIXES))
            return f"⚠️ `{path.name}` is not a paper file: upload one of {allowed}.", self.library_count(), gr.skip()
        try:
            progress(0, desc="Reading")
            report = self.app.ingest(
                [path], on_progress=lambda done, total: progress((done, total), desc="Embedding", unit="chunks")
            )
        except Exception as exc:
            return _error_text(exc), self.library_count(), gr.skip()
        return ingest_summary(report, path.name), self.library_count(), self.find_papers("")


def build_ui(app: App) -> gr.Blocks:
    """The page: chat with sources beside it, and a library tab (count, search, upload)."""
    page = ChatPage(app)
    s = app.settings
    with gr.Blocks(title="Research assistant", analytics_enabled=False) as demo:
        gr.Markdown("## Research assistant\nCited answers from the papers in your library.")
        with gr.Tab("Chat"):
            with gr.Row():
                mode = gr.Radio(list(MODES), value="Ask", label="Mode", scale=3)
                choices = page.backend_choices()
                backend = gr.Dropdown(choices, value=s.backend, label="Backend · model", scale=3,
                                      interactive=len(choices) > 1)
                k = gr.Slider(1, 20, value=min(s.top_k, 20), step=1, label="Papers to retrieve", scale=2)
                new_chat = gr.Button("New chat", scale=1, elem_id="new-chat")
            with gr.Row():
                sources = gr.HTML(sources_html([]), label="sources", elem_id="sources-panel", render=False)
                with gr.Column(scale=3):
                    chat = gr.ChatInterface(
                        page.respond,
                        chatbot=gr.Chatbot(height=600, elem_id="chatbot", label="Answers"),
                        textbox=gr.Textbox(placeholder="Ask about the papers…", elem_id="question", scale=7),
                        additional_inputs=[mode, backend, k],
                        additional_outputs=[sources],
                        examples=[[q] for q in EXAMPLES],  # lists: the controls keep their current values
                        api_name="chat",
                        fill_height=False,
                        analytics_enabled=False,
                    )
                with gr.Column(scale=2):
                    gr.Markdown("#### Sources")
                    sources.render()
            new_chat.click(
                lambda: ([], [], sources_html([])),
                outputs=[chat.chatbot, chat.chatbot_state, sources],
                queue=False,
                api_visibility="private",
            )
        with gr.Tab("Library", elem_id="library-tab"):
            count = gr.Markdown(page.library_count(), elem_id="paper-count")
            with gr.Row():
                with gr.Column(scale=3):
                    query = gr.Textbox(label="Search papers", placeholder="e.g. unlearning benchmarks (empty lists all)",
                                       elem_id="paper-search")
                    results = gr.HTML(label="papers", elem_id="paper-results")
                with gr.Column(scale=2):
                    upload = gr.File(label="Add papers (.txt, .json, .jsonl, .csv, .bib)",
                                     file_types=sorted(INPUT_SUFFIXES), type="filepath", elem_id="upload")
                    report = gr.Markdown(elem_id="upload-report")
            query.submit(page.find_papers, query, results, api_name="papers", show_progress="minimal")
            upload.upload(page.upload, upload, [report, count, results], api_visibility="private")
        demo.load(lambda: (page.library_count(), page.find_papers("")), None, [count, results], api_visibility="private")
        gr.api(page.ask, api_name="ask")
    # One queue for every event; questions beyond the limit wait their turn.
    demo.queue(default_concurrency_limit=s.ui_concurrency)
    return demo


def parse_auth(value: str) -> tuple[str, str] | None:
    """'user:password' → (user, password); empty → None (no login)."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("ASSISTANT_UI_AUTH must look like 'user:password'")
    return user, password


def launch(app: App, host: str | None = None, port: int | None = None, auth: str | None = None, **kwargs) -> gr.Blocks:
    """Serve the page (127.0.0.1 unless told otherwise); blocks unless prevent_thread_lock=True is passed."""
    s = app.settings
    host, port = host or s.ui_host, port or s.ui_port
    login = parse_auth(auth if auth is not None else s.ui_auth.get_secret_value())
    demo = build_ui(app)
    try:
        demo.launch(server_name=host, server_port=port, auth=login, theme=THEME, css=CSS, footer_links=["api"], **kwargs)
    except OSError as exc:  # port taken or address not ours: a user error, not a traceback
        raise UserError(f"cannot serve on {host}:{port}: {exc}") from None
    return demo
