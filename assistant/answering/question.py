"""What a question asks: its mode (answer, compare, summarize), the sides of a comparison, the topic of a
summary, the named entities it is about, and the details it wants (a quantity, a training setting).

Pure text analysis, no model: the answerability decision and the synthesizers
read a ``Question`` instead of re-parsing the text each in their own way.

* **Mode.** "compare A and B", "A vs B", "difference between A and B", "how
  does A differ from B" are comparisons with two sides; "summarise X", "what
  does the library say about X", "give an overview of X" are summaries of topic X.
* **Entities**: names as written in papers: acronyms and mixed-case or
  digit-bearing tokens (NPO, TOFU, GPT-4, w2v-BERT, vi-mistral-x, Llama2-70B)
  and capitalised words inside a sentence (Japanese, Vietnamese).
* **Asked details** (``Facet``): "how many GPUs", "what learning rate", "what
  accuracy on X", "how long", "by how much". A quantity facet is answered only
  by an evidence sentence holding a number next to the facet's words; a setting
  facet ("which optimizer") by a sentence naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.core.text import STOPWORDS, stem, words

_COMPARE_PATTERNS = [
    re.compile(r"^\s*(?P<a>[^:?]{1,80}?)\s+(?:vs\.?|versus)\s+(?P<b>[^:?]{1,80}?)\s*:", re.I),  # "A vs B: how do they …"
    re.compile(r"^\s*both\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+(?:rely|use|are|do|have|combine|aim|target|address|build)\b"
               r"(?=.*\b(?:differ|compare|contrast|difference)\w*)", re.I),
    re.compile(r"^\s*(?P<a>[^.?]+?)\s+and\s+(?P<b>[^.?]+?)\s+both\b(?=.*\b(?:differ|compare|contrast|difference)\w*)", re.I),
    re.compile(r"^\s*(?:please\s+)?(?:compare|contrast)\s+(?P<a>.+?)\s+(?:and|with|to|against|versus|vs\.?)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"(?:differen(?:ce|ces)|distinction)\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*how\s+(?:does|do|is|are)\s+(?P<a>.+?)\s+(?:differ|different|compare)\s+(?:from|to|with)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*(?P<a>.+?)\s+(?:vs\.?|versus)\s+(?P<b>.+?)\s*[?.!]*\s*$", re.I),
]
_SUMMARY = re.compile(
    r"^\s*(?:please\s+)?(?:summari[sz]e|give (?:me )?an overview of|overview of|survey(?: the work on)?"
    r"|what (?:does|do) (?:the )?(?:library|papers|collection|literature) (?:say|says|know|tell us|cover|covers) (?:about|on)"
    r"|what(?:'s| is) known (?:about|on)|what do we know about|what is the state of (?:the art|research) (?:in|on)"
    r"|tell me (?:about|what is known about) (?:the )?(?:work|research|papers) on)\s+(?P<topic>.+?)\s*[?.!]*\s*$",
    re.I,
)
# Words that make a question lean on the conversation before it.
FOLLOW_UP = re.compile(r"\b(they|them|their|it|its|these|those|this one|that one|the first|the second|the same|which of)\b"
                       r"|^\s*(and|also|what about|how about)\b", re.I)
# A trailing "according to the library" and the like address the tool, not the topic.
_ADDRESSING_TAIL = re.compile(r",?\s*(?:according to|in|from)\s+(?:the|this|my)\s+(?:library|papers|collection)\s*$", re.I)

# Nouns that name a measurement: "what X" / "which X" with one of these asks for a quantity.
_MEASURES = {
    "accuracy", "score", "scores", "rate", "size", "number", "count", "amount", "percentage", "share", "fraction",
    "proportion", "ratio", "perplexity", "error", "wer", "bleu", "rouge", "f1", "auc", "precision", "recall",
    "latency", "throughput", "speed", "speedup", "cost", "budget", "memory", "time", "duration", "length", "epochs",
    "steps", "parameters", "tokens", "gpus", "tpus", "hours", "days", "weeks", "improvement", "gain", "reduction",
    "compression", "sparsity", "win", "elo", "margin", "temperature", "dimension", "dimensions", "layers", "heads",
    "samples", "examples", "questions", "languages", "points", "flops", "petaflops", "milliseconds", "seconds",
}
_MEASURE_STEMS = {stem(w) for w in _MEASURES} | {stem(w) for w in ("proportions", "percentages", "shares", "ratios")}
# Countable things: "which X" asks for kinds of them, only "how many X" / "what number of X" for a count.
_COUNTED = {"tokens", "parameters", "questions", "examples", "samples", "languages", "layers", "heads", "gpus", "tpus",
            "steps", "epochs", "dimensions", "points", "hours", "days", "weeks"}
# Settings a paper's method section gives and an abstract rarely does.
_SETTINGS = {"learning rate", "batch size", "optimizer", "warmup", "weight decay", "dropout", "epochs", "epoch",
             "hyperparameters", "hyperparameter", "seed", "schedule", "scheduler", "momentum", "beta", "lora rank",
             "rank", "context length", "sequence length"}
# Qualifiers whose opposite in the evidence means the evidence answers another question.
OPPOSITE_QUALIFIERS = {"absolute": "relative", "relative": "absolute", "training": "inference", "inference": "training",
                       "peak": "average", "average": "peak", "zero-shot": "few-shot", "few-shot": "zero-shot",
                       "top-1": "top-5", "top-5": "top-1", "test": "validation", "validation": "test"}

_QUESTION_WORDS = {"what", "which", "who", "whom", "how", "when", "where", "why", "does", "did", "do", "is", "are",
                   "was", "were", "can", "could", "there", "any", "paper", "papers", "work", "study", "research",
                   "library", "report", "reports", "reported", "use", "used", "achieve", "reach", "get", "give"}
_ENTITY = re.compile(r"(?<![\w-])(?:[A-Za-z0-9]+(?:[-./:][A-Za-z0-9]+)*)(?![\w-])")
_NUMBERISH = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass
class Facet:
    """One detail a question asks for: ``words`` (stemmed) must meet a number (quantity) or appear (setting)."""

    phrase: str  # as asked: "GPUs", "learning rate", "word error rate"
    kind: str  # "quantity" or "setting"
    words: list[str]  # stemmed head words, at least one of which the evidence sentence must contain
    qualifiers: list[str] = field(default_factory=list)  # "absolute", "peak", …: their opposite must not be there


@dataclass
class Question:
    text: str
    mode: str = "answer"  # answer | compare | summarize
    sides: list[str] = field(default_factory=list)
    topic: str = ""
    topic_phrase: str = ""  # "X" of "is there a paper on X", "what does the library say about X": what must be covered
    entities: list[str] = field(default_factory=list)
    facets: list[Facet] = field(default_factory=list)
    expects: str = "description"  # description | quantity | setting | list | yesno

    @property
    def is_list(self) -> bool:
        return self.expects == "list"


def split_comparison(question: str) -> list[str]:
    """The two sides of a comparison question, or [] when it is not one."""
    for pattern in _COMPARE_PATTERNS:
        m = pattern.search(question)
        if m:
            a, b = (_clean_side(s) for s in (m["a"], m["b"]))
            if a and b and len(a) < 120 and len(b) < 120:
                return [a, b]
    return []


# Where a side's name ends and the question about it goes on: "B in how they use gradients", "B as resources for".
_SIDE_TAIL = re.compile(r"\s+(?:in\s+how|in\s+terms\s+of|in\s+the\s+way|when|as|approach(?:es)?|regarding|on\s+how|for\s+how)\b.*$", re.I)


def _clean_side(side: str) -> str:
    side = re.sub(r"^\s*how\s+", "", side, flags=re.I)
    side = _SIDE_TAIL.sub("", _ADDRESSING_TAIL.sub("", side.strip(" ,;:'\"?.!")))
    side = re.sub(r"\s+(?:for|in|on)\s+(?:llms?|language models?)\s*$", "", side, flags=re.I)
    return re.sub(r"^(?:the|a|an)\s+", "", side.strip(" ,;:'\""), flags=re.I)


def summary_topic(question: str) -> str:
    m = _SUMMARY.match(question)
    return _ADDRESSING_TAIL.sub("", m["topic"]).strip() if m else ""


def entities(text: str) -> list[str]:
    """Names in ``text``: acronyms, mixed-case or digit-bearing tokens, capitalised words not opening the text."""
    found: list[str] = []
    for m in _ENTITY.finditer(text):
        token = m.group(0).strip(".:/")
        if not token or _NUMBERISH.match(token) or token.lower() in STOPWORDS | _QUESTION_WORDS:
            continue
        letters = re.sub(r"[^A-Za-z]", "", token)
        mixed = sum(c.isupper() for c in token[1:]) >= 1 and any(c.islower() for c in token) or token.isupper()
        digits = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        # "vi-mistral-x", "min-k" yes; "fine-tuning", "in-context" no: a one-letter part marks a name.
        dashed_name = "-" in token and len(token) <= 20 and any(len(part) == 1 and part.isalpha()
                                                               for part in token.split("-"))
        capitalised = token[0].isupper() and m.start() > 0 and text[: m.start()].rstrip()[-1:] not in ".?!"
        if (mixed and len(letters) >= 2) or digits or dashed_name or (capitalised and len(token) > 2):
            if token not in found:
                found.append(token)
    return found


def _facet_words(phrase: str) -> list[str]:
    return [stem(w) for w in words(phrase) if w not in STOPWORDS and w not in _QUESTION_WORDS and len(w) > 1]


_AUX = r"(?:does|did|do|is|was|were|are|has|have|had|can|could|would|will)"
_HOW_MANY = re.compile(r"\bhow\s+(?:many|much)\s+(?!" + _AUX + r"\b)(?:more\s+|fewer\s+|less\s+)?(?P<np>[\w-]+(?:\s+[\w-]+){0,3}?)"
                       r"(?=\s+(?:does|did|do|were|was|are|is|has|have|had|can|could|would|will|of|in|for|to|per|on|at|"
                       r"with|by|from|used|needed|does|that|than)\b|\s*[?,.;]|\s+and\b|\s*$)", re.I)
_WHAT_MEASURE = re.compile(r"\b(?:what|which)\s+(?P<np>(?:[\w%-]+\s+){0,4}?(?P<head>[\w-]+))"
                           r"(?=\s+(?:does|did|do|is|was|were|are|has|have|had|can|could|would|will|of|on|in|for|at|"
                           r"and|per|did|with|when|to)\b|\s*[?,.;]|\s*$)", re.I)
# "how long" is answered by any duration, "how fast" by any speed: the words an answering sentence would use.
_HOW_ADJ = {"long": ("time", "time hours days weeks months minutes seconds years steps"),
            "fast": ("speed", "speed faster speedup throughput times"), "accurate": ("accuracy", "accuracy accurate"),
            "large": ("size", "size parameters billion million"), "big": ("size", "size parameters billion million"),
            "often": ("frequency", "frequency times")}
# Measure nouns too generic to stand alone: "share of the performance gap" is about the gap.
_GENERIC_MEASURES = {"share", "fraction", "proportion", "percentage", "number", "amount", "count", "ratio", "size"}


def asked_facets(text: str) -> list[Facet]:
    """The details a question asks for (quantities and training settings), in order."""
    facets: list[Facet] = []
    lowered = text.lower()
    # Names in a detail ("HellaSwag accuracy") are checked as names; the detail is the rest ("accuracy").
    name_stems = {stem(w) for e in entities(text) for w in words(e)} | {stem(e.lower()) for e in entities(text)}

    def add(phrase: str, kind: str, answered_by: str = "") -> None:
        phrase = phrase.strip()
        ws = _facet_words(answered_by or phrase)
        ws = [w for w in ws if w not in name_stems] or ws
        if not ws or any(f.phrase == phrase for f in facets):
            return
        quals = [q for q in OPPOSITE_QUALIFIERS if re.search(rf"\b{re.escape(q)}\b", phrase.lower())]
        # The head is the last word ("peak learning rate" → rate); the qualifier words are not required.
        qual_stems = {stem(w) for q in quals for w in words(q)}
        facets.append(Facet(phrase, kind, [w for w in ws if w not in qual_stems] or ws, quals))

    for setting in sorted(_SETTINGS, key=len, reverse=True):
        for m in re.finditer(rf"(?<![\w-]){re.escape(setting)}(?![\w-])", lowered):
            before = lowered[max(0, m.start() - 40): m.start()]
            if re.search(r"\b(what|which|how many|how much|and|peak|initial|final)\b", before):
                lead = re.search(r"(?:\b(?:peak|initial|final|absolute|relative|number\s+of)\s+)+$", before)
                add((lead.group(0) if lead else "") + setting, "setting")
    for m in _HOW_MANY.finditer(text):
        np = re.sub(r"^(?:more|fewer|less)\s+", "", m["np"], flags=re.I)
        if np.lower().split()[0] in _GENERIC_MEASURES:
            tail = re.match(r"\s+of\s+(?:the\s+)?((?:[\w-]+\s*){1,3})", text[m.end():])
            np = f"{np} of {tail.group(1)}" if tail else np
        if not any(np.lower() in f.phrase.lower() or f.phrase.lower() in np.lower() for f in facets):
            add(np, "quantity")
    for m in _WHAT_MEASURE.finditer(text):
        np, head = m["np"], m["head"].lower()
        np = re.sub(r"^(?:" + _AUX + r"\s+)?(?:the|a|an)\s+", "", np, flags=re.I)
        if head in _GENERIC_MEASURES:
            tail = re.match(r"\s+of\s+(?:the\s+|a\s+|an\s+)?((?:(?!" + _AUX + r"\b)[\w-]+\s*){1,3})", text[m.end():])
            np = f"{np} of {tail.group(1).strip()}" if tail else np
        counted = head in _COUNTED and m.group(0).lower().startswith("which")  # "which tokens" asks which, not how many
        if stem(head) in _MEASURE_STEMS and not counted and not any(f.words and f.words[-1] == stem(head) for f in facets):
            add(np, "quantity")
    for m in re.finditer(r"\bhow\s+(long|fast|accurate|large|big|often)\b", lowered):
        add(*_HOW_ADJ[m.group(1)][:1], "quantity", _HOW_ADJ[m.group(1)][1])
    by_how_much = re.search(r"\bby\s+how\s+much\s+(?:" + _AUX + r"\s+)?(?P<rest>[^?.;]+)", text, re.I)
    if by_how_much and not facets:
        add(by_how_much["rest"], "quantity")  # "by how much does MEFT reduce activation memory": any of those words
    return facets


def _expects(text: str, facets: list[Facet]) -> str:
    lowered = text.strip().lower()
    if facets:
        return "setting" if all(f.kind == "setting" for f in facets) else "quantity"
    if re.match(r"^(which|what)\s+(papers|works|studies|methods|models|benchmarks|datasets)\b", lowered) \
            or re.match(r"^(list|name)\b", lowered):
        return "list"
    if re.match(r"^(is|are|does|do|did|can|could|was|were|has|have)\b", lowered):
        return "yesno"
    return "description"


_EXISTENCE = re.compile(r"^\s*(?:is|are)\s+there\s+(?:a|an|any)?\s*(?:papers?|works?|studies|study|research|articles?)"
                        r"(?:\s+(?:in|from)\s+(?:the|this|my)\s+(?:library|collection))?\s+(?:on|about|regarding|that\s+studies)"
                        r"\s+(?P<topic>.+)$", re.I)
_LIST_TOPIC = re.compile(r"^\s*(?:which|what)\s+(?:papers|works|studies)(?:\s+in\s+the\s+library)?\s+(?:are\s+about|address|cover|"
                         r"discuss|focus\s+on|study|report|use|evaluate|propose|examine)\s+(?P<topic>.+)$", re.I)
# Where a topic's noun phrase ends and a clause about it begins.
_CLAUSE = re.compile(r"\s+(?:that|which|so|when|after|before|while|because|where|who|whose|without|to\s+speed|to\s+make)\b.*$", re.I)


def topic_phrase(text: str) -> str:
    """The noun phrase a topic-style question is about ("" for other questions)."""
    for pattern in (_SUMMARY, _EXISTENCE, _LIST_TOPIC):
        m = pattern.match(text.strip())
        if m:
            topic = _CLAUSE.sub("", _ADDRESSING_TAIL.sub("", m["topic"].strip(" ?.!"))).strip()
            return re.sub(r"^(?:(?:recent|the)\s+)?(?:work|research|papers|studies|literature)\s+(?:on|about)\s+", "", topic, flags=re.I)
    return ""


def analyse(text: str, mode: str | None = None) -> Question:
    """The ``Question`` for ``text``; ``mode`` forces answer/compare/summarize (None detects it)."""
    text = (text or "").strip()
    sides = split_comparison(text) if mode in (None, "compare") else []
    topic = summary_topic(text)
    if mode is None:
        mode = "compare" if sides else ("summarize" if topic else "answer")
    facets = asked_facets(text) if mode == "answer" else []
    return Question(text=text, mode=mode, sides=sides if mode == "compare" else [], topic=topic or text,
                    topic_phrase=topic_phrase(text), entities=entities(text), facets=facets,
                    expects=_expects(text, facets))
