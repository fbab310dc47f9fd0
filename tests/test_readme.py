"""The README's llama-index example runs as written, on the bundled library."""

from __future__ import annotations

import contextlib
import io
import re

from tests.conftest import ROOT


def _block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme__llama_index_example_runs(bundled_home, monkeypatch):
    monkeypatch.setenv("ASSISTANT_HOME", str(bundled_home))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_block("## Use from your own llama-index code"), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0].split(" ", 1)[1].startswith("Negative Preference Optimization")  # the retriever's best paper
    assert len([line for line in lines[:5] if re.match(r"^-?\d\.\d{3} ", line)]) == 5
    assert any("MUSE: Machine Unlearning Six-Way Evaluation" in line for line in lines)
    assert "[1]" in lines[-1]  # RetrieverQueryEngine with the project's synthesizer wrote a cited answer
