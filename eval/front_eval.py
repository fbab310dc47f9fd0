"""Front matter of real PDFs against hand labels: title, authors, year and DOI as `read_pdf` reads them.

Labels: ``eval/datasets/pdf_front.jsonl`` (one row per file: ``file``, ``title``, ``authors``, ``year``,
``doi``; read from images of the pages by hand, see eval/datasets/README.md). Per file:

* title_right — the title read equals the label once case, punctuation and spacing are set aside
  (``normalize_title``, the form ingest matches titles by);
* authors_precision / authors_recall — over surnames (the last word of each name, accents and case set
  aside), so "Ludong Yang" and "L. Yang" agree and an affiliation read as a name counts against precision;
* year_right, doi_right — exact.

The summary gives each share over the files, and ``titles_right`` as a count ("22 of 23").
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import numpy as np

from assistant.core.errors import UserError
from ingest.normalize import normalize_title

METRICS = ("title_right", "authors_precision", "authors_recall", "year_right", "doi_right")


def surname(name: str) -> str:
    words = name.replace(".", " ").split()
    last = words[-1] if words else ""
    return "".join(c for c in unicodedata.normalize("NFKD", last.casefold()) if c.isalnum())


def score_front(label: dict, doc) -> dict:
    read = [s for s in (surname(a) for a in doc.authors) if s]
    gold = [s for s in (surname(a) for a in label["authors"]) if s]
    hits = len(set(read) & set(gold))
    return {
        "file": label["file"],
        "title": doc.title,
        "authors": list(doc.authors),
        "year": doc.year,
        "doi": doc.doi,
        "title_right": float(normalize_title(doc.title) == normalize_title(label["title"])),
        "authors_precision": hits / len(set(read)) if read else 0.0,
        "authors_recall": hits / len(set(gold)) if gold else None,
        "year_right": float(doc.year == label.get("year")),
        "doi_right": float(doc.doi == (label.get("doi") or "").lower()),
    }


def find_file(name: str, folders: list[Path]) -> Path | None:
    return next((f / name for f in folders if (f / name).is_file()), None)


def eval_front(labels_file: Path, folders: list[Path]) -> dict:
    """Read every labelled PDF found in ``folders`` and score its front matter; a result for write_report."""
    from ingest.pdf import read_pdf

    labels = [json.loads(line) for line in Path(labels_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows, absent = [], []
    for label in labels:
        path = find_file(label["file"], folders)
        if path is None:
            absent.append(label["file"])
            continue
        started = time.perf_counter()
        row = score_front(label, read_pdf(path))
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    if not rows:
        raise UserError(f"none of the {len(labels)} labelled PDFs is in {', '.join(map(str, folders))}")
    overall = {m: float(np.mean([r[m] for r in rows if r[m] is not None])) for m in METRICS}
    overall["titles_right"] = int(sum(r["title_right"] for r in rows))
    overall["n"] = len(rows)
    return {"labels_file": str(labels_file), "folders": [str(f) for f in folders], "absent": absent,
            "groups": {"overall": overall}, "per_file": rows,
            "inputs": {"labels_sha256": _sha256(labels_file)}}


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
