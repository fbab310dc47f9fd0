"""LitQA-format evaluation: real questions over a folder of full-text PDFs, with two plain baselines beside.

A question file holds LitQA2 rows (``../shared/bench/litqa2-dev/questions.jsonl``): ``question``, ``ideal``
(the correct answer), ``distractors``, ``sources`` (DOIs), ``files`` (the PDF in the folder) and
``key_passage`` (the passage that holds the answer). The library must hold that folder (`assistant ingest
DIR`); the gold paper of a question is the stored paper read from its file (matched by the hash of the
file's bytes, so a file whose name claims one DOI but holds another paper counts as the paper it holds).

Per question, for the product (the engine's answer, as a user gets it):

* paper_first / paper_top5 — the gold paper is the answer's first source / among its first five
  (a declined answer has no sources: 0);
* passage_found — one of the passages retrieval handed the answer from the gold paper (five for the best
  paper, three for others) overlaps the key passage (the baselines' passage_top5 is its counterpart);
* passage_cited — a citation of the gold paper rests on evidence overlapping the key passage
  (``answers_eval.passage_overlaps``: 70% of the shorter text's content words in the other);
* ideal_in_text — the correct answer appears in the answer text (``answers_eval.fact_covered``: numbers
  exactly, words by fuzzy match);
* declined — the engine declined;
* with an LLM (``choice_llm``): the model reads the question, the product's cited answer and the options
  (the ideal, the distractors and "Insufficient information", shuffled with a fixed seed) and picks one:
  ``mc_correct`` (1/0) and ``mc_sure`` (it did not pick "Insufficient information"); the summary gives
  accuracy (correct / all) and precision (correct / sure), as PaperQA2 reports them.

The baselines read the same PDFs with nothing but pypdfium2's raw page text, cut into ``WINDOW_WORDS``-word
windows per page: ``bm25-windows`` (bm25s, the library's tokenizer) and ``dense-windows`` (the same
embedding model, cosine; what a default llama-index vector index over the text does). For each: paper_first
and paper_top5 (a paper ranks by its best window), and passage_top5 / passage_top10 (a window among the
first five / ten overlaps the key passage).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np

from eval.answers_eval import fact_covered, passage_overlaps

WINDOW_WORDS = 120
INSUFFICIENT = "Insufficient information to answer this question"
PRODUCT_METRICS = ("paper_first", "paper_top5", "passage_found", "passage_cited", "ideal_in_text", "declined")
BASELINE_METRICS = ("paper_first", "paper_top5", "passage_top5", "passage_top10")


def load_litqa(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        missing = [k for k in ("id", "question", "ideal", "files", "key_passage") if k not in row]
        if missing:
            from assistant.core.errors import UserError

            raise UserError(f"{path}: question {row.get('id', '?')} lacks {', '.join(missing)}")
    return rows


def file_digests(pdf_dir: Path, questions: list[dict]) -> dict[str, str]:
    """Each question file's sha1 (the hash ingest stores as a paper's ``file_hash``)."""
    from ingest.readers.pdf import file_hash

    out = {}
    for q in questions:
        for name in q["files"]:
            path = Path(pdf_dir) / name
            if name not in out and path.exists():
                out[name] = file_hash(path)
    return out


# -- the baselines -------------------------------------------------------------------------


def page_windows(path: Path, words: int = WINDOW_WORDS) -> list[tuple[int, str]]:
    """(page, text) windows of ``words`` words of pypdfium2's raw text, cut per page."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    out = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            textpage = page.get_textpage()
            tokens = textpage.get_text_range().split()
            textpage.close()
            page.close()
            out += [(i + 1, " ".join(tokens[k:k + words])) for k in range(0, len(tokens), words)]
    finally:
        doc.close()
    return out


class WindowBaselines:
    """BM25 and dense search over raw page windows of a folder's PDFs (one file = one paper)."""

    def __init__(self, files: list[Path], embed, words: int = WINDOW_WORDS):
        import bm25s

        from assistant.library.bm25 import tokenize

        self.rows: list[tuple[str, int, str]] = []  # (file name, page, text)
        for path in files:
            self.rows += [(path.name, page, text) for page, text in page_windows(path, words)]
        texts = [t for _, _, t in self.rows]
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokenize(texts), show_progress=False)
        self.vectors = np.asarray(embed(texts), dtype=np.float32)
        self.embed = embed

    def ranked(self, method: str, question: str) -> list[int]:
        """Row indexes, best first."""
        if method == "bm25-windows":
            from assistant.library.bm25 import tokenize

            scores = self.bm25.get_scores(tokenize([question])[0])
        else:
            scores = self.vectors @ np.asarray(self.embed([question])[0], dtype=np.float32)
        return list(np.argsort(-np.asarray(scores), kind="stable"))

    def score(self, method: str, q: dict) -> dict:
        order = self.ranked(method, q["question"])
        papers = list(dict.fromkeys(self.rows[i][0] for i in order))
        gold = set(q["files"])
        cut = [passage_overlaps(self.rows[i][2], q["key_passage"]) for i in order[:10]]
        return {"paper_first": float(papers[0] in gold), "paper_top5": float(bool(gold & set(papers[:5]))),
                "passage_top5": float(any(cut[:5])), "passage_top10": float(any(cut))}


# -- the product ------------------------------------------------------------------------------


def gold_papers(library, digests: dict[str, str]) -> dict[str, str]:
    """file name -> stored paper id, by the hash of the file's bytes."""
    by_hash = {m.get("file_hash"): pid for pid, m in library.identities().items() if m.get("file_hash")}
    return {name: by_hash[h] for name, h in digests.items() if h in by_hash}


