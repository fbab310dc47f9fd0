"""Answer evaluation: the full ask path per question (``app.engine``), scored per question and summarised per type.

The report keeps one row per question (``per_answer``): id, type, the answer,
``declined``, ``decline_reason``, ``answerability``, ``unanswered_parts``,
``cited_ids``, every metric below for that question (None where it does not
apply) and ``latency_ms``. Each group (question type, and ``overall``) holds the
mean of each metric over the questions where it applies, latency p50/p95, and ``n``.

Which questions a metric applies to follows the question file: ``answerable``,
and for unanswerable questions ``unanswerable_kind`` ("near-miss": the library
holds the neighbours but not the detail asked for; "off-topic": nothing in the
library is about it; an unanswerable question without a kind counts only in
decline accuracy). An answer is *declined* when the engine says so
(``declined``, or ``answerability == "decline"``) and *partial* when its
``answerability`` is "partial". Definitions:

* answered — answerable questions: 1 when not declined (a partial answer counts
  as answered).
* answered_in_full — answerable questions: 1 when neither declined nor partial.
* near_miss_handled — near-miss questions: 1 when declined, or partial with at
  least one ``unanswered_parts`` entry (the answer says what the abstracts do not give).
* offtopic_declined — off-topic questions: 1 when declined.
* decline_accuracy — every question: 1 when it declined exactly the unanswerable ones
  (a partial answer to a near-miss counts as not declined here; see near_miss_handled).
* gold_recall — answerable questions with gold papers: share of the gold papers
  among the cited papers (a declined answer cites none and scores 0).
* gold_precision — answerable questions that were answered or cite something:
  share of the distinct cited papers that are gold (an answer with no citation scores 0).
* key_fact_coverage — answerable questions with key facts: share of the facts
  the answer text contains (numbers exactly, not inside a longer number; text by
  normalised fuzzy match, rapidfuzz partial ratio ≥ 85; a decline covers none).
* citation_validity — every answer that wrote at least one citation number:
  share of the written numbers that point to a real source (the engine drops the
  others and lists them in ``dropped_citations``).
* support — answers whose citations carry the verifier's ``support`` score: the
  mean of those scores (0–1); None when the engine gives none.
* supported_rate — answers that were not declined: share of the answer's
  sentences the verifier did not list in ``unsupported_sentences``.
* cited_sentence_rate — answers that were not declined: share of the answer's claim sentences (``is_claim``:
  not a heading, not a denial) that carry a citation mark.
* false_denial_opener — answers that were not declined: 1 when the first sentence is a denial ("The indexed
  papers do not give X", ``verify.denied``) that the verifier found false or that the engine's decision did not make
  (nothing found missing: ``unanswered_parts`` empty).
* fallback — answers that were not declined: 1 when an LLM's answer failed the check and the extractive one was
  shown instead (``fallback`` in the Answer; its reason is kept in the row as ``fallback_reason``).
* latency_p50_ms / latency_p95_ms — percentiles of the whole ask (``timings.total_ms``).
* full-text questions (``page`` and ``passage`` given, as in eval/datasets/fulltext.jsonl):
  paper_first — 1 when the answer's first source (the retriever's best paper) is a gold paper (a decline
  has no sources and scores 0); passage_cited — 1 when a citation of a gold paper rests on evidence that
  overlaps the gold passage (``passage_overlaps``: at least 70% of the content words of the shorter of the
  two are in the other; every evidence sentence of the citation counts, ``citations[].passages``);
  page_right — 1 when the answer text cites the gold paper at the gold page (``[n, p. N]``).
* fulltext_cited — answers to questions without a gold passage (questions about abstracts) that were not
  declined: 1 when the answer cites a full-text paper (a PDF). Reported when any answer does; on a library of
  abstracts and PDFs it counts the PDF passages cited for questions they do not answer.
* faithfulness / correctness — with an LLM (``app.llm``, or ``judge_llm``), the
  LLM judge's scores (prompts/judge.md, given the question, the numbered sources,
  the key facts and the answer), for every question including declined ones.
  A template that cannot be loaded or rendered stops the run (PromptError); a
  model failure or an unreadable verdict is recorded for that question
  (``judge: {"error": ...}``) and the score left out.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from assistant.core.text import CITATION, split_sentences
from eval.retrieval_eval import gold_ids, load_questions

_NUMBER = re.compile(r"^[\d.,]+\s*(%|x|×|[kKmMbB])?$")

# Per-question metrics, in report order; each group reports their means.
METRICS = ("answered", "answered_in_full", "near_miss_handled", "offtopic_declined", "decline_accuracy",
           "gold_precision", "gold_recall", "key_fact_coverage", "citation_validity", "support", "supported_rate",
           "cited_sentence_rate", "false_denial_opener", "fallback")
JUDGE_METRICS = ("faithfulness", "correctness")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("\\%", "%")
    text = CITATION.sub(" ", text)  # citations ([3], [1, 2], [3, p. 5]) are not part of a fact
    return re.sub(r"\s+", " ", text).strip()


def fact_covered(fact: str, answer: str) -> bool:
    """A number must appear exactly (not inside a longer number); text may match fuzzily."""
    f, a = _norm(fact), _norm(answer)
    if _NUMBER.match(f) or re.search(r"\d", f):
        return re.search(r"(?<![\d.])" + re.escape(f) + r"(?![\d])", a) is not None
    from rapidfuzz import fuzz

    return f in a or fuzz.partial_ratio(f, a) >= 85


def unanswerable_kind(q: dict) -> str | None:
    """"near-miss", "off-topic", "unknown" (unanswerable without a kind), or None for an answerable question."""
    if q.get("answerable", True):
        return None
    return q.get("unanswerable_kind") or "unknown"


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


FULLTEXT_METRICS = ("paper_first", "passage_cited", "page_right")
PASSAGE_OVERLAP = 0.7


def passage_overlaps(evidence: str, passage: str) -> bool:
    """The evidence and the gold passage are the same text: 70% of the shorter one's content words (stemmed,
    numbers included) are in the other. A sentence of the passage, or the passage inside a longer sentence, counts."""
    from assistant.core.text import content_words

    e, p = set(content_words(evidence)), set(content_words(passage))
    if len(e) < 3 or len(p) < 3:
        return False
    return len(e & p) / min(len(e), len(p)) >= PASSAGE_OVERLAP


def fulltext_scores(q: dict, answer, gold: list[str], sources: list | None = None) -> dict:
    """paper_first, passage_cited and page_right for a question with a gold ``page`` and ``passage``."""
    from assistant.answering.citations import parse_cited_pages

    first = (sources or answer.sources or [None])[0]
    first_id = (first.get("paper_id") if isinstance(first, dict) else getattr(first, "paper_id", None)) if first else None
    gold_n = {c["n"] for c in answer.citations or [] if c.get("paper_id") in gold}
    evidence = [e for c in answer.citations or [] if c.get("paper_id") in gold
                for e in [c.get("evidence") or ""] + [p.get("evidence") or "" for p in c.get("passages") or []]]
    cited_pages = {page for n, page in parse_cited_pages(answer.answer or "") if n in gold_n and page is not None}
    return {
        "paper_first": float(first_id in gold) if first_id else 0.0,
        "passage_cited": float(any(passage_overlaps(e, q["passage"]) for e in evidence if e)),
        "page_right": float(int(q["page"]) in cited_pages),
        "cited_pages": sorted(cited_pages),
    }


def score_answer(q: dict, answer, gold: list[str]) -> dict:
    """One ``per_answer`` row: what the engine answered and every metric that applies to this question."""
    answerable = q.get("answerable", True)
    kind = unanswerable_kind(q)
    declined = bool(answer.declined) or getattr(answer, "answerability", "") == "decline"
    answerability = "decline" if declined else (getattr(answer, "answerability", "") or "answer")
    partial = answerability == "partial"
    unanswered = list(getattr(answer, "unanswered_parts", None) or [])
    citations = list(answer.citations or [])
    cited_ids = list(dict.fromkeys(c["paper_id"] for c in citations if c.get("paper_id")))
    dropped = list(answer.dropped_citations or [])
    valid_numbers = {c.get("n", c.get("paper_id")) for c in citations}
    written = len(valid_numbers) + len(dropped)
    supports = [float(c["support"]) for c in citations if isinstance(c.get("support"), (int, float))]
    facts = q.get("key_facts") or []
    hits = len(set(cited_ids) & set(gold))
    sentences = split_sentences(answer.answer or "")

    row = {
        "id": q["id"],
        "type": q.get("type", "other"),
        "answerable": answerable,
        "unanswerable_kind": kind,
        "answer": answer.answer,
        "declined": declined,
        "decline_reason": getattr(answer, "decline_reason", "") or "",
        "answerability": answerability,
        "unanswered_parts": unanswered,
        "cited_ids": cited_ids,
        "dropped_citations": dropped,
        "answered": float(not declined) if answerable else None,
        "answered_in_full": float(not declined and not partial) if answerable else None,
        "near_miss_handled": float(declined or (partial and bool(unanswered))) if kind == "near-miss" else None,
        "offtopic_declined": float(declined) if kind == "off-topic" else None,
        "decline_accuracy": float(declined == (not answerable)),
        "gold_precision": None,
        "gold_recall": _share(hits, len(gold)) if answerable else None,
        "key_fact_coverage": (_share(sum(fact_covered(f, answer.answer or "") for f in facts), len(facts))
                              if answerable else None),
        "citation_validity": _share(written - len(dropped), written),
        "support": float(np.mean(supports)) if supports else None,
        "supported_rate": (1.0 - min(len(answer.unsupported_sentences or []), len(sentences)) / len(sentences)
                           if sentences and not declined else None),
        "latency_ms": float((answer.timings or {}).get("total_ms", 0.0)),
    }
    if answerable and (cited_ids or not declined):
        row["gold_precision"] = hits / len(cited_ids) if cited_ids else 0.0
    if not declined:
        row.update(citation_scores(answer))
    if not q.get("passage") and not declined:
        # A question about abstracts asked of a library that also holds full texts: does the answer cite a PDF?
        full_texts = {s.get("paper_id") for s in getattr(answer, "sources", None) or [] if isinstance(s, dict) and s.get("pages")}
        row["fulltext_cited"] = float(bool(full_texts & set(cited_ids)))
    if answerable and q.get("passage") and q.get("page"):
        row.update(fulltext_scores(q, answer, gold))
    return row


def citation_scores(answer) -> dict:
    """cited_sentence_rate, false_denial_opener and fallback (with its reason) of an answer that was not declined."""
    from assistant.answering.citations import answer_sentences, parse_citations
    from assistant.answering.verify import denied, is_claim

    sentences = answer_sentences(answer.answer or "")
    claims = [s for s in sentences if is_claim(s) and denied(s) is None]
    opener = sentences[0] if sentences else ""
    false_opener = denied(opener) is not None and (
        not (getattr(answer, "unanswered_parts", None) or []) or opener in (answer.unsupported_sentences or []))
    fallback = getattr(answer, "fallback", None) or {}
    return {"cited_sentence_rate": _share(sum(bool(parse_citations(s)) for s in claims), len(claims)),
            "false_denial_opener": float(false_opener), "fallback": float(bool(fallback)),
            "fallback_reason": fallback.get("reason", "")}


# -- the LLM judge ----------------------------------------------------------------------


def _numbered(sources: list) -> list:
    """Sources as objects with n, title, abstract (the engine's Source objects, or the Answer's source dicts)."""
    out = []
    for i, s in enumerate(sources, 1):
        if isinstance(s, dict):
            s = SimpleNamespace(n=s.get("n", i), title=s.get("title", ""), abstract=s.get("abstract", ""))
        out.append(s)
    return out


def _facts_block(facts: list[str]) -> str:
    return "\n".join(f"- {f}" for f in facts) if facts else "(none given)"


def parse_verdict(raw: str) -> dict:
    """{"faithfulness", "correctness"[, "reason"]} from the judge's reply, or {"error", "raw"} when unreadable."""
    match = re.search(r"\{.*\}", raw or "", re.S)
    try:
        verdict = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        verdict = None
    if not isinstance(verdict, dict):
        return {"error": "the judge's reply holds no JSON object", "raw": (raw or "")[:200]}
    out: dict = {}
    for key in JUDGE_METRICS:
        value = verdict.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            return {"error": f"the judge's {key} is not a number in [0, 1]: {value!r}", "raw": (raw or "")[:200]}
        out[key] = float(value)
    if isinstance(verdict.get("reason"), str):
        out["reason"] = verdict["reason"][:300]
    return out


