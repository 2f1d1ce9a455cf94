"""``python -m edge_gru.convert --explain STAGE --out FOLDER``: localise one stage again.

Nothing is trained or rebuilt: the model comes from ``FOLDER/model.keras`` (the IR from
it, with the task, class names and T the report recorded), the stage's artifact from the
folder, the test inputs from the data the recipe names (``--data`` / ``--recipe`` as for a
conversion), and the flipped inputs from the report's earlier section when it has one.
``report.json`` (key :data:`~edge_gru.explain.run.JSON_KEY`), the section of ``report.md``
and its plot are rewritten in place; every other file stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGruError
from .run import DEFAULT_SAMPLE, JSON_KEY, LEVEL, ExplainInputs, explain_stage, words_for
from .section import HEADING, PLOT_NAME, markdown, plot
from .traces import NotTraceable, traced_stages

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
MODEL_FILE = "model.keras"


def _read_report(out: Path) -> dict[str, Any]:
    path = out / REPORT_JSON
    if not path.is_file() or not (out / MODEL_FILE).is_file():
        raise EdgeGruError(f"--explain needs an output folder with {REPORT_JSON} and "
                           f"{MODEL_FILE}: {out} has not both")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EdgeGruError(f"{path} is not valid JSON: {exc.msg}") from exc


def _stage_row(report: dict[str, Any], stage: str) -> dict[str, Any]:
    rows = {r["name"]: r for r in report.get("stages", [])}
    if stage not in rows:
        raise EdgeGruError(f"stage {stage} is not in this report; it has: "
                           f"{', '.join(rows) or 'no stage'}")
    if stage not in traced_stages():
        raise EdgeGruError(f"no tracer for stage {stage}; traced: {', '.join(traced_stages())}")
    row = rows[stage]
    if row.get("skipped"):
        raise EdgeGruError(f"stage {stage} was skipped in this run: {row['skipped']}")
    return row


def replace_section(out: Path, report: dict[str, Any], doc: dict[str, Any]) -> None:
    """Write ``doc`` as the section into ``report.json`` and ``report.md`` (and redraw the plot)."""
    report[JSON_KEY] = doc
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    md_path = out / REPORT_MD
    text = md_path.read_text() if md_path.is_file() else ""
    lines = text.rstrip("\n").split("\n") if text else []
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        before, after = lines[:start], lines[end:]
        while before and not before[-1]:
            before.pop()
    else:
        before, after = lines, []
    section = markdown(doc, plot(doc, out / PLOT_NAME))
    new = [*before, "", *section] + (["", *after] if after else [])
    md_path.write_text("\n".join(new) + "\n")


def explain_folder(out: Path, stage: str, data: Path | None = None,
                   recipe: str | Path | None = None, sample: int = DEFAULT_SAMPLE,
                   say: Any = print) -> dict[str, Any]:
    """Re-run the localisation of ``stage`` for the output folder ``out``; returns its entry."""
    from ..frontend import from_keras
    from ..model import training as keras_model
    from ..pipeline import ConvertOptions, _data_path, _load_data
    from ..recipe import load_recipe

    report = _read_report(out)
    row = _stage_row(report, stage)
    recipe_obj = load_recipe(recipe if recipe is not None else report.get("recipe"))
    meta = report.get("model", {})
    model = keras_model.load_model(out / MODEL_FILE)
    ir = from_keras(model, meta.get("maxlen"), task=meta.get("task"),
                    class_names=tuple(meta.get("class_names") or ()))
    dataset = _load_data(_data_path(ConvertOptions(out=out, data=data), recipe_obj),
                         ir.input, ir.task, recipe_obj)
    n_test = int(report.get("n_test") or len(dataset.x_test))
    x = dataset.x_test[:n_test]
    previous = report.get(JSON_KEY) or {}
    stored = previous.get("stages", {}).get(stage, {}).get("flipped_inputs")
    flipped = None if stored is None else np.asarray(stored, np.int64)
    say(f"tracing {stage} on {min(sample, n_test)} of {n_test} test inputs"
        + ("" if flipped is not None else " (flipped inputs unknown: random sample)"))
    inputs = ExplainInputs(
        ir=ir, folder=out, x=x, float_outputs=keras_model.keras_predict(model, x), task=ir.task,
        seed=int(meta.get("seed") or 0), words=words_for(ir, out / "word_index.txt.gz"),
        options=recipe_obj.options_for,
    )
    try:
        entry = explain_stage(stage, inputs, flipped, int(row.get("n") or n_test), sample)
    except NotTraceable as exc:
        entry = {"not_traced": str(exc)}
    doc = {"level": previous.get("level", LEVEL), "sample": sample,
           "seed": inputs.seed, "timesteps": int(x.shape[1]),
           "stages": dict(previous.get("stages", {}))}
    doc["stages"][stage] = entry
    doc["seconds"] = round(sum(e.get("seconds", 0.0) for e in doc["stages"].values()), 3)
    replace_section(out, report, doc)
    return entry
