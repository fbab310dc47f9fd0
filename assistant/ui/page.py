"""The Gradio chat page: the layout and its events, over ``ChatPage`` (assistant.ui.session).

Chat tab: the question box and Send sit right under the conversation (above
the fold on a desktop and a phone), each answer's sources in the panel beside
it (below it on a phone), past conversations in the sidebar, feedback under
the chat. Library tab: count, search, upload, and what the library could not
answer. A reload reopens the conversation the browser last had (its id is kept
in the browser's storage); any saved conversation can be reopened from the
sidebar after a restart.

Endpoints for scripts (gradio_client): ``/chat`` (message, history → final
answer Markdown and panel HTML) and ``/ask`` (question → the final Answer as a dict).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import gradio as gr
from starlette.middleware import Middleware

from assistant.app import App
from assistant.core.errors import UserError
from assistant.library.history import REASONS
from assistant.ui import render
from assistant.ui.assets import CSS, THEME, page_script
from assistant.ui.guard import LOGIN_MESSAGE, LoginThrottle, PageGuard, public_host_warning
from assistant.ui.session import (  # noqa: F401  (ChatPage is imported from here by callers)
    FLAGS,
    MODES,
    RATINGS,
    ChatPage,
    new_conversation,
)
from ingest.pipeline import INPUT_SUFFIXES

QUESTION_LABEL = "Ask a question about the library"  # the box's accessible name (its label is not shown)
EXAMPLES = [
    "compare NPO and gradient ascent",
    "What is negative preference optimization?",
    "Summarize work on machine unlearning for LLMs",
    "Which papers evaluate on TOFU?",
]


@dataclass
class PageState:
    """What the page keeps per browser session: the conversation, the question waiting to be answered, and the
    conversation id the browser remembers across reloads."""

    conv: gr.State
    pending: gr.State
    remembered: gr.BrowserState


@dataclass
class Sidebar:
    new_chat: gr.Button
    history_status: gr.Markdown
    conversations: gr.Radio


@dataclass
class ChatColumn:
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    notice: gr.Markdown
    mode: gr.Radio
    backend: gr.Dropdown
    k: gr.Slider


@dataclass
class FeedbackForm:
    box: gr.Accordion
    answer: gr.Dropdown
    rating: gr.Radio
    reason: gr.Dropdown
    cites: gr.CheckboxGroup
    comment: gr.Textbox
    save: gr.Button
    status: gr.Markdown


@dataclass
class LibraryTab:
    tab: gr.Tab
    count: gr.Markdown
    gaps: gr.HTML
    gaps_refresh: gr.Button
    query: gr.Textbox
    results: gr.HTML
    upload: gr.File
    report: gr.Markdown


@dataclass
class Layout:
    """Every component an event reads or writes, by panel."""

    state: PageState
    sidebar: Sidebar
    chat: ChatColumn
    feedback: FeedbackForm
    panel: gr.HTML
    library: LibraryTab


def build_ui(app: App) -> gr.Blocks:
    """The page: chat with each answer's sources beside it, past conversations, feedback, and a library tab."""
    page = ChatPage(app)
    s = app.settings
    # The browser remembers which conversation it had open; the key is stable across restarts of this home.
    secret = hashlib.sha256(str(s.home.resolve()).encode()).hexdigest()
    with gr.Blocks(title="Research assistant", analytics_enabled=False) as demo:
        state = PageState(gr.State(new_conversation()), gr.State(None),
                          gr.BrowserState(None, storage_key="research-assistant-conversation", secret=secret))
        gr.Markdown("## Research assistant\nCited answers from the papers in your library.", elem_classes="app-title")
        sidebar = build_sidebar()
        with gr.Tab("Chat", elem_id="chat-tab"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=320):
                    chat = build_chat_column(page)
                    feedback = build_feedback_form()
                with gr.Column(scale=2, min_width=300):
                    panel = build_sources_panel()
        library = build_library_tab(page)
        ui = Layout(state, sidebar, chat, feedback, panel, library)
        wire_questions(page, ui)
        wire_conversation_controls(page, ui)
        wire_feedback(page, ui)
        wire_saved_conversations(page, ui)
        wire_library(page, ui)
        wire_page_load(page, ui, demo)
        gr.api(page.chat_api, api_name="chat")
        gr.api(page.ask, api_name="ask")
    # One queue for every event; questions beyond the limit wait their turn.
    demo.queue(default_concurrency_limit=s.ui_concurrency)
    return demo


# -- the panels ------------------------------------------------------------------------


