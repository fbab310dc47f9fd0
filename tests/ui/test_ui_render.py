"""The page's rendering: linked citations, the sources panel, history flattening (no server, no browser)."""

from __future__ import annotations

from assistant.core.types import Source
from assistant.core.types import Answer
from assistant.core.types import DECLINE_PHRASE
from assistant.ui.render import (
    answer_markdown,
    highlight,
    history_for_engine,
    linkify,
    message_text,
    sources_html,
    unlink,
)

NPO = Source(
    n=1,
    paper_id="p-npo",
    title="Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning",
    abstract=(
        "LLM unlearning aims to eliminate the influence of undesirable data. "
        "We propose Negative Preference Optimization (NPO), a simple alignment-inspired method. "
        "Experiments on TOFU show NPO balances forgetting and utility."
    ),
    score=0.91,
)
OTHER = Source(n=2, paper_id="p-2", title="Masked <Token> Pre-training", abstract="Masked image modeling.", score=0.3)


def _answer(text: str, **kw) -> Answer:
    return Answer(question="q?", answer=text, backend="extractive", model="sentence-selection", **kw)


def test_render__citations_link_to_their_source_cards():
    assert linkify("NPO works [1]. Both [1, 2]. Range [2-3].") == (
        "NPO works [[1](#src-1)]. Both [[1](#src-1), [2](#src-2)]. Range [[2](#src-2), [3](#src-3)]."
    )
    assert linkify("[CLS] tokens") == "[CLS] tokens"


def test_render__message_text_flattens_gradio_block_lists():
    assert message_text([{"type": "text", "text": "compare"}, {"type": "text", "text": "NPO"}]) == "compare NPO"
    assert message_text({"type": "text", "text": "hi"}) == "hi"
    assert message_text([{"type": "file", "file": {"path": "x.png"}}]) == ""
    assert message_text(None) == ""


def test_render__history_is_plain_text_without_links_or_notes():
    shown = answer_markdown(_answer("NPO is slower to collapse [1].", dropped_citations=[7]))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "compare NPO and gradient ascent"}]},
        {"role": "assistant", "content": shown, "metadata": None},
        {"role": "assistant", "content": [{"type": "file", "file": {"path": "a.png"}}]},
    ]
    assert history_for_engine(history) == [
        {"role": "user", "content": "compare NPO and gradient ascent"},
        {"role": "assistant", "content": "NPO is slower to collapse [1]."},
    ]


def test_render__the_verifiers_evidence_sentence_is_highlighted_in_its_abstract():
    evidence = [s for s in NPO.abstract.split(". ") if s.startswith("We propose")][0]
    out = highlight(NPO.abstract, [evidence + "."])
    assert out.count("<mark>") == 1
    assert "<mark>We propose Negative Preference Optimization (NPO)" in out
    assert "<mark>" not in highlight(NPO.abstract, ["A sentence that is not in this abstract."])


def test_render__citation_hover_shows_the_evidence_and_unsupported_sentences_are_marked():
    answer = _answer(
        "NPO avoids collapse [1]. Bananas are yellow [1].",
        citations=[{"n": 1, "paper_id": "p-npo", "title": NPO.title, "supported": True, "support": 0.91,
                    "evidence": 'We propose "NPO".'}],
        unsupported_sentences=["Bananas are yellow [1]."],
    )
    text = answer_markdown(answer)
    assert "[[1](#src-1 \"We propose 'NPO'.\")]" in text  # the link's title: shown on hover
    assert "Bananas are yellow [[1](#src-1" in text and "]. ⚠" in text
    assert "⚠ marks a sentence the cited sources do not support" in text
    assert unlink(text) == "NPO avoids collapse [1]. Bananas are yellow [1]."


def test_render__panel_shows_cited_papers_dropped_and_unsupported_citations():
    answer = _answer(
        "We propose Negative Preference Optimization [1]. Bananas are yellow [2].",
        citations=[
            {"n": 1, "paper_id": "p-npo", "title": NPO.title, "supported": True, "support": 0.9,
             "evidence": "We propose Negative Preference Optimization (NPO), a simple alignment-inspired method."},
            {"n": 2, "paper_id": "p-2", "title": OTHER.title, "supported": False, "support": 0.1, "evidence": ""},
        ],
        dropped_citations=[7],
        unsupported_sentences=["Bananas are yellow [2]."],
        timings={"total_ms": 1234.0},
    )
    html = sources_html([NPO, OTHER], answer)
    assert 'id="src-1"' in html and 'id="src-2"' in html
    assert "[7] dropped: no such source" in html
    assert "cited, not supported by this abstract" in html
    assert "Bananas are yellow [2]." in html
    assert "relevance 0.910" in html
    assert "Masked &lt;Token&gt; Pre-training" in html  # titles are escaped
    assert "<mark>" in html
    note = answer_markdown(answer)
    assert "dropped [7]: no such source" in note and "[2] not supported" in note


def test_render__declined_answer_says_so_in_the_panel():
    html = sources_html([], _answer(DECLINE_PHRASE, declined=True))
    assert DECLINE_PHRASE in html and "src-footer" in html
