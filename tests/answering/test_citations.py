"""Citation marks: parsing every bracket form, dropping numbers with no source, sentences with their citations.

Whether a cited sentence is supported is tested with the verifier (test_verify.py)."""

from __future__ import annotations

import pytest

from assistant.answering.citations import answer_sentences, parse_citations, remove_unknown

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A claim [1].", [1]),
        ("A claim [1, 3] and another [2].", [1, 3, 2]),
        ("Ranges [2-4] work.", [2, 3, 4]),
        ("En dash ranges [1–3] work.", [1, 2, 3]),
        ("Mixed [5, 1-2] and repeats [1].", [5, 1, 2]),
        ("Not citations: [CLS], [a], [].", []),
    ],
)
def test_citations__parses_single_lists_and_ranges(text, expected):
    assert parse_citations(text) == expected


def test_citations__drops_numbers_with_no_source_and_tidies_the_gap():
    text, dropped = remove_unknown("NPO avoids collapse [1, 7]. TOFU has fictitious authors [7]. Done [9-10].", {1, 2, 3})
    assert dropped == [7, 9, 10]
    assert text == "NPO avoids collapse [1]. TOFU has fictitious authors. Done."


def test_citations__keeps_the_writers_own_form_when_nothing_is_dropped():
    assert remove_unknown("A [1-3] and B [2, 3].", {1, 2, 3}) == ("A [1-3] and B [2, 3].", [])


def test_citations__citation_after_full_stop_belongs_to_the_previous_sentence():
    assert answer_sentences("TOFU is a benchmark of fictitious author profiles. [2] Nothing else.") == [
        "TOFU is a benchmark of fictitious author profiles. [2]", "Nothing else."]
    assert answer_sentences("On NPO: it avoids collapse [1].\n\nOn GA: it collapses [2].") == [
        "On NPO: it avoids collapse [1].", "On GA: it collapses [2]."]
