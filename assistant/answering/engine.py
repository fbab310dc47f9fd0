"""The answer path: one llama-index query engine for answers, comparisons, summaries and chat follow-ups.

``CitedQueryEngine`` is a ``CustomQueryEngine`` composed of parts handed in by
the caller (assistant/app.py wires them from settings):

    retriever (PaperRetriever) → answerability → synthesizer (extractive | LLM) → verifier → Answer

``stream(question, mode=, k=, history=, paper_ids=, numbering=)`` yields events as the
answer is written ("sources", then "delta" pieces, then "done" with the
``Answer``); ``ask`` returns the Answer; ``query``/``custom_query`` (the
llama-index entry points) return a llama-index ``Response`` whose metadata
holds the Answer as a dict. The CLI, the chat page and the eval harness all
answer through this one engine.

A follow-up ("and which of them needs a retain set?") is first rewritten into
a standalone question: by the LLM with ``prompts/condense.md`` when there is
one, otherwise by carrying the previous question along for retrieval (the
follow-up's own words still decide what is asked). The rewritten question is
shown in the Answer (``standalone_question``).

With an LLM backend the answer is verified before it is shown: one that fails the check (guard.py) is replaced by
the extractive answer from the same evidence (``fallback``), and the Answer's ``fallback`` says why.

An answer's model calls (the rewrite, the answer, the optional LLM check) share
one deadline of ``llm_timeout`` seconds (llms/deadline.py); a call that runs
out raises a BackendError saying how long it waited.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.answering.answerability import Answerability, LibraryStats
from assistant.answering.evidence import SentenceBank
from assistant.answering.guard import notice, rejection
from assistant.answering.question import FOLLOW_UP, analyse
from assistant.answering.relevance import annotate
from assistant.answering.synthesis import AnswerPlan, sources_from_nodes
from assistant.core.errors import BackendError, UserError
from assistant.core.types import DECLINE_PHRASE, Answer, Hit, Source
from assistant.llms.deadline import Deadline
from assistant.search.nodes import hit_node

MODES = ("answer", "compare", "summarize")


@dataclass
class Event:
    """One step of a streamed answer: 'sources', 'delta' (text), 'done' (the Answer)."""

    kind: str
    text: str = ""
    sources: list[Source] = field(default_factory=list)
    answer: Answer | None = None


class CitedQueryEngine(CustomQueryEngine):
    """Retrieve → decide → synthesize → verify, as one llama-index query engine."""

    retriever: Any  # assistant.search.nodes.PaperRetriever (a llama-index BaseRetriever)
    synthesizer: Any  # a CitingSynthesizer (BaseSynthesizer): extractive or LLM
    answerability: Answerability
    verifier: Any  # .verify(text, sources) -> an object with text, citations, dropped, unsupported_sentences
    bank: SentenceBank
    stats: Callable[[], LibraryStats] = LibraryStats
    condense_llm: Any = None  # a llama-index LLM for rewriting follow-ups (None: carry the previous question)
    llm_timeout: float | None = None  # seconds one answer may wait on the model in all (None: each call its LLM's own)
    get_papers: Callable[[list[str]], list] | None = None
    backend: str = "extractive"
    model: str = "sentence-selection"
    k: int = 8
    streaming: bool = False
    # An LLM backend's answer is verified before it is shown, and replaced by this synthesizer's (the extractive one)
    # when it fails the check (guard.py); None: the synthesizer's pieces are shown as they come (extractive).
    fallback: Any = None
    min_supported: float = 0.8  # share of an LLM answer's claim sentences that must be supported (llm_answer.*)

    # -- llama-index entry point -------------------------------------------------------

    def custom_query(self, query_str: str):
        if self.streaming:
            metadata: dict = {}

            def pieces():
                for event in self.stream(query_str):
                    if event.kind == "delta":
                        yield event.text
                    elif event.kind == "done":
                        metadata["answer"] = event.answer.to_dict()

            return StreamingResponse(response_gen=pieces(), metadata=metadata)
        answer = self.ask(query_str)
        nodes = [hit_node(Hit(paper_id=s["paper_id"], title=s["title"], score=s["score"], abstract=s.get("snippet", "")))
                 for s in answer.sources]
        return Response(response=answer.answer, source_nodes=nodes, metadata={"answer": answer.to_dict()})

    # -- the project's entry points ----------------------------------------------------

    def ask(self, question: str, **kwargs) -> Answer:
        answer = None
        for event in self.stream(question, **kwargs):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None  # stream always ends with "done" or raises
        return answer

    def stream(self, question: str, *, mode: str | None = None, k: int | None = None,
               history: list[dict] | None = None, paper_ids: list[str] | None = None,
               numbering: dict[str, int] | None = None) -> Iterator[Event]:
        """Answer ``question``, yielding events as the answer is written.

        mode: None (detect), "answer", "compare" or "summarize". history: earlier turns as
        [{"role", "content"}], for follow-ups. paper_ids: answer (summarise) from exactly these papers.
        numbering: the conversation's numbers so far ({paper_id: n}); a paper found there keeps its number and a
        new one takes the next free number, so [n] means one paper across a conversation (None: 1..k).
        """
        started = time.perf_counter()
        question = (question or "").strip()
        if mode is not None and mode not in MODES:
            raise UserError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
        if not question and not paper_ids:
            raise UserError("the question is empty")
        base = Answer(question=question, answer="", backend=self.backend, model=self.model, mode=mode or "answer")
        problem = self.answerability.check_question(question, chosen=bool(paper_ids))
        if problem is not None:
            yield from self._decline(base, started, 0.0, problem.reason)
            return

        deadline = Deadline(self.llm_timeout) if self.llm_timeout else None
        standalone = self.condense(question, history or [], deadline) if question else ""
        carried = standalone != question and self.condense_llm is None
        # Without an LLM the standalone question is the earlier one plus this one: only this
        # turn's own words say what is asked (a comparison, a number, a retain set).
        analysed = analyse(question if carried else standalone, "summarize" if paper_ids and mode is None else mode)
        base.mode = analysed.mode
        base.standalone_question = standalone if standalone != question else ""

        if paper_ids:
            nodes = self._nodes_for_papers(paper_ids)
        else:
            nodes = self._retrieve(standalone, analysed.sides, k or self.k)
        retrieve_ms = (time.perf_counter() - started) * 1000
        sources = sources_from_nodes(nodes)
        if numbering:
            sources = renumber(sources, numbering)
        sentences = self.bank.sentences(sources)
        stats = self.stats()
        # How much each evidence sentence bears on the question (relevance.py): the whole question, a follow-up
        # with the turn it follows ("which of them is more stable?" is about NPO and GA, not about stability).
        about = standalone or analysed.text
        if about.strip():
            annotate(sentences, about, self.bank.embed([about])[0], stats.idf)
        if paper_ids:
            decision = self.answerability.chosen(sources, sentences)  # the user chose them: summarise them all
        else:
            decision = self.answerability.decide(analysed, sources, sentences, stats)
        if decision.declined:
            yield from self._decline(base, started, retrieve_ms, decision.reason)
            return
        yield Event("sources", sources=sources)

        plan = AnswerPlan(analysed, sources, sentences, decision, history or [], deadline=deadline)
        gen_started = time.perf_counter()
        response = self.synthesizer.synthesize(QueryBundle(standalone or question), nodes, plan=plan)
        pieces: list[str] = []
        for piece in _response_pieces(response):  # BackendError propagates: never a half answer as complete
            if piece:
                pieces.append(piece)
                if self.fallback is None:
                    yield Event("delta", text=piece)
        generate_ms = (time.perf_counter() - gen_started) * 1000
        raw = "".join(pieces).strip()
        answer = self._finish(base, raw, plan, started, retrieve_ms, generate_ms)
        if self.fallback is not None:  # verified before it is shown: the answer as it stands, sentence by sentence
            for piece in re.split(r"(?<=[.!?])(?=\s)", answer.answer):
                if piece:
                    yield Event("delta", text=piece)
        yield Event("done", answer=answer)

    # -- follow-ups ------------------------------------------------------------------

    def condense(self, question: str, history: list[dict], deadline: Deadline | None = None) -> str:
        """A follow-up rewritten as a standalone question (LLM when there is one, else by context).

        The rewrite draws on the answer's ``deadline``; one that fails or runs out falls back to the context."""
        previous = [m["content"] for m in history if m.get("role") == "user" and isinstance(m.get("content"), str)]
        if not previous or not FOLLOW_UP.search(question):
            return question
        if self.condense_llm is not None:
            from assistant.core.prompts import format_history, load_prompt
            from assistant.llms.chat import complete

            try:
                messages = load_prompt("condense").render(history=format_history(history[-6:]), question=question)
                rewritten = complete(self.condense_llm, messages, deadline=deadline).strip().strip('"')
                if rewritten:
                    return rewritten.splitlines()[0]
            except BackendError:
                pass  # fall back to carrying the context along
        return f"{previous[-1].rstrip(' ?.')} — {question}"

    # -- steps ---------------------------------------------------------------------------

    def _retrieve(self, query: str, sides: list[str], k: int) -> list[NodeWithScore]:
        nodes = self.retriever.with_k(k).retrieve(query)
        if not sides:
            return nodes
        # Both sides must have sources: interleave each side's best papers, then the whole question's.
        side_retriever = self.retriever.with_k(max(3, k // 2))
        per_side = [side_retriever.retrieve(side) for side in sides]
        merged: dict[str, NodeWithScore] = {}
        limit = k + 2 * len(sides)  # room for each side's papers besides the whole question's
        for rank in range(k):
            for lst in per_side + [nodes]:
                if rank < len(lst) and lst[rank].node.node_id not in merged and len(merged) < limit:
                    merged[lst[rank].node.node_id] = lst[rank]
        return list(merged.values())

    def _nodes_for_papers(self, paper_ids: list[str]) -> list[NodeWithScore]:
        if not self.get_papers:
            raise UserError("this engine cannot look papers up by id")
        papers = self.get_papers(paper_ids)
        missing = [pid for pid in paper_ids if pid not in {p.paper_id for p in papers}]
        if missing:
            raise UserError(f"no paper with id {', '.join(missing)} in the library (see `assistant papers list`)")
        return [hit_node(Hit(paper_id=p.paper_id, title=p.title, score=1.0, abstract=p.abstract, dense=1.0,
                             authors=list(p.authors), date=p.date, url=p.url, source=p.source, pdf=p.pdf, pages=p.pages))
                for p in papers]

    def _decline(self, base: Answer, started: float, retrieve_ms: float, reason: str) -> Iterator[Event]:
        base.answer, base.declined, base.answerability, base.decline_reason = DECLINE_PHRASE, True, "decline", reason
        base.timings = _timings(started, retrieve_ms, 0.0, 0.0)
        yield Event("sources", sources=[])
        yield Event("delta", text=DECLINE_PHRASE)
        yield Event("done", answer=base)

    def _finish(self, answer: Answer, raw: str, plan: AnswerPlan, started: float, retrieve_ms: float,
                generate_ms: float) -> Answer:
        declined = not raw or raw.rstrip(".") == DECLINE_PHRASE.rstrip(".") or raw.startswith(DECLINE_PHRASE)
        if declined and self.fallback is None:
            answer.answer, answer.declined, answer.answerability = DECLINE_PHRASE, True, "decline"
            answer.decline_reason = "the model found no answer in the sources"
            answer.timings = _timings(started, retrieve_ms, generate_ms, 0.0)
            return answer
        verify_started = time.perf_counter()
        off = {x.text for x in plan.sentences if (x.n, x.index) in plan.decision.unquotable}

        def verify(text: str):
            return self.verifier.verify(text, plan.sources, deadline=plan.deadline, off_question=off.__contains__,
                                        absent=plan.decision.unanswered)

        check = verify(raw) if not declined else None
        if self.fallback is not None:
            # The decision says the sources answer: a model that declines, or fails the check, is not shown.
            reason = "the model declined, though the sources answer" if declined else rejection(check, self.min_supported)
            if reason:
                answer.fallback = {"from": "llm", "reason": reason, "notice": notice(reason),
                                   "text": check.text if check is not None else raw}
                check = verify("".join(self.fallback.write(plan)).strip())
        verify_ms = (time.perf_counter() - verify_started) * 1000
        answer.answer = check.text
        answer.citations = check.citations
        answer.claims = check.claims  # what each cited sentence rests on, per citation (the verifier's checks)
        answer.dropped_citations = check.dropped
        answer.unsupported_sentences = check.unsupported_sentences
        answer.answerability = plan.decision.verdict
        answer.unanswered_parts = list(plan.decision.unanswered)
        answer.decline_reason = plan.decision.reason if plan.decision.verdict != "answer" else ""
        cited = {c["n"] for c in answer.citations}
        answer.sources = [
            {"n": s.n, "paper_id": s.paper_id, "title": s.title, "authors": s.authors, "date": s.date, "url": s.url,
             "score": round(s.score, 4), "relevance": None if s.relevance is None else round(s.relevance, 4),
             "cited": s.n in cited, "snippet": _snippet(s.abstract)}
            | ({"pdf": s.pdf, "pages": s.pages, "passages": [dict(p) for p in s.passages]} if s.pages else {})
            for s in plan.sources
        ]
        answer.timings = _timings(started, retrieve_ms, generate_ms, verify_ms)
        return answer


def renumber(sources: list[Source], numbering: dict[str, int]) -> list[Source]:
    """Sources numbered as in ``numbering`` ({paper_id: n}); papers not in it take the next free numbers, in order."""
    from dataclasses import replace

    taken = set(numbering.values())
    next_n = max(taken, default=0) + 1
    out = []
    for s in sources:
        n = numbering.get(s.paper_id)
        if n is None:
            n, next_n = next_n, next_n + 1
        out.append(replace(s, n=n))
    return out


def _response_pieces(response) -> Iterator[str]:
    if isinstance(response, StreamingResponse):
        yield from response.response_gen
    else:
        yield str(response.response or "")


def _timings(started: float, retrieve_ms: float, generate_ms: float, verify_ms: float) -> dict:
    return {
        "retrieve_ms": round(retrieve_ms, 1),
        "generate_ms": round(generate_ms, 1),
        "verify_ms": round(verify_ms, 1),
        "total_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _snippet(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + "…"


def source_nodes(sources: list[Source]) -> list[NodeWithScore]:
    """Sources as paper nodes (for callers that want llama-index objects back)."""
    return [hit_node(Hit(paper_id=s.paper_id, title=s.title, score=s.score, abstract=s.abstract, dense=s.relevance))
            for s in sources]
