"""The LLM synthesizer: any llama-index LLM rewrites the chosen evidence into a cited answer.

The answerability decision is made before this runs (the engine declines
without calling the model), and the evidence is chosen first, for every
backend: the extractive synthesizer's selection (``ExtractiveSynthesizer.select``:
the quotes it would print, grouped by comparison side or summary theme) is
numbered [1]..[k], each sentence with its paper's title and, for a passage of a
PDF, its page, and rendered with ``prompts/<mode>.md``. The model rewrites those
sentences into prose, giving for each of its sentences the numbers of the
evidence it rests on; the code turns evidence numbers into source marks
(``[n]``, ``[n, p. P]``), so a citation always names a real source and page.

* **Carried by construction** where the server allows it: ``response_format``
  with a JSON schema (``{"sentences": [{"text", "evidence": [k, ...]}]}``, the
  numbers an enum of the evidence's), in the OpenAI API's form (``json_schema``)
  or llama.cpp's (``json_object`` with ``schema``). A server that refuses it is
  asked again in prose, and is not asked for it again by this synthesizer.
* **Parsed leniently** otherwise (``parse_marked``): a mark after or before its
  sentence ("[2] proposes GraphAdapter."), ``[1][2]``, ``[1, 3]``, ``[1, p. 3]``.
* **Nothing to copy**: the prompt never shows a decline sentence, and rule text
  that does not apply is not rendered; what the sources lack (the decision's
  ``unanswered``) is stated by the code, ahead of the model's sentences, as the
  extractive answer states it. A comparison keeps one paragraph per side and a
  summary one per theme, by the part of the evidence each sentence cites.

Whether the result is shown is the engine's call after the verifier (guard.py):
an answer that fails the check falls back to the extractive one, saying so.
Failures of the model are one-line BackendErrors (``assistant.llms.chat``),
within the answer's deadline (``plan.deadline``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from assistant.answering.extractive import Part, Selection, cite, render
from assistant.answering.synthesis import CHARS_PER_TOKEN, AnswerPlan, CitingSynthesizer
from assistant.core.errors import BackendError
from assistant.core.prompts import format_evidence, load_prompt
from assistant.core.settings import LLMAnswerConfig
from assistant.core.text import CITATION, split_sentences
from assistant.llms import chat

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from assistant.answering.extractive import ExtractiveSynthesizer

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD = 8  # tokens per chat message for role markers and templates
SAFETY_TOKENS = 64  # slack for the estimate's error
MIN_ANSWER_TOKENS = 64
BARE_SENTENCES = 4  # without an evidence selector (a bare llama-index use): the first sentences of each source
STRUCTURED = ("json_schema", "json_object")

TEXT_RULE = ("Output: plain prose. End each sentence with the numbers of the evidence sentences it rests on, in square "
             "brackets: [1], or [1][3] for two.")
JSON_RULE = ('Output: one JSON object and nothing else: {"sentences": [{"text": "a sentence of the answer", '
             '"evidence": [1]}]}, each sentence with the numbers of the evidence sentences it rests on, and no '
             'numbers inside "text". The example answer as JSON: {"sentences": [{"text": "Loss falls as a power law in '
             'model size, data and compute.", "evidence": [1]}, {"text": "Compute-optimal training scales model size '
             'and training tokens equally.", "evidence": [2]}]}')


def estimate_tokens(messages: list[dict]) -> int:
    """A char-based token estimate for chat messages (errs on the high side)."""
    return sum(int(len(m.get("content") or "") / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD for m in messages)


@dataclass(frozen=True)
class Evidence:
    """One numbered evidence sentence: ``k`` is the number the model cites; ``n`` and ``page`` the source mark it
    becomes; ``part`` the selection's part it belongs to (a comparison's side, a summary's theme)."""

    k: int
    n: int
    page: int | None
    text: str
    title: str
    part: int = 0


@dataclass
class Written:
    """One sentence the model wrote: its text without marks and the evidence numbers it cites."""

    text: str
    evidence: list[int]


def structured_for(backend: str, setting: str) -> str:
    """The output format to ask for: the setting, or for "auto" the form the backend's servers accept."""
    if setting != "auto":
        return setting
    return {"openai": "json_schema", "openai-compatible": "json_object"}.get(backend, "off")


