"""Backends are registered once: settings, the CLI and the chat page read the registry; plugins join it through an
entry point; any llama-index LLM class can be named by import path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from assistant.cli import app as cli
from assistant.core.backends import BUILTIN, ENTRY_POINT_GROUP, backends, get_backend
from assistant.core.errors import UserError
from assistant.core.settings import Settings
from assistant.llms import make_llm

runner = CliRunner()


def test_registry__settings_accept_only_registered_names():
    assert [b.name for b in BUILTIN] == ["extractive", "openai", "openai-compatible", "llama-index"]
    for name in backends():
        assert Settings(backend=name).backend == name
    with pytest.raises(Exception, match="unknown backend 'nope': choose one of extractive, openai"):
        Settings(backend="nope")
    with pytest.raises(UserError, match="unknown backend 'nope'"):
        get_backend("nope")


def test_registry__cli_help_and_backends_command_list_every_backend(monkeypatch):
    help_text = runner.invoke(cli, ["ask", "--help"]).output
    assert all(name in help_text for name in backends())
    out = runner.invoke(cli, ["backends", "--json"])
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) == set(backends()) and rows["extractive"]["selected"]
    assert rows["openai"]["missing"] == ["OPENAI_API_KEY"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert json.loads(runner.invoke(cli, ["backends", "--json"]).stdout)[1]["missing"] == []


def test_registry__chat_page_selector_offers_the_configured_backends(bundled_app, monkeypatch):
    from assistant.ui.page import ChatPage

    names = [name for _, name in ChatPage(bundled_app).backend_choices()]
    assert names == ["extractive"]  # nothing else configured: nothing unusable offered
    app = type(bundled_app)(bundled_app.settings.with_overrides(llm_base_url="http://127.0.0.1:9/v1"),
                            embedder=bundled_app.embedder)
    assert [name for _, name in ChatPage(app).backend_choices()] == ["extractive", "openai-compatible"]


def test_registry__extractive_uses_no_llm():
    assert make_llm(Settings()) is None


def test_llama_index_backend__any_llm_class_by_import_path_answers(bundled_app):
    from llama_index.core.llms import LLM

    s = bundled_app.settings.with_overrides(backend="llama-index", llm_class="tests.fakes.scripted_llm:ScriptedLLM",
                                            llm_kwargs={"reply": "NPO treats the forget set as negative preferences [1]."})
    llm = make_llm(s)
    assert isinstance(llm, LLM) and llm.reply.startswith("NPO")
    app = type(bundled_app)(s, embedder=bundled_app.embedder)
    answer = app.engine.ask("What is negative preference optimization?")
    assert answer.answer == "NPO treats the forget set as negative preferences [1]."
    assert answer.backend == "llama-index" and answer.model == "ScriptedLLM"
    assert answer.citations[0]["n"] == 1 and not answer.dropped_citations


@pytest.mark.parametrize("llm_class, says", [
    ("", "needs ASSISTANT_LLM_CLASS"),
    ("no_such_module:Thing", "cannot import no_such_module"),
    ("tests.fakes.scripted_llm:Nope", "has no 'Nope'"),
    ("json:JSONDecoder", "is not a llama-index LLM"),
])
def test_llama_index_backend__bad_class_is_one_clear_error(llm_class, says):
    with pytest.raises(UserError, match=says):
        make_llm(Settings(backend="llama-index", llm_class=llm_class))


@pytest.mark.slow
def test_plugin__a_backend_installed_through_the_entry_point_is_selected_by_name(tmp_path):
    # A real (tiny) distribution, installed with pip into a folder of its own, registers a backend.
    src = tmp_path / "src"
    (src / "tiny_backend").mkdir(parents=True)
    (src / "tiny_backend" / "__init__.py").write_text(textwrap.dedent('''
        def build(settings):
            """A tiny plugin backend that always gives one cited sentence."""
            from tests.fakes.scripted_llm import ScriptedLLM
            return ScriptedLLM(reply="Negative preference optimization avoids collapse [1].")
    '''))
    (src / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "tiny-backend"
        version = "0.1"
        [project.entry-points."{ENTRY_POINT_GROUP}"]
        tiny = "tiny_backend:build"
    '''))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    script = textwrap.dedent('''
        import json, sys
        from assistant.core.backends import backends
        from assistant.core.settings import Settings
        from assistant.llms import make_llm
        spec = backends()["tiny"]
        llm = make_llm(Settings(backend="tiny"))
        print(json.dumps({"names": list(backends()), "description": spec.description, "plugin": spec.plugin,
                          "llm": type(llm).__name__}))
    ''')
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{root}"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["names"][-1] == "tiny" and result["plugin"] == "tiny-backend"
    assert result["description"] == "A tiny plugin backend that always gives one cited sentence."
    assert result["llm"] == "ScriptedLLM"
