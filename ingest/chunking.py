"""Sentence-aligned chunking that fits the embedding model's window, title included.

Tokens are counted with the embedding model's own tokenizer (injected as a
``count_tokens`` function), because a chunk that overflows the window is
silently truncated by the model and its tail never gets embedded.

Two chunkers, chosen by name (``CHUNKERS``): ``llama-index`` (the default),
llama-index's ``SentenceSplitter`` given the project's sentence boundaries
(``split_sentences``, as citation checking splits them) and the embedding
model's tokenizer (never tiktoken, which would download its encodings); and
``sentences``, the hand-written packer it replaced, with which every library
was chunked before. Both pack whole sentences without overlap, so they differ
only where a sentence does not fit: the splitter fills the rest of the chunk
with its clauses, the packer starts a new chunk and cuts at words. On SciFact
they chunk 12 of 5,183 abstracts differently and score the same (eval/RESULTS.md,
"Chunking with llama-index's SentenceSplitter").

A full-text paper (a PDF) is chunked as its abstract, then its body: blocks
packed per page, section and kind, never across pages (``chunk_body``), so each
body chunk has one page to cite.
"""

from __future__ import annotations

import re
from typing import Callable

from assistant.core.errors import UserError
from assistant.core.text import split_sentences
from assistant.core.types import Chunk, Paper, Passage, chunk_id

CHUNKERS = ("llama-index", "sentences")
DEFAULT_CHUNKER = "llama-index"

# SentenceSplitter's fallback for an over-long sentence is clauses; its default pattern also
# cuts at a "." inside "0.0001" or "P = .05". Here a clause ends only at punctuation before a space.
_CLAUSE = r".+?(?:[,;:.!?](?=\s)|$)"


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
    budget, specials = _budget(paper, count_tokens, max_tokens, target_tokens)

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
    return _chunks(paper, texts)


def _budget(paper: Paper, count_tokens: Callable[[str], int], max_tokens: int,
            target_tokens: int | None, titled: bool = True) -> tuple[int, int]:
    """(tokens left for the text once the title (when ``titled``) and the specials are in, the specials' count)."""
    specials = count_tokens("")  # [CLS] [SEP] for BERT-style tokenizers
    title_cost = count_tokens(f"{paper.title}.") - specials if titled else 0
    window = min(max_tokens, target_tokens or max_tokens)
    return max(32, window - specials - title_cost), specials


def _chunks(paper: Paper, texts: list[str]) -> list[Chunk]:
    if not texts:  # a paper with an empty abstract is still findable by its title
        texts = [""]
    return [
        Chunk(chunk_id=chunk_id(paper.paper_id, i), paper_id=paper.paper_id, index=i, text=t, title=paper.title)
        for i, t in enumerate(texts)
    ]


def _sentence_spans(text: str) -> list[str]:
    """``split_sentences`` with each sentence's trailing space kept: SentenceSplitter glues its pieces with ""."""
    sentences = split_sentences(text)
    return [s + " " for s in sentences[:-1]] + sentences[-1:]


def chunk_paper_llama_index(
    paper: Paper,
    count_tokens: Callable[[str], int],
    max_tokens: int = 256,
    target_tokens: int | None = None,
    tokenize: Callable[[str], list] | None = None,
) -> list[Chunk]:
    """The same contract as ``chunk_paper``, packed by llama-index's ``SentenceSplitter``.

    Sentences are the project's (``split_sentences``, as citation checking
    splits them); a sentence longer than the budget is cut by the splitter's
    own fallbacks (clauses, then words). ``tokenize`` returns a text's tokens
    without special tokens (default: derived from ``count_tokens``); passing it
    keeps llama-index from reaching for tiktoken. No overlap, as in
    ``chunk_paper``: every sentence is embedded once.
    """
    from llama_index.core.node_parser import SentenceSplitter

    budget, specials = _budget(paper, count_tokens, max_tokens, target_tokens)
    if tokenize is None:
        def tokenize(text: str) -> list:
            return [None] * (count_tokens(text) - specials)

    splitter = SentenceSplitter(chunk_size=budget, chunk_overlap=0, tokenizer=tokenize,
                                chunking_tokenizer_fn=_sentence_spans, secondary_chunking_regex=_CLAUSE)
    text = re.sub(r"\s+", " ", paper.abstract).strip()
    return _chunks(paper, splitter.split_text(text) if text else [])


