"""One cache of text vectors per process, shared by search and answering: a question is embedded once per ask.

The searcher embeds the question to search with; answerability, the relevance model, the extractive answer and
the verifier need its vector too, and the sentence bank needs the vectors of passages and claims. All of them
ask ``TextVectors``, which embeds only the texts it has not seen (a bounded LRU, cachetools) and is safe to share
across the chat page's threads: every read and write of the cache holds one lock, and embedding happens outside it.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import numpy as np
from cachetools import LRUCache


class TextVectors:
    """``vectors(texts)`` → one row per text, embedding only the texts not cached."""

    def __init__(self, embed_fn: Callable[[list[str]], np.ndarray], maxsize: int = 100_000):
        self.embed_fn = embed_fn
        self._cache: LRUCache = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
        todo = list(dict.fromkeys(t for t in texts if t not in known))
        if todo:
            vecs = np.asarray(self.embed_fn(todo), dtype=np.float32)
            known.update(zip(todo, vecs))
            self.remember(todo, vecs)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[t] for t in texts])

    def one(self, text: str) -> np.ndarray:
        return self([text])[0]

    def remember(self, texts: Sequence[str], vecs: np.ndarray) -> None:
        """Keep vectors made elsewhere (stored sentence vectors looked up at answer time)."""
        with self._lock:
            for text, vec in zip(texts, vecs):
                self._cache[text] = vec

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)
