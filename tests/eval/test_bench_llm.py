"""The LLM benchmark's own parts, without the 1.1 GB model: reading llama.cpp's timings, taking the question kinds in
turn, and checking a model file (size, GGUF magic and name) before it is used. The model itself is only fetched by
`assistant eval llm`, never by the tests."""

from __future__ import annotations

import json
import struct

from eval import llm_model
from eval.bench_llm import interleave, server_speed

LOG = """
llama_perf_context_print:        load time =    9083.81 ms
llama_perf_context_print: prompt eval time =    8000.00 ms /   400 tokens (   20.00 ms per token,    50.00 tokens per second)
llama_perf_context_print:        eval time =   20000.00 ms /   100 runs   (  200.00 ms per token,     5.00 tokens per second)
llama_perf_context_print: prompt eval time =    2000.00 ms /   100 tokens
llama_perf_context_print:        eval time =    5000.00 ms /    25 runs
"""


def test_bench_llm__tokens_per_second_come_from_the_server_s_own_timings():
    speed = server_speed(LOG)
    assert speed["requests"] == 2 and speed["prompt_tokens"] == 500 and speed["generated_tokens"] == 125
    assert speed["prompt_tokens_per_s"] == 50.0 and speed["generation_tokens_per_s"] == 5.0
    assert speed["prompt_tokens_per_request"] == 250.0 and speed["generated_tokens_per_request"] == 62.5


def test_bench_llm__question_kinds_are_taken_in_turn_so_a_cut_run_measured_each(tmp_path):
    rows = ([{"id": f"l{i}", "type": "lookup"} for i in range(3)] + [{"id": "c0", "type": "compare"}]
            + [{"id": f"n{i}", "type": "unanswerable", "answerable": False, "unanswerable_kind": "near-miss"} for i in range(2)]
            + [{"id": "o0", "type": "unanswerable", "answerable": False, "unanswerable_kind": "off-topic"}])
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [q["id"] for q in interleave(path)] == ["l0", "c0", "n0", "o0", "l1", "n1", "l2"]


def _gguf(path, name: str, size: int | None = None) -> None:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 3)
    header += string("general.architecture") + struct.pack("<I", 8) + string("qwen2")
    header += string("general.tags") + struct.pack("<IIQ", 9, 8, 2) + string("code") + string("chat")  # an array
    header += string("general.name") + struct.pack("<I", 8) + string(name)
    path.write_bytes(header + b"\0" * max(0, (size or 0) - len(header)))


def test_llm_model__the_gguf_name_is_read_from_the_header(tmp_path):
    path = tmp_path / "m.gguf"
    _gguf(path, "Qwen2.5 Coder 1.5B Instruct")
    with path.open("rb") as f:
        assert llm_model.gguf_name(f) == "Qwen2.5 Coder 1.5B Instruct"


def test_llm_model__a_file_of_the_wrong_size_magic_or_name_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "m.gguf"
    _gguf(path, "Qwen2.5 Coder 1.5B Instruct")
    assert "bytes, expected 1,117,320,768" in llm_model.check(path)
    monkeypatch.setattr(llm_model, "SIZE", path.stat().st_size)
    assert "sha256" in llm_model.check(path)  # right size, magic and name: the digest still decides
    _gguf(path, "Gemma 3 270M", size=path.stat().st_size)
    monkeypatch.setattr(llm_model, "SIZE", path.stat().st_size)
    assert "general.name is 'Gemma 3 270M'" in llm_model.check(path)
    path.write_bytes(b"NOPE" + path.read_bytes()[4:])
    assert "no GGUF magic" in llm_model.check(path)
