"""Retrieval evaluation on a question set (JSONL: id, question, type, gold_titles | gold_ids, answerable).

Gold titles are mapped to paper ids through the library's own papers by
normalised title (case and punctuation free, as ingest dedupes), so a question
file written from the source data keeps working whatever ids the library uses.
Unanswerable questions have no gold papers and are left out of the retrieval
metrics; their best dense similarity is recorded instead, since that is what
the decline threshold (``min_relevance``) acts on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from assistant.core.errors import UserError
from eval.metrics import DEV_MEASURES, evaluate, mean_by_group


class QuestionError(UserError):
    """The question file is malformed or names papers the library does not hold."""


def load_questions(path: Path) -> list[dict]:
    """Questions from a JSONL file; each needs id, question, and (when answerable) gold_titles or gold_ids."""
    questions = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as exc:
                raise QuestionError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not q.get("id") or not q.get("question"):
                raise QuestionError(f"{path}:{n}: a question needs 'id' and 'question'")
            q.setdefault("type", "other")
            q.setdefault("answerable", bool(q.get("gold_titles") or q.get("gold_ids")))
            questions.append(q)
    return questions


def gold_ids(questions: list[dict], papers) -> dict[str, list[str]]:
    """qid -> gold paper ids, for the answerable questions; unknown titles raise QuestionError."""
    from ingest.normalize import normalize_title

    by_title: dict[str, str] = {}
    for paper in papers:
        by_title.setdefault(normalize_title(paper.title), paper.paper_id)
    out: dict[str, list[str]] = {}
    missing = []
    for q in questions:
        if not q.get("answerable", True):
            continue
        ids = list(q.get("gold_ids") or [])
        for title in q.get("gold_titles") or []:
            pid = by_title.get(normalize_title(title))
            if pid is None:
                missing.append(f"{q['id']}: {title!r}")
            else:
                ids.append(pid)
        if ids:
            out[q["id"]] = list(dict.fromkeys(ids))
    if missing:
        raise QuestionError(f"{len(missing)} gold title(s) not in the library (wrong --library?): " + "; ".join(missing[:3]))
    return out


def eval_retrieval(app, questions_file: Path, retriever: str | None = None, k: int = 10, progress: bool = False) -> dict:
    """Retrieve for every question and score hit@k, recall@5/10, MRR@10 and nDCG@10 per type and overall.

    Returns {"groups": {type: {measure: value, "n": count}}, "per_question": [...],
    "unanswerable": [...], "k": k, "retriever": name, "settings": app.settings}.
    """
    from tqdm import tqdm

    retriever = retriever or app.settings.retriever
    questions = load_questions(questions_file)
    gold = gold_ids(questions, app.library.iter_papers())
    depth = max(k, 10)  # MRR@10 and nDCG@10 need ten papers whatever k is
    run: dict[str, dict[str, float]] = {}
    rows, unanswerable = [], []
    started = time.perf_counter()
    for q in tqdm(questions, desc="questions", unit="q", disable=not progress):
        hits = app.search(q["question"], k=depth, mode=retriever)
        ranked = [h.paper_id for h in hits]
        if q["id"] in gold:
            run[q["id"]] = {pid: float(depth - i) for i, pid in enumerate(ranked)}
            rows.append({"id": q["id"], "type": q["type"], "question": q["question"], "gold": gold[q["id"]],
                         "ranks": {g: (ranked.index(g) + 1 if g in ranked else None) for g in gold[q["id"]]},
                         "top": [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 4)} for h in hits[:5]]})
        else:
            top_dense = max((h.dense for h in hits if h.dense is not None), default=None)
            unanswerable.append({"id": q["id"], "question": q["question"], "top_dense": top_dense,
                                 "top_title": hits[0].title if hits else ""})
    seconds = time.perf_counter() - started
    measures = [f"Success@{k}"] + [m for m in DEV_MEASURES if m != f"Success@{k}"]
    qrels = {qid: {pid: 1 for pid in ids} for qid, ids in gold.items()}
    scores = evaluate(run, qrels, measures)
    for row in rows:
        row["metrics"] = scores["per_query"][row["id"]]
    groups = mean_by_group(scores["per_query"], {q["id"]: q["type"] for q in questions})
    from eval.report import input_fingerprints

    return {
        "inputs": input_fingerprints(questions_file, app.library.iter_papers()),
        "questions_file": str(questions_file),
        "retriever": retriever,
        "k": k,
        "library": app.settings.library,
        "groups": groups,
        "per_question": rows,
        "unanswerable": unanswerable,
        "seconds_per_question": seconds / max(1, len(questions)),
        "settings": app.settings,
    }
