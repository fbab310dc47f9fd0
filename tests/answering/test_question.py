"""Question analysis: modes, comparison sides, names, asked details, topic phrases."""

from __future__ import annotations

import pytest

from assistant.answering.question import analyse, asked_facets, entities, split_comparison, topic_phrase


@pytest.mark.parametrize(
    "question, sides",
    [
        ("compare NPO and gradient ascent", ["NPO", "gradient ascent"]),
        ("NPO vs. gradient ascent?", ["NPO", "gradient ascent"]),
        ("What is the difference between LoRA and full fine-tuning?", ["LoRA", "full fine-tuning"]),
        ("How does ELECTRA differ from BERT?", ["ELECTRA", "BERT"]),
        ("WECHSEL vs OFA: how do they initialize embeddings?", ["WECHSEL", "OFA"]),
        ("Both Min-K% Prob and Lastde rely on token probabilities. How do they differ?", ["Min-K% Prob", "Lastde"]),
        ("What is the difference between LLM-Pruner and GBLM-Pruner in how they use gradients?", ["LLM-Pruner", "GBLM-Pruner"]),
        ("what does the library say about continual pre-training?", []),
    ],
)
def test_split_comparison__finds_both_sides(question, sides):
    assert split_comparison(question) == sides


def test_analyse__detects_mode_and_topic():
    assert analyse("compare TOFU and MUSE").mode == "compare"
    summary = analyse("What does the library say about watermarking LLM outputs so that text can be traced?")
    assert summary.mode == "summarize" and summary.topic_phrase == "watermarking LLM outputs"
    assert analyse("Which papers evaluate on TOFU?").is_list
    assert analyse("compare TOFU and MUSE", mode="answer").sides == []


@pytest.mark.parametrize(
    "question, phrases, words",
    [
        ("What learning rate and batch size did DMaS-LLaMa-Lite use?", ["learning rate", "batch size"],
         [["learn", "rate"], ["batch", "size"]]),
        ("How many GPUs were used to train MT-NLG, and for how many days?", ["GPUs", "days"], [["gpus"], ["day"]]),
        ("What absolute word error rate does w2v-BERT reach?", ["absolute word error rate"], [["word", "error", "rate"]]),
        ("What share of the performance gap does proxy-tuning close?", ["share of performance gap"],
         [["share", "perform", "gap"]]),
        ("Which tokens does Linguistic Entity Masking mask?", [], []),  # which tokens: kinds, not a count
        ("How does NPO avoid collapse?", [], []),
    ],
)
def test_asked_facets__finds_the_quantities_and_settings_asked_for(question, phrases, words):
    facets = asked_facets(question)
    assert [f.phrase for f in facets] == phrases
    assert [f.words for f in facets] == words


def test_asked_facets__keeps_qualifiers_whose_opposite_would_not_answer():
    (facet,) = asked_facets("What absolute word error rate does w2v-BERT reach?")
    assert facet.qualifiers == ["absolute"]


def test_entities__names_as_papers_write_them():
    assert entities("What accuracy does MindMerger report on XNLI?") == ["MindMerger", "XNLI"]
    assert entities("How many tokens of Vietnamese text were used in vi-mistral-x?") == ["Vietnamese", "vi-mistral-x"]
    assert entities("How does fine-tuning work?") == []


def test_topic_phrase__stops_where_a_clause_begins():
    assert topic_phrase("Is there a paper on detecting hallucinated statements after it has been generated?") \
        == "detecting hallucinated statements"
    assert topic_phrase("Summarize work on machine unlearning for LLMs") == "machine unlearning for LLMs"
    assert topic_phrase("What is NPO?") == ""


@pytest.mark.parametrize("question, topic", [
    ("What's known about language models for biomedical and clinical text?", "language models for biomedical and clinical text"),
    ("What do we know about how and why in-context learning works?", "how and why in-context learning works"),
    ("What does the library cover on structured pruning of LLMs?", "structured pruning of LLMs"),
])
def test_analyse__what_is_known_about_a_topic_asks_for_a_summary(question, topic):
    analysed = analyse(question)
    assert analysed.mode == "summarize" and analysed.topic == topic


def test_analyse__a_single_question_stays_an_answer():
    assert analyse("What is NPO?").mode == "answer"
