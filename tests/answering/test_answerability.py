"""The answerability decision: relevance, names, asked details, topic words and comparison sides, on the bundled
library (real retrieval, real sentence vectors) and on hand-made sources."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answering.answerability import Answerability, LibraryStats, aliases
from assistant.answering.evidence import Sentence, SentenceBank
from assistant.answering.question import analyse
from assistant.core.types import Source


@pytest.fixture
def decide(bundled_app):
    bank = SentenceBank(bundled_app.embedder.embed)
    answerability = Answerability(bundled_app.embedder.embed)
    stats = bundled_app.library_stats()

    def run(question: str, k: int = 8, mode: str | None = None):
        q = analyse(question, mode)
        hits = bundled_app.search(question, k=k)
        sources = [Source(n=i, paper_id=h.paper_id, title=h.title, abstract=h.abstract, score=h.score, relevance=h.dense)
                   for i, h in enumerate(hits, 1)]
        decision = answerability.decide(q, sources, bank.sentences(sources), stats)
        return decision, {s.n: s.title for s in sources}

    return run


@pytest.mark.parametrize("question, missing", [
    ("What learning rate and number of epochs did the NPO paper use for its TOFU experiments?",
     ["the learning rate", "the number of epochs"]),
    ("How many GPUs were used to train Megatron-Turing NLG 530B?", ["the GPUs"]),
    ("What absolute word error rate does w2v-BERT reach on LibriSpeech test-clean?", ["the absolute word error rate"]),
    ("What accuracy does MindMerger report on XNLI?", ["anything on XNLI"]),
])
def test_answerability__a_detail_the_abstracts_do_not_give_is_named(decide, question, missing):
    decision, _ = decide(question)
    assert decision.verdict == "partial" and decision.unanswered == missing
    assert decision.keep  # what the sources do say is still cited


@pytest.mark.parametrize("question", [
    "How many parameters does the language model that Microsoft and NVIDIA trained with DeepSpeed and Megatron have?",
    "What 5-shot MMLU accuracy does the DCLM-Baseline 7B model reach, and how many training tokens does it use?",
    "What Wikitext perplexity does MaskLLM achieve with 2:4 sparsity, compared with the dense model?",
])
def test_answerability__a_number_the_abstract_gives_answers(decide, question):
    decision, _ = decide(question)
    assert decision.verdict == "answer" and decision.answering  # the sentences holding the numbers are marked


def test_answerability__a_change_is_not_the_score_asked_for(decide):
    # Minitron's abstract gives an MMLU *improvement*, never the score itself.
    decision, _ = decide("What MMLU score does the Minitron 8B model reach?")
    assert decision.verdict == "partial"


@pytest.mark.parametrize("question, reason", [
    ("How do GPTQ and AWQ compare for 4-bit post-training quantization of LLMs?", "do not mention GPTQ, AWQ"),
    ("Which papers report continual pre-training of an LLM for Japanese?", "do not mention Japanese"),
    ("What does the library say about watermarking LLM outputs so that generated text can be traced later?",
     "do not cover watermarking"),
    ("best pizza dough hydration?", "nothing in the library is about this"),
])
def test_answerability__what_the_library_lacks_is_declined_with_the_reason(decide, question, reason):
    decision, _ = decide(question)
    assert decision.declined and reason in decision.reason


def test_answerability__far_weaker_papers_are_not_cited(decide):
    decision, titles = decide("What is Embedding-COrrupted (ECO) Prompts unlearning?")
    assert [titles[n] for n in decision.keep] == ["Large Language Model Unlearning via Embedding-Corrupted Prompts"]


def test_answerability__a_list_keeps_only_papers_that_carry_its_subject(decide, bundled_app):
    decision, titles = decide("Which papers evaluate on TOFU?")
    kept = [titles[n] for n in decision.keep]
    assert "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning" in kept
    assert "Holistic Evaluation of Language Models" not in kept  # an evaluation suite, but not TOFU
    abstracts = {p.title: p.abstract for p in bundled_app.library.iter_papers()}
    assert all("tofu" in abstracts[t].lower() for t in kept)


def test_answerability__a_paraphrase_in_words_the_library_lacks_is_still_answered(decide):
    # "fantasy book series" appears in no abstract; the Harry Potter paper answers it all the same.
    decision, titles = decide("Is there work that makes an open 7B chat model forget a popular fantasy book series "
                              "through roughly an hour of fine-tuning, without retraining it from scratch?")
    assert decision.verdict == "answer"
    assert any("Harry Potter" in titles[n] for n in decision.keep)


def test_answerability__compare_finds_each_side_by_name(decide):
    decision, titles = decide("compare TOFU and MUSE")
    assert decision.verdict == "answer"
    assert any(titles[n].startswith("MUSE") for n in decision.sides["MUSE"])
    decision, _ = decide("compare NPO and GPTQ")
    assert decision.verdict == "partial" and decision.sides["GPTQ"] == [] and decision.unanswered == ["anything on GPTQ"]


def test_answerability__empty_sources_decline():
    decision = Answerability().decide(analyse("What is NPO?"), [], [], LibraryStats())
    assert decision.declined and decision.reason.startswith("nothing in the library is about this")


def test_aliases__acronyms_and_their_expansions_meet():
    text = "We propose Negative Preference Optimization (NPO), unlike gradient ascent (GA) methods."
    assert aliases("NPO", text) == ["Negative Preference Optimization"]
    assert aliases("gradient ascent", text) == ["GA"]
    assert aliases("TOFU", text) == []


@pytest.mark.parametrize("passage_cosine, declined", [(0.48, False), (0.38, True)])
def test_answerability__a_full_texts_best_passage_sentence_counts_from_its_own_threshold(passage_cosine, declined):
    """A passage dilutes the one sentence asked about (chunk 0.23, sentence 0.48: answered); a stray word in one
    sentence of dozens (0.38, under min_passage_relevance) does not make an off-topic question answerable."""
    q = np.array([1.0, 0.0], dtype=np.float32)
    s = np.array([passage_cosine, (1 - passage_cosine ** 2) ** 0.5], dtype=np.float32)
    answerability = Answerability(lambda texts: np.stack([q for _ in texts]), min_relevance=0.25, min_passage_relevance=0.42)
    source = Source(n=1, paper_id="10.1/x", title="A full text", abstract="An abstract.", relevance=0.23,
                    passages=[{"page": 17, "text": "Confidence intervals were obtained by bootstrap."}])
    sentences = [Sentence(n=1, index=0, text="An abstract.", vec=np.array([0.1, 0.995], dtype=np.float32)),
                 Sentence(n=1, index=1, text="Confidence intervals were obtained by bootstrap.", vec=s, page=17, passage=0)]
    decision = answerability.decide(analyse("How were the confidence intervals computed?"), [source], sentences, LibraryStats())
    assert decision.declined is declined
    if declined:  # the reason names the chunk's similarity, the one that counted
        assert "similarity 0.23" in decision.reason
