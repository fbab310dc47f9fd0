"""Reading a claim or a source sentence: its direction words (up, down, an effect, no effect), negations, null
results, statistics (ratios with intervals, p-values), numbers and named entities.

The verifier (verify.py) compares these between an answer sentence and the source sentences it cites; the
word lists are Snowball stems (PyStemmer), as ``assistant.core.text`` makes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.core.text import (
    NEGATIONS,
    STOPWORDS,
    content_words,
    stem,
    strip_citations,
    words,
)

# Direction families, as Snowball stems. UP: the quantity goes up or the method does better;
# DOWN: it goes down, is blocked or does worse ("worsens accuracy" reverses "improves accuracy").
UP = frozenset("""increas rais rise rose risen elev higher more greater enhanc improv promot stimul induc activ upregul up-regul
    boost augment acceler exacerb outperform better gain strengthen amplifi posit expand grow grew enlarg
    excess accumul faster larger longer stronger superior benefit exceed surpass beat encourag enabl drive
    facilit trigger aggrav extend prolong favour favor""".split())
DOWN = frozenset("""decreas reduc reduct lower less fewer declin diminish impair inhibit suppress attenu downregul down-regul
    underperform harm drop fell fall loss lose negat shorten deplet slow slower weaken prevent protect block
    abolish abrog delay rescu allevi amelior smaller shorter weaker inferior wors worsen deactiv inactiv disrupt
    imped degrad hurt fallen discourag hinder limit restrict counteract revers restor""".split())
# An effect without a direction ("is associated with", "plays a role in").
EXIST = frozenset("""associ correl link relat predict contribut requir role affect regul mediat involv depend determin influenc
    caus essenti necessari signific critic key effect""".split())
# Words that state no effect.
NULL = frozenset("""ineffect unrel independ unchang unaffect similar compar nonsignific insignific dispens neither nor""".split())
# Words whose stem looks like a cue but that rarely state an effect ("compared with", "HIV-positive", "gene promoters").
_NOT_CUES = frozenset("""active activity activities compared compare comparing comparison comparisons relative relatively positive
    negative determine determined determining determination promoter promoters similarly independently""".split())
_DETERMINERS = frozenset("""the a an its their this these that those""".split())
# Negating words beyond the shared NEGATIONS: negative adjectives ("incapable of", "unable to").
_NEGATING = NEGATIONS | frozenset("unable incapable impossible inaccurate inadequate insufficient unlikely".split())
_NEG = _NEGATING | {"little"}
_CUES = UP | DOWN | EXIST | NULL
OBJECTS_BEFORE, OBJECTS_AFTER = 1, 5  # words around a cue that say what it applies to

# Ratios with their interval (OR 0.69, 95% CI 0.64-0.74) and p-values are read as effect or null.
_RATIO = re.compile(r"\b(?:a?OR|RR|a?HR|IRR|odds ratios?|relative risks?|hazard ratios?|risk ratios?)\b.{0,200}?"
                    r"(?<![\d.])(\d*\.\d+)(?![\d.]*\s*(?:%|[a-zA-Zµ]))"
                    r"(?:[^0-9]{1,40}?(?:95\s*%[^0-9]{0,30}?)?(\d*\.\d+)\s*(?:-|–|to|,)\s*(\d*\.\d+))?", re.IGNORECASE)
_PVALUE = re.compile(r"\bp\s*(=|<|>|≤|≥)\s*(0?\.\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:[.,]\d+)*)(\s*%)?")
# Named things: mixed case or digits inside (GPT-4, LoRA, H3K9me3, T5) or an acronym (TOFU, NPO).
_ENTITY = re.compile(r"(?<![\w-])([A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*)")
_HEADING_GOOD = re.compile(r"^(?:CONCLUSIONS?|RESULTS?|FINDINGS|INTERPRETATION|MAIN RESULTS)\b")
_HEADING_BAD = re.compile(r"^(?:BACKGROUND|OBJECTIVES?|METHODS?|DESIGN|SETTING|CONTEXT|PURPOSE|AIMS?|INTRODUCTION)\b")


# --- what a text says ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Effect:
    sign: int  # 1 up, -1 down, 0 no effect, 2 an effect without direction
    cue: str  # the word that carries it, as written
    objects: frozenset[str]  # stems of the content words it applies to


@dataclass(frozen=True)
class Analysis:
    """What the checks need from one text, computed once per text."""

    text: str
    stems: frozenset[str]
    stem_list: tuple[str, ...]
    effects: tuple[Effect, ...]
    stats: tuple[int, ...]  # signs read from ratios and p-values
    negated: bool
    numbers: frozenset[str]
    entities: tuple[str, ...]  # as written, lower-cased keys in entity_keys
    entity_keys: frozenset[str]
    mentions: frozenset[str]  # entity keys and every word's key: what the text mentions, in any case

def _number_key(raw: str) -> str:
    plain = raw.replace(",", "")
    try:
        value = float(plain)
    except ValueError:
        return plain
    return f"{value:g}"


def _entity_key(token: str) -> str:
    key = re.sub(r"[-.]", "", token)
    if re.fullmatch(r"[A-Z0-9]*[A-Z][A-Z0-9]*s", key):
        key = key[:-1]  # a plural acronym ("LLMs", "ESCs") names the same thing
    return key.lower()


def _entities(text: str) -> list[str]:
    """Named things in ``text``: mixed case or digits inside (GPT-4, LoRA, T5) or acronyms (TOFU).

    An acronym defined in place ("chronic kidney disease (CKD)") is not one: its words are checked instead.
    In a hyphenated compound only the named part counts ("HIV-positive" → HIV).
    """
    out = []
    for m in _ENTITY.finditer(text):
        token = m.group(1)
        if text[max(0, m.start() - 1) : m.start()] == "(" and text[m.end() : m.end() + 1] == ")" and m.start() > 1:
            continue
        parts = token.split("-")
        if len(parts) > 1 and any(p.islower() and len(p) > 2 for p in parts):
            candidates = [p for p in parts if not (p.islower() or p.isdigit())]
        else:
            candidates = [token]
        for tok in candidates:
            inner_upper = any(c.isupper() for c in tok[1:])
            letters_digits = any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)
            if (inner_upper or letters_digits) and len(tok) > 1:
                out.append(tok)
    return list(dict.fromkeys(out))


def effects(text: str) -> list[Effect]:
    """Direction, effect and no-effect cues in ``text``, each with the content words after it."""
    toks = words(text)
    # A compound is read by its head: "UCP1-independent", "HR-defective", "NPO-based".
    stems = [stem(t) if "-" not in t or stem(t) in _CUES else stem(t.rsplit("-", 1)[1]) for t in toks]
    out = []
    for i, (tok, s) in enumerate(zip(toks, stems)):
        if s not in _CUES or tok in _NOT_CUES:
            continue
        if i >= 2 and toks[i - 1] in _DETERMINERS and stems[i - 2] in UP | DOWN:
            continue  # the object of a cue, not one: "increases the loss"
        sign = 1 if s in UP else -1 if s in DOWN else 2 if s in EXIST else 0
        if sign != 0 and any(w in _NEG for w in toks[max(0, i - 4) : i]):
            sign = 0  # "did not improve", "no significant reduction"
        window = [*range(max(0, i - OBJECTS_BEFORE), i), *range(i + 1, min(len(toks), i + 1 + OBJECTS_AFTER))]
        objects = frozenset(stems[j] for j in window
                            if toks[j] not in STOPWORDS and toks[j] not in _NEG and stems[j] not in _CUES and not toks[j].isdigit())
        out.append(Effect(sign, tok, objects))
    return out


def stat_signs(text: str) -> list[int]:
    """Effects read from statistics: a ratio whose interval excludes 1 (+1 above, -1 below), or a null (0)."""
    signs = []
    for m in _RATIO.finditer(text):
        if m.group(2):
            lo, hi = float(m.group(2)), float(m.group(3))
            signs.append(0 if lo <= 1 <= hi else 1 if lo > 1 else -1)
        elif float(m.group(1)) != 1:
            signs.append(1 if float(m.group(1)) > 1 else -1)
    for m in _PVALUE.finditer(text):
        op, value = m.group(1), float(m.group(2))
        significant = value <= 0.05 if op in "<≤=" else False
        signs.append(2 if significant else 0)
    return signs


def analyse(text: str) -> Analysis:
    toks = words(text)
    stem_list = tuple(content_words(text))
    ents = _entities(strip_citations(text))
    nums = {_number_key(m.group(1)) for m in _NUMBER.finditer(strip_citations(text))}
    return Analysis(
        text=text, stems=frozenset(stem_list), stem_list=stem_list, effects=tuple(effects(text)),
        stats=tuple(stat_signs(text)), negated=sum(t in _NEGATING for t in toks) % 2 == 1, numbers=frozenset(nums),
        entities=tuple(ents), entity_keys=frozenset(_entity_key(e) for e in ents),
        mentions=frozenset(_entity_key(e) for e in ents) | frozenset(_entity_key(w) for w in toks),
    )


# --- features --------------------------------------------------------------------------------------------------------