class LLMSynthesizer(CitingSynthesizer):
    """Cited answers written by ``llm`` (any llama-index LLM) from the evidence ``evidence`` chooses (the extractive
    synthesizer; without one, the first sentences of each source)."""

    def __init__(self, llm: "LLM", *, evidence: "ExtractiveSynthesizer | None" = None,
                 config: LLMAnswerConfig | None = None, structured: str = "off", context_window: int = 8192,
                 max_tokens: int = 512, streaming: bool = True):
        super().__init__(llm=llm, streaming=streaming, context_window=context_window, num_output=max_tokens)
        self.evidence = evidence
        self.config = config or LLMAnswerConfig()
        self.structured = "off" if structured == "auto" else structured  # "auto" needs the backend: structured_for
        self.context_window = context_window
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return chat.model_name(self._llm)

    # -- what the model is given ------------------------------------------------------

    def select(self, plan: AnswerPlan) -> tuple[Selection, list[Evidence]]:
        """The selection the answer is made of and its sentences numbered for the model."""
        titles = {s.n: s.title for s in plan.sources}
        if self.evidence is not None:
            selection = self.evidence.select(plan)
            items = [Evidence(0, s.n, s.page, s.text, titles.get(s.n, ""), i)
                     for i, part in enumerate(selection.parts) for s in part.sentences]
        else:  # a bare llama-index use: no bank, no decision; every kept source's opening sentences
            from assistant.answering.extractive import absence_sentence

            absence = absence_sentence(plan.decision.unanswered) if plan.decision.unanswered else ""
            selection = Selection("answer", absence, [Part("", [])])
            items = [Evidence(0, s.n, None, text, s.title) for s in plan.cited_sources
                     for text in split_sentences(s.abstract)[:BARE_SENTENCES]]
        return selection, [Evidence(k, e.n, e.page, e.text, e.title, e.part) for k, e in enumerate(items, 1)]

    def render(self, plan: AnswerPlan, selection: Selection, items: list[Evidence], structured: str = "off") -> list[dict]:
        """The chat messages: the mode's prompt with the numbered evidence (grouped by part) and the output rule."""
        groups: list[tuple[str, list[tuple[int, str, str]]]] = []
        for i, part in enumerate(selection.parts):
            mine = [(e.k, e.title + (f"; p. {e.page}" if e.page is not None else ""), e.text) for e in items if e.part == i]
            if mine:
                heading = f"On {part.heading}" if selection.mode == "compare" and part.heading != "Side by side" else part.heading
                groups.append((heading, mine))
        values = {"question": plan.question.text or "the papers below", "evidence": format_evidence(groups),
                  "output": JSON_RULE if structured in STRUCTURED else TEXT_RULE}
        mode = selection.mode
        if mode == "compare":
            values["sides"] = "; ".join(p.heading for p in selection.parts if p.units and p.heading != "Side by side")
        return load_prompt(mode).render(**values)

    def build_messages(self, plan: AnswerPlan, structured: str | None = None) -> tuple[list[dict], int]:
        """Chat messages for this plan and the answer's token limit (what the context window leaves, at most
        ``max_tokens``)."""
        selection, items = self.select(plan)
        items = self.fit(plan, selection, items, self.structured if structured is None else structured)
        messages = self.render(plan, selection, items, self.structured if structured is None else structured)
        return messages, self._room(messages)

    def fit(self, plan: AnswerPlan, selection: Selection, items: list[Evidence], structured: str) -> list[Evidence]:
        """The evidence cut to the context window with room for the answer: the last sentences go first, then the
        one left is shortened (a huge question still fails, in ``_room``)."""
        budget = self.context_window - min(self.max_tokens, self.context_window // 2) - SAFETY_TOKENS
        while len(items) > 1 and estimate_tokens(self.render(plan, selection, items, structured)) > budget:
            items = items[:-1]
        if items and estimate_tokens(self.render(plan, selection, items, structured)) > budget:
            excess = int((estimate_tokens(self.render(plan, selection, items, structured)) - budget) * CHARS_PER_TOKEN)
            text = items[0].text
            if len(text) - excess >= 200:
                cut = text[: len(text) - excess].rsplit(" ", 1)[0] + " …"
                items = [Evidence(items[0].k, items[0].n, items[0].page, cut, items[0].title, items[0].part)]
        return items

    def _room(self, messages: list[dict]) -> int:
        room = min(self.max_tokens, self.context_window - estimate_tokens(messages) - SAFETY_TOKENS)
        if room < MIN_ANSWER_TOKENS:
            raise BackendError(f"the question is too long for {self.name}'s context window ({self.context_window} tokens)")
        return room

    def most_sentences(self, selection: Selection) -> int:
        """How many sentences the answer may have: a comparison or a summary one per evidence sentence (a comparison one
        more, on how the sides differ), at most 9; other answers ``llm_answer.max_sentences``."""
        units = sum(len(p.units) for p in selection.parts)
        if selection.mode in ("compare", "summarize"):
            return max(1, min(units + (1 if selection.mode == "compare" else 0), 9))
        return self.config.max_sentences

    # -- writing -----------------------------------------------------------------------

    def write(self, plan: AnswerPlan) -> Generator[str, None, None]:
        selection, items = self.select(plan)
        if not items:  # nothing to rewrite: what the decision says is missing, and nothing else
            yield from render(selection)
            return
        reply, used = self._ask(plan, selection, items)
        written = parse_reply(reply, used)
        yield from compose(selection, items, written)

    def _ask(self, plan: AnswerPlan, selection: Selection, items: list[Evidence]) -> tuple[str, str]:
        """The model's reply and the format it was asked for; a server that refuses the structured format is asked
        again in prose (and not asked for the format again)."""
        structured = self.structured
        items = self.fit(plan, selection, items, structured)
        messages = self.render(plan, selection, items, structured)
        llm = self._llm
        if structured in STRUCTURED:
            # A plain answer is asked for a sentence per evidence sentence; a comparison or a summary made a small
            # model repeat itself when held to that, so it only keeps to its maximum.
            least = len(items) if selection.mode == "answer" else 1
            llm = with_response_format(llm, response_format(structured, len(items), self.most_sentences(selection), least))
        try:
            return "".join(chat.stream(llm, messages, max_tokens=self._room(messages), deadline=plan.deadline)), structured
        except BackendError as exc:
            if structured not in STRUCTURED or "refused the request" not in str(exc):
                raise
            log.warning("%s refused response_format %s (%s); asking for prose", self.name, structured, exc)
            self.structured = "off"
            messages = self.render(plan, selection, items, "off")
            return "".join(chat.stream(self._llm, messages, max_tokens=self._room(messages),
                                       deadline=plan.deadline)), "off"


# -- structured output -------------------------------------------------------------------------------------------


MIN_SENTENCES_CAP = 4  # the sentences a grammar may demand: more made a small model repeat itself


def response_format(kind: str, count: int, most: int, least: int = 1) -> dict:
    """The ``response_format`` asking for cited sentences: evidence numbers are an enum of 1..count. Where the
    server holds the length (llama.cpp's grammar), the answer has at least ``least`` sentences (at most ``most`` and
    MIN_SENTENCES_CAP): a small model otherwise stops after one or two and drops what the rest of the evidence says."""
    item = {"type": "object", "additionalProperties": False, "required": ["text", "evidence"],
            "properties": {"text": {"type": "string"},
                           "evidence": {"type": "array", "items": {"type": "integer", "enum": list(range(1, count + 1))}}}}
    sentences: dict[str, Any] = {"type": "array", "items": item}
    if kind == "json_object":  # llama.cpp's grammar holds the length too (the OpenAI API's strict mode may not)
        item["properties"]["evidence"] |= {"minItems": 1, "maxItems": min(count, 4)}
        sentences |= {"minItems": max(1, min(least, most, MIN_SENTENCES_CAP)), "maxItems": most}
    schema = {"type": "object", "additionalProperties": False, "required": ["sentences"],
              "properties": {"sentences": sentences}}
    if kind == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "cited_answer", "strict": True, "schema": schema}}


