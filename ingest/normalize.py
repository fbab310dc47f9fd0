"""Text normalisation, stable paper ids and de-duplication of papers.

Every reader passes titles and abstracts through `normalize_text` and sets
`Paper.paper_id` with `paper_id_for`, so the same paper read from two files (or
two formats) gets the same id and `dedupe` can store it once. A PDF and an
abstract-dump entry of the same paper (same arXiv id or DOI, or the same
normalised title) merge into one paper, the full text winning.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from assistant.core.types import Paper

# Control and invisible format characters that survive NFKC and would otherwise
# end up in embeddings and prompts: C0/C1 controls that are not whitespace, soft
# hyphen, zero-width characters, bidi overrides and the BOM. Whitespace controls
# (tab, newline, ...) are left to the whitespace rule, so "a\tb" becomes "a b".
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# What real PDFs (and JSON "\\ud835" escapes) bring that no text should carry: lone surrogates (half of a
# character outside the BMP; tokenizers refuse them), private-use glyphs (a font's own symbols, meaningless
# as text), noncharacters and the replacement character. Math alphanumerics (𝑟, 𝜏) are not here: NFKC turns
# them into plain letters first.
_UNUSABLE = re.compile("[\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff\ufdd0-\ufdef\ufffe\uffff\ufffd]")
_SPACE = re.compile(r"\s+")
_LOOSE_MARK = re.compile("(?<=[A-Za-z]) ([\u0300-\u036f])")

# arXiv identifiers: new style 2101.00001 (4 or 5 digits after the dot) and old
# style hep-th/9901001 (archive, optional subject class, 7 digits).
_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z][a-z\-]*(?:\.[A-Za-z]{2})?/\d{7}"
_ARXIV_ID = re.compile(
    rf"^(?:arxiv:)?(?:(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)?"
    rf"(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?(?:\.pdf)?/?$",
    re.IGNORECASE,
)


def normalize_text(s: str | None) -> str:
    """NFKC, drop control, invisible and unusable characters (lone surrogates, private use), collapse
    whitespace, strip."""
    if not s:
        return ""
    s = unicodedata.normalize("NFKC", s)
    s = _UNUSABLE.sub("", _INVISIBLE.sub("", s))
    if _LOOSE_MARK.search(s):
        # A spacing accent after its letter ("A˚", as PDFs set Å) becomes " ̊" under NFKC: put it back on the letter.
        s = unicodedata.normalize("NFC", _LOOSE_MARK.sub(r"\1", s))
    # A regex rather than " ".join(s.split()): split() would build one string
    # object per word, which for a multi-megabyte field costs ~10x its size.
    return _SPACE.sub(" ", s).strip()


def normalize_title(s: str | None) -> str:
    """The form of a title used for hashing and matching: case and punctuation free.

    Punctuation is deleted rather than replaced by a space so that
    "Pre-training" and "Pretraining" hash alike.
    """
    s = normalize_text(s).casefold()
    s = "".join(ch for ch in s if not unicodedata.category(ch).startswith("P"))
    return _SPACE.sub(" ", s).strip()


def canonical_arxiv_id(s: str | None) -> str:
    """The bare arXiv id in `s` ("arXiv:2101.00001v2", an abs/pdf URL, ...), or "".

    The version suffix is dropped: v1 and v2 of a paper are one citable paper.
    """
    if not s:
        return ""
    m = _ARXIV_ID.match(s.strip())
    if not m:
        return ""
    return m.group("id")


_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)


def canonical_doi(s: str | None) -> str:
    """A DOI as ids use it: lower-case, without a resolver prefix ("10.1186/s12915-024-01918-w"), or ""."""
    doi = re.sub(r"^(?:https?://)?(?:dx\.)?doi\.org/|^doi:\s*", "", (s or "").strip(), flags=re.IGNORECASE).lower()
    return doi if re.match(r"^10\.\d{4,9}/\S+$", doi) else ""


def paper_id_for(title: str, arxiv_id: str | None = None, doi: str | None = None) -> str:
    """Stable id: the arXiv id when known (an arXiv DOI gives it too), else the DOI (lower-case, "#" escaped:
    ids use "#" for chunks), else `t-` + 16 hex of sha1(normalised title)."""
    canonical = canonical_arxiv_id(arxiv_id)
    doi = canonical_doi(doi)
    if not canonical and doi and (m := _ARXIV_DOI.match(doi)):
        canonical = canonical_arxiv_id(m.group(1))
    if canonical:
        return canonical
    if doi:
        return doi.replace("#", "%23")
    digest = hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()
    return "t-" + digest[:16]


def _merge(records: list[Paper]) -> Paper:
    """One paper from several records of it: the richest (a full text first), gaps filled from the rest."""
    # max() keeps the first of equals, so ties go to the record seen first.
    best = max(records, key=lambda p: p.richness())
    merged = replace(best, authors=list(best.authors), categories=list(best.categories))
    for other in records:
        if other is best:
            continue
        for name in ("authors", "date", "url", "categories", "arxiv_id", "abstract", "doi"):
            if not getattr(merged, name) and getattr(other, name):
                setattr(merged, name, getattr(other, name))
    if merged.arxiv_id:
        merged.paper_id = canonical_arxiv_id(merged.arxiv_id) or merged.paper_id
    return merged


def dedupe(papers: Iterable[Paper]) -> tuple[list[Paper], int]:
    """Merge records of the same paper; return unique papers (first-seen order) and duplicates merged.

    Two records are the same paper when their paper_ids match, or when their
    normalised titles match and at most one of them carries an arXiv id: a
    daily-papers entry (title-hash id) and the arXiv record of the same paper
    then become one, while two different arXiv ids that share a title (common
    for titles such as "A Survey of Large Language Models") stay apart.
    """
    groups: list[list[Paper]] = []
    by_id: dict[str, int] = {}
    by_title: dict[str, list[int]] = {}
    group_arxiv: list[str] = []
    total = 0
    for paper in papers:
        total += 1
        title_key = normalize_title(paper.title)
        own_arxiv = canonical_arxiv_id(paper.arxiv_id)
        index = by_id.get(paper.paper_id)
        if index is None:
            for candidate in by_title.get(title_key, []):
                if not own_arxiv or not group_arxiv[candidate]:
                    index = candidate
                    break
        if index is None:
            index = len(groups)
            groups.append([])
            group_arxiv.append("")
            by_title.setdefault(title_key, []).append(index)
        groups[index].append(paper)
        by_id.setdefault(paper.paper_id, index)
        if own_arxiv and not group_arxiv[index]:
            group_arxiv[index] = own_arxiv
            by_id.setdefault(own_arxiv, index)
    unique = [group[0] if len(group) == 1 else _merge(group) for group in groups]
    return unique, total - len(unique)
