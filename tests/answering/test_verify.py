"""The claim verifier: quotes score high; reversals, wrong numbers and swapped entities score low; meta sentences are skipped.

Real abstracts from the bundled library, the real all-MiniLM-L6-v2 and the shipped weights.
"""

from __future__ import annotations

import json

import pytest

from assistant.answering.support_model import WEIGHTS, VerifierModel
from assistant.answering.verify import ABSENCE_PREFIX, Verifier, is_claim, parse_verdicts
from assistant.core.text import split_sentences
from assistant.core.types import DECLINE_PHRASE, Source
from tests.conftest import in_threads

NPO_TITLE = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"
NPO = (
    "Large Language Models (LLMs) often memorize sensitive, private, or copyrighted data during pre-training. "
    "LLM unlearning aims to eliminate the influence of undesirable data from the pre-trained model while preserving the "
    "model's utilities on other tasks. Several practical methods have recently been proposed for LLM unlearning, mostly "
    "based on gradient ascent (GA) on the loss of undesirable data. However, on certain unlearning tasks, these methods "
    "either fail to effectively unlearn the target data or suffer from catastrophic collapse -- a drastic degradation of "
    "the model's utilities. In this paper, we propose Negative Preference Optimization (NPO), a simple alignment-inspired "
    "method that could efficiently and effectively unlearn a target dataset. We theoretically show that the progression "
    "toward catastrophic collapse by minimizing the NPO loss is exponentially slower than GA. Through experiments on "
    "synthetic data and the benchmark TOFU dataset, we demonstrate that NPO-based methods achieve a better balance between "
    "unlearning the undesirable data and maintaining the model's utilities. We also observe that NPO-based methods generate "
    "more sensible outputs than GA-based methods, whose outputs are often gibberish. Remarkably, on TOFU, NPO-based methods "
    "are the first to achieve reasonable unlearning results in forgetting 50% (or more) of the training data, whereas "
    "existing methods already struggle with forgetting 10% of training data."
)
REWARM_TITLE = "Continual Pre-Training of Large Language Models: How to (re)warm your model?"
REWARM = (
    "Large language models (LLMs) are routinely pre-trained on billions of tokens, only to restart the process over again "
    "once new data becomes available. However, the distribution shift induced by novel data typically results in degraded "
    "performance on past data. We study the warmup phase of models pre-trained on the Pile (upstream data, 300B tokens) as "
    "we continue to pre-train on SlimPajama (downstream data, 297B tokens), following a linear warmup and cosine decay "
    "schedule. Our results show that while rewarming models first increases the loss on upstream and downstream data, in "
    "the longer run it improves the downstream performance, outperforming models trained from scratch."
)
SENTENCES = split_sentences(NPO)
BALANCE = 6  # "Through experiments on ... TOFU ..., we demonstrate that NPO-based methods achieve a better balance ..."
SOURCES = [Source(n=1, paper_id="npo", title=NPO_TITLE, abstract=NPO),
           Source(n=2, paper_id="rewarm", title=REWARM_TITLE, abstract=REWARM)]


@pytest.fixture(scope="module")
def verifier(embedder):
    return Verifier(embedder.embed)


def test_verify__a_verbatim_quote_scores_high_and_aligns_to_its_sentence(verifier):
    score = verifier.score_pair(SENTENCES[BALANCE], SENTENCES, NPO_TITLE)
    assert score.supported and score.support >= 0.7
    assert score.aligned[0] == BALANCE
    assert score.problems == []


def test_verify__a_faithful_paraphrase_is_supported(verifier):
    score = verifier.score_pair("On TOFU, NPO balances forgetting the unwanted data and keeping model utility better.",
                                SENTENCES, NPO_TITLE)
    assert score.supported, score
    assert score.aligned[0] == BALANCE


def test_verify__a_negated_quote_is_not_supported(verifier):
    reversed_ = SENTENCES[BALANCE].replace("achieve a better balance", "do not achieve a better balance")
    score = verifier.score_pair(reversed_, SENTENCES, NPO_TITLE)
    assert not score.supported and score.support < 0.3
    assert any("negation" in p for p in score.problems), score.problems


def test_verify__x_does_not_improve_y_against_x_improves_y(verifier):
    source = ["Rewarming improves the downstream performance of continually pre-trained models."]
    assert verifier.score_pair("Rewarming improves the downstream performance of continually pre-trained models.", source).supported
    score = verifier.score_pair("Rewarming does not improve the downstream performance of continually pre-trained models.", source)
    assert not score.supported
    assert any("negation differs" in p for p in score.problems), score.problems


