"""Whether an LLM's answer is shown: the checks it must pass after the verifier, and the notice of a fallback.

An LLM backend's answer is verified before anyone sees it (engine.py). It is
not shown when it cites nothing, when it denies what the evidence gives (a
false denial, found by the verifier), when fewer than ``min_supported`` of its
claim sentences are supported by the sources they cite, or when it says
nothing from the evidence at all (a decline the decision did not make). The
engine then shows the extractive answer from the same evidence instead, with
a one-line notice of why, and the Answer's ``fallback`` says so:
``{"from": "llm", "reason", "notice", "text"}`` (``text``: what the model wrote,
as verified). Never a silently worse answer.
"""

from __future__ import annotations

from assistant.answering.verify import Verification


def rejection(check: Verification, min_supported: float) -> str | None:
    """Why the LLM's verified answer must not be shown, in words; None when it passes."""
    if not check.sentences:
        return "the model wrote nothing"
    if check.false_denials:
        return f"the model said the sources do not give what they give (\u201c{_short(check.false_denials[0])}\u201d)"
    claims = [c for c in check.sentences if c["support"] is not None]
    if not claims:
        return "the model answered nothing from the evidence"
    if not any(c["cited"] for c in check.sentences):
        return "the model cited no source"
    supported = sum(bool(c["supported"]) for c in claims)
    if supported < min_supported * len(claims):
        return f"only {supported} of the model's {len(claims)} sentences are supported by the sources they cite"
    return None


def notice(reason: str) -> str:
    """The one line shown above a fallback answer."""
    return f"The model's answer was not shown ({reason}); these are the sources' own sentences."


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
