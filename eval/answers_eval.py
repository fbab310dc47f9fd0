"""Answer evaluation: the full ask path per question, scored for citations, facts and declining.

Metrics (per question type and overall):

* citation validity — share of the citations the backend wrote that point to a
  real source (dropped numbers count against it);
* gold recall / precision — among the papers the answer cites;
* key-fact coverage — numbers must appear exactly; text facts by normalised
  fuzzy match (rapidfuzz partial ratio ≥ 85);
* decline accuracy — declines the unanswerable, answers the answerable;
* supported-sentence rate — cited sentences the citation check found support for;
* latency p50 / p95 of the whole ask;
* with an LLM backend, LLM-judged faithfulness and correctness (prompts/judge.md);
  without one they are reported as not run.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

from assistant.answering.citations import answer_sentences, parse_citations
from eval.retrieval_eval import gold_ids, load_questions

_NUMBER = re.compile(r"^[\d.,]+\s*(%|x|×|[kKmMbB])?$")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("\\%", "%")
    text = re.sub(r"\[[\d,\s\-–]+\]", " ", text)  # citations are not part of a fact
    return re.sub(r"\s+", " ", text).strip()


def fact_covered(fact: str, answer: str) -> bool:
    """A number must appear exactly (not inside a longer number); text may match fuzzily."""
    f, a = _norm(fact), _norm(answer)
    if _NUMBER.match(f) or re.search(r"\d", f):
        return re.search(r"(?<![\d.])" + re.escape(f) + r"(?![\d])", a) is not None
    from rapidfuzz import fuzz

    return f in a or fuzz.partial_ratio(f, a) >= 85


def _judge(backend, question: str, answer: str, sources: list) -> dict | None:
    from assistant.core.prompts import format_sources, load_prompt

    try:
        messages = load_prompt("judge").render(question=question, answer=answer, sources=format_sources(sources))
        raw = backend.complete(messages)
        match = re.search(r"\{.*\}", raw, re.S)
        verdict = json.loads(match.group(0)) if match else {}
        return {k: float(verdict[k]) for k in ("faithfulness", "correctness") if k in verdict}
    except Exception as exc:  # a judge failure must not end the run; it is recorded per question
        return {"error": str(exc)[:200]}


def score_answer(q: dict, answer, gold: list[str], sources_full: list) -> dict:
    cited = [c["paper_id"] for c in answer.citations]
    written = len(parse_citations(answer.answer)) + len(answer.dropped_citations)
    row = {
        "id": q["id"],
        "type": q.get("type", "untyped"),
        "answerable": q.get("answerable", True),
        "declined": answer.declined,
        "decline_correct": float(answer.declined != q.get("answerable", True)),
        "latency_ms": answer.timings.get("total_ms", 0.0),
        "answer": answer.answer,
        "cited": cited,
        "dropped": answer.dropped_citations,
    }
    if q.get("answerable", True) and not answer.declined:
        row["citation_validity"] = 1.0 - len(answer.dropped_citations) / written if written else None
        hits = len(set(cited) & set(gold))
        row["gold_recall"] = hits / len(gold) if gold else None
        row["gold_precision"] = hits / len(set(cited)) if cited else 0.0
        facts = q.get("key_facts") or []
        row["fact_coverage"] = sum(fact_covered(f, answer.answer) for f in facts) / len(facts) if facts else None
        cited_sentences = [s for s in answer_sentences(answer.answer) if parse_citations(s)]
        row["supported_rate"] = (
            1.0 - len(answer.unsupported_sentences) / len(cited_sentences) if cited_sentences else None
        )
    return row


METRICS = ("citation_validity", "gold_recall", "gold_precision", "fact_coverage", "decline_correct", "supported_rate")


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def eval_answers(app, questions_file: Path, progress: bool = False, judge: bool = True) -> dict:
    """Run every question through ``app.engine`` and score it; returns the result for write_report."""
    questions = load_questions(questions_file)
    gold = gold_ids(questions, list(app.library.iter_papers()))
    use_judge = judge and getattr(app.backend, "can_complete", False)
    rows = []
    iterator = questions
    if progress:
        from tqdm import tqdm

        iterator = tqdm(questions, desc="answers", unit="q")
    for q in iterator:
        sources_seen: list = []
        answer = None
        for event in app.engine.stream(q["question"]):
            if event.kind == "sources":
                sources_seen = event.sources
            elif event.kind == "done":
                answer = event.answer
        row = score_answer(q, answer, gold.get(q["id"], []), sources_seen)
        if use_judge and not answer.declined:
            row["judge"] = _judge(app.backend, q["question"], answer.answer, sources_seen)
            for key in ("faithfulness", "correctness"):
                row[key] = (row["judge"] or {}).get(key)
        rows.append(row)

    def summary(subset: list[dict]) -> dict:
        out = {m: _mean(subset, m) for m in METRICS}
        if use_judge:
            out["faithfulness"] = _mean(subset, "faithfulness")
            out["correctness"] = _mean(subset, "correctness")
        lat = [r["latency_ms"] for r in subset]
        out["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat else None
        out["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat else None
        out["n"] = len(subset)
        return out

    types = sorted({r["type"] for r in rows})
    groups = {t: summary([r for r in rows if r["type"] == t]) for t in types}
    groups["overall"] = summary(rows)
    return {
        "settings": app.settings,
        "retriever": app.settings.retriever,
        "library": app.settings.library,
        "backend": app.backend.name,
        "model": app.backend.model,
        "judge": "run" if use_judge else "not run (no LLM backend configured)",
        "groups": groups,
        "per_answer": rows,
    }
