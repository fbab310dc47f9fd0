"""Plain data types shared by every layer: papers, chunks, search hits, skipped entries.

Nothing here imports anything else from the project, so readers, the store,
retrieval and answering can all speak in these terms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

# The one phrase used to decline, shared by prompts, code and tests.
DECLINE_PHRASE = "The indexed papers do not answer this."


@dataclass
class Paper:
    """One citable paper: the unit a user sees and cites."""

    paper_id: str
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    date: str = ""
    url: str = ""
    categories: list[str] = field(default_factory=list)
    arxiv_id: str = ""
    source: str = ""  # file (and line) the paper was read from
    # Full text (a PDF): the DOI, the stored copy of the file that the page serves, its page count, the sha1 of
    # its bytes (an unchanged file is not read again), its reference list (kept on the record, never chunked).
    doi: str = ""
    pdf: str = ""
    pages: int = 0
    file_hash: str = ""
    references: list[str] = field(default_factory=list)
    # The body as read, page by page: chunked at ingest and stored only as chunks, never on the paper record.
    body: list["Passage"] = field(default_factory=list, repr=False)

    @property
    def has_full_text(self) -> bool:
        return self.pages > 0

    def richness(self) -> tuple[int, int, int]:
        """How much this record knows; used to keep the richest of duplicates (a full text beats any abstract)."""
        filled = sum(bool(v) for v in (self.authors, self.date, self.url, self.categories, self.arxiv_id))
        return (int(self.has_full_text), filled, len(self.abstract))

    def to_dict(self) -> dict:
        """The record as JSON: everything but the body (which lives in the chunks)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "body"}


def _plain(value):
    return list(value) if isinstance(value, list) else value


@dataclass
class Passage:
    """A block of a paper's body: its 1-based page, section heading ("Results > …"), kind ("text" or
    "caption") and text. Retrieval returns a paper's best passages; answers cite them by page."""

    page: int
    section: str
    text: str
    kind: str = "text"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Skipped:
    """An input entry that could not be read, with where and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    """What a reader returns for one file."""

    papers: list[Paper] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # the first of a file's skipped entries (readers keep 100)
    entries: int = 0  # entries seen, read or skipped
    skipped_more: int = 0  # skipped entries beyond those listed in ``skipped``: counted, not kept

    @property
    def skipped_count(self) -> int:
        return len(self.skipped) + self.skipped_more


def chunk_id(paper_id: str, index: int) -> str:
    """The id of a paper's index-th chunk. Search relies on this form: it reads the paper from the id."""
    return f"{paper_id}#{index}"


def paper_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


@dataclass
class Chunk:
    """A piece of one abstract, the unit retrieval scores."""

    chunk_id: str
    paper_id: str
    index: int
    text: str  # the abstract sentences in this chunk, or a passage of the body
    title: str
    page: int | None = None  # body chunks: the page (a chunk never spans two pages), section and kind
    section: str = ""
    kind: str = ""

    @property
    def embed_text(self) -> str:
        # An abstract's chunk is embedded with its title so each piece knows its paper. A passage of a full
        # text is embedded alone: its paper is known by its abstract's chunks, and a title repeated on each of
        # a paper's 100-300 passages would be a fifth of all the tokens an ingest embeds (eval/RESULTS.md).
        return self.text if self.page is not None else f"{self.title}. {self.text}"


@dataclass
class Hit:
    """One paper found by a search, with its best chunks."""

    paper_id: str
    title: str
    score: float
    chunks: list[str] = field(default_factory=list)
    abstract: str = ""
    ranks: dict[str, int] = field(default_factory=dict)  # rank per retriever, for explanations
    dense: float | None = None  # best chunk cosine similarity to the query
    bm25: float | None = None  # BM25 score (paper row, or best chunk at the chunk unit)
    authors: list[str] = field(default_factory=list)
    date: str = ""
    url: str = ""
    source: str = ""  # the file the paper was read from
    # Full-text papers: the best passages for the query, best first ({chunk_id, page, section, kind, text, score,
    # dense}), and the stored PDF with its page count.
    passages: list[dict] = field(default_factory=list)
    pdf: str = ""
    pages: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Source:
    """One numbered paper an answer may cite. ``n`` is its citation number, stable from retrieval to display."""

    n: int
    paper_id: str
    title: str
    abstract: str
    score: float = 0.0  # the retriever's fused score: orders sources, no fixed scale
    relevance: float | None = None  # cosine similarity to the question: the scale shown to users
    authors: list[str] = field(default_factory=list)
    date: str = ""
    url: str = ""
    passages: list[dict] = field(default_factory=list)  # full text: the retrieved passages ({page, section, kind, text})
    pdf: str = ""  # the stored PDF the page serves, for full-text papers
    pages: int = 0


@dataclass
class Answer:
    """The answer JSON contract (``--json``, the chat page's /ask, the eval harness, saved conversations).

    ``answerability`` is "answer", "partial" (``unanswered_parts`` says what the
    sources do not give) or "decline" (``declined`` is True and
    ``decline_reason`` says why). Each citation is ``{n, paper_id, title,
    supported, support, evidence}``: ``evidence`` is the source sentence the
    verifier aligned the citing sentence(s) to, ``support`` its score in [0, 1]. For a full-text paper a
    citation also carries ``page`` and ``section`` (where ``evidence`` is in the PDF; None and "" for an
    abstract) and ``passages``: every evidence sentence the answer's claims citing it rest on, best first
    (``{evidence, page, section, support}``); the answer's marks then read ``[n, p. N]``. ``fallback`` is set
    when an LLM's answer failed the check and the extractive answer is shown instead (answering/guard.py).

    ``claims`` has one entry per answer sentence that cites something, in the answer's order:
    ``{text, cited: [n…], supported, support, evidence: [{n, text, page, section, support}]}``, where each
    evidence entry is the source sentence that citation of the claim rests on (``page`` and ``section`` for a
    full text's passage, None and "" for an abstract). Two claims citing one paper may rest on two of its
    sentences; ``citations`` keeps each paper's best. Answers saved before it was added have no ``claims``.
    """

    question: str
    answer: str
    citations: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    backend: str = ""
    model: str = ""
    mode: str = "answer"
    declined: bool = False
    decline_reason: str = ""
    answerability: str = "answer"
    unanswered_parts: list[str] = field(default_factory=list)
    standalone_question: str = ""
    timings: dict = field(default_factory=dict)
    # An LLM backend's answer that failed the check and was replaced by the extractive one:
    # {"from": "llm", "reason", "notice" (the line shown above the answer), "text" (what the model wrote)}.
    fallback: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)
