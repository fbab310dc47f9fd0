"""Tests for ingest.normalize: text clean-up, stable ids, merging duplicates."""

from __future__ import annotations

import hashlib

import pytest

from assistant.core.types import Paper
from ingest.normalize import (
    canonical_arxiv_id,
    dedupe,
    normalize_text,
    normalize_title,
    paper_id_for,
)


def test_normalize_text__applies_nfkc_and_collapses_whitespace():
    # "ﬁ" is a ligature and U+00A0 a no-break space; NFKC folds both.
    assert normalize_text("  Eﬃcient\u00a0 \n\tﬁne-tuning  ") == "Efficient fine-tuning"


def test_normalize_text__strips_control_and_invisible_characters():
    assert normalize_text("Lan\x00guage\x07 mo\u200bdels\u00ad\x1b") == "Language models"


def test_normalize_text__empty_and_none_give_empty_string():
    assert normalize_text(None) == ""
    assert normalize_text(" \n ") == ""


def test_normalize_title__ignores_case_and_punctuation():
    assert normalize_title("Pre-Training: Is It Needed?") == normalize_title("pretraining is it needed")
    assert normalize_title("Foundation Models -- A Survey") == "foundation models a survey"


@pytest.mark.parametrize(
    "given",
    [
        "2107.13586",
        "2107.13586v2",
        "arXiv:2107.13586v3",
        "https://arxiv.org/abs/2107.13586v1",
        "http://arxiv.org/pdf/2107.13586v2.pdf",
        " ARXIV:2107.13586 ",
    ],
)
def test_paper_id_for__uses_bare_arxiv_id_without_version_or_prefix(given):
    assert paper_id_for("Any title", given) == "2107.13586"


def test_canonical_arxiv_id__accepts_old_style_ids_and_rejects_non_ids():
    assert canonical_arxiv_id("hep-th/9901001v2") == "hep-th/9901001"
    assert canonical_arxiv_id("10.1145/3560815") == ""  # a DOI, not an arXiv id
    assert canonical_arxiv_id("") == ""


def test_paper_id_for__hashes_normalised_title_when_no_arxiv_id():
    expected = "t-" + hashlib.sha1(b"large language models as data preprocessors").hexdigest()[:16]
    assert paper_id_for("Large Language Models as Data Preprocessors", None) == expected
    # Same paper, different punctuation, spacing and case: same id.
    assert paper_id_for("  large language models, as data preprocessors ", "") == expected
    assert paper_id_for("Large Language Models as Data Preprocessors", "not-an-id") == expected


def _paper(title: str, abstract: str = "An abstract.", **fields) -> Paper:
    return Paper(paper_id=paper_id_for(title, fields.get("arxiv_id")), title=title, abstract=abstract, **fields)


def test_dedupe__keeps_first_seen_order_and_counts_duplicates():
    papers = [_paper("B paper"), _paper("A paper"), _paper("B paper"), _paper("C paper"), _paper("A paper")]
    unique, merged = dedupe(papers)
    assert [p.title for p in unique] == ["B paper", "A paper", "C paper"]
    assert merged == 2


def test_dedupe__keeps_richest_record_and_fills_gaps_from_others():
    bare = _paper("Shared Title", "Short abstract.", source="a.txt:3", date="2024-01-01")
    rich = _paper("Shared Title", "A much longer abstract.", source="b.json:9", authors=["Ann"], url="http://x")
    unique, merged = dedupe([bare, rich])
    assert merged == 1
    (paper,) = unique
    assert paper.source == "b.json:9"
    assert paper.abstract == "A much longer abstract."
    assert paper.authors == ["Ann"]
    assert paper.date == "2024-01-01"  # filled in from the poorer record


def test_dedupe__merges_title_hash_record_into_arxiv_record_of_same_title():
    from_dump = _paper("Synthetic continued pretraining", source="dump.txt:5")
    from_arxiv = _paper("Synthetic Continued Pretraining", arxiv_id="2409.07431", source="arxiv.jsonl:1")
    unique, merged = dedupe([from_dump, from_arxiv])
    assert merged == 1
    assert unique[0].paper_id == "2409.07431"


def test_dedupe__keeps_different_arxiv_ids_with_same_title_apart():
    one = _paper("A Survey of Large Language Models", arxiv_id="2303.18223")
    other = _paper("A Survey of Large Language Models", arxiv_id="2312.03863")
    unique, merged = dedupe([one, other])
    assert merged == 0
    assert [p.paper_id for p in unique] == ["2303.18223", "2312.03863"]
