"""PDF ingest speed (``assistant bench --pdfs DIR``): the whole folder ingested as a user does it, measured.

Three runs of ``assistant ingest`` as whole new processes (model loading included), each into a fresh home:

* the folder: every PDF in it, as ``assistant ingest DIR`` reads a researcher's folder (PDFs read side by side
  in a process pool, then chunked and embedded): seconds, pages per second, peak RSS, and from the ingest's own
  report the split into reading (wall time of the pool) and embedding, the chunks, the files stored or named
  with their reason, and each file's pages and reading time;
* the same folder again, unchanged (nothing read, nothing embedded);
* the longest PDF alone (what one paper costs, issue 15's 25-page target).

Nothing is estimated: a folder of 85 papers is measured by giving this command a folder of 85 papers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from eval.bench_common import bench_env, cli_command, timed_process

# The real-library target of issue 20: a folder of 85 PDFs ingests in 180 s on the 2-core machine.
FOLDER_PAPERS = 85


def _ingest(paths: list[str], home: Path, timeout: float) -> dict:
    """``assistant ingest PATHS --json`` as a whole process into ``home``: its timing and its report."""
    home.mkdir(parents=True, exist_ok=True)
    out = home.parent / f"{home.name}-ingest.json"
    run = timed_process(cli_command() + ["ingest", *paths, "--json"], bench_env(home), timeout=timeout, stdout=out)
    if run["rc"] not in (0, 3):  # 3: some files could not be ingested (each named in the report)
        raise RuntimeError(f"assistant ingest failed (exit {run['rc']}): {run.get('error', '')}")
    report = json.loads(out.read_text())
    out.unlink()
    return {"seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"], "exit": run["rc"], "report": report}


def measure_pdfs(folder: Path, work: Path, log: Callable[[str], None], timeout: float = 1800.0) -> dict:
    """The PDF section of the benchmark report: the folder, the folder again, the longest file alone."""
    pdfs = sorted(p for p in Path(folder).glob("*.pdf") if p.is_file())
    if not pdfs:
        raise RuntimeError(f"no .pdf files in {folder}")
    home, single = work / "pdf-folder-home", work / "pdf-one-home"
    for h in (home, single):
        shutil.rmtree(h, ignore_errors=True)
    log(f"PDF ingest: `assistant ingest {folder}` ({len(pdfs)} files) as a whole process into a fresh home")
    first = _ingest([str(folder)], home, timeout)
    report = first["report"]
    pages = int(report.get("pdf_pages") or 0)
    log("PDF ingest: the same folder again, unchanged")
    again = _ingest([str(folder)], home, timeout)
    read = report.get("files_read") or []
    longest = max(read, key=lambda f: f.get("pages", 0)) if read else {"file": str(pdfs[0]), "pages": None}
    log(f"PDF ingest: `assistant ingest {Path(longest['file']).name}` alone ({longest.get('pages')} pages)")
    one = _ingest([longest["file"]], single, timeout)
    for h in (home, single):
        shutil.rmtree(h, ignore_errors=True)
    return {
        "folder": str(folder),
        "files": len(pdfs),
        "ingest": {
            "seconds": first["seconds"], "peak_rss_mb": first["peak_rss_mb"], "exit": first["exit"],
            "pages": pages, "pages_per_s": pages / first["seconds"] if first["seconds"] else None,
            "papers": report.get("papers"), "chunks": report.get("chunks_embedded"),
            "read_seconds": report.get("read_seconds"), "embed_seconds": report.get("embed_seconds"),
            "other_seconds": first["seconds"] - (report.get("read_seconds") or 0) - (report.get("embed_seconds") or 0),
            "files_failed": report.get("files_failed") or [],
            "skipped": report.get("skipped") or [],
        },
        "reingest": {"seconds": again["seconds"], "chunks": again["report"].get("chunks_embedded"),
                     "unchanged": again["report"].get("unchanged")},
        "per_file": read,
        "one_file": {"file": longest["file"], "pages": longest.get("pages"), "seconds": one["seconds"],
                     "peak_rss_mb": one["peak_rss_mb"]},
    }