def judge_answer(llm, prompt, question: str, answer: str, sources: list, key_facts: list[str]) -> dict:
    """Ask the judge model to grade one answer.

    A prompt that cannot be rendered raises PromptError (a broken harness, not a
    bad answer); a failed model call or an unreadable verdict comes back as {"error": ...}.
    """
    from assistant.core.errors import BackendError
    from assistant.core.prompts import format_sources
    from assistant.llms.chat import complete

    messages = prompt.render(question=question, sources=format_sources(_numbered(sources)), answer=answer,
                             key_facts=_facts_block(key_facts))
    try:
        raw = complete(llm, messages)
    except BackendError as exc:
        return {"error": str(exc)[:300]}
    return parse_verdict(raw)


# -- the run ----------------------------------------------------------------------------


def _ask(app, question: str):
    """The engine's answer and the sources it numbered, from its event stream."""
    sources: list = []
    answer = None
    for event in app.engine.stream(question):
        if event.kind == "sources":
            sources = list(event.sources)
        elif event.kind == "done":
            answer = event.answer
    if answer is None:
        raise RuntimeError(f"the engine's stream ended without an answer for {question!r}")
    return answer, sources or list(answer.sources or [])


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict], judged: bool = False) -> dict:
    """One group's line: the mean of each metric where it applies, latency p50/p95, and n."""
    out = {m: _mean(rows, m) for m in METRICS}
    out.update({m: _mean(rows, m) for m in FULLTEXT_METRICS if any(r.get(m) is not None for r in rows)})
    if any(r.get("fulltext_cited") for r in rows):
        out["fulltext_cited"] = _mean(rows, "fulltext_cited")
    if judged:
        out.update({m: _mean(rows, m) for m in JUDGE_METRICS})
    lat = [r["latency_ms"] for r in rows]
    out["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat else None
    out["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat else None
    out["n"] = len(rows)
    return out


def eval_answers(app, questions_file: Path, progress: bool = False, judge: bool = True, judge_llm=None,
                 on_row=None) -> dict:
    """Run every question through ``app.engine`` and score it; returns the result for ``write_report``.

    The judge runs when ``judge`` is True and there is an LLM: ``judge_llm``, else
    ``app.llm`` (None for the extractive backend). ``on_row(row)`` is called as each question is scored (a long
    run keeps what it has measured).
    """
    from assistant.core.prompts import load_prompt
    from eval.report import input_fingerprints

    questions = load_questions(questions_file)
    papers = list(app.library.iter_papers())
    gold = gold_ids(questions, papers)
    llm = (judge_llm if judge_llm is not None else getattr(app, "llm", None)) if judge else None
    prompt = load_prompt("judge") if llm is not None else None  # a broken template fails before any question runs

    rows, models = [], []
    iterator = questions
    if progress:
        from tqdm import tqdm

        iterator = tqdm(questions, desc="answers", unit="q")
    for q in iterator:
        answer, sources = _ask(app, q["question"])
        models.append(answer.model)
        row = score_answer(q, answer, gold.get(q["id"], []))
        if prompt is not None:
            verdict = judge_answer(llm, prompt, q["question"], answer.answer, sources, q.get("key_facts") or [])
            row["judge"] = verdict
            for key in JUDGE_METRICS:
                row[key] = verdict.get(key)
        rows.append(row)
        if on_row is not None:
            on_row(row)

    groups = {t: summarise([r for r in rows if r["type"] == t], prompt is not None) for t in sorted({r["type"] for r in rows})}
    groups["overall"] = summarise(rows, prompt is not None)
    if prompt is None:
        status = "not run (--no-judge)" if not judge else "not run (no LLM backend configured)"
    else:
        from assistant.llms.chat import model_name

        failed = sum(1 for r in rows if "error" in (r.get("judge") or {}))
        status = f"run ({model_name(llm)}; {len(rows) - failed} judged, {failed} failed)"
    return {
        "questions_file": str(questions_file),
        "settings": app.settings,
        "retriever": app.settings.retriever,
        "library": app.settings.library,
        "backend": app.settings.backend,
        "model": next((m for m in models if m), "") or getattr(app.settings, "llm_model", ""),
        "judge": status,
        "inputs": input_fingerprints(questions_file, papers),
        "groups": groups,
        "per_answer": rows,
    }
