"""The report section "Where the drift comes from": Markdown lines and the error-vs-step plot.

Both are rendered from the section's JSON document alone (:func:`edge_gru.explain.run.localise`),
so ``--explain STAGE`` can redraw them after replacing one stage's entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HEADING = "## Where the drift comes from"
PLOT_NAME = "drift_localisation.png"
TERM_NAMES = {"z": "z gate", "r": "r gate (through n)", "n": "n: projections + tanh",
              "state rounding": "state rounding"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _dominant(layer: dict[str, Any]) -> str:
    shares = layer.get("injected_error_shares")
    if not shares:
        return "— (state only)"
    top = max(shares, key=lambda k: shares[k])
    return f"{TERM_NAMES.get(top, top)} ({100 * shares[top]:.0f}%)"


def _first(layer: dict[str, Any]) -> str:
    step = layer.get("first_step_above_level")
    if step is not None:
        return str(step)
    steps = layer.get("steps", [])
    return "never" if len(steps) > 1 else f"— (step {steps[-1] if steps else '?'} only)"


def _outputs(values: list[float]) -> str:
    """A few outputs as they are; many (multi-class) as the top one: ``class 3 (0.41)``."""
    if len(values) <= 3:
        return ", ".join(f"{v:.3g}" for v in values)
    top = int(np.nanargmax(values)) if not np.all(np.isnan(values)) else 0
    return f"class {top} ({values[top]:.3g})"


def _worst_line(row: dict[str, Any]) -> str:
    floats, mine = _outputs(row["float"]), _outputs(row["stage"])
    text = f"#{row['test_index']}: float {floats} → {mine}"
    text += " (flipped)" if row["flipped"] else ""
    if "final_rel_l2" in row:
        text += f"; final state error {_pct(row['final_rel_l2'])}"
    if row.get("diverges_at_step") is not None:
        text += f", ≥ level from step {row['diverges_at_step']}"
    if "largest_jump_step" in row:
        text += f"; largest jump at step {row['largest_jump_step']}"
        if "tokens" in row:
            text += f": “{row['tokens']}”"
    return text


def markdown(doc: dict[str, Any], plotted: bool) -> list[str]:
    """The section's lines (starting with :data:`HEADING`)."""
    level = float(doc["level"])
    lines = [
        HEADING,
        "",
        f"Each quantized stage re-run on a sample of ≤ {doc['sample']} evaluated test inputs "
        "(seeded; every input whose decision flipped is included) and compared with the "
        "float64 reference on the same inputs, hidden state by hidden state. *Error* is the "
        f"relative L2 error of the state pooled over the sample; the level is {_pct(level)}. "
        "*Injected* is the error a single step adds starting from the stage's own previous "
        "state; the dominant gate is the largest share of that injected error "
        f"(docs/drift-localisation.md). Took {doc.get('seconds', 0):.1f} s.",
        "",
        "| stage | layer | sample (flipped) | first step ≥ level | final error | final cosine "
        "| mean injected | dominant | output |Δ| mean / max |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    notes: list[str] = []
    for name, entry in doc["stages"].items():
        if "not_traced" in entry:
            notes.append(f"- **{name}** not traced: {entry['not_traced']}")
            continue
        for layer in entry["layers"]:
            injected = layer.get("injected_rel_l2")
            lines.append(
                f"| {name} | {layer['layer']} | {entry['sample']} ({entry['flipped_in_sample']}) "
                f"| {_first(layer)} | {_pct(layer['final_rel_l2'])} "
                f"| {layer['final_cosine']:.4f} "
                f"| {_pct(float(np.mean(injected))) if injected else '—'} | {_dominant(layer)} "
                f"| {entry['output_abs_diff_mean']:.2e} / {entry['output_abs_diff_max']:.2e} |"
            )
        notes.append(f"- **{name}** ({entry['how']}; {entry['seconds']:.1f} s)")
        if entry.get("limits"):
            notes.append(f"  - limit: {entry['limits']}")
        for layer in entry["layers"]:
            if len(layer["steps"]) > 1:
                notes.append(f"  - {layer['layer']}: error peaks at step {layer['peak_step']} "
                             f"({_pct(layer['peak_rel_l2'])})")
            if "amplification" in layer:
                notes[-1] += (f"; mean error / mean injected error = "
                              f"{layer['amplification']:.2g} (> 1: the recurrence carries "
                              "earlier errors on)")
            shares = layer.get("injected_error_shares")
            if shares:
                parts = ", ".join(f"{TERM_NAMES.get(k, k)} {100 * v:.0f}%"
                                  for k, v in shares.items())
                notes.append(f"  - {layer['layer']}: injected error by source: {parts}")
        tensors = entry.get("tensors")
        if tensors:
            parts = ", ".join(f"{k} {_pct(v['mean_rel_l2'])}" for k, v in tensors.items())
            notes.append(f"  - weights quantized one tensor at a time (float arithmetic), mean "
                         f"state error: {parts}; dominant tensor: {entry['dominant_tensor']}")
        for row in entry["worst_inputs"]:
            notes.append(f"  - worst {_worst_line(row)}")
    lines += ["", *notes]
    if plotted:
        lines += ["", f"![state error vs step]({PLOT_NAME})"]
    return lines


def plot(doc: dict[str, Any], path: Path) -> bool:
    """Error vs processing step per layer, one panel per traced stage; False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(n, e) for n, e in doc["stages"].items() if "layers" in e]
    if not shown:
        return False
    # one y scale for all panels, so stages compare at a glance
    fig, axes = plt.subplots(1, len(shown), figsize=(3.8 * len(shown), 3.2), squeeze=False,
                             sharey=True)
    for ax, (name, entry) in zip(axes[0], shown):
        for layer in entry["layers"]:
            steps, err = layer["steps"], np.maximum(layer["rel_l2"], 1e-6)
            style = "-" if len(steps) > 1 else "o"
            line = ax.plot(steps, err, style, linewidth=1, label=f"{layer['layer']} state")
            if layer.get("injected_rel_l2"):
                ax.plot(steps, np.maximum(layer["injected_rel_l2"], 1e-6), ":", linewidth=1,
                        color=line[0].get_color(), label=f"{layer['layer']} injected")
        ax.axhline(doc["level"], color="red", linewidth=0.6, label="level")
        ax.set_yscale("log")
        if doc.get("timesteps"):
            ax.set_xlim(-1, int(doc["timesteps"]))
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("processing step", fontsize=7)
        ax.set_ylabel("relative L2 error vs float", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return True
