"""The page's rendering: linked citations, the sources panel, history flattening (no server, no browser)."""

from __future__ import annotations

import re

from assistant.core.types import Source
from assistant.core.types import Answer
from assistant.core.types import DECLINE_PHRASE
from assistant.ui.render import (
    answer_markdown,
    card_html,
    chat_messages,
    gaps_html,
    overview_markdown,
    panel_html,
    highlight,
    history_for_engine,
    ingest_summary,
    linkify,
    message_text,
    paper_list_html,
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
    relevance=0.61,
)
OTHER = Source(n=2, paper_id="p-2", title="Masked <Token> Pre-training", abstract="Masked image modeling.", score=0.3)


def _answer(text: str, **kw) -> Answer:
    return Answer(question="q?", answer=text, backend="extractive", model="sentence-selection", **kw)


def test_render__citations_link_to_their_source_cards():
    assert linkify("NPO works [1]. Both [1, 2]. Range [2-3].") == (
        "NPO works [[1](#src-1)]. Both [[1](#src-1), [2](#src-2)]. Range [[2](#src-2), [3](#src-3)]."
    )
    assert linkify("[CLS] tokens") == "\\[CLS\\] tokens"  # not a citation: escaped, so it shows as "[CLS] tokens"


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


def test_render__each_citation_quotes_the_sentence_its_own_claim_rests_on():
    text = "NPO unlearns TOFU well [1]. GA outputs gibberish [1], while rewarming helps [2]."
    best = "We propose NPO."
    citations = [{"n": 1, "paper_id": "p-npo", "title": NPO.title, "supported": True, "support": 0.9, "evidence": best},
                 {"n": 2, "paper_id": "p-2", "title": OTHER.title, "supported": True, "support": 0.8, "evidence": "R."}]
    claims = [
        {"text": "NPO unlearns TOFU well [1].", "cited": [1], "supported": True, "support": 0.9,
         "evidence": [{"n": 1, "text": "NPO balances unlearning and utility on TOFU.", "page": None, "section": "", "support": 0.9}]},
        {"text": "GA outputs gibberish [1], while rewarming helps [2].", "cited": [1, 2], "supported": True, "support": 0.8,
         "evidence": [{"n": 1, "text": 'GA outputs are often "gibberish".', "page": None, "section": "", "support": 0.8},
                      {"n": 2, "text": "Rewarming improves downstream performance.", "page": None, "section": "", "support": 0.8}]},
    ]
    shown = answer_markdown(_answer(text, citations=citations, claims=claims))
    assert re.findall(r'\(#src-(\d) "([^"]*)"\)', shown) == [
        ("1", "NPO balances unlearning and utility on TOFU."), ("1", "GA outputs are often 'gibberish'."),
        ("2", "Rewarming improves downstream performance.")]
    assert unlink(shown) == text
    # An answer saved before claims were kept (or whose claims do not hold its marks): each paper's best sentence.
    for saved in ([], claims[:1]):
        shown = answer_markdown(_answer(text, citations=citations, claims=saved))
        assert re.findall(r'\(#src-(\d) "([^"]*)"\)', shown) == [("1", best), ("1", best), ("2", "R.")]


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
    assert "cited · not supported by this abstract (0.10)" in html
    assert "Bananas are yellow [2]." in html
    assert "relevance 0.61" in html and "relevance 0.3" not in html  # the fused score has no scale: not shown
    assert "Masked &lt;Token&gt; Pre-training" in html  # titles are escaped
    assert "<mark class=\"hl hl-0\">" in html
    note = answer_markdown(answer)
    assert "dropped [7]: no such source" in note and "[2] not supported" in note


def test_render__declined_answer_says_so_in_the_panel():
    html = sources_html([], _answer(DECLINE_PHRASE, declined=True))
    assert DECLINE_PHRASE in html and "src-footer" in html


# -- conversations: each answer keeps its sources ------------------------------------------


def _source(n, title, relevance, **extra):
    return {"n": n, "paper_id": f"p{n}", "title": title, "abstract": f"{title} is studied. It works well.",
            "authors": [], "date": "", "url": "", "score": 1.0, "relevance": relevance, **extra}


def _turn(question, text, cited, sources, **extra):
    a = _answer(text, citations=[{"n": n, "paper_id": f"p{n}", "title": "", "supported": True, "support": 0.8,
                                  "evidence": "It works well."} for n in cited], **extra).to_dict()
    a["question"] = question
    return {"id": None, "question": question, "answer": a, "sources": sources, "error": ""}


