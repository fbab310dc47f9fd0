"""Sentence-aligned chunking that fits the embedding model's window, title included.

Tokens are counted with the embedding model's own tokenizer (injected as a
``count_tokens`` function), because a chunk that overflows the window is
silently truncated by the model and its tail never gets embedded.
"""

from __future__ import annotations

from typing import Callable

from assistant.core.text import split_sentences
from assistant.core.types import Chunk, Paper, chunk_id


def _split_long(sentence: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Cut a sentence longer than the budget at word boundaries."""
    pieces, current = [], []
    for word in sentence.split(" "):
        trial = " ".join(current + [word])
        if current and count(trial) > budget:
            pieces.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_paper(
    paper: Paper,
    count_tokens: Callable[[str], int],
    max_tokens: int = 256,
    target_tokens: int | None = None,
) -> list[Chunk]:
    """Pack whole sentences into chunks whose ``title. text`` fits ``max_tokens``.

    ``count_tokens`` counts with special tokens (as the model sees a text), so
    the budget for abstract text is the window less the title and the specials.
    ``target_tokens`` (default: the whole window) lets chunks be smaller.
    """
    specials = count_tokens("")  # [CLS] [SEP] for BERT-style tokenizers
    title_cost = count_tokens(f"{paper.title}.") - specials
    window = min(max_tokens, target_tokens or max_tokens)
    budget = max(32, window - specials - title_cost)

    def cost(text: str) -> int:
        return count_tokens(text) - specials

    units: list[tuple[str, int]] = []
    for sentence in split_sentences(paper.abstract):
        n = cost(sentence)
        if n > budget:
            units.extend((p, cost(p)) for p in _split_long(sentence, budget, cost))
        else:
            units.append((sentence, n))

    texts: list[str] = []
    current: list[str] = []
    used = 0
    for sentence, n in units:
        if current and used + n > budget:
            texts.append(" ".join(current))
            current, used = [], 0
        current.append(sentence)
        used += n
    if current:
        texts.append(" ".join(current))
    if not texts:  # a paper with an empty abstract is still findable by its title
        texts = [""]
    return [
        Chunk(chunk_id=chunk_id(paper.paper_id, i), paper_id=paper.paper_id, index=i, text=t, title=paper.title)
        for i, t in enumerate(texts)
    ]