def options_for(q: dict, seed: int = 0) -> list[str]:
    """The multiple-choice options, shuffled reproducibly per question, "insufficient" last."""
    options = [q["ideal"], *q.get("distractors", [])]
    random.Random(f"{seed}:{q['id']}").shuffle(options)
    return options + [INSUFFICIENT]


def choose(llm, q: dict, answer_text: str, seed: int = 0) -> dict:
    """The LLM's multiple-choice pick given the product's answer: {"choice", "mc_correct", "mc_sure"}."""
    from assistant.core.errors import BackendError
    from assistant.core.prompts import load_prompt
    from assistant.llms.chat import complete

    options = options_for(q, seed)
    letters = [chr(ord("A") + i) for i in range(len(options))]
    listed = "\n".join(f"{letter}) {text}" for letter, text in zip(letters, options))
    messages = load_prompt("choose").render(question=q["question"], answer=answer_text, options=listed)
    try:
        raw = complete(llm, messages)
    except BackendError as exc:
        return {"choice": None, "error": str(exc)[:200], "mc_correct": 0.0, "mc_sure": 0.0}
    match = re.search(r"\b([A-Z])\b", raw.strip().upper())
    picked = options[letters.index(match.group(1))] if match and match.group(1) in letters else None
    return {"choice": picked, "mc_correct": float(picked == q["ideal"]),
            "mc_sure": float(picked is not None and picked != INSUFFICIENT)}


def score_product(q: dict, answer, gold: str | None) -> dict:
    sources = [s.get("paper_id") for s in answer.sources or []]
    evidence = [e for c in answer.citations or [] if c.get("paper_id") == gold
                for e in [c.get("evidence") or ""] + [p.get("evidence") or "" for p in c.get("passages") or []]]
    found = [p.get("text") or "" for s in answer.sources or [] if s.get("paper_id") == gold for p in s.get("passages") or []]
    return {
        "paper_first": float(bool(sources) and sources[0] == gold),
        "paper_top5": float(gold in sources[:5]),
        "passage_found": float(any(passage_overlaps(t, q["key_passage"]) for t in found)),
        "passage_cited": float(any(passage_overlaps(e, q["key_passage"]) for e in evidence if e)),
        "ideal_in_text": float(fact_covered(q["ideal"], answer.answer or "")) if not answer.declined else 0.0,
        "declined": float(bool(answer.declined)),
    }


def _means(rows: list[dict], metrics: tuple[str, ...]) -> dict:
    out = {m: float(np.mean([r[m] for r in rows if r.get(m) is not None])) for m in metrics
           if any(r.get(m) is not None for r in rows)}
    out["n"] = len(rows)
    return out


def eval_litqa(app, questions_file: Path, pdf_dir: Path, *, baselines: bool = True, choice_llm=None,
               progress: bool = False, seed: int = 0) -> dict:
    """Score the product (and the two window baselines) on LitQA-format questions; a result for write_report."""
    from assistant.core.errors import UserError
    from eval.report import input_fingerprints

    questions = load_litqa(questions_file)
    digests = file_digests(pdf_dir, questions)
    absent = sorted({n for q in questions for n in q["files"]} - set(digests))
    if absent:
        raise UserError(f"{pdf_dir}: the question files name PDFs that are not there: {', '.join(absent[:3])}")
    gold = gold_papers(app.library, digests)
    missing = sorted(set(digests) - set(gold))
    if missing:
        raise UserError(f"library {app.settings.library!r} does not hold {len(missing)} of the question PDFs "
                        f"(e.g. {missing[0]}): run `assistant ingest {pdf_dir}` first")
    iterator = questions
    if progress:
        from tqdm import tqdm

        iterator = tqdm(questions, desc="litqa", unit="q")
    rows = []
    for q in iterator:
        answer = app.engine.ask(q["question"])
        row = {"id": q["id"], "question": q["question"], "ideal": q["ideal"], "answer": answer.answer,
               "gold": gold[q["files"][0]], "sources": [s.get("paper_id") for s in answer.sources or []][:5],
               "latency_ms": float((answer.timings or {}).get("total_ms", 0.0))}
        row.update(score_product(q, answer, gold[q["files"][0]]))
        if choice_llm is not None:
            row.update(choose(choice_llm, q, answer.answer or "", seed))
        rows.append(row)
    groups = {"product": _means(rows, PRODUCT_METRICS)}
    if choice_llm is not None:
        sure = [r for r in rows if r.get("mc_sure")]
        groups["product"]["mc_accuracy"] = float(np.mean([r["mc_correct"] for r in rows]))
        groups["product"]["mc_precision"] = float(np.mean([r["mc_correct"] for r in sure])) if sure else 0.0
    lat = [r["latency_ms"] for r in rows]
    groups["product"]["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat else None
    if baselines:
        files = sorted(Path(pdf_dir) / n for n in digests)
        base = WindowBaselines(files, app.embedder.embed)
        for method in ("bm25-windows", "dense-windows"):
            scored = [base.score(method, q) for q in questions]
            for row, s in zip(rows, scored):
                row[method] = s
            groups[method] = _means(scored, BASELINE_METRICS)
    return {
        "questions_file": str(questions_file),
        "pdf_dir": str(pdf_dir),
        "settings": app.settings,
        "retriever": app.settings.retriever,
        "library": app.settings.library,
        "backend": app.settings.backend,
        "inputs": input_fingerprints(questions_file, list(app.library.iter_papers())),
        "groups": groups,
        "per_answer": rows,
    }
