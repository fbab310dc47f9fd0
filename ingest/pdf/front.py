"""The front matter of a paper: title, authors, year, DOI, arXiv id and abstract.

Read from the first page's lines (the largest type near the top is the title; the lines
after it in the next size are the authors; the abstract runs from an "Abstract" label to
the next heading, "Keywords" or a change of type size) and from the PDF's metadata, which
is trusted for the title only when it looks like one, and for the DOI when the publisher
stored it (Springer's /doi entry). The lines that are front matter are reported, so the
body leaves them out.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field

from ingest.normalize import normalize_title
from ingest.pdf.clean import is_heading, join_lines, normalize
from ingest.pdf.layout import Line, PageLayout

DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
ARXIV = re.compile(r"arxiv\s*[:.]?\s*((\d{4}\.\d{4,5})|([a-z-]+(\.[A-Z]{2})?/\d{7}))(v\d+)?", re.IGNORECASE)
# "(2024)" as in "BMC Biology (2024) 22:119", "2023;12" as in "eLife 2023;12:RP91357", "© The Author(s) 2023"
_YEAR_CITED = re.compile(
    r"\((19|20)(\d{2})\)|\b(19|20)(\d{2})\s*;\s*\d+|©\s*(the author\(s\)\s*)?(19|20)(\d{2})", re.IGNORECASE
)
_YEAR = re.compile(r"\b(19[5-9]\d|20\d{2})\b")
_ABSTRACT = re.compile(r"^(abstract|summary)\b[.:—–-]?\s*", re.IGNORECASE)
_ABSTRACT_END = re.compile(
    r"^(keywords?|key\s*words|index terms|subjects?|introduction|1\.?\s+introduction)\b", re.IGNORECASE
)
_BODY_OPENS = re.compile(r"^(\d\.?\s+)?(introduction|background)$", re.IGNORECASE)
_KEYWORDS = re.compile(r"^(keywords?|key\s*words|index terms|subjects?)\b", re.IGNORECASE)
_AFFILIATION = re.compile(
    r"^\d+\s*[A-Z]|universit|department|institute|laborator|school of|college|hospital|centre|center for",
    re.IGNORECASE,
)
_MARKS = re.compile(r"(?<=[^\W\d_])[\d*†‡§¶#‖]+(?:,[\d*†‡§¶#‖]+)*(?=[\s,]|$)")
_BAD_META_TITLE = re.compile(r"^(untitled|microsoft word|document\d*|.*\.(docx?|tex|dvi|pdf|indd))", re.IGNORECASE)


@dataclass
class Front:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str = ""
    arxiv_id: str = ""
    abstract: str = ""
    skip: set[int] = field(default_factory=set)  # id() of page-one lines that are front matter


def clean_doi(raw: str) -> str:
    doi = raw.strip().rstrip(".,;:)]}>'\"").lower()
    return re.sub(r"^(https?://)?(dx\.)?doi\.org/", "", doi)


def _title(lines: list[Line], layout: PageLayout, meta_title: str, vocab: Counter[str],
           body: float = 0.0) -> tuple[str, list[Line]]:
    """The title as printed and its lines: the metadata's title where the page sets it as a title (bold or
    larger than the body), else the largest type near the top, else the metadata's title alone."""
    meta = _meta_title(meta_title)
    if meta:
        run = _matching_run(lines, meta, vocab)
        if run and (all(ln.bold for ln in run) or run[0].size >= 1.2 * body):
            return join_lines([ln.text for ln in run], vocab), run
    upper = [ln for ln in lines if ln.top < layout.height * 0.6 and len(normalize(ln.text)) > 3]
    if upper:
        biggest = max(ln.size for ln in upper)
        first = next(k for k, ln in enumerate(lines) if ln in upper and ln.size == biggest)
        picked = [lines[first]]
        for ln in lines[first + 1 :]:
            prev = picked[-1]
            if abs(ln.size - biggest) > 0.05 * biggest or ln.top - prev.bottom > ln.size:
                break
            picked.append(ln)
        text = join_lines([ln.text for ln in picked], vocab)
        # Set larger than the rest of the page, or, as in many preprints, in bold at the body's size or above
        # ("REV1 Coordinates a Multi-Faceted …" in 12 pt bold over 11 pt text).
        larger = biggest > 1.1 * min(ln.size for ln in lines)
        bold_heading = all(ln.bold for ln in picked) and len(text.split()) >= 4
        if len(text.split()) >= 2 and (larger or bold_heading):
            return text, picked
    meta = _meta_title(meta_title)
    return (meta, []) if meta else ("", [])


