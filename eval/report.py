"""Eval reports: every run writes report.json, report.md and PNG charts to ``eval/reports/<run-name>/``.

A report records what was measured and how: the metrics per group, the
per-question detail, the effective configuration with secrets masked, and the
git commit (with a ``dirty`` flag), so two runs can be compared later with
``compare_runs`` and a number in RESULTS.md can be traced to its code.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from assistant.core.errors import UserError
from eval.metrics import LABELS

REPORTS_DIR = Path(__file__).resolve().parent / "reports"
_ROOT = Path(__file__).resolve().parents[1]


def git_commit(cwd: Path = _ROOT) -> dict:
    """{"commit": sha or "", "dirty": bool}; empty when not in a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "", "dirty": False}
    return {"commit": sha, "dirty": bool(status.strip())}


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
    body = {k: v for k, v in result.items() if k != "settings"}
    report = {
        "run": name,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "config": settings.masked() if hasattr(settings, "masked") else (settings or {}),
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


def _table(groups: dict[str, dict[str, float]]) -> str:
    measures = [m for m in next(iter(groups.values())) if m != "n"]
    head = "| group | n | " + " | ".join(LABELS.get(m, m) for m in measures) + " |"
    lines = [head, "|" + "---|" * (len(measures) + 2)]
    for group, values in groups.items():
        cells = " | ".join(fmt(values.get(m)) for m in measures)
        lines.append(f"| {group} | {int(values.get('n', 0))} | {cells} |")
    return "\n".join(lines)


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
    return "\n".join(out)


def _charts(report: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here; must be set before pyplot is imported
    import matplotlib.pyplot as plt
    import numpy as np

    groups = report["groups"]
    # Shares on one 0..1 chart; milliseconds get their own.
    measures = [m for m in next(iter(groups.values())) if m != "n" and not m.endswith("_ms")]
    timings = [m for m in next(iter(groups.values())) if m.endswith("_ms")]
    if timings:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = np.arange(len(groups))
        for i, m in enumerate(timings):
            ax.bar(x + i * 0.4, [groups[g][m] or 0 for g in groups], 0.4, label=m)
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
        ax.bar(x + i * width, [groups[g][m] or 0.0 for g in groups], width, label=LABELS.get(m, m))
    ax.set_xticks(x + width * (len(measures) - 1) / 2, list(groups))
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{report['kind']} — {report['run']}")
    ax.legend(fontsize=8, ncol=len(measures), loc="lower center", bbox_to_anchor=(0.5, -0.28))
    fig.tight_layout()
    fig.savefig(folder / "metrics.png", dpi=110)
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


def load_report(run: str | Path, root: Path | None = None) -> dict:
    """A report by run folder path or run name (under the reports folder)."""
    path = Path(run)
    if not (path / "report.json").exists():
        path = run_dir(str(run), root)
    if not (path / "report.json").exists():
        raise UserError(f"no report for run {str(run)!r} (looked for {path / 'report.json'})")
    return json.loads((path / "report.json").read_text())


def compare_runs(a: str | Path, b: str | Path, root: Path | None = None) -> str:
    """Markdown table of every metric both runs share: A, B and B − A, per group."""
    ra, rb = load_report(a, root), load_report(b, root)
    lines = [f"Comparing **{ra['run']}** (A) with **{rb['run']}** (B)", "",
             "| group | metric | A | B | B − A |", "|---|---|---|---|---|"]
    for group, va in ra["groups"].items():
        vb = rb["groups"].get(group)
        if not vb:
            continue
        for m, x in va.items():
            if m == "n" or m not in vb:
                continue
            d = vb[m] - x
            lines.append(f"| {group} | {LABELS.get(m, m)} | {x:.3f} | {vb[m]:.3f} | {'+' if d > 0 else ''}{d:.3f} |")
    keys = ("fusion", "fusion_weight", "rrf_k", "chunk_tokens", "retriever", "embedding_model")
    changed = [f"{k}: {ra['config'].get(k)} → {rb['config'].get(k)}" for k in keys
               if ra.get("config", {}).get(k) != rb.get("config", {}).get(k)]
    if ra.get("retriever") != rb.get("retriever"):
        changed.append(f"retriever used: {ra.get('retriever')} → {rb.get('retriever')}")
    if changed:
        lines += ["", "Configuration differences: " + "; ".join(changed)]
    return "\n".join(lines)