# Body passages are cut smaller than abstracts and embedded without the title (Chunk.embed_text): a passage is
# what an answer cites by page, so it holds a few sentences rather than a whole column; 160 tokens of text is
# about the 120-word window the plain dense baseline finds papers with (eval/RESULTS.md, "What a full text embeds").
BODY_TARGET_TOKENS = 160


def chunk_body(paper: Paper, count_tokens: Callable[[str], int], pieces: Callable[[str], list[str]],
               max_tokens: int = 256, start: int = 0) -> list[Chunk]:
    """The body of a full-text paper as chunks that never span two pages, each with its page, section and kind.

    Consecutive blocks of one page, section and kind are packed while they fit ``BODY_TARGET_TOKENS`` (title
    included); a longer block is cut by ``pieces`` (the chosen chunker's own packing of sentences).
    Indexes continue from ``start`` (after the abstract's chunks).
    """
    budget, specials = _budget(paper, count_tokens, max_tokens, BODY_TARGET_TOKENS, titled=False)
    out: list[tuple[Passage, str]] = []
    current: list[str] = []
    used, key, head = 0, None, None

    def flush() -> None:
        nonlocal current, used
        if current:
            out.append((head, " ".join(current)))
        current, used = [], 0

    for block in paper.body:
        text = re.sub(r"\s+", " ", block.text).strip()
        if not text:
            continue
        n = count_tokens(text) - specials
        if (block.page, block.section, block.kind) != key or used + n > budget:
            flush()
            key, head = (block.page, block.section, block.kind), block
        if n > budget:
            out += [(block, piece) for piece in pieces(text) if piece.strip()]
            key = None
            continue
        current.append(text)
        used += n
    flush()
    return [
        Chunk(chunk_id=chunk_id(paper.paper_id, start + i), paper_id=paper.paper_id, index=start + i, text=t,
              title=paper.title, page=b.page, section=b.section, kind=b.kind)
        for i, (b, t) in enumerate(out)
    ]


def make_chunker(name: str, embedder) -> Callable[..., list[Chunk]]:
    """``chunker(paper, max_tokens=...)`` for the named chunker, counting with ``embedder``'s tokenizer.

    A full-text paper's abstract is chunked as any abstract, then its body (``chunk_body``)."""
    if name == "sentences":
        def one(paper, **kw):
            return chunk_paper(paper, embedder.count_tokens, **kw)
    elif name == "llama-index":
        tokenizer = getattr(embedder, "tokenizer", None)  # a `tokenizers` Tokenizer for the local model
        tokenize = (lambda text: tokenizer.encode(text, add_special_tokens=False).ids) if tokenizer is not None else None

        def one(paper, **kw):
            return chunk_paper_llama_index(paper, embedder.count_tokens, tokenize=tokenize, **kw)
    else:
        raise UserError(f"unknown chunker {name!r}: choose one of {', '.join(CHUNKERS)}")

    def chunker(paper: Paper, max_tokens: int = 256, **kw) -> list[Chunk]:
        if not paper.body:
            return one(paper, max_tokens=max_tokens, **kw)
        chunks = one(paper, max_tokens=max_tokens, **kw) if paper.abstract.strip() else []

        def pieces(text: str) -> list[str]:
            piece_paper = Paper(paper_id=paper.paper_id, title="", abstract=text)  # a passage is embedded untitled
            return [c.text for c in one(piece_paper, max_tokens=max_tokens, target_tokens=BODY_TARGET_TOKENS)]

        return chunks + chunk_body(paper, embedder.count_tokens, pieces, max_tokens, start=len(chunks))

    return chunker
