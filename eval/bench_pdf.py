"""PDF ingest speed (``assistant bench --pdfs DIR``): pages per second with extraction and embedding apart.

In a fresh process (so the bundled-library steps' leftovers do not share the
cores), for each PDF of the folder: ``read_pdf`` alone (best of three, pages/s),
then an ingest of that one file into an empty library with the model already
loaded, split by the pipeline's own clocks into reading (extraction), embedding
(chunks and sentence vectors) and the rest (chunking, Chroma writes, the PDF
copy), then the same file again (unchanged: read nothing, embed nothing). Then
``assistant ingest`` of the longest PDF as a whole new process (model loading
included), which is what a user waits for.

The 85-paper figure is an estimate: the per-page time of one in-process ingest
of all the sampled files together (as a folder is ingested) times 85 papers of
the sampled files' mean page count, plus one process start. The held-out set's papers are biology and
chemistry articles like these three; their page counts are not known here.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from eval.bench_common import bench_env, bench_settings, cli_command, run_probe, timed_process

PAPERS_85 = 85


def measure_pdfs(folder: Path, work: Path, log: Callable[[str], None]) -> dict:
    """The PDF section of the benchmark report (a probe in a fresh process, then one whole-process ingest)."""
    pdfs = sorted(p for p in Path(folder).glob("*.pdf") if p.is_file())
    if not pdfs:
        raise RuntimeError(f"no .pdf files in {folder}")
    home = work / "pdf-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log(f"PDF ingest: {len(pdfs)} files, each read and ingested in a fresh process")
    result = run_probe("eval.bench_pdf", ["probe", str(home), *map(str, pdfs)], home)
    longest = max(result["files"], key=lambda f: f["pages"])
    cold_home = work / "pdf-cold-home"
    shutil.rmtree(cold_home, ignore_errors=True)
    log(f"PDF ingest: `assistant ingest {Path(longest['file']).name}` as a whole process ({longest['pages']} pages)")
    run = timed_process(cli_command() + ["ingest", longest["file"], "--json"], bench_env(cold_home))
    if run["rc"] != 0:
        raise RuntimeError(f"assistant ingest failed: {run['error']}")
    result["cold_ingest"] = {"file": longest["file"], "pages": longest["pages"], "seconds": run["seconds"],
                             "peak_rss_mb": run["peak_rss_mb"]}
    # Per page: the ingest of all sampled files together (one library set-up, as for a folder of 85).
    per_page = result["totals"]["together"]["seconds"] / result["totals"]["pages"]
    start = max(0.0, run["seconds"] - longest["ingest_seconds"])  # process start and model load
    result["estimate"] = {
        "per_page_seconds": per_page,
        "process_start_seconds": start,
        "paper_25_pages_seconds": start + 25 * per_page,
        "mean_pages": result["totals"]["pages"] / len(result["files"]),
        "papers_85_seconds": start + PAPERS_85 * (result["totals"]["pages"] / len(result["files"])) * per_page,
        "how": "per-page time of one ingest of all sampled files (warm model, in process) × pages, plus one process "
               "start (the whole-process ingest of the longest file less its in-process time)",
    }
    shutil.rmtree(cold_home, ignore_errors=True)
    return result


def _probe(home: Path, pdfs: list[Path]) -> dict:
    from assistant.app import App
    from ingest.pdf import read_pdf

    base = App(bench_settings(home))
    base.embedder.embed(["warm up the encoder"])
    files, totals = [], {"pages": 0, "seconds": 0.0, "read_seconds": 0.0, "embed_seconds": 0.0, "chunks": 0}
    for i, path in enumerate(pdfs):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            doc = read_pdf(path)
            times.append(time.perf_counter() - t0)
        app = App(bench_settings(home, library=f"pdf{i}"), embedder=base.embedder, client=base.client)
        report = app.ingest([path])
        again = app.ingest([path])
        row = {
            "file": str(path), "pages": doc.page_count, "extract_seconds": min(times),
            "extract_pages_per_s": doc.page_count / min(times),
            "ingest_seconds": report.seconds, "read_seconds": report.read_seconds,
            "embed_seconds": report.embed_seconds,
            "other_seconds": report.seconds - report.read_seconds - report.embed_seconds,
            "chunks": report.chunks_embedded, "sentences": report.sentences_embedded,
            "chunks_per_s": report.chunks_embedded / report.embed_seconds if report.embed_seconds else None,
            "pages_per_s": doc.page_count / report.seconds,
            "reingest_seconds": again.seconds, "reingest_chunks": again.chunks_embedded,
        }
        files.append(row)
        totals["pages"] += doc.page_count
        totals["seconds"] += report.seconds
        totals["read_seconds"] += report.read_seconds
        totals["embed_seconds"] += report.embed_seconds
        totals["chunks"] += report.chunks_embedded
    # All files in one ingest, as a folder of PDFs is ingested: the library's set-up is paid once.
    together = App(bench_settings(home, library="pdfall"), embedder=base.embedder, client=base.client).ingest(pdfs)
    totals["together"] = {"seconds": together.seconds, "read_seconds": together.read_seconds,
                          "embed_seconds": together.embed_seconds, "chunks": together.chunks_embedded,
                          "pages_per_s": totals["pages"] / together.seconds}
    totals["pages_per_s"] = totals["pages"] / totals["seconds"]
    totals["extract_pages_per_s"] = totals["pages"] / sum(f["extract_seconds"] for f in files)
    totals["embed_pages_per_s"] = totals["pages"] / totals["embed_seconds"] if totals["embed_seconds"] else None
    return {"files": files, "totals": totals}


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "probe":
    print(json.dumps(_probe(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])))