def _matching_run(lines: list[Line], title: str, vocab: Counter[str]) -> list[Line]:
    """Up to five consecutive lines of one size that read as ``title`` (the run that reads most like it:
    a run one line short of the title is already close), or []."""
    from rapidfuzz import fuzz

    target = normalize_title(title)
    for start, first in enumerate(lines):
        best: tuple[float, int] = (0.0, 0)
        for end in range(start + 1, min(start + 5, len(lines)) + 1):
            if abs(lines[end - 1].size - first.size) > 0.05 * first.size:
                break
            score = fuzz.ratio(normalize_title(join_lines([x.text for x in lines[start:end]], vocab)), target)
            best = max(best, (score, end))
        if best[0] >= 90:
            return lines[start:best[1]]
    return []


def _meta_title(raw: str) -> str:
    """The PDF's metadata title when it looks like a paper's title ("&lambda;" and the like unescaped), else ""."""
    meta = normalize(html.unescape(raw or ""))
    return meta if meta and not _BAD_META_TITLE.match(meta) and len(meta.split()) >= 2 else ""


def _same_title(a: str, b: str) -> bool:
    from rapidfuzz import fuzz

    return bool(a and b) and fuzz.ratio(normalize_title(a), normalize_title(b)) >= 90


def _authors(lines: list[Line], after: int) -> tuple[list[str], list[Line]]:
    """Names from the lines after the title, in their own size; superscript marks removed."""
    picked: list[Line] = []
    for ln in lines[after:]:
        text = normalize(ln.text)
        if picked and (abs(ln.size - picked[0].size) > 0.05 * picked[0].size or ln.top - picked[-1].bottom > ln.size):
            break
        if not picked and (_AFFILIATION.search(text) or _ABSTRACT.match(text)):
            break
        # An author line has names (two capitalised words) and commas, "and" or affiliation marks.
        looks_like_names = re.search(r"[A-Z][\w'’-]+\s+[A-Z]", text) and re.search(r",| and |[^\W\d_][\d*†‡]", text)
        if not picked and not looks_like_names:
            continue
        picked.append(ln)
        if len(picked) >= 6:
            break
    names: list[str] = []
    for part in re.split(r",\s*|\s+and\s+|\s*&\s*|;\s*", _MARKS.sub("", normalize(" ".join(ln.unmarked for ln in picked)))):
        name = part.strip(" *†‡,")
        words = name.split()
        capitalised = words and words[0][:1].isupper() and words[-1][:1].isupper()
        if 2 <= len(words) <= 6 and capitalised and not _AFFILIATION.search(name):
            names.append(name)
    return names, picked


def _abstract(lines: list[Line], body: float, vocab: Counter[str]) -> tuple[str, list[Line]]:
    start = next((k for k, ln in enumerate(lines) if _ABSTRACT.match(normalize(ln.text))), None)
    if start is None:
        return "", []
    first = normalize(lines[start].text)
    label_only = bool(_ABSTRACT.fullmatch(first))
    picked: list[Line] = [] if label_only else [lines[start]]
    texts: list[str] = [] if label_only else [_ABSTRACT.sub("", first, count=1)]
    size = None if label_only else lines[start].size
    for ln in lines[start + 1 :]:
        text = normalize(ln.text)
        if _ABSTRACT_END.match(text) or (ln.bold and is_heading(ln, body)):
            break
        if size is not None and abs(ln.size - size) > 0.12 * size:
            break
        size = size or ln.size
        picked.append(ln)
        texts.append(text)
    return join_lines(texts, vocab), ([lines[start]] if label_only else []) + picked


