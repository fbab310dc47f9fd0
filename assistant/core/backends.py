"""The backend registry: every answer backend's name, description, settings and factory, defined once.

Settings validation, ``assistant --help`` texts, ``assistant backends`` and the
chat page's selector are all derived from ``backends()``. A backend is data:
its factory is an import path ("module:function") that ``assistant.llms``
loads when the backend is used, so this module (the lowest floor) imports no
model client.

Third-party backends register through the ``research_assistant.backends``
entry-point group. The entry point names the backend and points at a factory
``build(settings) -> llama_index.core.llms.LLM``; its docstring's first line
is the description. For example, in a plugin's ``pyproject.toml``::

    [project.entry-points."research_assistant.backends"]
    my-ollama = "my_plugin:build"
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from assistant.core.errors import UserError

ENTRY_POINT_GROUP = "research_assistant.backends"


@dataclass(frozen=True)
class BackendSpec:
    """One backend: ``factory`` is "module:function" building a llama-index LLM from Settings ("" = no LLM)."""

    name: str
    description: str
    factory: str = ""
    options: tuple[str, ...] = ()  # the settings it reads, for help texts and `assistant backends`
    plugin: str = ""  # the distribution that registered it (third-party backends)
    requires: tuple[str, ...] = ()  # settings that must be set before it can answer ("api_key": a key from anywhere)

    @property
    def uses_llm(self) -> bool:
        return bool(self.factory)


_LLM_OPTIONS = ("llm_model", "llm_context_window", "llm_max_tokens", "llm_timeout", "llm_max_retries", "llm_temperature")

BUILTIN = (
    BackendSpec("extractive", "no LLM: quotes the sentences of the sources that answer, each cited (offline default)"),
    BackendSpec("openai", "the hosted OpenAI API (llama-index-llms-openai); needs OPENAI_API_KEY",
                "assistant.llms.factories:openai_llm", ("llm_api_key", *_LLM_OPTIONS), requires=("api_key",)),
    BackendSpec("openai-compatible", "any server speaking the OpenAI API: llama.cpp, Ollama, vLLM, LM Studio "
                "(llama-index-llms-openai-like); needs llm_base_url",
                "assistant.llms.factories:openai_like_llm", ("llm_base_url", "llm_server_api_key", *_LLM_OPTIONS),
                requires=("llm_base_url",)),
    BackendSpec("llama-index", "any llama-index LLM class by import path (llm_class) with its keyword arguments "
                "(llm_kwargs), e.g. llama_index.llms.ollama:Ollama",
                "assistant.llms.factories:import_path_llm", ("llm_class", "llm_kwargs", "llm_context_window"),
                requires=("llm_class",)),
)


@lru_cache(maxsize=1)
def _plugins() -> tuple[BackendSpec, ...]:
    from importlib.metadata import entry_points

    specs = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if any(ep.name == b.name for b in BUILTIN):
            continue  # a plugin cannot shadow a built-in backend
        try:
            doc = (getattr(ep.load(), "__doc__", None) or "").strip().splitlines()
        except Exception as exc:  # a broken plugin is listed with its problem, not a crash
            doc = [f"(cannot be loaded: {type(exc).__name__}: {exc})"]
        dist = getattr(getattr(ep, "dist", None), "name", "") or ""
        specs.append(BackendSpec(ep.name, doc[0] if doc else f"plugin backend from {dist or ep.value}", ep.value,
                                 plugin=dist))
    return tuple(sorted(specs, key=lambda s: s.name))


def backends() -> dict[str, BackendSpec]:
    """Every backend by name: the built-ins, then registered plugins."""
    return {spec.name: spec for spec in (*BUILTIN, *_plugins())}


def get_backend(name: str) -> BackendSpec:
    """The backend called ``name``; a UserError listing the known ones otherwise."""
    known = backends()
    if name not in known:
        raise UserError(f"unknown backend {name!r}: choose one of {', '.join(known)}")
    return known[name]


def missing_settings(spec: BackendSpec, settings) -> list[str]:
    """The settings ``spec`` needs that ``settings`` leaves empty (an empty list: it can be used)."""
    missing = []
    for name in spec.requires:
        value = settings.api_key() if name == "api_key" else getattr(settings, name, "")
        if not value:
            missing.append("OPENAI_API_KEY" if name == "api_key" else f"ASSISTANT_{name.upper()}")
    return missing


def backend_help() -> str:
    """One line for --backend options: the names with what each is."""
    return "; ".join(f"{spec.name}: {spec.description}" for spec in backends().values())