def with_response_format(llm: "LLM", fmt: dict) -> "LLM":
    """A copy of an OpenAI-API LLM that sends ``response_format`` with each request (other LLMs unchanged)."""
    if not hasattr(llm, "additional_kwargs") or not hasattr(llm, "model_copy"):
        return llm
    return llm.model_copy(update={"additional_kwargs": {**(llm.additional_kwargs or {}), "response_format": fmt}})


def parse_reply(reply: str, structured: str = "off") -> list[Written]:
    """The model's sentences with their evidence numbers: from the JSON object when one was asked for and can be read,
    else leniently from prose marks."""
    if structured in STRUCTURED:
        parsed = parse_json(reply)
        if parsed is not None:
            return parsed
    return parse_marked(reply)


_COMPLETE_ITEM = re.compile(r'\{\s*"text"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"evidence"\s*:\s*\[([\d,\s]*)\]\s*\}')


def parse_json(reply: str) -> list[Written] | None:
    """``{"sentences": [{"text", "evidence"}]}`` read from a reply (None when it holds no such object). Marks the
    model put inside a text count as its evidence too. A reply cut off inside the object (the token limit) keeps its
    complete sentences; a reply that opens an object and has none is no prose to read: nothing."""
    m = re.search(r"\{.*\}", reply or "", re.DOTALL)
    try:
        items = json.loads(m.group(0))["sentences"] if m else None
    except (ValueError, KeyError, TypeError):
        items = None
    if items is None:
        if not (reply or "").lstrip().startswith("{"):
            return None
        items = [{"text": json.loads(f'"{text}"'), "evidence": re.findall(r"\d+", numbers)}
                 for text, numbers in _COMPLETE_ITEM.findall(reply)]
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        numbers = []
        for v in item.get("evidence") or []:
            try:
                numbers.append(int(v))
            except (TypeError, ValueError):
                continue
        for sentence in parse_marked(item["text"]) or [Written(item["text"].strip(), [])]:
            out.append(Written(sentence.text, list(dict.fromkeys(numbers + sentence.evidence))))
    return [w for w in out if w.text]


