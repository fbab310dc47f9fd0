"""Repair: re-embed what a library's vector indexes lack (``assistant doctor --repair``).

A record whose vector is missing (``assistant.library.health.vector_gaps``) still has everything it was
embedded from: a chunk its text and its paper's title, a sentence its paper's abstract, a paper record its
chunks. So the repair embeds exactly those again, the way ingest embedded them (the same texts and the same
model, so the same vectors), writes them back onto the same records, bumps the library's revision (other
processes reopen and see them), and checks again on a newly opened store: the counts before and after are
the report. Nothing is deleted, and records that were fine are not touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from assistant.library.health import KINDS, Gap, chunk_rows, mean_chunk_vectors, restore_vectors, vector_gaps
from assistant.library.store import META_ID
from ingest.sentences import sentence_texts

GROUP = 256  # texts embedded and written back at a time


@dataclass
class Repair:
    before: dict[str, Gap]
    after: dict[str, Gap] = field(default_factory=dict)
    embedded: int = 0  # texts embedded again (chunks and sentences)

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.after.values())

    def to_dict(self) -> dict:
        return {"before": {k: g.to_dict() for k, g in self.before.items()},
                "after": {k: g.to_dict() for k, g in self.after.items()}, "embedded": self.embedded, "ok": self.ok}


def check(library) -> dict[str, Gap]:
    """Each collection of the library: its records and those whose vector is missing (on a fresh opening)."""
    return {kind: vector_gaps(library, kind, fresh=(kind == KINDS[0])) for kind in KINDS}


def repair(library, embedder, gaps: dict[str, Gap] | None = None,
           note: Callable[[str], None] = lambda _: None) -> Repair:
    """Re-embed every record of ``library`` whose vector is missing, then check again; returns both counts."""
    before = gaps or check(library)
    result = Repair(before)
    embed = getattr(embedder, "embed_bulk", None) or embedder.embed
    chunks = before["chunks"].missing
    if chunks:
        note(f"re-embedding {len(chunks):,} chunks …")
        for start in range(0, len(chunks), GROUP):
            rows = chunk_rows(library, chunks[start : start + GROUP])
            vectors = np.asarray(embed([text for _, _, text in rows]), dtype=np.float32)
            restore_vectors(library, "chunks", [cid for cid, _, _ in rows], vectors)
            result.embedded += len(rows)
    sentences = sorted({sid.rsplit("#s", 1)[0] for sid in before["sentences"].missing})
    if sentences:
        note(f"re-embedding the sentences of {len(sentences):,} papers …")
        for start in range(0, len(sentences), GROUP // 8):
            papers = library.get_papers(sentences[start : start + GROUP // 8])
            texts = [sentence_texts(p) for p in papers]
            flat = [t for ts in texts for t in ts]
            vectors = np.asarray(embed(flat), dtype=np.float32)
            items, offset = [], 0
            for paper, ts in zip(papers, texts):
                items.append((paper.paper_id, ts, vectors[offset : offset + len(ts)]))
                offset += len(ts)
            library.add_sentences(items)  # all of each paper's sentences, as ingest stores them
            result.embedded += len(flat)
    papers = [pid for pid in before["papers"].missing if pid != META_ID]
    if papers:
        note(f"restoring the vectors of {len(papers):,} paper records …")
        means = mean_chunk_vectors(library, papers)
        restore_vectors(library, "papers", list(means), np.asarray(list(means.values()), dtype=np.float32))
    library.bump_revision()  # also rewrites the revision record with its vector when that was the one missing
    result.after = check(library)
    return result
