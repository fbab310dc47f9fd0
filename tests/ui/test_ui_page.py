"""The page's handlers, called directly: streaming, follow-ups, backend switching, and every error as a message."""

from __future__ import annotations

import pytest

from assistant.app import App
from assistant.core.errors import UserError
from assistant.core.settings import Settings
from assistant.ui.page import MAX_QUESTION, ChatPage
from tests.conftest import free_port

NPO_TITLE = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"


def _no_progress(*args, **kwargs):
    pass


def _run(page: ChatPage, question, history=None, **kw) -> list[tuple[str, str]]:
    return list(page.respond(question, history or [], **kw))


def _assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text and 'File "' not in text


@pytest.mark.slow
def test_page__answer_streams_and_ends_with_linked_citations(bundled_app):
    steps = _run(ChatPage(bundled_app), "compare NPO and gradient ascent", mode="Ask", k=8)
    texts = [t for t, _ in steps]
    final_text, final_panel = steps[-1]
    assert len(steps) >= 3, texts  # placeholder, at least one growing piece, the checked answer
    assert any(0 < len(t) < len(final_text) for t in texts[1:-1])
    assert "](#src-" in final_text
    assert NPO_TITLE in final_panel and "src-footer" in final_panel and "<mark>" in final_panel


@pytest.mark.slow
def test_page__follow_up_uses_history_given_as_block_lists(bundled_app):
    page = ChatPage(bundled_app)
    first = _run(page, "compare NPO and gradient ascent")[-1][0]
    history = [
        {"role": "user", "content": [{"type": "text", "text": "compare NPO and gradient ascent"}]},
        {"role": "assistant", "content": [{"type": "text", "text": first}]},
    ]
    text, panel = _run(page, "and which of them evaluates on TOFU?", history)[-1]
    assert "](#src-" in text
    # The history reached the engine: the follow-up was searched for together with the first question.
    assert "searched for: compare NPO and gradient ascent" in panel


@pytest.mark.slow
def test_page__llm_backend_streams_and_shows_dropped_citation(bundled_app, openai_server, replies):
    settings = bundled_app.settings.with_overrides(llm_base_url=openai_server.url, llm_model="scripted", llm_max_retries=0)
    page = ChatPage(App(settings, embedder=bundled_app.embedder))
    assert [name for _, name in page.backend_choices()] == ["extractive", "openai-compatible"]

    openai_server.push(replies.sse(["NPO slows collapse ", "compared with gradient ascent [1][17]."]))
    steps = _run(page, "compare NPO and gradient ascent", backend="openai-compatible", k=5)  # no source [17]
    text, panel = steps[-1]
    assert any("NPO slows collapse" in t and "gradient" not in t for t, _ in steps)  # a partial answer was shown
    assert "[[1](#src-1 " in text and "dropped [17]: no such source" in text
    assert "[17] dropped: no such source" in panel and "scripted" in panel

    # A failing backend is a message, and the next question still works.
    openai_server.push(replies.status(500, "model crashed"))
    text, _ = _run(page, "what is NPO?", backend="openai-compatible")[-1]
    assert text.startswith("⚠️") and "500" in text
    openai_server.push(replies.sse(["NPO is an unlearning method [1]."]))
    text, _ = _run(page, "what is NPO?", backend="openai-compatible")[-1]
    assert text.startswith("NPO is an unlearning method")


def test_page__empty_and_over_long_questions_are_messages(bundled_app):
    page = ChatPage(bundled_app)
    empty, panel = _run(page, "   ")[-1]
    long_text, _ = _run(page, "x" * (MAX_QUESTION + 1))[-1]
    assert empty == "⚠️ Please type a question."
    assert "please keep it under 2000" in long_text
    _assert_no_traceback(empty, panel, long_text)


def test_page__chroma_down_is_a_message_everywhere(tmp_path, embedder):
    port = free_port()  # nothing listens there
    app = App(Settings(home=tmp_path / "h", chroma_url=f"http://127.0.0.1:{port}"), embedder=embedder)
    page = ChatPage(app)
    text, _ = _run(page, "what is NPO?")[-1]
    assert text.startswith("⚠️ cannot reach the Chroma server")
    assert "cannot reach the Chroma server" in page.library_count()
    assert "cannot reach the Chroma server" in page.find_papers("npo")
    _assert_no_traceback(text)


def test_page__empty_library_and_bad_uploads_are_explained(tmp_path, embedder):
    page = ChatPage(App(Settings(home=tmp_path / "h"), embedder=embedder))
    text, _ = _run(page, "what is NPO?")[-1]
    assert "library is empty" in text

    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    report, count, _ = page.upload(str(pdf), progress=_no_progress)
    assert "not a paper file" in report and "0 papers" in count

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"title": "No abstract here"}\nnot json at all\n')
    report, count, _ = page.upload(str(bad), progress=_no_progress)
    assert "Nothing could be read from `broken.jsonl`" in report
    assert "Skipped 2 entries" in report and "broken.jsonl:2" in report
    assert "0 papers" in count


def test_launch__binds_to_localhost_and_asks_for_the_login(tmp_path, embedder):
    import urllib.error
    import urllib.request

    from assistant.ui.page import launch, parse_auth

    with pytest.raises(UserError, match="user:password"):
        parse_auth("no-colon")
    app = App(Settings(home=tmp_path / "h", ui_auth="reader:s3cret", ui_port=free_port()), embedder=embedder)
    demo = launch(app, prevent_thread_lock=True, quiet=True)
    try:
        assert demo.server_name == "127.0.0.1"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{app.settings.ui_port}/config", timeout=10)
        assert err.value.code == 401
    finally:
        demo.close()