_LEAD = re.compile(r"^((?:\s*" + CITATION.pattern + r")+)[\s,:]*")
_LABEL = re.compile(r"^\s*(?:answer|summary|comparison)\s*:\s*", re.I)


def parse_marked(text: str) -> list[Written]:
    """Sentences of prose with the numbers of their marks, read leniently: a mark after its sentence ("X [1].",
    "X. [1]"), before it ("[2] proposes GraphAdapter."), several ("[1][2]", "[1, 3]") or with a page ("[1, p. 3]").

    A mark that opens a sentence belongs to that sentence when the sentence before already has its own mark (or there
    is none, or the mark is the sentence's subject: "[2] proposes …"); otherwise it closes the sentence before."""
    from assistant.answering.citations import _items

    out: list[Written] = []
    body = _LABEL.sub("", (text or "").strip())
    for para in re.split(r"\n\s*\n|\n(?=\s*[-*•]\s)|\n", body):
        para = re.sub(r"^\s*[-*•]\s+", "", para)
        first_in_para = True
        for sentence in split_sentences(para):
            lead = _LEAD.match(sentence)
            numbers: list[int] = []
            rest = sentence
            if lead:
                led = [n for m in CITATION.finditer(lead.group(1)) for n, _ in _items(m.group(1))]
                rest = sentence[lead.end():]
                if out and not first_in_para and not out[-1].evidence and not rest[:1].islower():
                    out[-1].evidence += led  # "X. [2] Y": the mark closes X, which has none of its own
                else:
                    numbers += led  # "[2] proposes GraphAdapter." or "X [1]. [2] Y": the mark is this sentence's
                    if rest[:1].islower() and not rest.startswith(("and ", "or ", "but ")):
                        rest = "This paper " + rest  # the mark was the sentence's subject
            numbers += [n for m in CITATION.finditer(rest) for n, _ in _items(m.group(1))]
            plain = _plain(rest)
            if _words(plain) >= 2:
                out.append(Written(plain, list(dict.fromkeys(numbers))))
                first_in_para = False
            elif numbers and out:  # a stray mark on its own: it belongs to the sentence before
                out[-1].evidence += [n for n in numbers if n not in out[-1].evidence]
    return out


def _plain(text: str) -> str:
    text = CITATION.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split())).strip(" ,;")
    return text


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


# -- the answer ----------------------------------------------------------------------------------------------------


def compose(selection: Selection, items: list[Evidence], written: list[Written]) -> Generator[str, None, None]:
    """The answer's text: the absence sentence the decision calls for, then the model's sentences, each ending with
    the source marks of its evidence (numbers with no evidence are left out); a comparison one paragraph per side
    (and one for what sets them apart), a summary one per theme, a side with nothing said to be missing."""
    by_k = {e.k: e for e in items}
    placed: list[tuple[int, str]] = []  # (part, cited sentence)
    last_part = 0
    seen: list[set[str]] = []
    for w in written:
        said = set(re.findall(r"\w+", w.text.lower()))
        if any(len(said & other) >= 0.8 * len(said | other) for other in seen):
            continue  # a small model repeats a sentence (nearly word for word) to fill the sentences asked for
        seen.append(said)
        cited = [by_k[k] for k in w.evidence if k in by_k]
        part = Counter(e.part for e in cited).most_common(1)[0][0] if cited else last_part
        last_part = part
        marks = list(dict.fromkeys((e.n, e.page) for e in cited))
        placed.append((part, cite_all(w.text, marks)))
    if selection.mode == "answer":
        # What is missing stands apart, so that no sentence of the model's is read as part of the denial.
        yield "\n\n".join([selection.absence] * bool(selection.absence) + [" ".join(s for _, s in placed)])
        return
    paragraphs = [selection.absence] if selection.absence else []
    for i, part in enumerate(selection.parts):
        mine = [s for p, s in placed if p == i]
        if mine:
            paragraphs.append(" ".join(mine))
        elif part.missing:
            paragraphs.append(part.missing)
    for k, paragraph in enumerate(paragraphs):
        yield ("\n\n" if k else "") + paragraph


def cite_all(sentence: str, marks: list[tuple[int, int | None]]) -> str:
    """A sentence with its marks before its final punctuation: "X [1, 3].", "X [2, p. 5]." (no marks: as it is)."""
    from assistant.answering.citations import format_mark

    if not marks:
        return sentence.strip()
    if len(marks) == 1:
        return cite(sentence, marks[0][0], marks[0][1])
    s = sentence.rstrip()
    mark = format_mark(marks)
    if s and s[-1] in ".!?":
        return f"{s[:-1].rstrip()} {mark}{s[-1]}"
    return f"{s} {mark}."