def build_sidebar() -> Sidebar:
    """Past conversations, and a new chat."""
    with gr.Sidebar(label="Conversations", open=True, elem_id="sidebar"):
        new_chat = gr.Button("New chat", elem_id="new-chat", variant="secondary")
        history_status = gr.Markdown(elem_id="history-status")
        conversations = gr.Radio([], label="Past conversations (saved in your home folder)",
                                 elem_id="conversations", interactive=True)
    return Sidebar(new_chat, history_status, conversations)


def build_chat_column(page: ChatPage) -> ChatColumn:
    """The conversation, the question box right under it with its counter, and how to answer (mode, backend, k)."""
    s = page.app.settings
    chatbot = gr.Chatbot(
        elem_id="chatbot", label="Answers", height="56vh", min_height=260, buttons=[],
        placeholder=render.overview_markdown(0, s.library, [], []),
        examples=[{"text": q} for q in EXAMPLES],
        feedback_options=["Like", "Dislike", *FLAGS],
    )
    with gr.Row(equal_height=True):
        question = gr.Textbox(label=QUESTION_LABEL, placeholder="Ask about the papers…", elem_id="question",
                              show_label=False, lines=1, max_lines=6, scale=8, autofocus=True, container=False)
        send = gr.Button("Send", variant="primary", elem_id="send", scale=1, min_width=80)
    with gr.Row():
        gr.HTML(render.question_counter_html(s.max_question_chars), elem_id="q-counter-box", padding=False)
    notice = gr.Markdown(elem_id="notice")
    with gr.Row():
        mode = gr.Radio(list(MODES), value="Ask", label="Mode", scale=2,
                        info="Compare puts two methods side by side; Summarize groups a topic by theme.")
        choices = page.backend_choices()
        backend = gr.Dropdown(choices, value=page.default_backend(), label="Backend · model", scale=2,
                              interactive=len(choices) > 1, elem_id="backend",
                              info="Which writer answers: extractive quotes the sources, no LLM needed.")
        k = gr.Slider(1, 20, value=min(s.top_k, 20), step=1, label="Papers to retrieve", scale=1)
    backend_help = page.backend_help()
    gr.Markdown(backend_help, elem_id="backend-help", visible=bool(backend_help))
    return ChatColumn(chatbot, question, send, notice, mode, backend, k)


def build_feedback_form() -> FeedbackForm:
    """Feedback on one answer: rating, reason, wrong citations and a comment (shown once an answer is saved)."""
    with gr.Accordion("Feedback on an answer", open=False, visible=False, elem_id="feedback") as box:
        answer = gr.Dropdown([], label="Answer", elem_id="fb-answer")
        with gr.Row():
            rating = gr.Radio(list(RATINGS), label="Rating", elem_id="fb-rating")
            reason = gr.Dropdown([(text, key) for key, text in REASONS.items()], label="What was wrong",
                                 elem_id="fb-reason")
        cites = gr.CheckboxGroup([], label="Wrong citation (the paper does not say this)", elem_id="fb-cites")
        comment = gr.Textbox(label="Comment", lines=2, elem_id="fb-comment")
        save = gr.Button("Save feedback", elem_id="fb-save")
        status = gr.Markdown(elem_id="fb-status")
    return FeedbackForm(box, answer, rating, reason, cites, comment, save, status)


def build_sources_panel() -> gr.HTML:
    """Each answer's sources, beside the chat (below it on a phone)."""
    gr.Markdown("#### Sources")
    return gr.HTML(render.panel_html([]), elem_id="sources-panel")


def build_library_tab(page: ChatPage) -> LibraryTab:
    """The library: its count, what it could not answer, search, and upload."""
    with gr.Tab("Library", elem_id="library-tab") as tab:
        count = gr.Markdown(page.library_count(), elem_id="paper-count")
        with gr.Accordion("What the library does not know", open=True, elem_id="gaps-box"):
            gaps = gr.HTML(elem_id="gaps")
            gaps_refresh = gr.Button("Refresh", size="sm", elem_id="gaps-refresh")
        with gr.Row():
            with gr.Column(scale=3):
                query = gr.Textbox(label="Search papers", placeholder="e.g. unlearning benchmarks (empty lists all)",
                                   elem_id="paper-search")
                results = gr.HTML(elem_id="paper-results")
            with gr.Column(scale=2):
                upload = gr.File(label="Add papers (.txt, .json, .jsonl, .csv, .bib, or a PDF)",
                                 file_types=sorted(INPUT_SUFFIXES), type="filepath", elem_id="upload")
                report = gr.Markdown(elem_id="upload-report")
    return LibraryTab(tab, count, gaps, gaps_refresh, query, results, upload, report)


# -- the events ------------------------------------------------------------------------


