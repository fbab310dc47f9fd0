"""The LLM synthesizer: any llama-index LLM writes the cited answer from the prompts in ``prompts/``.

It renders ``prompts/<mode>.md`` with the numbered sources the answerability
decision keeps and what it found missing (``{missing}``), trims the prompt to
the model's context window (lowest-ranked sources first, then abstracts cut
to a common length, keeping their opening sentences) and streams the reply
through ``assistant.llms.chat``, which turns every failure into a one-line
BackendError and keeps to the answer's deadline (``plan.deadline``). Chat history is not sent: the engine condenses a follow-up into
a standalone question first, because earlier answers cite an earlier
numbering of sources.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Generator

from assistant.answering.synthesis import CHARS_PER_TOKEN, AnswerPlan, CitingSynthesizer
from assistant.core.errors import BackendError
from assistant.core.prompts import format_sources, load_prompt
from assistant.core.types import Source
from assistant.llms import chat

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

MESSAGE_OVERHEAD = 8  # tokens per chat message for role markers and templates
SAFETY_TOKENS = 64  # slack for the estimate's error
MIN_ABSTRACT_CHARS = 200
MIN_ANSWER_TOKENS = 64


def estimate_tokens(messages: list[dict]) -> int:
    """A char-based token estimate for chat messages (errs on the high side)."""
    return sum(int(len(m.get("content") or "") / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD for m in messages)


class LLMSynthesizer(CitingSynthesizer):
    """Cited answers written by ``llm`` (any llama-index LLM) from the numbered sources."""

    def __init__(self, llm: "LLM", *, context_window: int = 8192, max_tokens: int = 512, streaming: bool = True):
        super().__init__(llm=llm, streaming=streaming, context_window=context_window, num_output=max_tokens)
        self.context_window = context_window
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return chat.model_name(self._llm)

    def write(self, plan: AnswerPlan) -> Generator[str, None, None]:
        messages, max_tokens = self.build_messages(plan)
        yield from chat.stream(self._llm, messages, max_tokens=max_tokens, deadline=plan.deadline)

    def render(self, plan: AnswerPlan, sources: list[Source]) -> list[dict]:
        mode = plan.question.mode
        missing = ("; ".join(plan.decision.unanswered) + ".") if plan.decision.unanswered else "nothing found missing."
        values = {"question": plan.question.text or "the papers below", "sources": format_sources(sources),
                  "missing": missing}
        if mode == "compare":
            values["sides"] = "; ".join(plan.question.sides) if plan.question.sides else "(as named in the question)"
        return load_prompt(mode).render(**values)

    def build_messages(self, plan: AnswerPlan) -> tuple[list[dict], int]:
        """Chat messages that fit the context window with room for the answer, and the answer's token limit."""
        budget = self.context_window - self.max_tokens - SAFETY_TOKENS
        sources = list(plan.cited_sources)
        messages = self.render(plan, sources)
        # 1. Drop the lowest-ranked sources (lowest score, later rank on ties), keeping one.
        while estimate_tokens(messages) > budget and len(sources) > 1:
            worst = min(range(len(sources)), key=lambda i: (sources[i].score, -i))
            del sources[worst]
            messages = self.render(plan, sources)
        # 2. Cut the remaining abstracts to a common length, keeping their opening sentences.
        limit = max((len(s.abstract) for s in sources), default=0)
        while estimate_tokens(messages) > budget and limit > MIN_ABSTRACT_CHARS:
            excess_chars = (estimate_tokens(messages) - budget) * CHARS_PER_TOKEN
            limit = max(MIN_ABSTRACT_CHARS, limit - max(1, int(excess_chars / len(sources))))
            messages = self.render(plan, [replace(s, abstract=_truncate(s.abstract, limit)) for s in sources])
        # 3. Still too long (a huge question): shorten the answer budget rather than fail on the server.
        room = self.context_window - estimate_tokens(messages) - SAFETY_TOKENS
        max_tokens = min(self.max_tokens, room)
        if max_tokens < MIN_ANSWER_TOKENS:
            raise BackendError(f"the question is too long for {self.name}'s context window ({self.context_window} tokens)")
        return messages, max_tokens


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"
