"""The one answer path (CitedQueryEngine) end to end on the bundled library: extractive by default, an LLM
through the scripted OpenAI-compatible server, and the llama-index entry points."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.answering.citations import answer_sentences, parse_citations
from assistant.app import App
from assistant.cli import app as cli
from assistant.cli import render_references
from assistant.core.errors import UserError
from assistant.core.types import DECLINE_PHRASE

NPO = "Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning"
MUSE = "MUSE: Machine Unlearning Six-Way Evaluation for Language Models"


def test_engine__is_a_llama_index_query_engine_returning_the_answer_contract(bundled_app):
    from llama_index.core.base.base_query_engine import BaseQueryEngine

    engine = bundled_app.query_engine()
    assert isinstance(engine, BaseQueryEngine)
    response = engine.query("What is negative preference optimization?")
    answer = response.metadata["answer"]
    assert response.source_nodes and response.source_nodes[0].node.metadata["title"] == NPO
    assert str(response) == answer["answer"] and "[1]" in str(response)
    assert answer["citations"][0]["title"] == NPO and answer["answerability"] == "answer"


def test_engine__streams_through_a_llama_index_streaming_response(bundled_app):
    from llama_index.core.base.response.schema import StreamingResponse

    response = bundled_app.query_engine(streaming=True).query("compare TOFU and MUSE")
    assert isinstance(response, StreamingResponse)
    pieces = list(response.response_gen)
    assert len(pieces) >= 3 and "On MUSE:" in "".join(pieces)
    assert response.metadata["answer"]["citations"]  # filled in once the stream is done


def test_engine__every_sentence_carries_a_citation_to_a_source(bundled_app):
    answer = bundled_app.engine.ask("How can a language model be made to forget specific training data?")
    sentences = [s for s in answer_sentences(answer.answer) if len(s) > 20]
    assert sentences and all(parse_citations(s) for s in sentences)
    assert {c["n"] for c in answer.citations} <= {s["n"] for s in answer.sources}
    assert answer.timings["total_ms"] >= answer.timings["retrieve_ms"] > 0


def test_engine__near_miss_detail_is_a_partial_answer_saying_what_is_missing(bundled_app):
    answer = bundled_app.engine.ask("What learning rate did the NPO paper use?")
    assert answer.answerability == "partial" and not answer.declined
    assert answer.unanswered_parts == ["the learning rate"]
    assert answer.answer.startswith("The indexed papers do not give the learning rate.")
    assert [c["title"] for c in answer.citations] == [NPO]  # what the NPO abstract does say, and nothing else


def test_engine__names_the_library_lacks_are_declined_with_the_reason(bundled_app):
    answer = bundled_app.engine.ask("How do GPTQ and AWQ compare for 4-bit post-training quantization of LLMs?")
    assert answer.declined and answer.answer == DECLINE_PHRASE and answer.citations == []
    assert "GPTQ" in answer.decline_reason and "AWQ" in answer.decline_reason


def test_engine__off_topic_question_declines_without_calling_the_synthesizer(bundled_app):
    class Exploding:
        def synthesize(self, *args, **kwargs):
            raise AssertionError("the synthesizer must not be called")

    engine = bundled_app.query_engine()
    engine.synthesizer = Exploding()
    answer = engine.ask("best pizza dough hydration?")
    assert answer.declined and answer.answer == DECLINE_PHRASE and answer.citations == []
    assert answer.decline_reason.startswith("nothing in the library is about this")


def test_engine__list_question_cites_only_papers_that_name_its_subject(bundled_app):
    answer = bundled_app.engine.ask("Which papers evaluate on TOFU?")
    abstracts = {p.paper_id: p.abstract for p in bundled_app.library.iter_papers()}
    assert NPO in [c["title"] for c in answer.citations]
    assert all("tofu" in abstracts[c["paper_id"]].lower() for c in answer.citations)  # no evaluation suite without TOFU


def test_engine__compare_uses_the_paper_that_names_each_side(bundled_app):
    answer = bundled_app.engine.ask("compare TOFU and MUSE")
    assert answer.mode == "compare" and not answer.declined
    assert MUSE in [c["title"] for c in answer.citations]
    muse_part = answer.answer.split("On MUSE:")[1]
    assert "MUSE" in muse_part and "none of the sources" not in answer.answer


def test_engine__compare_names_a_side_the_library_lacks(bundled_app):
    answer = bundled_app.engine.ask("compare NPO and GPTQ")
    assert answer.answerability == "partial" and answer.unanswered_parts == ["anything on GPTQ"]
    assert "The indexed papers do not cover GPTQ." in answer.answer
    assert NPO in [c["title"] for c in answer.citations]


def test_engine__compare_mode_forced_on_a_comparison_question_answers(bundled_app):
    answer = bundled_app.engine.ask("compare TOFU and MUSE", mode="compare")
    assert not answer.declined and "On MUSE:" in answer.answer


def test_engine__follow_up_is_understood_from_the_history(bundled_app):
    history = [
        {"role": "user", "content": "what methods exist for unlearning in LLMs?"},
        {"role": "assistant", "content": "..."},
    ]
    answer = bundled_app.engine.ask("and which of them evaluates on TOFU?", history=history)
    assert "unlearning" in answer.standalone_question.lower()
    assert NPO in [c["title"] for c in answer.citations]


def test_engine__dependent_sentences_are_never_quoted_bare(bundled_app):
    for question in ("which unlearning methods need a retain set?", "How do LLMs forget what they learned?"):
        answer = bundled_app.engine.ask(question)
        for sentence in answer_sentences(answer.answer):
            assert not sentence.lower().startswith(("indeed, the former", "the former", "the latter")), sentence


def test_engine__a_contrast_is_quoted_with_what_it_contrasts_and_no_sentence_twice(bundled_app):
    """"However, … these methods fail" follows the sentence naming the methods; a sentence quoted as the lead of a
    dependent one is not quoted again (the hyperfitting answer once repeated one)."""
    answer = bundled_app.engine.ask("What is negative preference optimization?")
    sentences = answer_sentences(answer.answer)
    for i, sentence in enumerate(sentences):
        if sentence.lower().startswith("however"):
            assert i > 0 and "gradient ascent" in sentences[i - 1].lower(), sentences
    hyper = answer_sentences(bundled_app.engine.ask("What is the hyperfitting phenomenon described for LLMs in open-ended "
                                                    "text generation?").answer)
    assert len(hyper) == len(set(hyper)) >= 3, hyper


def test_summarize__groups_papers_by_theme_with_labels(bundled_app):
    answer = bundled_app.engine.ask("what does the library say about continual pre-training?")
    assert answer.mode == "summarize" and not answer.declined
    paragraphs = [p for p in answer.answer.split("\n\n") if p.strip()]
    labels = [p for p in paragraphs if p.rstrip().endswith(":") and not parse_citations(p)]
    assert len(labels) >= 2 and len(answer.citations) >= 4


def test_summarize__chosen_papers_cites_each_of_them(bundled_app):
    ids = [h.paper_id for h in bundled_app.searcher.search("machine unlearning", k=3)]
    answer = bundled_app.engine.ask("", mode="summarize", paper_ids=ids)
    assert {c["paper_id"] for c in answer.citations} == set(ids)


def test_summarize__unknown_paper_id_is_a_clear_error(bundled_app):
    with pytest.raises(UserError, match="no paper with id nope"):
        bundled_app.engine.ask("", mode="summarize", paper_ids=["nope"])


@pytest.mark.parametrize("question, says", [
    ("what is the of and", "only common words"),
    ("x" * 3000, "3,000 characters long"),
    ("Quels papiers traitent du désapprentissage des modèles de langue ?", ""),
    ("What does the library say about zorblaxian hyperflux?", ""),
])
def test_engine__bad_questions_get_a_decline_with_its_reason(bundled_app, question, says):
    answer = bundled_app.engine.ask(question)
    assert answer.declined or answer.answerability == "partial" or answer.citations
    if answer.declined:
        assert answer.decline_reason and says in answer.decline_reason and answer.citations == []
    else:  # never an empty citation list presented as an answer
        assert answer.citations


def test_engine__unknown_mode_is_a_user_error(bundled_app):
    with pytest.raises(UserError, match="unknown mode 'poem'"):
        bundled_app.engine.ask("NPO", mode="poem")


# -- the LLM path: the real openai client against a scripted server on 127.0.0.1 ----------


def _llm_app(bundled_app, server, **overrides):
    settings = bundled_app.settings.with_overrides(
        backend="openai-compatible", llm_base_url=server.url, llm_model="scripted", llm_max_retries=2, **overrides
    )
    return App(settings, embedder=bundled_app.embedder)


def _hosted_app(bundled_app, server, monkeypatch, **overrides):
    """The hosted-API backend (llama-index's OpenAI) pointed at the scripted server: the same checks hold."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    settings = bundled_app.settings.with_overrides(backend="openai", llm_model="gpt-4o-mini", llm_max_retries=0, **overrides)
    return App(settings, embedder=bundled_app.embedder)


def _evidence(bundled_app, question: str) -> list[str]:
    """The sentences the extractive stage chooses for ``question`` (what the LLM is given, numbered 1..k), bare."""
    from assistant.answering.citations import answer_sentences
    from assistant.core.text import strip_citations

    answer = bundled_app.engine.ask(question)
    return [" ".join(strip_citations(s).split()).replace(" .", ".") for s in answer_sentences(answer.answer)
            if not s.startswith("The indexed papers do not")]


def _as_json(sentences: list[tuple[str, list[int]]]) -> str:
    return json.dumps({"sentences": [{"text": t, "evidence": e} for t, e in sentences]})


@pytest.mark.parametrize("backend", ["openai-compatible", "openai"])
def test_llm__json_schema_reply_becomes_cited_sentences_and_is_shown(bundled_app, openai_server, replies, monkeypatch,
                                                                    backend):
    question = "What is negative preference optimization?"
    evidence = _evidence(bundled_app, question)
    openai_server.push(replies.sse([_as_json([(evidence[0], [1]), (evidence[1], [2])])]))
    app = _llm_app(bundled_app, openai_server) if backend == "openai-compatible" else _hosted_app(bundled_app, openai_server, monkeypatch)
    answer = app.engine.ask(question)
    fmt = openai_server.bodies[-1]["response_format"]
    assert fmt["type"] == ("json_object" if backend == "openai-compatible" else "json_schema")
    assert answer.fallback is None and not answer.unsupported_sentences
    assert [c["title"] for c in answer.citations] == [NPO] and answer.citations[0]["supported"]
    sentences = [s for s in answer.answer.split(". ") if s]
    assert len(sentences) == 2 and all("[1" in s for s in sentences)  # every sentence carries its mark
    user = openai_server.bodies[-1]["messages"][1]["content"]
    assert f"[1] ({NPO}) {evidence[0]}" in user  # the evidence the extractive stage chose, numbered


def test_llm__a_mark_at_the_start_of_a_sentence_is_attached_to_that_sentence(bundled_app, openai_server, replies):
    question = "compare GraphAdapter and GraphTranslator"  # as in issue 24: "[2] proposes GraphAdapter … [3] proposes …"
    app = _llm_app(bundled_app, openai_server, llm_answer={"structured": "off"})
    openai_server.push(replies.sse(["ok [1]."]))
    app.engine.ask(question)  # to read the numbered evidence the model gets
    user = openai_server.bodies[-1]["messages"][1]["content"]
    lines = [line for line in user.splitlines() if line.startswith("[")]
    title = lambda line: line.split(") ", 1)[0].split(" (", 1)[1]  # noqa: E731
    first = lines[0]
    last = next(line for line in lines if title(line) != title(first))  # two papers: a mark on the wrong one fails
    k1, k2 = first.split("]")[0] + "]", last.split("]")[0] + "]"
    text1, text2 = first.split(") ", 1)[1], last.split(") ", 1)[1]
    openai_server.push(replies.sse([f"{k1} {text1} {k2} {text2}"]))  # marks lead their sentences
    answer = app.engine.ask(question)
    assert answer.fallback is None, answer.fallback
    assert not answer.unsupported_sentences and len({c["n"] for c in answer.citations}) == 2
    assert all(c["supported"] for c in answer.citations)


@pytest.mark.parametrize("backend", ["openai-compatible", "openai"])
def test_llm__a_false_denial_is_flagged_and_the_extractive_answer_shown_with_a_notice(bundled_app, openai_server, replies,
                                                                                   monkeypatch, backend):
    question = "What is negative preference optimization?"
    evidence = _evidence(bundled_app, question)
    extractive = bundled_app.engine.ask(question).answer
    denial = "The indexed papers do not give information about negative preference optimization."
    openai_server.push(replies.sse([_as_json([(denial, [1]), (evidence[0], [1])])]))
    app = _llm_app(bundled_app, openai_server) if backend == "openai-compatible" else _hosted_app(bundled_app, openai_server, monkeypatch)
    answer = app.engine.ask(question)
    assert answer.fallback["from"] == "llm" and "do not give what they give" in answer.fallback["reason"]
    assert denial.rstrip(".") in answer.fallback["text"] and answer.answer == extractive
    assert answer.fallback["notice"] in "\n".join(render_references(answer))
    assert not answer.declined and answer.backend == backend


def test_llm__the_verifier_finds_the_false_denial(bundled_app):
    sources = bundled_app.engine.ask("What is negative preference optimization?").sources
    from assistant.core.types import Source

    numbered = [Source(s["n"], s["paper_id"], s["title"], next(p.abstract for p in bundled_app.library.get_papers([s["paper_id"]])))
                for s in sources]
    check = bundled_app.verifier.verify("The indexed papers do not describe negative preference optimization [1].", numbered)
    assert check.false_denials and not check.sentences[0]["supported"]
    assert "false denial" in check.sentences[0]["problems"][0]
    # the answerability decision's own finding stands, and a denial of what no source gives is true
    assert not bundled_app.verifier.verify("The indexed papers do not give the learning rate.", numbered,
                                           absent=["the learning rate"]).false_denials
    assert not bundled_app.verifier.verify("The indexed papers do not mention quantum annealing schedules.", numbered).false_denials


def test_llm__an_answer_with_no_citation_falls_back_saying_so(bundled_app, openai_server, replies):
    openai_server.push(replies.sse(["NPO is a method for unlearning in language models. It avoids collapse."]))
    answer = _llm_app(bundled_app, openai_server, llm_answer={"structured": "off"}).engine.ask(
        "What is negative preference optimization?")
    assert answer.fallback["reason"] == "the model cited no source"
    assert answer.answer == bundled_app.engine.ask("What is negative preference optimization?").answer
    assert answer.citations and not answer.unsupported_sentences


def test_llm__what_the_sources_lack_is_said_by_the_code_never_prompted(bundled_app, openai_server, replies):
    question = "What learning rate did the NPO paper use?"
    evidence = _evidence(bundled_app, question)
    openai_server.push(replies.sse([_as_json([(evidence[0], [1])])]))
    answer = _llm_app(bundled_app, openai_server).engine.ask(question)
    prompt = json.dumps(openai_server.bodies[-1]["messages"])
    assert DECLINE_PHRASE not in prompt and "do not give" not in prompt and "nothing found missing" not in prompt
    assert answer.answer.startswith("The indexed papers do not give the learning rate.\n\n")
    assert answer.answerability == "partial" and answer.unanswered_parts == ["the learning rate"]
    assert answer.fallback is None and not answer.unsupported_sentences


def test_llm__a_model_that_declines_gets_the_extractive_answer_not_a_decline(bundled_app, openai_server, replies):
    openai_server.push(replies.answer(DECLINE_PHRASE))
    answer = _llm_app(bundled_app, openai_server, llm_answer={"structured": "off"}).engine.ask(
        "What is negative preference optimization?")
    assert not answer.declined and answer.fallback["reason"] == "the model declined, though the sources answer"
    assert answer.citations


def test_llm__a_comparison_keeps_one_paragraph_per_side(bundled_app, openai_server, replies):
    question = "compare GraphAdapter and GraphTranslator"
    app = _llm_app(bundled_app, openai_server, llm_answer={"structured": "off"})
    openai_server.push(replies.sse(["ok [1]."]))
    app.engine.ask(question)
    user = openai_server.bodies[-1]["messages"][1]["content"]
    assert "On GraphAdapter:" in user and "On GraphTranslator:" in user and "Compare: GraphAdapter; GraphTranslator" in user
    side_of, side = {}, None
    for line in user.splitlines():
        if line.startswith("On "):
            side = line
        elif line.startswith("[") and side:
            side_of[line.split("]")[0] + "]"] = (side, line.split(") ", 1)[1])
    ga = [k for k, (s, _) in side_of.items() if "GraphTranslator" in s][0]
    npo = [k for k, (s, _) in side_of.items() if "GraphAdapter" in s][0]
    # the model interleaves the sides; the answer keeps one paragraph per side, in the sides' order
    openai_server.push(replies.sse([f"{side_of[ga][1]} {ga} {side_of[npo][1]} {npo}"]))
    answer = app.engine.ask(question)
    paragraphs = answer.answer.split("\n\n")
    assert len(paragraphs) == 2 and side_of[npo][1][:30] in paragraphs[0] and side_of[ga][1][:30] in paragraphs[1]


def test_llm__off_topic_question_never_reaches_the_model(bundled_app, openai_server):
    answer = _llm_app(bundled_app, openai_server).engine.ask("best pizza dough hydration?")
    assert answer.declined and openai_server.requests == []


def test_llm__follow_up_is_condensed_by_the_model(bundled_app, openai_server, replies):
    openai_server.push(replies.answer("Which LLM unlearning methods evaluate on TOFU?"), replies.sse(["NPO does [1]."]))
    history = [{"role": "user", "content": "what methods exist for unlearning in LLMs?"}, {"role": "assistant", "content": "..."}]
    answer = _llm_app(bundled_app, openai_server).engine.ask("and which of them evaluates on TOFU?", history=history)
    assert answer.standalone_question == "Which LLM unlearning methods evaluate on TOFU?"
    assert "and which of them evaluates on TOFU?" in json.dumps(openai_server.bodies[0]["messages"])


# -- the CLI answers through the same engine ------------------------------------------------


def test_cli__ask_unreachable_llm_server_is_one_clear_line(bundled_app):
    from tests.conftest import free_port

    out = CliRunner().invoke(
        cli,
        ["ask", "compare NPO and gradient ascent", "--backend", "openai-compatible", "--base-url", f"http://127.0.0.1:{free_port()}/v1"],
    )
    assert out.exit_code == 1, out.output
    assert "error: cannot reach the model server" in out.output and "Traceback" not in out.output


def test_cli__ask_json_prints_the_result_object(bundled_app):
    out = CliRunner().invoke(cli, ["ask", "compare NPO and gradient ascent", "--json", "-k", "5"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert set(result) >= {"question", "answer", "citations", "sources", "dropped_citations", "backend", "model", "timings",
                           "declined", "decline_reason", "answerability", "unanswered_parts"}
    assert set(result["timings"]) == {"retrieve_ms", "generate_ms", "verify_ms", "total_ms"}
    assert all({"n", "paper_id", "title", "supported", "support", "evidence"} <= set(c) for c in result["citations"])


def test_engine__each_claim_carries_the_sentence_it_rests_on(bundled_app):
    answer = bundled_app.engine.ask("compare NPO and gradient ascent").to_dict()
    claims = answer["claims"]
    assert len(claims) >= 2 and all(c["text"] in answer["answer"] for c in claims)
    assert all(c["cited"] and [e["n"] for e in c["evidence"]] == c["cited"] for c in claims)
    by_paper: dict[int, set[str]] = {}
    for c in claims:
        for e in c["evidence"]:
            assert set(e) == {"n", "text", "page", "section", "support"} and e["text"]
            by_paper.setdefault(e["n"], set()).add(e["text"])
    assert max(len(texts) for texts in by_paper.values()) >= 2  # one paper, two claims, two different sentences
    assert {c["n"] for c in answer["citations"]} == set(by_paper)  # the reference list is unchanged


def test_cli__ask_prints_the_evidence_of_each_claim(bundled_app):
    answer = bundled_app.engine.ask("compare NPO and gradient ascent")
    out = CliRunner().invoke(cli, ["ask", "compare NPO and gradient ascent"])
    assert out.exit_code == 0, out.output
    evidence = out.stdout.split("\nEvidence for each claim\n", 1)[1].splitlines()
    for k, claim in enumerate(answer.claims, 1):
        e = claim["evidence"][0]
        assert f"{k:>3}. [{e['n']}] \u201c{e['text']}\u201d" in evidence  # the claim's number, then its sentence
    references = out.stdout.split("\nReferences\n", 1)[1].split("\nEvidence for each claim", 1)[0]
    assert "\u201c" not in references  # the sentences are listed once, by claim


def test_cli__a_saved_answer_without_claims_shows_each_references_sentence():
    from assistant.cli import render_references
    from assistant.core.types import Answer

    saved = {"question": "q", "answer": "NPO unlearns [1].", "citations": [
        {"n": 1, "paper_id": "p1", "title": NPO, "supported": True, "support": 0.9, "evidence": "NPO unlearns."}]}
    lines = render_references(Answer(**saved))
    assert "    \u201cNPO unlearns.\u201d" in lines and "Evidence for each claim" not in lines


def test_cli__ask_with_the_bm25_retriever_answers(bundled_app):
    # BM25-only hits once carried no dense score, and the relevance check declined every question.
    out = CliRunner().invoke(cli, ["ask", "What is negative preference optimization?", "--retriever", "bm25", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert not result["declined"] and result["citations"][0]["title"] == NPO


def test_cli__partial_answer_prints_what_is_missing(bundled_app):
    out = CliRunner().invoke(cli, ["ask", "What learning rate did the NPO paper use?"])
    assert out.exit_code == 0, out.output
    assert "Not in the sources: the learning rate" in out.stdout


def test_engine__the_question_is_embedded_once_per_ask(bundled_home, embedder):
    from assistant.app import App
    from assistant.core.settings import Settings

    embedded: list[str] = []

    class Counting:
        """The real embedder, counting what it is asked to embed."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def embed(self, texts):
            embedded.extend(texts)
            return self.inner.embed(texts)

        def embed_query(self, text):
            embedded.append(text)
            return self.inner.embed_query(text)

    app = App(Settings(home=bundled_home), embedder=Counting(embedder))
    question = "How does negative preference optimization avoid catastrophic collapse?"
    answer = app.engine.ask(question)
    assert answer.citations and not answer.declined
    assert embedded.count(question) == 1, embedded.count(question)  # search, answerability, relevance, quotes, verifier


def test_summary__themes_are_named_by_what_they_are_about_never_by_a_papers_title(bundled_app):
    answer = bundled_app.engine.ask("summarize work on machine unlearning for LLMs")
    labels = [line[:-1] for line in answer.answer.splitlines() if line.endswith(":") and "[" not in line]
    titles = [s["title"] for s in answer.sources]
    assert labels, answer.answer
    for label in labels:
        assert not any(t.lower().startswith(label.lower()) or label.lower() in t.lower()[: len(label) + 2]
                       for t in titles if len(label) > 12), (label, titles)
