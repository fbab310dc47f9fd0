"""Synthetic libraries for the scaling benchmark: N papers made from the bundled abstracts, deterministically.

Each synthetic paper recombines sentences of two or three real abstracts under a
new title (the first half of one real title joined to the second half of
another), so BM25 sees a real vocabulary and real sentence lengths. Embedding
100,000 papers on a 2-core CPU would take hours, so their vectors are derived
from real ones instead: a chunk's vector is the normalised mixture of the real
chunk vectors of the papers its sentences came from (weighted by sentence
count) plus small seeded Gaussian noise. The vectors therefore lie where real
abstracts lie, clustered as real topics are, which is what the dense index's
speed depends on; they are not what the model would give for the new text, so
these libraries measure speed and memory, never quality.

The same seed and size always give the same papers, chunks and vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from assistant.core.types import Chunk, Paper, chunk_id

NOISE = 0.01  # per-dimension std of the noise added to a mixture (norm ≈ 0.2 before renormalising)


@dataclass
class BasePaper:
    """A real paper ready for recombination: its sentences and the mean of its real chunk vectors."""

    paper: Paper
    sentences: list[str]
    vector: np.ndarray


def read_bundled(paths: list[Path]) -> list[Paper]:
    """The unique papers of the given files or folders, as ingest reads them."""
    from ingest.normalize import dedupe
    from ingest.pipeline import expand_paths
    from ingest.readers import read_path

    files, _ = expand_paths(paths)
    papers = [p for f in files for p in read_path(f).papers]
    unique, _ = dedupe(papers)
    return unique


def base_papers(papers: list[Paper], chunks: list[list[Chunk]], vectors: np.ndarray) -> list[BasePaper]:
    """Pair each real paper with its sentences and mean chunk vector (``vectors`` row-aligned with the flat chunks)."""
    from assistant.core.text import split_sentences

    out, row = [], 0
    for paper, paper_chunks in zip(papers, chunks):
        n = len(paper_chunks)
        if n == 0:
            continue
        mean = vectors[row : row + n].mean(axis=0)
        row += n
        sentences = [s for s in split_sentences(paper.abstract) if s.strip()]
        if sentences:
            out.append(BasePaper(paper, sentences, (mean / np.linalg.norm(mean)).astype(np.float32)))
    return out


def _title(a: str, b: str) -> str:
    wa, wb = a.split(), b.split()
    return " ".join(wa[: max(1, len(wa) // 2)] + wb[len(wb) // 2 :]) or a


def synthetic_items(
    base: list[BasePaper], n: int, seed: int = 0, batch: int = 2000, offset: int = 0,
) -> Iterator[list[tuple[Paper, str, list[Chunk], np.ndarray]]]:
    """Batches of (paper, content hash, chunks, vectors) for ``store.Library.write``: papers offset..offset+n-1."""
    if not base:
        raise ValueError("no base papers to recombine")
    dim = len(base[0].vector)
    items: list = []
    for i in range(offset, offset + n):
        # One generator per paper: paper i is the same whatever the size or batch.
        rng = np.random.default_rng([seed, i])
        sources = rng.choice(len(base), size=int(rng.integers(2, 4)), replace=False)
        picked: list[tuple[int, str]] = []
        for _ in range(int(rng.integers(4, 9))):
            s = int(rng.choice(sources))
            sentences = base[s].sentences
            picked.append((s, sentences[int(rng.integers(len(sentences)))]))
        pid = f"syn-{i:06d}"
        title = _title(base[sources[0]].paper.title, base[sources[1]].paper.title)
        paper = Paper(paper_id=pid, title=title, abstract=" ".join(t for _, t in picked),
                      date="2024-01-01", source=f"synthetic:{seed}")
        # Two chunks for most papers, as the bundled library has (483 chunks / 241 papers).
        halves = [picked[: len(picked) // 2], picked[len(picked) // 2 :]] if len(picked) >= 4 else [picked]
        chunks, vecs = [], []
        for j, part in enumerate(halves):
            chunks.append(Chunk(chunk_id=chunk_id(pid, j), paper_id=pid, index=j, text=" ".join(t for _, t in part), title=title))
            mix = np.sum([base[s].vector for s, _ in part], axis=0) + rng.normal(0.0, NOISE, dim)
            vecs.append(mix / np.linalg.norm(mix))
        items.append((paper, f"synthetic-{seed}-{i}", chunks, np.asarray(vecs, dtype=np.float32)))
        if len(items) >= batch:
            yield items
            items = []
    if items:
        yield items


def build_library(library, base: list[BasePaper], n: int, seed: int = 0, start: int = 0, on_batch=None) -> dict:
    """Write synthetic papers start..n-1 into ``library`` (a store.Library), bump its revision; returns counts.

    Growing a library from ``start`` adds exactly the papers a fresh build of
    size n would hold, so one library can be measured at 1k, 10k, then 100k.
    """
    import time

    papers = chunks = 0
    started = time.perf_counter()
    for items in synthetic_items(base, n - start, seed, offset=start):
        library.write(items)
        papers += len(items)
        chunks += sum(len(c) for _, _, c, _ in items)
        if on_batch:
            on_batch(start + papers, n)
    library.bump_revision()
    return {"papers": papers, "chunks": chunks, "write_seconds": time.perf_counter() - started}
