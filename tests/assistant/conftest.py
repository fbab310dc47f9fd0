"""Fixtures for the answer layer: a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_fake():
    # tests/ is not a package, so load the shared fake by path: this works
    # whatever import mode pytest uses and whoever else adds conftest files.
    name = "tests_fakes_openai_server"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "fakes" / "openai_server.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()


@pytest.fixture
def openai_server():
    """A running scripted OpenAI-compatible server; queue replies with ``.push(...)``."""
    server = fake.FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def replies():
    """The reply builders of the fake server (answer, sse, status, malformed, close_midstream, ...)."""
    return fake