def bound(fn, page: ChatPage):
    """``fn`` with the page as its first argument, under its own name (Gradio names an event by its function and
    counts the arguments of the function it is given)."""
    def handler(*args):
        return fn(page, *args)

    handler.__name__ = handler.__qualname__ = fn.__name__
    return handler


def side_outputs(ui: Layout) -> list:
    """What follows the conversation: the sidebar's list, the remembered id and the feedback controls."""
    return [ui.sidebar.conversations, ui.state.remembered, ui.feedback.box, ui.feedback.answer, ui.feedback.cites]


def side_updates(page: ChatPage, conv_value: dict) -> tuple:
    """The values of ``side_outputs`` after the conversation changed."""
    choices = page.feedback_choices(conv_value)
    latest = choices[-1][1] if choices else None
    return (gr.Radio(choices=page.conversation_choices(), value=conv_value["id"]), conv_value["id"],
            gr.Accordion(visible=bool(choices)), gr.Dropdown(choices=choices, value=latest),
            gr.CheckboxGroup(choices=page.citation_choices(conv_value, latest), value=[]))


def then_answer(page: ChatPage, ui: Layout, event) -> None:
    """After ``event`` took a question: answer it, streaming, then let the sidebar and the feedback form follow."""
    st, chat = ui.state, ui.chat
    event.then(page.answer, [st.pending, st.conv, chat.mode, chat.backend, chat.k],
               [chat.chatbot, ui.panel, st.conv, chat.notice], api_visibility="private").then(
        bound(side_updates, page), st.conv, side_outputs(ui), api_visibility="private")


def wire_questions(page: ChatPage, ui: Layout) -> None:
    """A question typed, sent or picked from the examples: taken from the box, shown at once, then answered."""
    st, chat = ui.state, ui.chat
    taken = [chat.question, st.conv, chat.notice, st.pending]

    def shown(event):
        return event.then(lambda c: render.chat_messages(c["turns"]), st.conv, chat.chatbot, queue=False,
                          api_visibility="private")

    for trigger in (chat.question.submit, chat.send.click):
        then_answer(page, ui, shown(trigger(page.accept, [chat.question, st.conv], taken, queue=False,
                                            api_visibility="private")))

    def example(conv_value, evt: gr.SelectData):
        return page.accept(message_value(evt.value), conv_value)

    then_answer(page, ui, shown(chat.chatbot.example_select(example, st.conv, taken, api_visibility="private")))


def wire_conversation_controls(page: ChatPage, ui: Layout) -> None:
    """New chat, undo, retry, choosing an answer to show its sources, and the thumbs on an answer."""
    st, chat = ui.state, ui.chat
    side = bound(side_updates, page)

    def start_over():
        return [], render.panel_html([]), new_conversation(), "", None

    for trigger in (ui.sidebar.new_chat.click, chat.chatbot.clear):
        trigger(start_over, None, [chat.chatbot, ui.panel, st.conv, chat.notice, st.pending], queue=False,
                api_visibility="private").then(side, st.conv, side_outputs(ui), api_visibility="private")
    chat.chatbot.undo(page.undo, st.conv, [chat.chatbot, ui.panel, st.conv, chat.question],
                      api_visibility="private").then(side, st.conv, side_outputs(ui), api_visibility="private")
    then_answer(page, ui, chat.chatbot.retry(page.retry, st.conv, [chat.chatbot, ui.panel, st.conv, st.pending],
                                             api_visibility="private"))

    def select(conv_value, evt: gr.SelectData):
        panel_html, conv_value, t = page.select(conv_value, evt.index)
        ids = [i for _, i in page.feedback_choices(conv_value)]
        return panel_html, conv_value, t if t in ids else gr.skip()

    chat.chatbot.select(select, st.conv, [ui.panel, st.conv, ui.feedback.answer], api_visibility="private")

    def like(conv_value, evt: gr.LikeData):
        return page.like(conv_value, evt.index, evt.liked)

    chat.chatbot.like(like, st.conv, chat.notice, api_visibility="private")


def wire_feedback(page: ChatPage, ui: Layout) -> None:
    """The feedback form: the citations of the chosen answer, and saving (the form clears once saved)."""
    fb, conv = ui.feedback, ui.state.conv
    fb.answer.input(lambda c, t: gr.CheckboxGroup(choices=page.citation_choices(c, t), value=[]),
                    [conv, fb.answer], fb.cites, queue=False, api_visibility="private")

    def save_feedback(conv_value, t, rating, reason, cites, comment):
        message = page.feedback(conv_value, t, rating, reason, cites, comment)
        if message.startswith("⚠️"):
            return message, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return message, None, None, [], ""

    fb.save.click(save_feedback, [conv, fb.answer, fb.rating, fb.reason, fb.cites, fb.comment],
                  [fb.status, fb.rating, fb.reason, fb.cites, fb.comment], api_visibility="private")