def test_render__each_answer_links_to_its_own_cards_and_the_selected_one_is_open():
    first = _turn("q1", "A [1].", [1], [_source(1, "Alpha", 0.5), _source(2, "Beta", 0.7)])
    second = _turn("q2", "B [1, 3].", [1, 3], [_source(1, "Alpha", 0.4), _source(3, "Gamma", 0.6)])
    messages = chat_messages([first, second])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "(#src-1-t1 " in messages[1]["content"]
    assert "[[1](#src-1-t2 " in messages[3]["content"] and "[3](#src-3-t2 " in messages[3]["content"]
    assert unlink(messages[3]["content"]) == "B [1, 3]."

    html = panel_html([first, second])
    assert html.index('id="turn-2"') < html.index('id="turn-1"')  # newest first
    assert '<details class="turn" id="turn-2" open>' in html and '<details class="turn" id="turn-1">' in html
    assert 'id="src-1-t1"' in html and 'id="src-1-t2"' in html and 'id="src-3-t2"' in html
    # Cited cards by relevance, the colour of each number shared by its link and its evidence sentence.
    turn2 = html.split('id="turn-2"', 1)[1].split('id="turn-1"', 1)[0]
    assert turn2.index('id="src-3-t2"') < turn2.index('id="src-1-t2"')
    assert 'class="num hl hl-2">[3]' in turn2 and '<mark class="hl hl-2">It works well.</mark>' in turn2
    selected = panel_html([first, second], selected=0)
    assert '<details class="turn" id="turn-1" open>' in selected and '<details class="turn" id="turn-2">' in selected
    assert "No sources yet" in panel_html([])


def test_render__cards_show_authors_year_ids_link_and_fold_the_abstract():
    src = _source(4, "Delta", 0.55, authors=["A. One", "B. Two", "C. Three", "D. Four"], date="2024-05-01",
                  arxiv_id="2405.00001", source="data/uploads/mine.jsonl:7", categories=["cs.CL", "cs.LG", "cs.AI"])
    html = card_html(src, {"n": 4, "supported": True, "support": 0.83, "evidence": "It works well."}, 2)
    assert 'href="https://arxiv.org/abs/2405.00001"' in html
    assert "A. One, B. Two, C. Three et al. · 2024 · arXiv:2405.00001 · cs.CL, cs.LG · from mine.jsonl" in html
    assert 'data-evidence="It works well."' in html and 'data-verdict="supported by this abstract (0.83)"' in html
    assert html.index('<blockquote class="evidence') < html.index('<details class="src-abstract">')
    assert "relevance 0.55" in html and 'title="relevance: cosine similarity' in html


def test_render__a_comparison_is_laid_out_side_by_side_and_a_follow_up_says_what_was_searched():
    a = _answer("On NPO: slower collapse [1].\n\nOn gradient ascent: fast collapse [2].\n\nSide by side: both [1, 2].",
                mode="compare", standalone_question="compare NPO and GA — and on TOFU?")
    text = answer_markdown(a, turn=3)
    assert text.startswith('<div class="compare">\n<div class="side">\n\nOn NPO: slower collapse [[1](#src-1-t3)].')
    assert "Side by side: both" in text.split("</div>\n</div>")[1]
    assert "Searched for: *compare NPO and GA — and on TOFU?*" in text
    assert unlink(text).startswith("On NPO: slower collapse [1].\n\nOn gradient ascent: fast collapse [2].")
    assert "Searched for" not in unlink(text)


def test_render__a_failed_turn_shows_its_message_and_no_tools():
    failed = {"id": None, "question": "q", "answer": None, "sources": [], "error": "⚠️ the model server is down"}
    assert chat_messages([failed])[1]["content"] == "⚠️ the model server is down"
    html = panel_html([failed])
    assert "the model server is down" in html and "copy-md" not in html and "Conversation .md" not in html


def test_render__exports_are_links_in_the_panel():
    from urllib.parse import unquote

    html = panel_html([_turn("q1", "A [1].", [1], [_source(1, "Alpha", 0.5)])])
    md = html.split('id="md-t1" href="data:text/markdown;charset=utf-8,', 1)[1].split('"', 1)[0]
    assert unquote(md).startswith("**Q: q1**\n\nA [1].\n\n**References**\n\n[1] *Alpha*. id p1.")
    assert 'download="q1.bib"' in html and 'download="answer-1.ris"' in html


