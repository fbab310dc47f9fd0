"""``assistant eval support``: a report per run (JSON, Markdown, score plot) with AUCs and one row per pair; --cv fits on folds."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eval.cli import eval_app
from eval.support_eval import eval_support, load_pairs

ABSTRACTS = [
    ("Negative Preference Optimization",
     ["Gradient ascent often collapses the model during unlearning.",
      "Negative preference optimization improves the balance between forgetting and utility on TOFU.",
      "NPO forgets 50% of the target data."]),
    ("Continual pre-training",
     ["Rewarming the learning rate first increases the loss.",
      "In the longer run rewarming improves downstream performance.",
      "We train Pythia 410M models on SlimPajama."]),
    ("Retrieval-augmented generation",
     ["Retrieval reduces hallucination in question answering.",
      "Dense retrievers outperform BM25 on most benchmarks.",
      "The index holds 21 million passages."]),
    ("Chain-of-thought prompting",
     ["Chain-of-thought prompting improves arithmetic reasoning in large models.",
      "Small models do not benefit from chain-of-thought prompting.",
      "We evaluate on GSM8K."]),
    ("Mixture of experts",
     ["Sparse mixture-of-experts layers increase model capacity at constant compute.",
      "Load balancing losses reduce expert collapse.",
      "Switch Transformers scale to a trillion parameters."]),
]
CLAIMS = [  # (claim, abstract, label, rationale)
    ("NPO improves the balance between forgetting and utility on TOFU.", 0, "SUPPORT", [1]),
    ("NPO worsens the balance between forgetting and utility on TOFU.", 0, "CONTRADICT", [1]),
    ("Vision transformers need large pretraining datasets.", 0, "NOT_ENOUGH_INFO", []),
    ("Rewarming improves downstream performance in the longer run.", 1, "SUPPORT", [1]),
    ("Rewarming does not improve downstream performance in the longer run.", 1, "CONTRADICT", [1]),
    ("Protein folding is predicted by attention networks.", 1, "NOT_ENOUGH_INFO", []),
    ("Retrieval reduces hallucination in question answering.", 2, "SUPPORT", [0]),
    ("Retrieval increases hallucination in question answering.", 2, "CONTRADICT", [0]),
    ("Speech recognition benefits from self-supervised audio models.", 2, "NOT_ENOUGH_INFO", []),
    ("Chain-of-thought prompting improves arithmetic reasoning in large models.", 3, "SUPPORT", [0]),
    ("Small models benefit greatly from chain-of-thought prompting.", 3, "CONTRADICT", [1]),
    ("Graph neural networks predict molecular properties.", 3, "NOT_ENOUGH_INFO", []),
    ("Sparse mixture-of-experts layers increase capacity at constant compute.", 4, "SUPPORT", [0]),
    ("Load balancing losses increase expert collapse.", 4, "CONTRADICT", [1]),
    ("Diffusion models generate high-quality images.", 4, "NOT_ENOUGH_INFO", []),
]


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = []
    for i, (claim, doc, label, evidence) in enumerate(CLAIMS):
        title, sentences = ABSTRACTS[doc]
        rows.append({"id": f"{i}-{doc}", "claim": claim, "doc_id": str(doc), "title": title, "abstract": " ".join(sentences),
                     "sentences": sentences, "label": label, "evidence": evidence})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_support_eval__the_command_writes_a_report_with_aucs_and_per_pair_rows(pairs_file, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr("assistant.library.embeddings.LocalEmbedder", lambda **_: embedder)  # the session's model
    result = CliRunner().invoke(eval_app, ["support", str(pairs_file), "--run-name", "tiny", "--reports-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "r" / "tiny"
    assert {"report.json", "report.md", "support_scores.png"} <= {p.name for p in folder.iterdir()}
    report = json.loads((folder / "report.json").read_text())
    overall = report["groups"]["overall"]
    assert overall["n"] == 15
    for metric in ("auc_support_vs_rest", "auc_support_vs_contradict", "auc_support_vs_nei"):
        assert 0.0 <= overall[metric] <= 1.0
    assert overall["auc_support_vs_nei"] >= 0.9  # unrelated claims are easy
    rows = report["per_pair"]
    assert len(rows) == 15 and set(rows[0]) == {"id", "label", "score", "supported", "aligned"}
    assert all(r["supported"] == (r["score"] >= 0.5) for r in rows)
    # Rationale recall is over SUPPORT and CONTRADICT pairs: recompute it from the rows.
    recall = sum(r["aligned"][0] in c[3] for r, c in zip(rows, CLAIMS) if c[2] != "NOT_ENOUGH_INFO") / 10
    assert overall["rationale_recall"] == pytest.approx(recall)
    assert report["inputs"]["questions"]["sha256"]  # the pairs file is recorded
    assert "auc_support_vs_rest" in result.output


def test_support_eval__cv_fits_on_the_other_folds(pairs_file, embedder):
    result = eval_support(pairs_file, embedder.embed, cv=True)
    assert result["mode"] == "cv"
    overall = result["groups"]["overall"]
    assert overall["n"] == 15 and overall["auc_support_vs_rest"] is not None
    assert all(0.0 <= r["score"] <= 1.0 for r in result["per_pair"])


def test_support_eval__bad_pairs_are_one_clear_error(tmp_path):
    from assistant.core.errors import UserError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1-2", "claim": "x", "sentences": ["a."], "label": "MAYBE"}\n')
    with pytest.raises(UserError, match="label 'MAYBE'"):
        load_pairs(bad)
    bad.write_text('{"claim": "x"}\n')
    with pytest.raises(UserError, match="bad.jsonl:1: not a claim"):
        load_pairs(bad)
