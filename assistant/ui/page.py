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

import gradio as gr
from starlette.middleware import Middleware

from assistant.app import App
from assistant.core.errors import UserError
from assistant.library.history import REASONS
from assistant.ui import render
from assistant.ui.assets import CSS, JS, THEME
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


def build_ui(app: App) -> gr.Blocks:
    """The page: chat with each answer's sources beside it, past conversations, feedback, and a library tab."""
    page = ChatPage(app)
    s = app.settings
    # The browser remembers which conversation it had open; the key is stable across restarts of this home.
    secret = hashlib.sha256(str(s.home.resolve()).encode()).hexdigest()
    with gr.Blocks(title="Research assistant", analytics_enabled=False) as demo:
        conv = gr.State(new_conversation())
        pending = gr.State(None)
        remembered = gr.BrowserState(None, storage_key="research-assistant-conversation", secret=secret)
        gr.Markdown("## Research assistant\nCited answers from the papers in your library.", elem_classes="app-title")

        with gr.Sidebar(label="Conversations", open=True, elem_id="sidebar"):
            new_chat = gr.Button("New chat", elem_id="new-chat", variant="secondary")
            history_status = gr.Markdown(elem_id="history-status")
            conversations = gr.Radio([], label="Past conversations (saved in your home folder)",
                                     elem_id="conversations", interactive=True)

        with gr.Tab("Chat", elem_id="chat-tab"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=320):
                    chatbot = gr.Chatbot(
                        elem_id="chatbot", label="Answers", height="56vh", min_height=260, buttons=[],
                        placeholder=render.overview_markdown(0, s.library, [], []),
                        examples=[{"text": q} for q in EXAMPLES],
                        feedback_options=["Like", "Dislike", *FLAGS],
                    )
                    with gr.Row(equal_height=True):
                        question = gr.Textbox(label=QUESTION_LABEL, placeholder="Ask about the papers…", elem_id="question",
                                              show_label=False, lines=1, max_lines=6, scale=8, autofocus=True,
                                              container=False)
                        send = gr.Button("Send", variant="primary", elem_id="send", scale=1, min_width=80)
                    with gr.Row():
                        gr.HTML(f'<span id="q-counter" aria-live="polite">0 / {s.max_question_chars:,} characters</span>',
                                elem_id="q-counter-box", padding=False)
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
                    with gr.Accordion("Feedback on an answer", open=False, visible=False, elem_id="feedback") as fb_box:
                        fb_answer = gr.Dropdown([], label="Answer", elem_id="fb-answer")
                        with gr.Row():
                            fb_rating = gr.Radio(list(RATINGS), label="Rating", elem_id="fb-rating")
                            fb_reason = gr.Dropdown([(text, key) for key, text in REASONS.items()], label="What was wrong",
                                                    elem_id="fb-reason")
                        fb_cites = gr.CheckboxGroup([], label="Wrong citation (the paper does not say this)",
                                                    elem_id="fb-cites")
                        fb_comment = gr.Textbox(label="Comment", lines=2, elem_id="fb-comment")
                        fb_save = gr.Button("Save feedback", elem_id="fb-save")
                        fb_status = gr.Markdown(elem_id="fb-status")
                with gr.Column(scale=2, min_width=300):
                    gr.Markdown("#### Sources")
                    panel = gr.HTML(render.panel_html([]), elem_id="sources-panel")

        with gr.Tab("Library", elem_id="library-tab") as library_tab:
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

        # -- events ------------------------------------------------------------------------

        def side(conv_value):
            """Sidebar list, remembered id and the feedback controls, after the conversation changed."""
            choices_ = page.feedback_choices(conv_value)
            latest = choices_[-1][1] if choices_ else None
            return (gr.Radio(choices=page.conversation_choices(), value=conv_value["id"]), conv_value["id"],
                    gr.Accordion(visible=bool(choices_)), gr.Dropdown(choices=choices_, value=latest),
                    gr.CheckboxGroup(choices=page.citation_choices(conv_value, latest), value=[]))

        side_outputs = [conversations, remembered, fb_box, fb_answer, fb_cites]
        answer_inputs = [pending, conv, mode, backend, k]
        answer_outputs = [chatbot, panel, conv, notice]

        for trigger in (question.submit, send.click):
            trigger(page.accept, [question, conv], [question, conv, notice, pending], queue=False,
                    api_visibility="private").then(
                lambda c: render.chat_messages(c["turns"]), conv, chatbot, queue=False, api_visibility="private").then(
                page.answer, answer_inputs, answer_outputs, api_visibility="private").then(
                side, conv, side_outputs, api_visibility="private")

        def example(conv_value, evt: gr.SelectData):
            return page.accept(message_value(evt.value), conv_value)

        chatbot.example_select(example, conv, [question, conv, notice, pending], api_visibility="private").then(
            lambda c: render.chat_messages(c["turns"]), conv, chatbot, queue=False, api_visibility="private").then(
            page.answer, answer_inputs, answer_outputs, api_visibility="private").then(
            side, conv, side_outputs, api_visibility="private")

        def start_over():
            fresh = new_conversation()
            return [], render.panel_html([]), fresh, "", None

        for trigger in (new_chat.click, chatbot.clear):
            trigger(start_over, None, [chatbot, panel, conv, notice, pending], queue=False,
                    api_visibility="private").then(side, conv, side_outputs, api_visibility="private")

        chatbot.undo(page.undo, conv, [chatbot, panel, conv, question], api_visibility="private").then(
            side, conv, side_outputs, api_visibility="private")
        chatbot.retry(page.retry, conv, [chatbot, panel, conv, pending], api_visibility="private").then(
            page.answer, answer_inputs, answer_outputs, api_visibility="private").then(
            side, conv, side_outputs, api_visibility="private")

        def select(conv_value, evt: gr.SelectData):
            panel_html, conv_value, t = page.select(conv_value, evt.index)
            ids = [i for _, i in page.feedback_choices(conv_value)]
            chosen = t if t in ids else gr.skip()
            return panel_html, conv_value, chosen

        chatbot.select(select, conv, [panel, conv, fb_answer], api_visibility="private")

        def like(conv_value, evt: gr.LikeData):
            return page.like(conv_value, evt.index, evt.liked)

        chatbot.like(like, conv, notice, api_visibility="private")

        fb_answer.input(lambda c, t: gr.CheckboxGroup(choices=page.citation_choices(c, t), value=[]),
                        [conv, fb_answer], fb_cites, queue=False, api_visibility="private")

        def save_feedback(conv_value, t, rating, reason, cites, comment):
            message = page.feedback(conv_value, t, rating, reason, cites, comment)
            if message.startswith("⚠️"):
                return message, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return message, None, None, [], ""

        fb_save.click(save_feedback, [conv, fb_answer, fb_rating, fb_reason, fb_cites, fb_comment],
                      [fb_status, fb_rating, fb_reason, fb_cites, fb_comment], api_visibility="private")

        def reopen(conversation_id):
            conv_value, message = page.open_conversation(conversation_id)
            return (render.chat_messages(conv_value["turns"]), render.panel_html(conv_value["turns"], title=conv_value["title"]),
                    conv_value, message, None)

        conversations.input(reopen, conversations, [chatbot, panel, conv, notice, pending],
                            api_visibility="private").then(side, conv, side_outputs, api_visibility="private")

        query.submit(page.find_papers, query, results, api_name="papers", show_progress="minimal")
        upload.upload(page.upload, upload, [report, count, results], api_visibility="private")
        gaps_refresh.click(page.gaps, None, gaps, api_visibility="private")
        library_tab.select(page.gaps, None, gaps, api_visibility="private")

        def on_load(remembered_id, conv_value):
            """Reopen the conversation this browser had, unless a question was already asked (never clobber it)."""
            placeholder = gr.Chatbot(placeholder=page.overview())
            if remembered_id in (None, "") or conv_value["turns"]:
                return placeholder, gr.skip(), gr.skip(), gr.skip(), gr.skip(), page.history_status()
            chat_, panel_, conv_, message, _ = reopen(remembered_id)
            return gr.Chatbot(value=chat_, placeholder=page.overview()), panel_, conv_, message, None, page.history_status()

        demo.load(on_load, [remembered, conv], [chatbot, panel, conv, notice, pending, history_status],
                  api_visibility="private").then(side, conv, side_outputs, api_visibility="private").then(
            lambda: (page.library_count(), page.find_papers(""), page.gaps()), None, [count, results, gaps],
            api_visibility="private")
        gr.api(page.chat_api, api_name="chat")
        gr.api(page.ask, api_name="ask")
    # One queue for every event; questions beyond the limit wait their turn.
    demo.queue(default_concurrency_limit=s.ui_concurrency)
    return demo


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
                    theme=THEME, css=CSS, js=JS, footer_links=["api"], allowed_paths=allowed, app_kwargs=app_kwargs,
                    **kwargs)
    except OSError as exc:  # port taken or address not ours: a user error, not a traceback
        raise UserError(f"cannot serve on {host}:{port}: {exc}") from None
    return demo