def test_render__library_overview_and_gaps():
    text = overview_markdown(241, "default", ["in-context learning", "unlearning"], [("a.txt", 200), ("b.jsonl", 41)])
    assert text.startswith("### Ask the 241 papers in `default`") and "in-context learning · unlearning" in text
    assert "From 2 files: a.txt (200), b.jsonl (41)" in text
    assert "is empty" in overview_markdown(0, "default", [], [])
    assert "No question has been declined" in gaps_html([])


# -- untrusted text stays text -------------------------------------------------------------------------------------

HOSTILE = ('Frost <img src=http://evil.example/a.png onerror="alert(1)"> delays ![x](http://evil.example/b.png) '
           "flowering [go](javascript:alert(2)) <script>alert(3)</script> `code` 7*7*7 [ref]: javascript:x [1].")


def test_render__hostile_answer_text_is_markdown_that_shows_as_text():
    from assistant.ui.untrusted import plain_text

    shown = answer_markdown(_answer(HOSTILE, citations=[{"n": 1, "supported": True, "evidence": 'a "quoted\\'}]))
    assert "<img" not in shown and "<script" not in shown and "![" not in shown  # no raw HTML, no image
    links = re.findall(r"(?<!\\)\[([^\[\]]*)\]\(([^)\s]*)", shown)
    assert links == [("1", "#src-1")]  # the only link is the citation's
    assert '"a \'quoted\\\\")' in shown  # its title cannot be closed early by a quote or a trailing backslash
    assert plain_text(unlink(shown)) == unlink(shown) == HOSTILE  # the history gets the text back as written
    question = chat_messages([{"question": "<img src=//evil.example/q.png> why?", "answer": None, "sources": []}])[0]
    assert question["content"] == "&lt;img src=//evil.example/q.png&gt; why?"


def test_render__a_record_url_that_is_not_http_never_becomes_a_link():
    for url in ("javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<b>x</b>",
                "vbscript:x", "//evil.example/x", "/relative"):
        src = {"n": 1, "paper_id": "p1", "title": "T <b>bold</b>", "abstract": "A.", "url": url}
        for html in (card_html(src, None, 1), paper_list_html([dict(src, relevance=None)], "All")):
            assert "href=" not in html.replace('href="gradio_api', ""), (url, html)
            assert "T &lt;b&gt;bold&lt;/b&gt;" in html
    src = {"n": 1, "paper_id": "2403.01234", "title": "T", "abstract": "A.", "url": "javascript:alert(1)"}
    assert 'href="https://arxiv.org/abs/2403.01234"' in card_html(src, None, 1)  # the arXiv id still gives a link
    assert 'href="https://example.org/p?a=1&amp;b=2"' in card_html(dict(src, url="https://example.org/p?a=1&b=2"), None, 1)


def test_render__file_names_topics_and_skip_reasons_are_text():
    from types import SimpleNamespace

    overview = overview_markdown(3, "default", ["<img src=//e/t.png>"], [("a`<img src=//e/f.png>`.jsonl", 3)])
    assert "<img" not in overview and "&lt;img src=//e/t.png&gt;" in overview
    skip = SimpleNamespace(file="/x/![p](http:evil.example).csv", line=3, reason="bad <img src=//e/r.png> row")
    report = SimpleNamespace(ok=True, papers=1, new=1, updated=0, unchanged=0, skipped=[skip], skipped_count=1)
    summary = ingest_summary(report, "x`<img src=x onerror=alert(1)>`.csv")
    assert "<img src=//e" not in summary and "![" not in summary
    assert "**`x'<img src=x onerror=alert(1)>'.csv`**" in summary  # a code span shows it as it is, can't be left


def test_templates__line_breaks_are_layout_and_values_stay_text():
    from jinja2 import Environment

    from assistant.ui.render import _html_text, _LayoutLines

    env = Environment(autoescape=True, finalize=_html_text, extensions=[_LayoutLines])
    source = ('{# a comment <with a tag #}\n<div class="a"\n    title="{{ t }}">\n  <b>{{ t }}</b> {% if n > 1 %}\n'
              '  <i>{{ n }}</i>{% endif %}\n</div>\n')
    out = env.from_string(source).render(t="x \"<y>\" & 'z' {{7*7}}", n=2)
    # Inside a tag a line break is the space between attributes; between elements it is nothing; values are text,
    # escaped as html.escape always wrote them.
    assert out == ('<div class="a" title="x &quot;&lt;y&gt;&quot; &amp; &#x27;z&#x27; {{7*7}}"><b>x &quot;&lt;y&gt;'
                   '&quot; &amp; &#x27;z&#x27; {{7*7}}</b> <i>2</i></div>')
