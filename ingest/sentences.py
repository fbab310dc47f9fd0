"""The sentences answering quotes, as ingest stores their vectors: a paper's title, then its abstract's sentences.

Answering (assistant/answering/evidence.py, ``SentenceBank``) splits every
source the same way: the title, then ``split_sentences(abstract)``, each with
citation brackets removed and whitespace collapsed. Ingest embeds those texts
once and the store keeps the vectors with a digest of the texts; a bank whose
texts differ finds no stored vectors and embeds its own, so a change on one
side costs speed, never a wrong vector (tests/ingest/test_sentences.py checks
both sides agree on the bundled library).
"""

from __future__ import annotations

import re

from assistant.core.text import split_sentences, strip_citations
from assistant.core.types import Paper


def clean(sentence: str) -> str:
    """A sentence as answering quotes it: numeric citation brackets removed, whitespace collapsed."""
    return re.sub(r"\s+", " ", strip_citations(sentence)).strip()


def sentence_texts(paper: Paper) -> list[str]:
    """The title (index -1), then each sentence of the abstract (0, 1, ...)."""
    return [clean(paper.title)] + [clean(s) for s in split_sentences(paper.abstract)]
