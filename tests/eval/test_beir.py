"""The BEIR path end to end on a 60-document slice of SciFact: index, score, reuse, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.core.errors import UserError
from eval.beir import eval_beir, library_name, load_corpus, load_qrels, load_queries

SCIFACT = Path(__file__).resolve().parents[2] / "eval" / "datasets" / "scifact"


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory) -> Path:
    """The relevant documents of 12 test queries plus filler: 60 documents in BEIR layout."""
    qrels = load_qrels(SCIFACT, "test")
    qids = sorted(qrels, key=int)[:12]
    wanted = {d for q in qids for d in qrels[q]}
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    rows = [r for r in corpus if r["_id"] in wanted]
    rows += [r for r in corpus if r["_id"] not in wanted][: 60 - len(rows)]
    folder = tmp_path_factory.mktemp("scifact") / "scifact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    queries = load_queries(SCIFACT)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": queries[q]}) + "\n" for q in qids))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q in qids for d, r in qrels[q].items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


class CountingEmbedder:
    """The real embedder, counting the library texts it embeds (the benchmark's queries are counted apart)."""

    def __init__(self, inner, queries: set[str]):
        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        self.queries = queries
        self.embedded = 0
        self.queries_embedded = 0

    def embed(self, texts, progress=False):
        asked = sum(t in self.queries for t in texts)
        self.queries_embedded += asked
        self.embedded += len(texts) - asked
        return self.inner.embed(texts, progress)

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def test_beir__loaders_read_the_layout(scifact_slice):
    papers = load_corpus(scifact_slice)
    assert len(papers) == 60 and all(p.paper_id and p.abstract for p in papers)
    assert len(load_queries(scifact_slice)) == 12
    assert set(load_qrels(scifact_slice, "test")) == set(load_queries(scifact_slice))
    assert library_name(scifact_slice) == "beir-scifact"
    with pytest.raises(UserError, match="no qrels"):
        load_qrels(scifact_slice, "dev")


@pytest.mark.slow
def test_beir__indexes_scores_and_reuses_library_without_embedding(scifact_slice, embedder, tmp_path):
    from assistant.core.settings import Settings

    settings = Settings(home=tmp_path / "home")
    counting = CountingEmbedder(embedder, set(load_queries(scifact_slice).values()))
    first = eval_beir(scifact_slice, "test", "hybrid", settings, counting)
    assert first["index"]["reused"] is False and first["index"]["papers"] == 60
    assert first["index"]["embedded"] >= 60 and first["index"]["sentences"] > 60  # chunks, and sentence vectors
    assert counting.embedded == first["index"]["embedded"] + first["index"]["sentences"]
    assert counting.queries_embedded == first["queries"]  # each question embedded once
    assert first["library"] == "beir-scifact" and first["queries"] == 12
    # 60 documents, each query's relevant ones among them: retrieval must mostly find them.
    assert first["metrics"]["nDCG@10"] > 0.6 and first["metrics"]["R@100"] == 1.0

    counting.embedded = 0
    again = eval_beir(scifact_slice, "test", "hybrid", settings, counting)
    assert again["index"]["reused"] is True and counting.embedded == 0
    assert again["index"]["seconds"] < 2.0
    assert again["metrics"] == pytest.approx(first["metrics"])

    # One changed document: only it is embedded again.
    rows = (scifact_slice / "corpus.jsonl").read_text().splitlines()
    doc = json.loads(rows[-1])
    doc["text"] += " An added sentence."
    changed = scifact_slice.parent / "changed" / "scifact"
    (changed / "qrels").mkdir(parents=True)
    (changed / "corpus.jsonl").write_text("\n".join(rows[:-1] + [json.dumps(doc)]) + "\n")
    for name in ("queries.jsonl", "qrels/test.tsv"):
        (changed / name).write_text((scifact_slice / name).read_text())
    third = eval_beir(changed, "test", "bm25", settings, counting)
    assert third["index"]["reused"] is False and third["index"]["updated"] == 1 and third["index"]["unchanged"] == 59
    assert 0 < third["index"]["embedded"] <= 3 and counting.embedded == third["index"]["embedded"] + third["index"]["sentences"]


@pytest.mark.slow
def test_beir__cli_writes_report_and_reuses_index(scifact_slice, embedder, tmp_path, temp_home):
    from typer.testing import CliRunner

    from assistant.cli import app
    from assistant.core.settings import Settings

    eval_beir(scifact_slice, "test", "bm25", Settings(home=temp_home), embedder)  # index with the shared model
    reports = tmp_path / "reports"
    result = CliRunner().invoke(app, ["eval", "beir", str(scifact_slice), "--retriever", "dense",
                                      "--run-name", "slice", "--reports-dir", str(reports)])
    assert result.exit_code == 0, result.output
    assert "index: reused" in result.output and "nDCG@10" in result.output
    report = json.loads((reports / "slice" / "report.json").read_text())
    assert report["kind"] == "beir" and report["retriever"] == "dense" and report["index"]["reused"]
    assert report["config"]["home"] == str(temp_home) and "commit" in report["git"]
    assert {"report.md", "metrics.png", "ndcg_hist.png"} <= {p.name for p in (reports / "slice").iterdir()}


def test_beir__cli_rejects_a_folder_without_corpus(tmp_path):
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, ["eval", "beir", str(tmp_path)])
    assert result.exit_code == 1 and "not a BEIR folder" in result.output