def test_verify__a_reversed_direction_is_not_supported(verifier):
    source = ["Rewarming improves the downstream performance of continually pre-trained models."]
    score = verifier.score_pair("Rewarming worsens the downstream performance of continually pre-trained models.", source)
    assert not score.supported
    assert any(p.startswith("direction differs: worsens vs improves") for p in score.problems), score.problems


def test_verify__a_number_not_in_the_source_is_not_supported(verifier):
    wrong = SENTENCES[-1].replace("50%", "75%")
    assert verifier.score_pair(SENTENCES[-1], SENTENCES, NPO_TITLE).supported
    score = verifier.score_pair(wrong, SENTENCES, NPO_TITLE)
    assert not score.supported
    assert "number 75 not in the source" in score.problems


def test_verify__a_swapped_entity_is_not_supported(verifier):
    swapped = SENTENCES[BALANCE].replace("TOFU", "MUSE")
    score = verifier.score_pair(swapped, SENTENCES, NPO_TITLE)
    assert not score.supported
    assert any(p.startswith("entity MUSE not in the source") for p in score.problems), score.problems


def test_verify__an_unrelated_claim_scores_low(verifier):
    score = verifier.score_pair("Diffusion models generate realistic images of handwritten digits.", SENTENCES, NPO_TITLE)
    assert score.support < 0.2 and not score.supported


def test_verify__an_answer_is_cleaned_aligned_and_listed(verifier):
    answer = (f"NPO-based methods achieve a better balance between unlearning and utility on TOFU [1]. "
              f"Rewarming first increases the loss but improves downstream performance in the longer run [2][7]. "
              f"{DECLINE_PHRASE}")
    result = verifier.verify(answer, SOURCES)
    assert result.dropped == [7]
    assert "[7]" not in result.text and "[2]." in result.text
    assert [c["n"] for c in result.citations] == [1, 2]
    first, second = result.citations
    assert first["supported"] and first["evidence"] == SENTENCES[BALANCE]
    assert second["supported"] and "rewarming models first increases the loss" in second["evidence"]
    assert 0 <= first["support"] <= 1 and round(first["support"], 3) == first["support"]
    assert result.unsupported_sentences == []
    checks = result.sentences
    assert [c["cited"] for c in checks] == [[1], [2], []]
    assert checks[0]["evidence"] == [{"n": 1, "index": BALANCE, "text": SENTENCES[BALANCE]}]
    assert checks[2]["support"] is None  # the decline phrase is not a claim


def test_verify__an_uncited_claim_is_unsupported(verifier):
    result = verifier.verify("NPO achieves a better balance on TOFU [1]. LoRA is the best unlearning method.", SOURCES)
    assert result.unsupported_sentences == ["LoRA is the best unlearning method."]
    assert result.sentences[1]["problems"] == ["no citation"] and result.sentences[1]["support"] == 0.0


def test_verify__statements_of_absence_and_headings_are_not_claims(verifier):
    absence = f"{ABSENCE_PREFIX} give the learning rate NPO used."
    assert not is_claim(DECLINE_PHRASE) and not is_claim(absence) and not is_claim("On NPO:")
    assert not is_claim("Comparing GA and NPO:")
    assert is_claim("NPO is compared with GA on TOFU:")  # has a verb: a claim that ends in a colon
    result = verifier.verify(f"On NPO:\n\n{absence} NPO unlearns TOFU data better than GA [1].", SOURCES)
    assert result.unsupported_sentences == []
    assert [c["support"] is None for c in result.sentences] == [True, True, False]


def test_verify__each_clause_is_checked_against_its_own_source(verifier):
    good = ("NPO achieves a better balance between unlearning and utility on TOFU [1], while rewarming improves "
            "downstream performance in the longer run [2].")
    assert verifier.verify(good, SOURCES).sentences[0]["supported"]
    crossed = ("NPO achieves a better balance between unlearning and utility on TOFU [2], while rewarming improves "
               "downstream performance in the longer run [1].")
    check = verifier.verify(crossed, SOURCES).sentences[0]
    assert not check["supported"]


