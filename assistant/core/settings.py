"""Typed settings: one object, env prefix ``ASSISTANT_``, optional TOML file, CLI flags override.

Every field has a default and a description; the descriptions are the
configuration docs (``assistant config`` prints them with secrets masked).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_HOME = Path("~/.research-assistant")
LOCAL_MODEL = "all-MiniLM-L6-v2"


def _config_file() -> Path:
    """The TOML file read for settings: ``ASSISTANT_CONFIG`` or ``<home>/config.toml``."""
    explicit = os.environ.get("ASSISTANT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = Path(os.environ.get("ASSISTANT_HOME", str(DEFAULT_HOME))).expanduser()
    return home / "config.toml"


class AnswerabilityConfig(BaseModel):
    """The answerability decision's thresholds (assistant/answering/answerability.py). Env vars:
    ASSISTANT_ANSWERABILITY__<FIELD>; TOML: an [answerability] table. Each was measured as its description says."""

    model_config = ConfigDict(extra="forbid")

    min_relevance: float = Field(0.25, description="Decline without calling the backend when the best paper's dense "
                                 "cosine similarity is below this (bundled library: off-topic questions peak at 0.15, "
                                 "answerable ones bottom out at 0.38).")
    min_passage_relevance: float = Field(0.42, description="A full text's best passage sentence counts toward its "
                                         "relevance from this cosine (a passage dilutes the one sentence asked about; "
                                         "off-topic questions' best passage sentences peak at 0.38).")
    min_sentence_relevance: float = Field(0.15, ge=0.0, le=1.0, description="A full text's passage sentence is quoted, "
                                          "and a full text cited, only from this probability of bearing on the question "
                                          "(the relevance model: bundled dev questions' best PDF sentences peak at 0.12, "
                                          "key passages of full-text questions start at 0.08, tenth percentile 0.18).")
    rescue_relevance: float = Field(0.5, ge=0.0, le=1.0, description="A question below min_relevance is still answered "
                                    "when an evidence sentence bears on it this surely ('TOFU?': cosine 0.24, the TOFU "
                                    "abstracts' sentences 0.65).")
    doubtful_relevance: float = Field(0.35, description="Below this best cosine a question is only doubtfully related: "
                                      "it is declined when no evidence sentence reaches min_best_sentence.")
    min_best_sentence: float = Field(0.06, ge=0.0, le=1.0, description="See doubtful_relevance (bundled library: "
                                     "off-topic questions' best sentences peak at 0.11, median 0.02; answerable ones "
                                     "bottom out at 0.045, tenth percentile 0.12).")
    relative_margin: float = Field(0.12, description="Cited papers stay within this cosine of the best one (or name one "
                                   "of the question's names).")
    common_name_share: float = Field(0.05, description="A name in more than this share of the library (LLM, GPT, "
                                     "English) does not pick out papers.")
    rare_word_share: float = Field(0.02, description="Words in at most this share of the library are the question's "
                                   "rare terms.")
    term_similarity: float = Field(0.45, description="A rare word absent from the evidence still counts as covered when "
                                   "its embedding is this close to a sentence.")
    topic_share: float = Field(0.34, description="A summary or a list cites a paper holding at least this share of its "
                               "topic's word weight (IDF).")


class ExtractiveConfig(BaseModel):
    """How the extractive backend chooses its quotes (assistant/answering/extractive.py). Env vars:
    ASSISTANT_EXTRACTIVE__<FIELD>; TOML: an [extractive] table."""

    model_config = ConfigDict(extra="forbid")

    max_sentences: int = Field(4, ge=1, description="Quotes in an answer (one more when one paper answers, two more for a list).")
    summary_papers: int = Field(8, ge=1, description="Papers a summary quotes at most.")
    mmr_lambda: float = Field(0.75, ge=0.0, le=1.0, description="Relevance against novelty when quotes are chosen "
                              "(maximal marginal relevance).")
    theme_similarity: float = Field(0.6, description="Papers whose abstracts are this alike form one theme of a summary.")
    min_share: float = Field(0.6, description="A fourth or later quote must be at least this share as related as the best.")
    per_side: int = Field(3, ge=1, description="Quotes per side of a comparison.")
    paper_weight: float = Field(0.4, description="How much a paper's distance from the best one lowers its sentences.")
    relevance_weight: float = Field(1.0, description="How much the relevance model's probability adds to a sentence's "
                                    "cosine (0 -> 1: LitQA2 dev key passage cited 0.60 -> 0.70; dev gold precision "
                                    "0.840 -> 0.872).")
    subject_penalty: float = Field(0.2, description="In an answer about one paper (its subject, the best-ranked kept "
                                   "source), what another paper's sentence gives up against the subject's own (0 -> 0.2: "
                                   "dev gold precision 0.872 -> 0.945; researcher-style set 0.559 -> 0.685).")


class LLMAnswerConfig(BaseModel):
    """How an LLM backend writes the answer from the chosen evidence and when its answer is not shown
    (assistant/answering/llm_synth.py, assistant/answering/guard.py). Env vars: ASSISTANT_LLM_ANSWER__<FIELD>;
    TOML: an [llm_answer] table."""

    model_config = ConfigDict(extra="forbid")

    structured: Literal["auto", "json_schema", "json_object", "off"] = Field(
        "auto", description="How citations are carried by construction: json_schema (the OpenAI API's response_format), "
        "json_object (a JSON schema in llama.cpp's form: llama-cpp-python, llama-server), off (prose with [n] marks, "
        "parsed leniently), or auto: json_schema for the openai backend, json_object for openai-compatible servers, "
        "off for other LLMs. A server that refuses the format is asked again in prose, once per process.")
    max_sentences: int = Field(5, ge=1, description="Sentences an LLM's answer may have (a comparison or a summary: one "
                               "per evidence sentence, a comparison one more on how the sides differ, at most 9).")
    min_supported: float = Field(0.8, ge=0.0, le=1.0, description="Share of the answer's claim sentences the verifier "
                                 "must support; below it the extractive answer is shown instead, saying why.")
    fallback: bool = Field(True, description="Show the extractive answer, with a one-line notice of why, when the LLM's "
                           "answer fails the check (too few sentences supported, no citation, a false denial). Off: the "
                           "LLM's answer is shown with its unsupported sentences listed.")


class Settings(BaseSettings):
    """Everything configurable. Env vars: ASSISTANT_<FIELD> (OPENAI_API_KEY also read)."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_nested_delimiter="__", extra="ignore",
                                      populate_by_name=True)

    home: Path = Field(DEFAULT_HOME, description="Folder for the embedded Chroma store, BM25 indexes and eval reports.")
    library: str = Field("default", description="Library (one Chroma collection per library and embedding model).")
    chroma_url: str = Field("", description="Chroma server URL (http://host:port); empty uses the embedded store under home.")

    embedding_provider: Literal["local", "openai"] = Field("local", description="'local' (all-MiniLM-L6-v2 from the wheel) or 'openai'.")
    embedding_model: str = Field(LOCAL_MODEL, description="Embedding model name (local: all-MiniLM-L6-v2; openai: e.g. text-embedding-3-small).")
    embedding_batch_size: int = Field(64, description="Texts per embedding batch.")
    embedding_variant: Literal["auto", "int8", "fp32"] = Field(
        "auto", description="Variant of the local model: int8 (ONNX Runtime, dynamically quantized: the fast one on a "
        "CPU), fp32 (ONNX Runtime or torch), or auto: the variant the library was built with, else int8 (fp32 where a "
        "CUDA device is visible). Part of the library's identity: another variant builds collections of its own.")
    embedding_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where ingest embeds: auto (a visible CUDA device, else the CPU), cpu or cuda. Queries always run on the CPU.")
    sentence_vectors: bool = Field(
        True, description="Store each sentence's vector at ingest, so answers look them up instead of embedding the "
        "sources' abstracts per question (off: ingest embeds about half as much, extractive answers take longer).")
    ingest_wait: float = Field(
        1800.0, ge=0, description="Seconds an ingest waits for another ingest into the same library to finish "
        "(one writer per library at a time) before giving up.")
    chunk_tokens: int = Field(256, description="Largest chunk in the embedding model's tokens, title included.")
    chunker: Literal["llama-index", "sentences"] = Field(
        "llama-index", description="How abstracts are cut into chunks: llama-index (SentenceSplitter with the embedding "
        "model's tokenizer) or sentences (the earlier hand-written packer). Changing it re-embeds every paper at the next ingest.")

    retriever: Literal["hybrid", "dense", "bm25"] = Field("hybrid", description="Default retriever.")
    top_k: int = Field(8, ge=1, le=100, description="Papers retrieved per question.")
    fusion: Literal["zscore", "convex", "rrf"] = Field(
        "zscore", description="How hybrid fuses dense and BM25: zscore (standardised scores), convex (min-max scaled) or rrf (ranks).")
    fusion_weight: float = Field(0.5, ge=0.0, le=1.0, description="Dense weight in zscore / convex fusion (BM25 gets 1 - weight).")
    passage_dense_weight: float = Field(0.3, ge=0.0, le=1.0, description="Dense weight when a full text's passages are ranked for a question (BM25 gets the rest): within one paper every passage shares the topic, and the words the question names set the one it asks about apart.")
    rrf_k: int = Field(60, description="Constant of reciprocal rank fusion.")
    bm25_unit: Literal["paper", "chunk"] = Field(
        "paper", description="What BM25 indexes: paper (title twice + abstract, one row per paper) or chunk (each stored chunk).")
    answerability: AnswerabilityConfig = Field(default_factory=lambda: AnswerabilityConfig(),
                                               description="The answerability decision's thresholds (answer / partial / decline).")
    extractive: ExtractiveConfig = Field(default_factory=lambda: ExtractiveConfig(),
                                         description="How the extractive backend chooses the sentences it quotes.")
    llm_answer: LLMAnswerConfig = Field(default_factory=lambda: LLMAnswerConfig(),
                                        description="How an LLM backend writes from the evidence and when it falls back.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question (characters) the CLI, the page and the engine take.")

    backend: str = Field("extractive", description="Answer backend, by name from the registry (`assistant backends` lists them).")
    llm_model: str = Field("gpt-4o-mini", description="Model name for the openai / openai-compatible backends.")
    llm_base_url: str = Field("", description="Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1).")
    llm_api_key: SecretStr = Field(SecretStr(""), description="OpenAI API key for the openai backend (and OpenAI "
                                   "embeddings); falls back to OPENAI_API_KEY. Sent to the OpenAI API only, never to "
                                   "an OpenAI-compatible server.")
    llm_server_api_key: SecretStr = Field(SecretStr(""), description="API key of the OpenAI-compatible server "
                                          "(llm_base_url), sent only there; empty (llama.cpp, Ollama): no key is sent.")
    llm_context_window: int = Field(8192, description="Context window of the model, in tokens.")
    llm_max_tokens: int = Field(512, description="Largest answer, in tokens.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds one answer may wait on the model in all: every call, retry, backoff and streamed token included.")
    llm_max_retries: int = Field(3, description="Retries on 429 and 5xx, with backoff (honours Retry-After).")
    llm_temperature: float = Field(0.1, description="Sampling temperature.")
    llm_verify: bool = Field(False, description="With an LLM backend, also ask the model to check each cited sentence (prompts/verify.md); slower.")
    llm_class: str = Field("", description="llama-index backend: the LLM class by import path, e.g. llama_index.llms.ollama:Ollama.")
    llm_kwargs: dict[str, Any] = Field(default_factory=dict, description="llama-index backend: keyword arguments for llm_class (a TOML table, or JSON in the env var).")

    ui_host: str = Field("127.0.0.1", description="Address the chat page binds to.")
    ui_port: int = Field(7860, description="Port of the chat page.")
    ui_auth: SecretStr = Field(SecretStr(""), description="Optional 'user:password' login for the chat page.")
    ui_concurrency: int = Field(4, description="Questions answered at once by the chat page.")

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, v: Any) -> Path:
        return Path(str(v)).expanduser()

    @field_validator("library")
    @classmethod
    def _check_library(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", v):
            raise ValueError("library names use letters, digits, '.', '_' and '-', starting with a letter or digit")
        return v

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, v: str) -> str:
        from assistant.core.backends import backends

        known = backends()
        if v not in known:
            raise ValueError(f"unknown backend {v!r}: choose one of {', '.join(known)}")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) beat env vars, which beat the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    def api_key(self) -> str:
        """The OpenAI API key (openai backend, OpenAI embeddings): only ever sent to the OpenAI API."""
        return self.llm_api_key.get_secret_value() or os.environ.get("OPENAI_API_KEY", "")

    def server_api_key(self) -> str:
        """The OpenAI-compatible server's own key ('' when it needs none); never the OpenAI key."""
        return self.llm_server_api_key.get_secret_value()

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with the given non-None values replaced and validated (CLI flags)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if not values:
            return self
        return self.model_validate({**self.model_dump(), **values})

    def masked(self) -> dict[str, Any]:
        """The effective configuration for display: secrets (by name, also inside llm_kwargs) and URL passwords
        masked (``assistant.core.secrets.mask``)."""
        from assistant.core.secrets import mask

        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, BaseModel):  # a group of thresholds: shown as answerability.min_relevance etc.
                out |= {f"{name}.{k}": v for k, v in value.model_dump().items()}
            else:
                out[name] = mask(str(value) if isinstance(value, Path) else value, name)
        out["OPENAI_API_KEY"] = "set (masked)" if os.environ.get("OPENAI_API_KEY") else "not set"
        return out

    @property
    def store_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.home / "bm25"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def load_settings(**overrides: Any) -> Settings:
    """Settings from env and TOML, with flags (non-None keyword arguments) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
