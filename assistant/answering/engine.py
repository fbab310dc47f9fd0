"""Answering: retrieve → numbered sources → backend → citations checked → Answer.

``AnswerEngine`` owns the question-level logic: spotting comparisons and
retrieving for each side, declining when nothing relevant was found (without
calling the backend), turning a follow-up into a standalone question, and
summaries that fit the backend's context window. ``CitedQueryEngine`` exposes
the same thing as a llama-index query engine over the paper retriever.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from assistant.answering.backend_base import AnswerTask, Backend, BackendError, Source
from assistant.answering.citations import check_answer
from assistant.core.errors import UserError
from assistant.core.types import DECLINE_PHRASE, Hit

_COMPARE_PATTERNS = [
    re.compile(r"^\s*(?:please\s+)?(?:compare|contrast)\s+(?P<a>.+?)\s+(?:and|with|to|against|versus|vs\.?)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"(?:differen(?:ce|ces)|distinction)\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*how\s+(?:does|do|is|are)\s+(?P<a>.+?)\s+(?:differ|different|compare)\s+(?:from|to|with)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*(?P<a>.+?)\s+(?:vs\.?|versus)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
]
_SUMMARY = re.compile(
    r"^\s*(?:please\s+)?(?:summari[sz]e|give (?:me )?an overview of|overview of"
    r"|what (?:does|do) (?:the )?(?:library|papers|collection|literature) (?:say|says|know|tell us) (?:about|on))\s+(?P<topic>.+?)\s*[?.!]*\s*$",
    re.I,
)
# Words that make a question lean on the conversation before it.
_FOLLOW_UP = re.compile(r"\b(they|them|their|it|its|these|those|this one|that one|the first|the second|the same|which of)\b|^\s*(and|also|what about|how about)\b", re.I)


def split_comparison(question: str) -> list[str]:
    """The two sides of a comparison question, or [] when it is not one."""
    for pattern in _COMPARE_PATTERNS:
        m = pattern.search(question)
        if m:
            a, b = (re.sub(r"^(?:the|a|an)\s+", "", s.strip(" ,;:'\""), flags=re.I) for s in (m["a"], m["b"]))
            if a and b and len(a) < 120 and len(b) < 120:
                return [a, b]
    return []


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    backend: str = ""
    model: str = ""
    mode: str = "answer"
    declined: bool = False
    standalone_question: str = ""
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    """One step of a streamed answer: 'sources', 'delta' (text), 'done' (the Answer)."""

    kind: str
    text: str = ""
    sources: list[Source] = field(default_factory=list)
    answer: Answer | None = None


class AnswerEngine:
    def __init__(
        self,
        search: Callable[..., list[Hit]],
        backend: Backend,
        *,
        k: int = 8,
        min_relevance: float = 0.30,
        support_fn: Callable[[str, list[str]], float] | None = None,
        get_papers: Callable[[list[str]], list] | None = None,
    ):
        self.search = search  # (query, k) -> list[Hit]
        self.backend = backend
        self.k = k
        self.min_relevance = min_relevance
        self.support_fn = support_fn
        self.get_papers = get_papers

    # -- public --------------------------------------------------------------------

    def ask(self, question: str, **kwargs) -> Answer:
        answer = None
        for event in self.stream(question, **kwargs):
            if event.kind == "done":
                answer = event.answer
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        *,
        mode: str | None = None,
        k: int | None = None,
        history: list[dict] | None = None,
        paper_ids: list[str] | None = None,
    ) -> Iterator[Event]:
        """Answer ``question``, yielding events as the answer is written.

        mode: None (detect), "answer", "compare" or "summarize".
        history: earlier turns as [{"role", "content"}], for follow-up questions.
        paper_ids: answer (summarise) from exactly these papers instead of searching.
        """
        started = time.perf_counter()
        question = (question or "").strip()
        if not question and not paper_ids:
            raise UserError("the question is empty")
        k = k or self.k
        standalone = self.condense(question, history or []) if question else ""
        sides: list[str] = []
        if mode in (None, "compare"):
            # Without an LLM the standalone question is the earlier one plus this one;
            # only this turn's own words say whether it is a comparison.
            carried = standalone != question and not getattr(self.backend, "can_complete", False)
            sides = split_comparison(question if carried else standalone)
            if sides:
                mode = "compare"
        if mode is None:
            mode = "summarize" if _SUMMARY.match(standalone) else "answer"

        if paper_ids:
            hits = self._hits_for_papers(paper_ids)
            if not question:
                question = "Summarise these papers."  # shown to the user; the backend gets no topic
        else:
            hits = self._retrieve(standalone, sides, k)
        retrieve_ms = (time.perf_counter() - started) * 1000
        sources = [
            Source(n=i, paper_id=h.paper_id, title=h.title, abstract=h.abstract, score=h.score, relevance=h.dense)
            for i, h in enumerate(hits, 1)
        ]
        relevance = max((h.dense for h in hits if h.dense is not None), default=None)
        declined_early = not paper_ids and (not hits or relevance is None or relevance < self.min_relevance)
        yield Event("sources", sources=[] if declined_early else sources)

        base = Answer(
            question=question,
            answer="",
            backend=self.backend.name,
            model=self.backend.model,
            mode=mode,
            standalone_question=standalone if standalone != question else "",
        )
        if declined_early:
            # Nothing relevant: decline without calling the backend.
            base.answer, base.declined = DECLINE_PHRASE, True
            base.timings = _timings(started, retrieve_ms, 0.0)
            yield Event("delta", text=DECLINE_PHRASE)
            yield Event("done", answer=base)
            return

        task = AnswerTask(question=standalone, mode=mode, sources=sources, sides=sides, history=history or [])
        gen_started = time.perf_counter()
        pieces: list[str] = []
        for piece in self.backend.stream(task):  # BackendError propagates: never a half answer as complete
            pieces.append(piece)
            yield Event("delta", text=piece)
        generate_ms = (time.perf_counter() - gen_started) * 1000
        raw = "".join(pieces).strip()
        yield Event("done", answer=self._finish(base, raw, sources, started, retrieve_ms, generate_ms))

    def condense(self, question: str, history: list[dict]) -> str:
        """A follow-up rewritten as a standalone question (LLM when there is one, else by context)."""
        previous = [m["content"] for m in history if m.get("role") == "user" and isinstance(m.get("content"), str)]
        if not previous or not _FOLLOW_UP.search(question):
            return question
        if getattr(self.backend, "can_complete", False):
            try:
                from assistant.core.prompts import load_prompt

                messages = load_prompt("condense").render(history=_history_text(history), question=question)
                rewritten = self.backend.complete(messages).strip().strip('"')
                if rewritten:
                    return rewritten.splitlines()[0]
            except BackendError:
                pass  # fall back to the context-carrying rewrite below
        # No LLM: carry the last question's subject along, which retrieval needs.
        return f"{previous[-1].rstrip(' ?.')} — {question}"

    # -- steps ---------------------------------------------------------------------

    def _retrieve(self, query: str, sides: list[str], k: int) -> list[Hit]:
        hits = self.search(query, k)
        if not sides:
            return hits
        # Both sides must have sources: interleave each side's best papers, then the whole question's.
        per_side = [self.search(side, max(2, k // 2)) for side in sides]
        merged: dict[str, Hit] = {}
        for rank in range(k):
            for lst in per_side + [hits]:
                if rank < len(lst) and lst[rank].paper_id not in merged and len(merged) < k:
                    merged[lst[rank].paper_id] = lst[rank]
        return list(merged.values())

    def _hits_for_papers(self, paper_ids: list[str]) -> list[Hit]:
        if not self.get_papers:
            raise UserError("this engine cannot look papers up by id")
        papers = self.get_papers(paper_ids)
        missing = [pid for pid in paper_ids if pid not in {p.paper_id for p in papers}]
        if missing:
            raise UserError(f"no paper with id {', '.join(missing)} in the library (see `assistant papers list`)")
        return [Hit(paper_id=p.paper_id, title=p.title, score=1.0, abstract=p.abstract, dense=1.0) for p in papers]

    def _finish(self, answer: Answer, raw: str, sources: list[Source], started: float, retrieve_ms: float, generate_ms: float) -> Answer:
        answer.timings = _timings(started, retrieve_ms, generate_ms)
        if not raw or raw.strip().rstrip(".") == DECLINE_PHRASE.rstrip(".") or raw.startswith(DECLINE_PHRASE):
            answer.answer, answer.declined = DECLINE_PHRASE, True
            return answer
        check = check_answer(raw, sources, support_fn=self.support_fn)
        answer.answer = check.text
        answer.citations = check.citations
        answer.dropped_citations = check.dropped
        answer.unsupported_sentences = check.unsupported_sentences
        answer.sources = [
            {
                "n": s.n,
                "paper_id": s.paper_id,
                "title": s.title,
                "score": round(s.score, 4),
                "relevance": None if s.relevance is None else round(s.relevance, 4),
                "snippet": _snippet(s.abstract),
            }
            for s in sources
        ]
        answer.timings = _timings(started, retrieve_ms, generate_ms)
        return answer


def _timings(started: float, retrieve_ms: float, generate_ms: float) -> dict:
    return {
        "retrieve_ms": round(retrieve_ms, 1),
        "generate_ms": round(generate_ms, 1),
        "total_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _snippet(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + "…"


def _history_text(history: list[dict]) -> str:
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in history[-6:] if isinstance(m.get("content"), str))


def make_query_engine(engine: AnswerEngine, retriever):
    """A llama-index query engine: the paper retriever's nodes become numbered sources, answered with citations."""
    from llama_index.core.base.response.schema import Response
    from llama_index.core.query_engine import CustomQueryEngine
    from llama_index.core.retrievers import BaseRetriever

    class CitedQueryEngine(CustomQueryEngine):
        retriever: BaseRetriever

        def custom_query(self, query_str: str) -> Response:
            nodes = self.retriever.retrieve(query_str)
            hits = [
                Hit(
                    paper_id=n.node.metadata["paper_id"],
                    title=n.node.metadata["title"],
                    score=n.score or 0.0,
                    abstract=n.node.get_content(),
                    dense=n.node.metadata.get("dense"),
                )
                for n in nodes
            ]
            fixed = AnswerEngine(lambda q, k: hits, engine.backend, k=len(hits), min_relevance=engine.min_relevance, support_fn=engine.support_fn)
            answer = fixed.ask(query_str, mode="answer")
            return Response(response=answer.answer, source_nodes=nodes, metadata=answer.to_dict())

    return CitedQueryEngine(retriever=retriever)
