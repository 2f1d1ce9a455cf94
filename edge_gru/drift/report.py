"""The run's report: ``report.json`` for machines, ``report.md`` + a PNG plot for people.

``report.json`` layout (a contract other tools read)::

    {"float_accuracy", "n_test", "recipe", "model": {...}, "passed", "breaches",
     "stages": [{"name", "accuracy", "agreement", "mean_abs_diff", "max_abs_diff",
                 "n", "size_bytes", "passed", ...}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..recipe import HIGHER_IS_BETTER
from .harness import Baseline, StageResult

PLOT_NAME = "drift.png"


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def stage_table(results: list[StageResult]) -> str:
    """A Markdown table of the stages; also what the CLI prints."""
    lines = [
        "| stage | runtime | n | accuracy | Δacc (pp) | agreement | mean abs diff | max abs diff "
        "| size (bytes) | gate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        status = "skipped" if r.skipped else ("pass" if r.passed else "FAIL")
        lines.append(
            f"| {r.name} | {r.runtime} | {r.n} | {_fmt(r.accuracy, '.4f')} "
            f"| {_fmt(r.accuracy_drop_pp, '+.2f')} | {_fmt(r.agreement, '.4f')} "
            f"| {_fmt(r.mean_abs_diff, '.2e')} | {_fmt(r.max_abs_diff, '.2e')} "
            f"| {_fmt(r.size_bytes, ',')} | {status} |"
        )
    return "\n".join(lines)


def build_json(
    results: list[StageResult], baseline: Baseline, meta: dict[str, Any]
) -> dict[str, Any]:
    breaches = [b for r in results for b in r.breaches]
    return {
        "float_accuracy": baseline.accuracy,
        "n_test": len(baseline.ids),
        **meta,
        "passed": not breaches,
        "breaches": breaches,
        "stages": [r.to_json() for r in results],
    }


def _plot(results: list[StageResult], baseline: Baseline, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.probabilities is not None]
    if not shown:
        return False
    cols = min(3, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, r in zip(axes.flat, shown):
        base = baseline.probabilities[: r.n]
        ax.scatter(base, r.probabilities, s=2, alpha=0.3, rasterized=True)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.axhline(0.5, color="red", linewidth=0.5)
        ax.axvline(0.5, color="red", linewidth=0.5)
        ax.set_title(f"{r.name} (agreement {r.agreement:.4f})", fontsize=9)
        ax.set_xlabel("float Keras probability")
        ax.set_ylabel("stage probability")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return True


def _extras_section(results: list[StageResult]) -> list[str]:
    lines: list[str] = []
    for r in results:
        if r.skipped:
            lines.append(f"- **{r.name}** skipped: {r.skipped}")
        shown = {k: v for k, v in r.extra.items() if not isinstance(v, (list, dict))}
        if shown:
            items = ", ".join(
                f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}" for k, v in shown.items()
            )
            lines.append(f"- **{r.name}**: {items}")
        for key, value in r.extra.items():
            if isinstance(value, dict):
                lines.append(f"- **{r.name}** {key}: `{json.dumps(value, sort_keys=True)}`")
    return lines


def write_report(
    out_dir: Path, results: list[StageResult], baseline: Baseline, meta: dict[str, Any]
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plot; return the JSON document."""
    doc = build_json(results, baseline, meta)
    (out_dir / "report.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    plotted = _plot(results, baseline, out_dir / PLOT_NAME)
    model = meta.get("model", {})
    lines = [
        f"# edge_gru drift report — recipe `{meta.get('recipe', '?')}`",
        "",
        f"Float Keras test accuracy: **{baseline.accuracy:.4f}** on {len(baseline.ids):,} "
        "IMDB test reviews. Every stage below is compared with it review by review: "
        "agreement is the share of identical 0.5-threshold decisions, the diffs are on "
        "the output probability.",
        "",
        f"Model: vocab {model.get('vocab')}, embed {model.get('embed_dim')}, "
        f"units {model.get('units')}, maxlen {model.get('maxlen')}, "
        f"reset_after {model.get('reset_after')}, {model.get('parameters', 0):,} parameters.",
        "",
        stage_table(results),
        "",
        "Result: **" + ("all gates passed" if doc["passed"] else "GATE BREACHED") + "**",
    ]
    for breach in doc["breaches"]:
        lines.append(f"- {breach}")
    extras = _extras_section(results)
    if extras:
        lines += ["", "## Stage details", "", *extras]
    gates = [
        f"- `{r.name}`: "
        + ", ".join(
            f"{k} {'≥' if k in HIGHER_IS_BETTER else '≤'} {v:g}" for k, v in r.gates.items()
        )
        for r in results
        if r.gates
    ]
    if gates:
        lines += ["", "## Gates", "", *gates]
    if plotted:
        lines += ["", "## Stage vs float probability", "", f"![drift]({PLOT_NAME})"]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    return doc
