"""Citations: parsing every bracket form, dropping numbers with no source, reference order, support checks."""

from __future__ import annotations

import pytest

from assistant.core.types import Source
from assistant.answering.citations import check_answer, lexical_support, parse_citations

SOURCES = [
    Source(1, "2402.05369", "Negative Preference Optimization",
           "Negative preference optimization treats the forget set as negative preferences and avoids the "
           "catastrophic collapse that gradient ascent suffers during unlearning.", 0.9),
    Source(2, "2401.06121", "TOFU: A Task of Fictitious Unlearning",
           "TOFU is a benchmark of two hundred fictitious author profiles for evaluating unlearning in "
           "large language models.", 0.8),
    Source(3, "2310.02238", "Who's Harry Potter?",
           "We erase knowledge of the Harry Potter books from Llama-2 by fine-tuning on generic replacements.", 0.7),
    Source(4, "p4", "Fourth", "Sparse autoencoders find interpretable features in transformer activations.", 0.6),
    Source(5, "p5", "Fifth", "Speculative decoding speeds up inference with a small draft model.", 0.5),
]


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


def test_citations__drops_numbers_with_no_source():
    check = check_answer("NPO avoids collapse [1, 7]. TOFU has fictitious authors [7]. Done [9-10].", SOURCES)
    assert check.dropped == [7, 9, 10]
    assert "[7]" not in check.text and "[1]" in check.text
    assert "authors." in check.text  # an emptied bracket leaves no " ." behind
    assert [c["n"] for c in check.citations] == [1]


def test_citations__keeps_source_numbers_and_lists_papers_in_first_citation_order():
    text = "TOFU evaluates unlearning with fictitious author profiles [2]. NPO treats the forget set as negative preferences [1]. TOFU again [2]."
    check = check_answer(text, SOURCES)
    assert [c["n"] for c in check.citations] == [2, 1]
    assert check.citations[0] == {"n": 2, "paper_id": "2401.06121", "title": "TOFU: A Task of Fictitious Unlearning", "supported": True}
    assert check.text == text and check.dropped == []


def test_citations__detects_unsupported_sentence():
    good = "Negative preference optimization avoids the collapse of gradient ascent [1]."
    bad = "Quantum annealing accelerates protein folding simulations dramatically [3]."
    check = check_answer(f"{good} {bad}", SOURCES)
    assert check.unsupported_sentences == [bad]
    flags = {c["n"]: c["supported"] for c in check.citations}
    assert flags == {1: True, 3: False}


def test_citations__paper_is_supported_if_any_sentence_citing_it_is():
    text = "Llama-2 forgets Harry Potter after fine-tuning on generic replacements [3]. It also cures diseases and flies planes [3]."
    check = check_answer(text, SOURCES)
    assert check.citations[0]["supported"] is True
    assert len(check.unsupported_sentences) == 1


def test_citations__citation_after_full_stop_counts_for_previous_sentence():
    check = check_answer("TOFU is a benchmark of fictitious author profiles. [2] Nothing else.", SOURCES)
    assert check.citations[0]["supported"] is True and check.unsupported_sentences == []


def test_citations__support_function_is_injectable():
    calls = []

    def never(sentence, abstracts):
        calls.append((sentence, abstracts))
        return 0.0

    check = check_answer("TOFU is a benchmark [2].", SOURCES, support_fn=never)
    assert check.citations[0]["supported"] is False
    sentence, abstracts = calls[0]
    assert "[2]" not in sentence and "fictitious author profiles" in abstracts[0]


def test_citations__lexical_support_uses_stems_and_ignores_stopwords():
    assert lexical_support("The models were trained on benchmarks", ["A model trains on a benchmark."]) == 1.0
    assert lexical_support("Cats chase mice", ["Dogs bark."]) == 0.0