def _year(text: str, meta_date: str) -> int | None:
    m = _YEAR_CITED.search(text)
    if m:
        groups = [g for g in m.groups() if g and g.isdigit()]
        return int(groups[0] + groups[1])
    years = _YEAR.findall(text)
    if years:
        return int(max(set(years), key=years.count))
    m = re.search(r"(19|20)\d{2}", meta_date or "")
    return int(m.group(0)) if m else None


def read_front(
    pages: list[PageLayout], running: list[Line], metadata: dict[str, str], body: float, vocab: Counter[str]
) -> Front:
    """The front matter from the first pages' lines (in reading order) and page one's running header and footer.

    The title page is page one, unless page one is a cover (a repository's cover sheet, a journal's graphical
    abstract): then page two is, when its title is the one the metadata gives, or when page one yields no title
    of four words or more and page two does. An abstract not on the title page is looked for on the next page.
    """
    front = _read_page(pages[0], running, metadata, body, vocab)
    if len(pages) < 2:
        return front
    meta = _meta_title(metadata.get("Title", ""))
    cover = (meta and not _same_title(front.title, meta)) or len(front.title.split()) < 4
    if cover:
        second = _read_page(pages[1], running, metadata, body, vocab)
        found = _same_title(second.title, meta) if meta else len(second.title.split()) >= 4
        if found:
            # The identifiers stay those read from page one and the metadata (a cover sheet prints the DOI).
            second.doi, second.arxiv_id, second.year = front.doi or second.doi, front.arxiv_id or second.arxiv_id, \
                front.year or second.year
            return second
    if not front.abstract:
        front.abstract, abstract_lines = _abstract(pages[1].lines, body, vocab)
        front.skip |= {id(ln) for ln in abstract_lines}
    return front


def _read_page(
    first: PageLayout, running: list[Line], metadata: dict[str, str], body: float, vocab: Counter[str]
) -> Front:
    """The front matter from one page's lines (in reading order) and its running header and footer."""
    lines = first.lines
    page_text = "\n".join(normalize(ln.text) for ln in running + lines)
    front = Front()
    front.title, title_lines = _title(lines, first, metadata.get("Title", ""), vocab, body)
    after = lines.index(title_lines[-1]) + 1 if title_lines else 0
    front.authors, author_lines = _authors(lines, after) if title_lines else ([], [])
    if not front.authors and metadata.get("Author"):
        front.authors = [a.strip() for a in re.split(r";|,| and ", metadata["Author"]) if a.strip()]
    front.abstract, abstract_lines = _abstract(lines, body, vocab)
    meta_doi = metadata.get("doi", "") or next(iter(DOI.findall(metadata.get("Subject", ""))), "")
    text_doi = DOI.search(page_text)
    front.doi = clean_doi(meta_doi or (text_doi.group(1) if text_doi else ""))
    stamp = " ".join(first.rotated)
    arxiv = ARXIV.search(stamp) or ARXIV.search(page_text) or re.search(r"10\.48550/arxiv\.(\d{4}\.\d{4,5})", front.doi)
    front.arxiv_id = arxiv.group(1) if arxiv else ""
    front.year = _year(page_text, metadata.get("CreationDate", ""))
    # The body of page one starts after the abstract; with no abstract found, after the authors.
    marked = title_lines + author_lines + abstract_lines
    if marked:
        last = max(lines.index(ln) for ln in marked)
        front.skip = {id(ln) for ln in lines[: last + 1]}
        # Between the abstract and the first heading sit keywords, affiliations and notes.
        for ln in lines[last + 1 :]:
            text = normalize(ln.text)
            if (is_heading(ln, body) and not _KEYWORDS.match(text)) or _BODY_OPENS.match(text):
                break  # a heading; or "Introduction" in plain type, which a page without bold headings has
            front.skip.add(id(ln))
    return front


