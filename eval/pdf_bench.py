"""PDF text extraction: speed of `ingest.pdf.read_pdf`, and the measurement behind choosing PDFium.

    python -m eval.pdf_bench [PDF ...]            pages/s of read_pdf (and of the layout pass alone)
    python -m eval.pdf_bench --compare [PDF ...]  pypdf, pdfplumber and raw pypdfium2 against read_pdf

With no files it reads the three real papers in ../shared/corpus/pdfs. The comparison needs
pypdf and pdfplumber installed (they are not dependencies); a library that is missing is
skipped. Quality is measured on the real papers by probes: sentences that cross a line
break, a column break, a page break or a superscript, checked in each library's text with
case, spaces, hyphens and punctuation ignored (so reading order and completeness are
measured, not the hyphen policy); plus running-header lines left, ligature characters
left, and words still broken at a line end ("homol-\\nogy").
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from ingest.pdf import read_pdf

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfs"

# Checked by hand against the pages (see eval/datasets/README.md, "PDF extraction").
PROBES: dict[str, list[str]] = {
    "10.1186_s12915-024-01918-w.pdf": [
        # the foot of the left column, then the top of the right one (page 2)
        "However, the number of donor attachment sites is limited, often at the C or N terminus of Cas9",
        "Three genes, including DMD, LMNA, and TP53, were chosen as the",  # column break, page 5
        "with CXE compared with the Cas9 control (Fig. 5D, E). Next, we analyzed the sizes of the deletions",  # page 9
        "EXO editors were able to increase HDR efficiency and reduce indel frequency compared with the Cas9 control",
        "we separately transfected pCMV-mCherry and pEF1α-mCherry into hiPSCs. Three days after transfection",
        "The differentiated CMs were trypsinized and collected",
    ],
    "10.1186_s13059-023-02935-8.pdf": [
        "leading to unnecessary treatment and surveillance [3]. Correct diagnosis of GCK-MODY can therefore terminate",
        "GCK is a dynamic 52-kDa enzyme consisting of 465 amino acid residues, which fold into a large and a small domain",
        # a superscript (10^6) in the line: the two halves must stay in order
        "vigorous agitation) until reaching exponential phase, at which point 100–125× 106 cells were harvested",
        "Confidence intervals (CIs) were obtained using the SciPy bootstrap function with 10,000 resamples",
        "treatment and surveillance due to misdiagnosis [3], GCK has been proposed for inclusion in population screening",
    ],
    "10.7554_eLife.91357.3.pdf": [
        # page 1 to page 2, with the sidebar of page 1 and the running header of page 2 in between
        "transcribes a particular splice junction (Beyer et al., 1981; Oesterreich et al., 2016",
        "In lieu of direct visualization, many studies have used biochemical fractionation to infer the location",
        "Advances in RNA imaging have enabled researchers to image RNA intermediates with single-molecule resolution",
        "To determine what fraction of splicing occurred far from the site of transcription, we first needed to classify",
        "cells were cultured in DMEM (Gibco) supplemented with 50 U/mL penicillin, 50 μg/mL streptomycin",
    ],
}
HEADERS = {
    "10.1186_s12915-024-01918-w.pdf": "Shi et al. BMC Biology",
    "10.1186_s13059-023-02935-8.pdf": "Gersing et al. Genome Biology",
    "10.7554_eLife.91357.3.pdf": "O'Farrell et al. eLife 2023",
}


def canon(text: str) -> str:
    """Letters and digits only, lower case, NFKC: what the probes are compared in."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _pypdf(path: Path) -> list[str]:
    import pypdf

    return [page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages]


def _pdfplumber(path: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(str(path)) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


def _pdfium_raw(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        out = []
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def _ours(path: Path) -> list[str]:
    return [page.text for page in read_pdf(path).pages]


EXTRACTORS: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": _pypdf,
    "pdfplumber": _pdfplumber,
    "pypdfium2 (raw text)": _pdfium_raw,
    "read_pdf (pypdfium2 + layout)": _ours,
}


def quality(name: str, pages: list[str], verbose: bool = False) -> dict[str, int]:
    text = "\n".join(pages)
    flat = canon(text)
    probes = PROBES.get(name, [])
    header = HEADERS.get(name)
    if verbose:
        for probe in probes:
            if canon(probe) not in flat:
                print(f"    missing in {name}: {probe}")
    return {
        "probes": len(probes),
        "probes_found": sum(canon(p) in flat for p in probes),
        "headers_left": flat.count(canon(header)) if header else 0,
        "ligatures_left": sum(1 for ch in text if "\ufb00" <= ch <= "\ufb06"),
        "broken_words_left": len(re.findall(r"[a-z][-\u2010\u2011\u00ad\ufffe\x02]\s*\n\s*[a-z]", text)),
    }


def compare(paths: list[Path], verbose: bool = False) -> None:
    print(f"{'library':32} {'pages/s':>8} {'probes':>7} {'headers':>8} {'ligatures':>10} {'broken':>7}")
    for label, extract in EXTRACTORS.items():
        try:
            extract(paths[0])  # warm-up, and the import
        except ImportError:
            print(f"{label:32} not installed")
            continue
        pages = seconds = 0
        totals = {"probes": 0, "probes_found": 0, "headers_left": 0, "ligatures_left": 0, "broken_words_left": 0}
        for path in paths:
            start = time.perf_counter()
            texts = extract(path)
            seconds += time.perf_counter() - start
            pages += len(texts)
            for key, value in quality(path.name, texts, verbose).items():
                totals[key] += value
        print(
            f"{label:32} {pages / seconds:8.1f} {totals['probes_found']:>3}/{totals['probes']:<3} "
            f"{totals['headers_left']:8} {totals['ligatures_left']:10} {totals['broken_words_left']:7}"
        )


def bench(paths: list[Path], repeat: int = 3) -> float:
    """Print and return the pages/s of read_pdf over `paths` (best of `repeat` runs)."""
    best = float("inf")
    pages = 0
    for _ in range(repeat):
        start = time.perf_counter()
        pages = sum(read_pdf(path).page_count for path in paths)
        best = min(best, time.perf_counter() - start)
    rate = pages / best
    print(f"read_pdf: {pages} pages from {len(paths)} file(s) in {best:.2f} s: {rate:.1f} pages/s (best of {repeat})")
    for path in paths:
        start = time.perf_counter()
        doc = read_pdf(path)
        took = time.perf_counter() - start
        print(f"  {path.name}: {doc.page_count} pages, {took:.2f} s, {doc.page_count / took:.1f} pages/s")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdfs", nargs="*", type=Path)
    parser.add_argument("--compare", action="store_true", help="compare pypdf, pdfplumber and pypdfium2")
    parser.add_argument("-v", "--verbose", action="store_true", help="with --compare, name the probes each library misses")
    args = parser.parse_args(argv)
    paths = args.pdfs or sorted(CORPUS.glob("*.pdf"))
    if not paths:
        print(f"no PDFs given and none in {CORPUS}", file=sys.stderr)
        return 2
    if args.compare:
        compare(paths, args.verbose)
    else:
        bench(paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
