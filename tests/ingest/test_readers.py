"""Tests for ingest.readers: every format, format detection, and bad input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from assistant.core.types import ReadResult
from ingest.normalize import dedupe
from ingest.readers import FORMATS, detect_format, read_path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BUNDLED = sorted((ROOT / "data" / "daily-papers").glob("*.txt"))

TEACHING = "Can LLMs Learn by Teaching? A Preliminary Study"
PROMPTING = "Pre-train, Prompt, and Predict: A Systematic Survey of Prompting Methods in Natural Language Processing"
BBOX = "3D Bounding Box Estimation Using Deep Learning and Geometry"


def reasons(result: ReadResult) -> list[str]:
    return [s.reason for s in result.skipped]


def only_problem(result: ReadResult) -> str:
    """The reason of a whole-file problem, asserting that is all the result holds."""
    assert result.papers == []
    assert len(result.skipped) == 1 and result.skipped[0].line is None
    return result.skipped[0].reason


def test_formats__names_every_supported_format():
    assert set(FORMATS) == {"daily-papers", "json", "jsonl", "arxiv", "hf-daily", "csv", "bibtex", "pdf"}


# --- daily-papers text dumps -------------------------------------------------


def test_daily_papers__bundled_files_give_319_entries_241_unique():
    papers = []
    for path in BUNDLED:
        result = read_path(path)
        assert result.skipped == [], path
        assert result.entries == len(result.papers)
        papers += result.papers
    unique, merged = dedupe(papers)
    assert (len(papers), len(unique), merged) == (319, 241, 78)


def test_daily_papers__bundled_titles_and_abstracts_are_told_apart():
    papers = [p for path in BUNDLED for p in read_path(path).papers]
    assert max(len(p.title) for p in papers) < 300
    assert min(len(p.abstract) for p in papers) > 300
    assert not any(p.title.casefold() in {"new", "subscribe", "daily papers"} for p in papers)


def test_daily_papers__skips_boilerplate_anywhere_and_reports_orphans():
    result = read_path(FIXTURES / "daily_papers.txt")
    assert [p.title for p in result.papers] == [TEACHING, BBOX, PROMPTING]
    assert result.entries == 6
    assert [(s.line, s.reason.split(":")[0]) for s in result.skipped] == [
        (25, "title with no abstract"),
        (31, "text with no title line before it"),
        (35, "title with no abstract"),
    ]


def test_daily_papers__source_is_path_and_title_line():
    path = FIXTURES / "daily_papers.txt"
    first = read_path(path).papers[0]
    assert first.source == f"{path}:13"
    assert first.paper_id.startswith("t-")
    assert first.abstract.startswith("Teaching to improve student models")


def test_daily_papers__control_characters_are_stripped(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_text("A Title\x07 With a Bell\n\nAn abstract\x00-free? No: an abstract with\x1b escapes.\n")
    # A NUL byte makes the file binary; only the other controls reach the reader.
    assert "binary" in only_problem(read_path(path))
    path.write_text("A Title\x07 With a Bell\n\nAn abstract with\x1b escapes\u200b inside.\n")
    (paper,) = read_path(path).papers
    assert paper.title == "A Title With a Bell"
    assert paper.abstract == "An abstract with escapes inside."


# --- JSON, JSON lines, arXiv snapshot, HF daily-papers API -----------------------


def test_json__array_reads_aliases_and_optional_fields():
    result = read_path(FIXTURES / "papers.json")
    teaching, prompting = result.papers
    assert teaching.title == TEACHING and teaching.abstract.startswith("Teaching to improve")  # from "summary"
    assert teaching.authors == ["Xuefei Ning", "Zifu Wang"]
    assert prompting.paper_id == prompting.arxiv_id == "2107.13586"  # from the abs URL, version dropped
    assert prompting.authors == ["Pengfei Liu", "Weizhe Yuan", "Jinlan Fu"]
    assert prompting.categories == ["cs.CL", "cs.AI"]
    assert result.skipped[0].reason == "title with no abstract: 'Only A Title Here'"
    assert [p.source.rsplit(":", 1)[1] for p in result.papers] == ["2", "15"]


def test_jsonl__bad_lines_are_skipped_by_line_and_good_lines_still_load():
    result = read_path(FIXTURES / "papers.jsonl")
    assert [p.title for p in result.papers][:1] == [BBOX]
    assert result.papers[1].arxiv_id == "2305.01711"  # "arXiv:2305.01711v4"
    assert result.papers[1].abstract.startswith("Language models (LMs)")  # from "text"
    skipped = {s.line: s.reason for s in result.skipped}
    assert skipped[4].startswith("truncated JSON: line 4")
    assert skipped[5].startswith("title with no abstract")
    assert skipped[6] == "expected a JSON object, found a list"
    assert skipped[7].startswith("malformed JSON in line 7: Expecting property name")
    assert result.entries == 6


def test_json__truncated_file_keeps_complete_entries_and_says_truncated():
    result = read_path(FIXTURES / "truncated.json")
    assert len(result.papers) == 1
    (skip,) = result.skipped
    assert skip.line == 6 and skip.reason.startswith("truncated JSON")


def test_json__truncated_pretty_printed_object_is_one_skip_not_one_per_line(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps({"title": "T", "abstract": "An abstract that was cut off"}, indent=2)[:-12])
    result = read_path(path)
    assert result.papers == []
    (skip,) = result.skipped
    assert skip.reason.startswith("truncated JSON: the file ends before it is complete")


def test_jsonl__bad_first_line_does_not_hide_good_lines(tmp_path):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"title": "Cut\n{"title": "T", "abstract": "An abstract."}\n')
    result = read_path(path)
    assert [p.title for p in result.papers] == ["T"]
    assert result.skipped[0].line == 1 and result.skipped[0].reason.startswith("truncated JSON: line 1")


def test_json__pretty_printed_single_object_and_wrapped_list(tmp_path):
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"title": "T", "abstract": "An abstract."}, indent=2))
    assert [p.title for p in read_path(single).papers] == ["T"]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"papers": [{"title": "T1", "summary": "S1."}, {"title": "T2", "abstract": "S2."}]}))
    assert [p.title for p in read_path(wrapped).papers] == ["T1", "T2"]


def test_arxiv__snapshot_lines_give_ids_authors_categories_and_unwrapped_text():
    result = read_path(FIXTURES / "arxiv_snapshot.jsonl")
    assert detect_format(FIXTURES / "arxiv_snapshot.jsonl") == "arxiv"
    prompting, bbox = result.papers
    assert prompting.title == PROMPTING  # hard line breaks folded
    assert "\n" not in prompting.abstract
    assert prompting.paper_id == "2107.13586"
    assert prompting.authors[:2] == ["Pengfei Liu", "Weizhe Yuan"] and len(prompting.authors) == 6
    assert prompting.categories == ["cs.CL", "cs.AI", "cs.LG"]
    assert prompting.date == "2021-07-30"
    # No authors_parsed on this line: the "A, B and C" string is split instead.
    assert bbox.authors == ["Arsalan Mousavian", "Dragomir Anguelov", "John Flynn", "Jana Kosecka"]


def test_hf_daily__api_json_detected_by_content_and_mapped():
    path = FIXTURES / "hf_daily.json"
    assert detect_format(path) == "hf-daily"
    teaching, _ = read_path(path).papers
    assert teaching.paper_id == "2406.14629"
    assert teaching.title == TEACHING
    assert teaching.authors == ["Xuefei Ning", "Zifu Wang"]
    assert teaching.date == "2024-06-20"
    assert teaching.url == "https://arxiv.org/abs/2406.14629"


def test_hf_daily__same_paper_as_daily_dump_merges_under_arxiv_id():
    papers = read_path(FIXTURES / "daily_papers.txt").papers + read_path(FIXTURES / "hf_daily.json").papers
    unique, merged = dedupe(papers)
    assert merged == 1
    assert {p.paper_id for p in unique if p.title == TEACHING} == {"2406.14629"}


# --- CSV and BibTeX ----------------------------------------------------------


def test_csv__case_insensitive_columns_multiline_fields_and_empty_abstract():
    result = read_path(FIXTURES / "papers.csv")
    pensez, physics = result.papers
    assert pensez.arxiv_id == "2503.13661"
    assert "\n" not in pensez.abstract
    assert physics.authors == ["Zeyuan Allen-Zhu", "Yuanzhi Li"]
    assert physics.source.endswith("papers.csv:6")  # the multi-line row above spans lines 2-4
    assert [(s.line, s.reason) for s in result.skipped] == [(5, "title with no abstract: 'A row with an empty abstract'")]


def test_csv__without_abstract_column_names_the_columns_it_has():
    reason = only_problem(read_path(FIXTURES / "no_abstract.csv"))
    assert reason == "no abstract column (looked for abstract, summary, text); the columns are: Title, Authors, Year"


@pytest.mark.parametrize("delimiter, suffix", [("\t", ".tsv"), (";", ".csv"), ("|", ".csv")])
def test_csv__sniffs_the_delimiter(tmp_path, delimiter, suffix):
    path = tmp_path / f"papers{suffix}"
    path.write_text(delimiter.join(["TITLE", "Summary"]) + "\n" + delimiter.join(["A title", "An abstract, with a comma."]))
    (paper,) = read_path(path).papers
    assert (paper.title, paper.abstract) == ("A title", "An abstract, with a comma.")


def test_bibtex__reads_good_entries_around_broken_braces():
    result = read_path(FIXTURES / "papers.bib")
    prompting, bbox = result.papers
    assert prompting.paper_id == "2107.13586"  # eprint 2107.13586v2
    assert prompting.authors[:2] == ["Pengfei Liu", "Weizhe Yuan"]
    assert bbox.title == BBOX  # braces protecting "{3D}" removed
    assert bbox.authors[-1] == "Jana Košecká"  # LaTeX accents decoded
    assert bbox.arxiv_id == "1612.00496"  # from the url field
    broken, no_abstract = result.skipped
    assert broken.line == 12 and broken.reason.startswith("unreadable BibTeX @inproceedings{broken2024}")
    assert no_abstract.reason == "title with no abstract: 'A Book Without an Abstract'"


# --- detection and whole-file problems ---------------------------------------


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("dump.txt", "Title\n\nAbstract text.\n", "daily-papers"),
        ("dump.txt", '[{"title": "T", "abstract": "A."}]', "json"),
        ("api.json", '[{"paper": {"id": "2401.00001", "title": "T", "summary": "S."}}]', "hf-daily"),
        ("lines.json", '{"title": "T", "abstract": "A."}\n{"title": "U", "abstract": "B."}\n', "jsonl"),
        ("snap.json", '{"id": "2401.00001", "title": "T", "abstract": "A.", "update_date": "2024-01-02"}\n', "arxiv"),
        ("refs.bib", "@article{k, title={T}}", "bibtex"),
        ("refs", "@article{k, title={T}, abstract={A.}}", "bibtex"),
        ("table.tsv", "title\tabstract\nT\tA.\n", "csv"),
        ("table.txt", "title,abstract\nT,A.\n", "csv"),
    ],
)
def test_detect_format__uses_extension_and_content(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    assert detect_format(path) == expected


def test_read_path__fmt_overrides_detection(tmp_path):
    path = tmp_path / "export.dat"
    path.write_text("A Title\n\nAn abstract.\n")
    assert "cannot tell the format" in only_problem(read_path(path))
    assert [p.title for p in read_path(path, fmt="daily-papers").papers] == ["A Title"]
    assert "unknown format 'yaml'" in only_problem(read_path(path, fmt="yaml"))


def test_read_path__missing_file_is_one_clear_skip(tmp_path):
    assert only_problem(read_path(tmp_path / "nope.txt")) == "file does not exist"


@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b" \n\n\t\n", "empty file (only whitespace)")])
def test_read_path__empty_file_is_one_clear_skip(tmp_path, content, reason):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    assert only_problem(read_path(path)) == reason


def test_read_path__binary_file_is_reported_with_offset(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert only_problem(read_path(path)) == "binary file (NUL byte at offset 8)"


def test_read_path__non_utf8_file_names_byte_and_offset(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("title,abstract\nCaf\u00e9,An abstract.\n".encode("latin-1"))
    assert only_problem(read_path(path)) == "not UTF-8 text (byte 0xe9 at offset 18)"


DUMP = ("Daily Papers\nA Study of Unlearning in Caf\u00e9s\n"
        "We study how models forget what they learned, and show it works.\n"
        "Second Paper Title\nAnother abstract, about retrieval, that ends here.\n")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_read_path__utf16_is_read_with_or_without_a_bom(tmp_path, encoding):
    # Without a BOM it was called "binary (NUL byte at offset 1)"; with one, refused.
    path = tmp_path / "notepad.txt"
    path.write_bytes(DUMP.encode(encoding))
    result = read_path(path)
    assert [p.title for p in result.papers] == ["A Study of Unlearning in Caf\u00e9s", "Second Paper Title"]
    assert result.papers[0].source == f"{path}:2" and result.skipped == []  # the file's name and line numbers


def test_read_path__utf16_jsonl_without_a_bom_is_read(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes((json.dumps({"title": "T", "abstract": "An abstract about caf\u00e9s."}) + "\n").encode("utf-16-le"))
    assert [p.abstract for p in read_path(path).papers] == ["An abstract about caf\u00e9s."]


@pytest.mark.parametrize("data", [
    bytes([5, 0, 7, 0, 9, 0, 1, 0] * 64),  # 16-bit numbers: NULs at every other byte, but not text
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,  # NULs anywhere
])
def test_read_path__binary_with_nul_bytes_is_still_binary(tmp_path, data):
    path = tmp_path / "data.txt"
    path.write_bytes(data)
    assert only_problem(read_path(path)).startswith("binary file")


def test_read_path__utf16_broken_past_its_first_64_kib_is_not_read(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_bytes((DUMP * 200).encode("utf-16-le") + b"\x00\xd8A\x00")  # a lone high surrogate at 80 KiB
    assert only_problem(read_path(path)).startswith("not UTF-16 text (bad bytes at offset")


def test_read_path__utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("Title,Abstract\nT,An abstract.\n", encoding="utf-8-sig")
    assert [p.title for p in read_path(path).papers] == ["T"]


def test_read_path__directory_is_a_clear_skip(tmp_path):
    assert only_problem(read_path(tmp_path)) == "is a directory, not a file"


def read_traced(path):
    """read_path(path) and the peak of the memory Python allocated meanwhile (tracemalloc)."""
    tracemalloc.start()
    try:
        result = read_path(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_read_path__20mb_single_line_is_skipped_without_many_copies(tmp_path):
    size = 20 * 1024 * 1024
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"title": "Huge", "abstract": "word " * (size // 5)}) + "\n")
    result, peak = read_traced(path)
    assert result.papers == []
    assert "over the 20,000 limit" in result.skipped[0].reason
    # The line once plus the parsed string: well under the 10 copies feared.
    assert peak < 3 * size


def test_read_path__20mb_single_line_json_array_loads_every_entry(tmp_path):
    entry = {"title": "Paper", "abstract": "A sentence of an abstract. " * 60}
    count = (20 * 1024 * 1024) // len(json.dumps(entry))
    path = tmp_path / "big.json"
    path.write_text(json.dumps([dict(entry, title=f"Paper {i}") for i in range(count)]))
    result, peak = read_traced(path)
    assert len(result.papers) == count and result.skipped == []
    assert peak < 4 * path.stat().st_size


def test_read_path__many_bad_lines_keep_the_first_100_and_count_the_rest(tmp_path):
    # The 50 MB file kept one Skipped per line (672,164 of them, 623 MB at peak); 150,000 lines here.
    path = tmp_path / "log.txt"
    with path.open("w") as fh:
        for i in range(150_000):
            fh.write(f"Line {i} of a log that is not a paper and ends with a period.\n")
    result, peak = read_traced(path)
    assert result.entries == 150_000 and result.skipped_count == 150_000
    assert len(result.skipped) == 100 and result.skipped_more == 149_900
    assert [s.line for s in result.skipped[:3]] == [1, 2, 3]
    assert result.skipped[0].reason.startswith("text with no title line before it: 'Line 0 of a log")
    # Streamed, the skips past 100 only counted: the 1 MiB pieces of the file check, not the 10 MB file
    # (keeping every skip took about 45 MB here).
    assert peak < path.stat().st_size / 2