def test_verify__claims__two_claims_citing_one_paper_rest_on_their_own_sentences(verifier):
    gibberish = SENTENCES.index(next(s for s in SENTENCES if "gibberish" in s))
    answer = ("NPO-based methods achieve a better balance between unlearning and utility on TOFU [1]. "
              "Models unlearned with GA often produce gibberish, unlike those unlearned with NPO [1]. "
              "NPO unlearns TOFU data well [1], while rewarming improves downstream performance in the longer run [2]. "
              f"{DECLINE_PHRASE}")
    result = verifier.verify(answer, SOURCES)
    claims = json.loads(json.dumps(result.claims))  # plain JSON
    assert [c["cited"] for c in claims] == [[1], [1], [1, 2]]  # one per citing sentence; the decline is none
    assert [c["text"] for c in claims] == [c["text"] for c in result.sentences[:3]]
    first, second, both = claims
    assert [e["text"] for e in first["evidence"]] == [SENTENCES[BALANCE]]
    assert [e["text"] for e in second["evidence"]] == [SENTENCES[gibberish]]  # not the paper's best sentence
    assert first["evidence"][0] == {"n": 1, "text": SENTENCES[BALANCE], "page": None, "section": "",
                                    "support": first["evidence"][0]["support"]}
    assert first["supported"] and second["supported"] and 0 <= second["evidence"][0]["support"] <= 1
    assert [e["n"] for e in both["evidence"]] == [1, 2]  # each citation of a claim: its own source's sentence
    assert "rewarming models first increases the loss" in both["evidence"][1]["text"]
    assert len(result.citations[0]["evidence"]) > 0  # the reference list keeps one sentence per paper, as before


def test_verify__the_cache_is_bounded_and_safe_across_threads(embedder):
    verifier = Verifier(embedder.embed, cache_size=8)  # smaller than the sources: entries are evicted while in use
    answer = "NPO achieves a better balance between unlearning and utility on TOFU [1]. Rewarming improves downstream performance [2]."
    expected = verifier.verify(answer, SOURCES).to_dict()
    # a failure in any thread is raised by in_threads
    results = [r for rs in in_threads(lambda _: [verifier.verify(answer, SOURCES).to_dict() for _ in range(3)], 6) for r in rs]
    assert len(results) == 18 and all(r == expected for r in results)
    assert len(verifier.cache) <= 8


def test_verify__the_shipped_weights_are_small_and_record_their_training():
    assert WEIGHTS.stat().st_size < 2_000_000
    model = VerifierModel.load(WEIGHTS)
    assert model.threshold == 0.5
    info = model.info
    assert info["trained_on"]["file"] == "train.jsonl" and info["trained_on"]["pairs"] == 894
    assert set(info["cv"]) >= {"auc_support_vs_rest", "auc_support_vs_contradict", "auc_support_vs_nei"}


def test_verify__llm_verdicts_are_parsed_and_averaged(embedder, openai_server, replies):
    from llama_index.llms.openai_like import OpenAILike

    assert parse_verdicts('{"verdicts": [{"statement": 2, "verdict": "supported"}]}', 2) == [None, 1.0]
    assert parse_verdicts("no JSON here", 1) is None

    llm = OpenAILike(model="m", api_base=openai_server.url, api_key="k", is_chat_model=True, max_retries=0)
    plain = Verifier(embedder.embed)
    checked = Verifier(embedder.embed, llm=llm)
    claim = "NPO unlearns TOFU data better than gradient ascent [1]."
    openai_server.push(replies.answer(json.dumps({"verdicts": [{"statement": 1, "verdict": "CONTRADICTED"}]})))
    model_only = plain.verify(claim, SOURCES).sentences[0]["support"]
    with_llm = checked.verify(claim, SOURCES).sentences[0]["support"]
    assert with_llm == pytest.approx(model_only / 2, abs=0.002)
    sent = openai_server.bodies[-1]["messages"][-1]["content"]
    assert "1. NPO unlearns TOFU data better than gradient ascent. [1]" in sent and NPO_TITLE in sent
    # A server that fails leaves the model's score alone.
    openai_server.push(replies.status(500, "down"))
    assert checked.verify(claim, SOURCES).sentences[0]["support"] == model_only


def test_verify__a_denial_is_read_up_to_its_own_full_stop():
    from assistant.answering.verify import denied

    assert denied("The indexed papers do not give the absolute word error rate. w2v-BERT achieves 5% [1].") == (
        "the absolute word error rate")  # the splitter keeps the two together: no capital after the stop
    assert denied("There is no information about GPUs in the sources.") == "GPUs"
    assert denied("The learning rate is not mentioned in the papers.") == "The learning rate"
    assert denied("None of the papers describe how many GPUs were used.") == "how many GPUs were used"
    assert denied(DECLINE_PHRASE) is None and denied("Prior studies do not address unlearning [2].") is None
    assert denied("NPO does not collapse [1].") is None
