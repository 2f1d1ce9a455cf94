"""The run's report: ``report.json`` for machines, ``report.md`` + a PNG plot for people.

``report.json`` layout (a contract other tools read)::

    {"float_accuracy", "n_test", "task", "recipe", "model": {...}, "passed", "breaches",
     "stages": [{"name", "accuracy", "agreement", "mean_abs_diff", "max_abs_diff",
                 "accuracy_drop_pp", "n", "size_bytes", "passed", ...}, ...]}

``float_accuracy`` is null for regression, which adds ``float_mae`` / ``float_rmse`` and
per stage ``mae``, ``rmse``, ``rmse_change``. ``accuracy_drop_pp`` is float accuracy minus
the stage's, in percentage points: positive means the stage is worse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import Task
from . import metrics
from .advice import precision_advice
from .gates import HIGHER_IS_BETTER
from .harness import Baseline, StageResult

PLOT_NAME = "drift.png"


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _pp(value: float | None) -> str:
    """Signed percentage points without a ``-0.00``: ``+0.02`` is a drop, ``-0.04`` a gain."""
    if value is None:
        return "—"
    rounded = round(value, 2)
    return "0.00" if rounded == 0 else f"{rounded:+.2f}"


def _status(r: StageResult) -> str:
    return "skipped" if r.skipped else ("pass" if r.passed else "FAIL")


def stage_table(results: list[StageResult], task: Task | None = None) -> str:
    """A Markdown table of the stages; also what the CLI prints."""
    if task is not None and not task.is_classification:
        lines = [
            "| stage | runtime | n | MAE | RMSE | RMSE change (%) | mean abs diff | max abs diff "
            "| size (bytes) | gate |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in results:
            lines.append(
                f"| {r.name} | {r.runtime} | {r.n} | {_fmt(r.extra.get('mae'), '.4g')} "
                f"| {_fmt(r.extra.get('rmse'), '.4g')} "
                f"| {_pp(r.extra.get('rmse_change_pct'))} "
                f"| {_fmt(r.mean_abs_diff, '.2e')} | {_fmt(r.max_abs_diff, '.2e')} "
                f"| {_fmt(r.size_bytes, ',')} | {_status(r)} |"
            )
        return "\n".join(lines)
    lines = [
        "| stage | runtime | n | accuracy | accuracy drop (pp) | agreement | mean abs diff "
        "| max abs diff | size (bytes) | gate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.runtime} | {r.n} | {_fmt(r.accuracy, '.4f')} "
            f"| {_pp(r.accuracy_drop_pp)} | {_fmt(r.agreement, '.4f')} "
            f"| {_fmt(r.mean_abs_diff, '.2e')} | {_fmt(r.max_abs_diff, '.2e')} "
            f"| {_fmt(r.size_bytes, ',')} | {_status(r)} |"
        )
    return "\n".join(lines)


def build_json(
    results: list[StageResult], baseline: Baseline, meta: dict[str, Any],
    can_take: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    breaches = [b for r in results for b in r.breaches]
    doc: dict[str, Any] = {
        "float_accuracy": baseline.accuracy,
        "n_test": len(baseline.x),
        "task": baseline.task.kind,
    }
    errors = baseline.errors()
    if errors is not None:
        doc["float_mae"], doc["float_rmse"] = errors
    advice = precision_advice(results, can_take)
    return {
        **doc,
        **meta,
        "passed": not breaches,
        "breaches": breaches,
        **({"advice": advice} if advice else {}),
        "stages": [r.to_json() for r in results],
    }


def _plot(results: list[StageResult], baseline: Baseline, path: Path) -> bool:
    """Per stage: stage vs float (top) and the residual stage - float (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.outputs is not None]
    if not shown:
        return False
    task = baseline.task
    cols = len(shown)
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols, 6.4), squeeze=False)
    label = "value" if not task.is_classification else "probability"
    for i, r in enumerate(shown):
        assert r.outputs is not None
        base = metrics.probabilities(task, baseline.outputs[: r.n]).reshape(-1)
        mine = metrics.probabilities(task, r.outputs).reshape(-1)
        top, bottom = axes[0, i], axes[1, i]
        top.scatter(base, mine, s=2, alpha=0.3, rasterized=True)
        lo, hi = float(np.nanmin(base)), float(np.nanmax(base))
        top.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
        title = r.name if r.agreement is None else f"{r.name}\nagreement {r.agreement:.4f}"
        top.set_title(title, fontsize=8)
        top.set_xlabel(f"float Keras {label}", fontsize=7)
        top.set_ylabel(f"stage {label}", fontsize=7)
        bottom.scatter(base, mine - base, s=2, alpha=0.3, rasterized=True)
        bottom.axhline(0.0, color="grey", linewidth=0.8)
        bottom.set_xlabel(f"float Keras {label}", fontsize=7)
        bottom.set_ylabel("stage − float", fontsize=7)
        if task.kind in ("binary", "binary_logits"):
            top.axhline(0.5, color="red", linewidth=0.5)
            top.axvline(0.5, color="red", linewidth=0.5)
        for ax in (top, bottom):
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return True


