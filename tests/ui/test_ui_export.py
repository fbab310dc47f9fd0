"""Copy and export: Markdown with a numbered reference list, BibTeX (read back with bibtexparser) and RIS."""

from __future__ import annotations

import bibtexparser
import pytest

from assistant.ui import export

NPO = {"n": 1, "paper_id": "2404.05868", "title": "Negative Preference Optimization: From Catastrophic Collapse to "
       "Effective Unlearning", "abstract": "We propose NPO.", "authors": ["Ruiqi Zhang", "Licong Lin", "Yu Bai", "Song Mei"],
       "date": "2024-04-08", "url": "", "relevance": 0.61}
ODD = {"n": 5, "paper_id": "t-0123456789abcdef", "title": "Costs & 50% savings: {braces}_under #1 in Zürich",
       "abstract": "", "authors": ["José Müller"], "date": "2023", "url": "https://example.org/p", "relevance": 0.4}
UNCITED = {"n": 2, "paper_id": "t-ffff", "title": "Not cited", "abstract": "", "authors": [], "date": "", "url": ""}


def turn(question, text, cited, sources, **extra):
    a = {"question": question, "answer": text, "citations": [{"n": n, "supported": True} for n in cited],
         "declined": False, "unanswered_parts": [], "unsupported_sentences": []}
    a.update(extra)
    return {"id": 1, "question": question, "answer": a, "sources": sources}


def test_export__answer_markdown_has_a_reference_list_with_the_conversations_numbers():
    md = export.answer_markdown(turn("compare NPO\nand GA", "NPO avoids collapse [1]; costs drop [5].", [1, 5],
                                     [NPO, UNCITED, ODD], unanswered_parts=["the learning rate"]))
    assert md.startswith("**Q: compare NPO and GA**\n\nNPO avoids collapse [1]; costs drop [5].")
    assert "*Not in the sources: the learning rate.*" in md
    refs = md.split("**References**\n\n", 1)[1]
    assert refs.splitlines()[0] == ("[1] Ruiqi Zhang, Licong Lin, Yu Bai et al. (2024). *Negative Preference Optimization: "
                                    "From Catastrophic Collapse to Effective Unlearning*. arXiv:2404.05868. "
                                    "<https://arxiv.org/abs/2404.05868>")
    assert "[5] José Müller (2023)." in refs and "id t-0123456789abcdef. <https://example.org/p>" in refs
    assert "Not cited" not in md


def test_export__a_conversation_lists_each_cited_paper_once():
    turns = [turn("q1", "A [1].", [1], [NPO, UNCITED]), turn("q2", "B [1], C [5].", [1, 5], [NPO, ODD])]
    md = export.conversation_markdown("My review", turns, created="2024-06-01T10:00:00")
    assert md.startswith("# My review\n\n*2024-06-01 · 2 questions*\n\n## q1\n\nA [1].\n\n## q2")
    refs = md.split("## References\n\n", 1)[1]
    assert refs.count("[1] ") == 1 and refs.index("[1] ") < refs.index("[5] ")


def test_export__bibtex_reads_back_with_bibtexparser():
    text = export.bibtex([NPO, ODD])
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks
    npo, odd = lib.entries
    assert npo.key == "zhang2024negative" and npo.entry_type == "misc"
    fields = {f.key: f.value for f in npo.fields}
    assert fields["author"] == "Ruiqi Zhang and Licong Lin and Yu Bai and Song Mei"
    assert (fields["eprint"], fields["archiveprefix"], fields["year"]) == ("2404.05868", "arXiv", "2024")
    assert fields["title"].startswith("{Negative Preference")  # capitals kept by the extra braces
    odd_fields = {f.key: f.value for f in odd.fields}
    assert odd.key == "muller2023costs"
    assert r"Costs \& 50\% savings: \{braces\}\_under \#1 in Zürich" in odd_fields["title"]
    assert odd_fields["url"] == "https://example.org/p"
    # Two papers whose keys would clash get distinct keys.
    assert [e.key for e in bibtexparser.parse_string(export.bibtex([NPO, dict(NPO, paper_id="x")])).entries] == [
        "zhang2024negative", "zhang2024negativea"]


def test_export__ris_records():
    text = export.ris([NPO, ODD])
    records = [r for r in text.split("ER  - ") if r.strip()]
    assert len(records) == 2
    assert records[0].strip().startswith("TY  - JOUR\nTI  - Negative Preference Optimization")
    assert "AU  - Ruiqi Zhang\nAU  - Licong Lin" in records[0] and "PY  - 2024\nDA  - 2024/04/08" in records[0]
    assert "M3  - arXiv:2404.05868" in records[0] and "AB  - We propose NPO." in records[0]
    assert "TY  - GEN" in records[1] and "UR  - https://example.org/p" in records[1]


def test_export__nothing_to_export_is_a_clear_message():
    with pytest.raises(export.NothingToExport, match="'Empty' has no answers yet: nothing to export"):
        export.export([], "md", title="Empty")
    with pytest.raises(export.NothingToExport, match="no paper is cited"):
        export.export([turn("q", "The indexed papers do not answer this.", [], [UNCITED])], "bib")
    with pytest.raises(export.NothingToExport, match="no answer to export yet"):
        export.answer_markdown({})
    with pytest.raises(Exception, match="unknown export format 'doc'"):
        export.export([turn("q", "A [1].", [1], [NPO])], "doc")


def test_export__no_live_link_or_html_from_a_record_or_a_model():
    import re

    evil = {"n": 1, "paper_id": "t-evil", "title": "Tulips <img src=//evil.example/t.png>", "abstract": "A.",
            "authors": ["Mallory\nUR  - javascript:alert(3)"], "date": "2024", "url": "javascript:alert(1)"}
    t = turn("why <script>x</script>?", "See [here](javascript:alert(2)) ![i](http://evil.example/i.png) "
             "<img src=//evil.example/a.png> [r]: javascript:x [1].", [1], [evil])
    md = export.export([t], "md")
    assert not re.search(r"(?<!\\)(?:\]\(|\]:|!\[|<(?:img|script)\b)", md), md  # nothing in it renders live
    assert "[1]" in md and "\\<img src=//evil.example/t.png>" in md  # readable, the [n] kept
    assert "javascript:alert(1)" not in md  # the record's URL is not a link (nor shown)
    for text in (export.export([t], "bib"), export.export([t], "ris")):
        assert "javascript:alert(1)" not in text, text
    assert "\nUR  - javascript" not in export.export([t], "ris")  # an author cannot start a field of its own


def test_export__masks_secrets_that_reached_an_answer(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdefghij")
    t = turn("q", "The server http://lab:hunter2pw@10.0.0.2/v1 said sk-live-0123456789abcdefghij [1].", [1], [NPO])
    for fmt in ("md", "json"):
        out = export.export([t], fmt)
        assert "hunter2pw" not in out and "sk-live-0123456789abcdef" not in out and "lab:***@10.0.0.2" in out
