"""What reading one PDF gives: the document, its pages and blocks, and the one error type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from assistant.core.errors import UserError


class PdfError(UserError):
    """A PDF that cannot be read; ``str(exc)`` is one line naming the file and what is wrong with it."""


@dataclass
class PdfBlock:
    """A paragraph of body text (or a figure or table legend) under its section heading."""

    section: str  # "Results > Design and validation of ..." (top heading > sub-heading); "" before any
    text: str
    kind: str = "text"  # "text" or "caption"


@dataclass
class PdfPage:
    number: int  # 1-based, as a reader counts pages in a viewer
    blocks: list[PdfBlock] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


@dataclass
class PdfDocument:
    """A paper read from a PDF: front matter, the body page by page, the reference list apart."""

    path: str
    title: str
    authors: list[str]
    year: int | None
    doi: str  # lower-case, without a resolver prefix ("10.1186/s12915-024-01918-w"); "" if none
    arxiv_id: str  # without version ("2401.01234"); "" if none
    abstract: str
    pages: list[PdfPage]  # every page of the file, empty ones included, so pages[n - 1].number == n
    references: list[str]  # one entry a string, in the order printed; never part of pages
    page_count: int = 0
    sections: list[str] = field(default_factory=list)  # the headings found, in order
    warnings: list[str] = field(default_factory=list)  # pages without text and the like

    @property
    def text(self) -> str:
        """The whole body, pages separated by blank lines (no front matter, no references)."""
        return "\n\n".join(p.text for p in self.pages if p.blocks)

    def to_dict(self) -> dict:
        return asdict(self)