def _confusions(results: list[StageResult], task: Task) -> list[str]:
    """Multi-class: each stage's confusion against float Keras, where it differs."""
    names = list(task.class_names) or [str(k) for k in range(task.outputs)]
    lines: list[str] = []
    for r in results:
        confusion = r.extra.get("confusion_vs_float")
        if (
            not confusion
            or np.count_nonzero(np.asarray(confusion) - np.diag(np.diag(confusion))) == 0
        ):
            continue
        lines += [
            "",
            f"**{r.name}** (rows: float Keras' class, columns: the stage's):",
            "",
            "| float \\ stage | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        lines += [
            f"| {names[i]} | " + " | ".join(str(v) for v in row) + " |"
            for i, row in enumerate(confusion)
        ]
    return lines


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


def _headline(baseline: Baseline, meta: dict[str, Any]) -> str:
    n = f"{len(baseline.x):,} test examples ({meta.get('data_source', '?')})"
    if baseline.task.is_classification:
        return (
            f"Float Keras test accuracy: **{baseline.accuracy:.4f}** on {n}. Every stage is "
            "compared with float Keras example by example: *agreement* is the share of "
            "identical decisions, *accuracy drop* is float accuracy minus the stage's in "
            "percentage points (positive: the stage is worse), the diffs are on the outputs."
        )
    mae, rmse = baseline.errors() or (0.0, 0.0)
    return (
        f"Float Keras on {n}: MAE **{mae:.4g}**, RMSE **{rmse:.4g}** (target units). Every "
        "stage is compared with float Keras example by example: the diffs are on the "
        "outputs, *RMSE change (%)* is the stage's RMSE relative to float's, in percent "
        "(positive: worse)."
    )


def write_report(
    out_dir: Path,
    results: list[StageResult],
    baseline: Baseline,
    meta: dict[str, Any],
    localisation: dict[str, Any] | None = None,
    can_take: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the plots; return the JSON document.

    ``localisation`` (:func:`edge_gru.explain.run.localise`) adds the section "Where the
    drift comes from" (``report.json`` key ``where_drift_comes_from``, its own plot).
    ``can_take(stage)`` (why a stage that did not run could not take the model) lets the
    int8-vs-16x8 advice (:mod:`.advice`) say so.
    """
    doc = build_json(results, baseline, meta, can_take)
    if localisation is not None:
        from ..explain.run import JSON_KEY

        doc[JSON_KEY] = localisation
    (out_dir / "report.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    plotted = _plot(results, baseline, out_dir / PLOT_NAME)
    model = meta.get("model", {})
    lines = [
        f"# edge_gru drift report — recipe `{meta.get('recipe', '?')}`",
        "",
        _headline(baseline, meta),
        "",
        f"Model: {model.get('description', '?')}; task {baseline.task.kind}; "
        f"{model.get('parameters', 0):,} parameters.",
        *[f"Note: {note}" for note in model.get("notes", [])],
        "",
        stage_table(results, baseline.task),
        "",
        "Result: **" + ("all gates passed" if doc["passed"] else "GATE BREACHED") + "**",
    ]
    for breach in doc["breaches"]:
        lines.append(f"- {breach}")
    if doc.get("advice"):
        lines += ["", f"Advice: {doc['advice']}"]
    confusions = _confusions(results, baseline.task) if baseline.task.kind == "multiclass" else []
    if confusions:
        lines += ["", "## Where decisions changed", *confusions]
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
        rule = (
            ["Agreement and accuracy drop are judged by their 95% confidence bound at the "
             "stage's n (edge_gru.drift.gates), so a few flips on a small test set do not fail.",
             ""]
            if baseline.task.is_classification else []
        )
        lines += ["", "## Gates", "", *rule, *gates]
    if plotted:
        lines += ["", "## Stage vs float, and the residual", "", f"![drift]({PLOT_NAME})"]
    if localisation is not None:
        from ..explain import section

        lines += ["", *section.markdown(localisation,
                                        section.plot(localisation, out_dir / section.PLOT_NAME))]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    return doc
