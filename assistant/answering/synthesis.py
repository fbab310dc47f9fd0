"""What every synthesizer receives and how it plugs into llama-index.

An ``AnswerPlan`` is the engine's work so far: the analysed question, the
numbered sources, their sentences and the answerability decision. The
synthesizers (``ExtractiveSynthesizer``, ``LLMSynthesizer``) are llama-index
``BaseSynthesizer`` subclasses: the engine calls ``synthesize(query, nodes,
plan=...)`` and reads a ``StreamingResponse``; code of one's own may call
``synthesize(query, nodes)`` with any paper nodes, and a plan is made from the
nodes (every node a source, nothing declined).

``CitingSynthesizer`` sets up the base class without llama-index's global
``Settings``: no default OpenAI LLM, and a prompt helper whose tokenizer is a
character estimate, so ``tiktoken`` never downloads an encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Sequence

from llama_index.core.callbacks import CallbackManager
from llama_index.core.indices.prompt_helper import ChatPromptHelper, PromptHelper
from llama_index.core.llms import LLM
from llama_index.core.llms.mock import MockLLM
from llama_index.core.response_synthesizers import BaseSynthesizer
from llama_index.core.schema import NodeWithScore, QueryBundle

from assistant.answering.answerability import Decision
from assistant.answering.evidence import Sentence
from assistant.answering.question import Question, analyse
from assistant.core.types import Source

CHARS_PER_TOKEN = 3.5  # conservative for English; a real tokenizer would need a download


def estimate_tokens(text: str) -> list[int]:
    """A token list of the right length for llama-index's prompt helpers (a character estimate)."""
    return [0] * int(len(text) / CHARS_PER_TOKEN + 1)


@dataclass
class AnswerPlan:
    """Everything a synthesizer needs to write the answer (sources keep their numbers: [n] is Source.n)."""

    question: Question
    sources: list[Source]
    sentences: list[Sentence] = field(default_factory=list)
    decision: Decision = field(default_factory=lambda: Decision("answer"))
    history: list[dict] = field(default_factory=list)
    deadline: Any = None  # the answer's llms.deadline.Deadline: every model call of the answer draws on it

    def __post_init__(self) -> None:
        if not self.decision.keep and not self.decision.declined:
            # A plan made without the answerability decision (a bare llama-index use): every source may be cited.
            self.decision.keep = [s.n for s in self.sources]

    @property
    def cited_sources(self) -> list[Source]:
        """The sources the answer may cite, best first (the decision's keep list)."""
        keep = self.decision.keep or [s.n for s in self.sources]
        by_n = {s.n: s for s in self.sources}
        return [by_n[n] for n in keep if n in by_n]


def sources_from_nodes(nodes: Sequence[NodeWithScore]) -> list[Source]:
    """Numbered sources [1..] from paper nodes (the project's retriever's, which carry their Hit, or anyone's)."""
    from assistant.search.nodes import node_hit

    out = []
    for i, nws in enumerate(nodes, 1):
        hit = node_hit(nws)
        out.append(Source(n=i, paper_id=hit.paper_id, title=hit.title, abstract=hit.abstract,
                          score=float(nws.score if nws.score is not None else hit.score), relevance=hit.dense,
                          authors=list(hit.authors), date=hit.date, url=hit.url,
                          passages=[{k: p.get(k) for k in ("page", "section", "kind", "text")} for p in hit.passages],
                          pdf=hit.pdf, pages=hit.pages))
    return out


class CitingSynthesizer(BaseSynthesizer):
    """Base of the project's synthesizers: streaming or not, no global Settings, a plan per call."""

    def __init__(self, llm: LLM | None = None, streaming: bool = True, context_window: int = 8192,
                 num_output: int = 512):
        super().__init__(
            llm=llm or MockLLM(),  # the extractive answerer calls no model; the base class wants one anyway
            callback_manager=CallbackManager([]),
            prompt_helper=PromptHelper(context_window=context_window, num_output=num_output, tokenizer=estimate_tokens),
            chat_prompt_helper=ChatPromptHelper(context_window=context_window, num_output=num_output,
                                                tokenizer=estimate_tokens),
            streaming=streaming,
        )

    def _get_prompts(self) -> dict:
        return {}  # prompts are files in prompts/, loaded by name (assistant.core.prompts)

    def _update_prompts(self, prompts_dict: dict) -> None:
        pass

    def synthesize(self, query, nodes: list[NodeWithScore], additional_source_nodes=None, **response_kwargs: Any):
        if "plan" not in response_kwargs:
            query_str = query.query_str if isinstance(query, QueryBundle) else str(query)
            response_kwargs["plan"] = self.default_plan(query_str, nodes)
        return super().synthesize(query, nodes, additional_source_nodes, **response_kwargs)

    def default_plan(self, query_str: str, nodes: Sequence[NodeWithScore]) -> AnswerPlan:
        sources = sources_from_nodes(nodes)
        return AnswerPlan(analyse(query_str), sources, decision=Decision("answer", keep=[s.n for s in sources]))

    def get_response(self, query_str: str, text_chunks: Sequence[str], plan: AnswerPlan | None = None,
                     **kwargs: Any):
        pieces = self.write(plan or AnswerPlan(analyse(query_str), []))
        return pieces if self._streaming else "".join(pieces)

    async def aget_response(self, query_str: str, text_chunks: Sequence[str], **kwargs: Any):
        return self.get_response(query_str, text_chunks, **kwargs)

    def write(self, plan: AnswerPlan) -> Generator[str, None, None]:
        """The answer in pieces, citing sources as [n]."""
        raise NotImplementedError