def reopened(page: ChatPage, conversation_id) -> tuple:
    """A saved conversation on the page: (chat messages, panel, conversation, notice, no pending question)."""
    conv_value, message = page.open_conversation(conversation_id)
    turns = conv_value["turns"]
    return render.chat_messages(turns), render.panel_html(turns, title=conv_value["title"]), conv_value, message, None


def wire_saved_conversations(page: ChatPage, ui: Layout) -> None:
    """A past conversation chosen in the sidebar replaces the one on the page."""
    st, chat = ui.state, ui.chat
    ui.sidebar.conversations.input(bound(reopened, page), ui.sidebar.conversations,
                                   [chat.chatbot, ui.panel, st.conv, chat.notice, st.pending],
                                   api_visibility="private").then(
        bound(side_updates, page), st.conv, side_outputs(ui), api_visibility="private")


def wire_library(page: ChatPage, ui: Layout) -> None:
    """Search (also the /papers endpoint), upload, and the gaps panel (refreshed when the tab opens)."""
    lib = ui.library
    lib.query.submit(page.find_papers, lib.query, lib.results, api_name="papers", show_progress="minimal")
    lib.upload.upload(page.upload, lib.upload, [lib.report, lib.count, lib.results], api_visibility="private")
    lib.gaps_refresh.click(page.gaps, None, lib.gaps, api_visibility="private")
    lib.tab.select(page.gaps, None, lib.gaps, api_visibility="private")


def wire_page_load(page: ChatPage, ui: Layout, demo: gr.Blocks) -> None:
    """On load: reopen the conversation this browser had, then fill the sidebar and the library tab."""
    st, chat, lib = ui.state, ui.chat, ui.library

    def on_load(remembered_id, conv_value):
        """Reopen the conversation this browser had, unless a question was already asked (never clobber it)."""
        placeholder = gr.Chatbot(placeholder=page.overview())
        if remembered_id in (None, "") or conv_value["turns"]:
            return placeholder, gr.skip(), gr.skip(), gr.skip(), gr.skip(), page.history_status()
        chat_, panel_, conv_, message, _ = reopened(page, remembered_id)
        return gr.Chatbot(value=chat_, placeholder=page.overview()), panel_, conv_, message, None, page.history_status()

    demo.load(on_load, [st.remembered, st.conv],
              [chat.chatbot, ui.panel, st.conv, chat.notice, st.pending, ui.sidebar.history_status],
              api_visibility="private").then(
        bound(side_updates, page), st.conv, side_outputs(ui), api_visibility="private").then(
        lambda: (page.library_count(), page.find_papers(""), page.gaps()), None, [lib.count, lib.results, lib.gaps],
        api_visibility="private")


def message_value(value) -> str:
    """The text of an example message (Gradio gives {"text": ...} or a string)."""
    return render.message_text(value.get("text") if isinstance(value, dict) else value)


def parse_auth(value: str) -> tuple[str, str] | None:
    """'user:password' → (user, password); empty → None (no login)."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("ASSISTANT_UI_AUTH must look like 'user:password'")
    return user, password


def launch(app: App, host: str | None = None, port: int | None = None, auth: str | None = None,
           throttle: LoginThrottle | None = None, **kwargs) -> gr.Blocks:
    """Serve the page (127.0.0.1 unless told otherwise) behind ``PageGuard`` (its Content-Security-Policy and the
    throttle on wrong logins); warns on stderr when another host serves it without a login. Blocks unless
    prevent_thread_lock=True is passed."""
    s = app.settings
    host, port = host or s.ui_host, port or s.ui_port
    login = parse_auth(auth if auth is not None else s.ui_auth.get_secret_value())
    warning = public_host_warning(host, login is not None)
    if warning:
        print(warning, file=sys.stderr)
    demo = build_ui(app)
    try:
        # The PDFs of full-text papers are served from their folder only (cited pages open there), never fetched.
        allowed = [*kwargs.pop("allowed_paths", []), str(app.pdf_dir)]
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(PageGuard, throttle=throttle)]
        demo.launch(server_name=host, server_port=port, auth=login, auth_message=LOGIN_MESSAGE if login else None,
                    theme=THEME, css=CSS, js=page_script(s.max_question_chars), footer_links=["api"],
                    allowed_paths=allowed, app_kwargs=app_kwargs, **kwargs)
    except OSError as exc:  # port taken or address not ours: a user error, not a traceback
        raise UserError(f"cannot serve on {host}:{port}: {exc}") from None
    return demo
