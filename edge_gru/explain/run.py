"""Localise each quantized stage's drift on a seeded sample of the evaluated test inputs.

The sample: every input whose decision the stage flipped (against float Keras), plus seeded
random others up to ``sample`` inputs (default :data:`DEFAULT_SAMPLE`); the same random
part for every stage. The result is the JSON document of the report section
(:data:`JSON_KEY` in ``report.json``); :mod:`.section` renders it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import reference
from ..drift import metrics
from ..ir import ModelIR, Task
from .ablation import ablate, dominant_tensor
from .localise import LayerFindings, compare_layers, layer_json
from .traces import NotTraceable, TraceSource, trace_stage

DEFAULT_SAMPLE = 300
LEVEL = 0.05  # "the error exceeds the level": pooled relative L2 error of the state >= 5%
JSON_KEY = "where_drift_comes_from"
WORST = 3  # worst inputs shown per stage
WINDOW = 4  # tokens shown on each side of the divergence step

Words = Callable[[int], str]


@dataclass(frozen=True)
class ExplainInputs:
    """What every stage's localisation shares.

    ``x`` ``(n, T)`` ids or ``(n, T, F)`` features: the evaluated test inputs (first ``n``);
    ``float_outputs (n, K)``: float Keras on them; ``words``: token id -> word for text
    models, else None; ``options(stage)``: the recipe's options of a stage.
    """

    ir: ModelIR
    folder: Path
    x: np.ndarray
    float_outputs: np.ndarray
    task: Task
    seed: int
    words: Words | None = None
    options: Callable[[str], dict[str, Any]] = lambda _stage: {}


def flipped_inputs(task: Task, stage_outputs: np.ndarray, float_outputs: np.ndarray) -> np.ndarray:
    """Indices ``(k,)`` whose decision differs from float Keras' (none for regression)."""
    if not task.is_classification:
        return np.zeros(0, np.int64)
    n = len(stage_outputs)
    mine = metrics.decisions(task, stage_outputs)
    theirs = metrics.decisions(task, float_outputs[:n])
    differ = mine != theirs
    if differ.ndim == 2:
        differ = differ.any(axis=1)
    return np.flatnonzero(differ).astype(np.int64)


def choose_sample(n: int, flipped: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices: all ``flipped`` plus seeded random others, ``max(size, len(flipped))``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # the same for every stage: the random part is shared
    rest = order[~np.isin(order, flipped)][: max(0, size - len(flipped))]
    return np.sort(np.concatenate([np.asarray(flipped, np.int64), rest]))


def token_words(lookup: dict[str, int], vocab: int) -> Words:
    """Keras IMDB ids -> words: ``id = rank + 3``; 0 pad, 1 start, 2 out of vocabulary."""
    from ..data.text import INDEX_FROM

    by_rank = {rank: word for word, rank in lookup.items()}
    special = {0: "<pad>", 1: "<start>", 2: "<oov>"}

    def word(i: int) -> str:
        if i in special:
            return special[i]
        return by_rank.get(i - INDEX_FROM, f"#{i}") if i < vocab else "<oov>"

    return word


def _context(x_row: np.ndarray, position: int, words: Words | None) -> str | None:
    if words is None or x_row.ndim != 1:
        return None
    lo, hi = max(0, position - WINDOW), min(len(x_row), position + WINDOW + 1)
    shown = [words(int(i)) for i in x_row[lo:hi]]
    shown[position - lo] = f"[{shown[position - lo]}]"
    return ("… " if lo > 0 else "") + " ".join(shown) + (" …" if hi < len(x_row) else "")


def _worst(found: list[LayerFindings], sample: np.ndarray, flipped: set[int], out: np.ndarray,
           ref_out: np.ndarray, inputs: ExplainInputs, level: float) -> list[dict[str, Any]]:
    """The inputs with the largest output error (flipped ones first), where each diverged."""
    diff = np.nan_to_num(np.max(np.abs(out - ref_out), axis=1), nan=0.0)
    flip = np.array([int(i) in flipped for i in sample])
    order = np.lexsort((-diff, ~flip))[:WORST]
    full = next((f for f in found if len(f.steps) > 1), None)
    steps = inputs.x.shape[1]
    rows = []
    for j in order:
        index = int(sample[j])
        row: dict[str, Any] = {
            "test_index": index,
            "float": rounded_list(ref_out[j]),
            "stage": rounded_list(out[j]),
            "flipped": bool(flip[j]),
        }
        if full is not None:
            err = full.per_input[j]
            hit = np.flatnonzero(err >= level)
            # the first step's error is where it starts, not a jump: count from step 1
            jump = int(np.argmax(np.diff(err, prepend=err[:1])))
            row["layer"] = full.name
            row["diverges_at_step"] = int(full.steps[hit[0]]) if len(hit) else None
            row["largest_jump_step"] = int(full.steps[jump])
            row["final_rel_l2"] = float(f"{err[-1]:.4g}")
            position = full.position(int(full.steps[jump]), steps)
            row["position"] = position
            text = _context(inputs.x[index], position, inputs.words)
            if text is not None:
                row["tokens"] = text
        elif found:
            row["final_rel_l2"] = float(f"{found[0].per_input[j, -1]:.4g}")
        rows.append(row)
    return rows


def rounded_list(values: np.ndarray) -> list[float]:
    return [float(f"{v:.4g}") for v in np.asarray(values, np.float64).reshape(-1)]


def explain_stage(stage: str, inputs: ExplainInputs, flipped: np.ndarray | None,
                  n_eval: int, sample: int = DEFAULT_SAMPLE,
                  level: float = LEVEL) -> dict[str, Any]:
    """The section's entry for one stage (raises :class:`NotTraceable`).

    ``flipped``: the stage's flipped inputs among the first ``n_eval`` (None: unknown, the
    sample is then random only).
    """
    started = time.perf_counter()
    chosen = choose_sample(n_eval, flipped if flipped is not None else np.zeros(0, np.int64),
                           sample, inputs.seed)
    x = inputs.x[chosen]
    source = TraceSource(inputs.ir, inputs.folder, inputs.options(stage), inputs.seed)
    trace = trace_stage(stage, source, x)
    ref = reference.forward(inputs.ir, x, record_gates=True)
    found = compare_layers(inputs.ir, x, ref, trace)
    keras_out = inputs.float_outputs[chosen]
    out_diff = np.abs(trace.outputs - keras_out)
    flipped_set = set() if flipped is None else {int(i) for i in flipped}
    entry: dict[str, Any] = {
        "how": trace.how,
        "sample": int(len(chosen)),
        "flipped_in_sample": int(sum(int(i) in flipped_set for i in chosen)),
        "flipped_inputs": None if flipped is None else [int(i) for i in flipped],
        "output_abs_diff_mean": float(f"{np.nanmean(out_diff):.4g}"),  # NaN: all-masked input
        "output_abs_diff_max": float(f"{np.nanmax(out_diff):.4g}"),
        "layers": [layer_json(f, level) for f in found],
        "worst_inputs": _worst(found, chosen, flipped_set, trace.outputs, keras_out, inputs, level),
    }
    if trace.limits:
        entry["limits"] = trace.limits
    if trace.variants:
        entry["tensors"] = ablate(trace.variants, x, ref)
        entry["dominant_tensor"] = dominant_tensor(entry["tensors"])
    entry["seconds"] = round(time.perf_counter() - started, 3)
    return entry


def localise(stages: Sequence[tuple[str, np.ndarray | None, int]], inputs: ExplainInputs,
             sample: int = DEFAULT_SAMPLE, level: float = LEVEL) -> dict[str, Any]:
    """The whole section: ``stages`` is ``(name, flipped indices or None, n evaluated)``."""
    started = time.perf_counter()
    doc: dict[str, Any] = {"level": level, "sample": sample, "seed": inputs.seed,
                           "timesteps": int(inputs.x.shape[1]), "stages": {}}
    for name, flipped, n_eval in stages:
        try:
            doc["stages"][name] = explain_stage(name, inputs, flipped, n_eval, sample, level)
        except NotTraceable as exc:
            doc["stages"][name] = {"not_traced": str(exc)}
        except Exception as exc:  # a runtime failing to trace must not cost the whole run
            doc["stages"][name] = {"not_traced": f"tracing failed: {type(exc).__name__}: {exc}"}
    doc["seconds"] = round(time.perf_counter() - started, 3)
    return doc


def words_for(ir: ModelIR, word_index: object | None) -> Words | None:
    """Token id -> word for a text model with a word index file (JSON or ranked text)."""
    if ir.input.kind != "tokens" or word_index is None or not Path(str(word_index)).is_file():
        return None
    from ..data.text import load_ranked_words

    return token_words(load_ranked_words(Path(str(word_index))), int(ir.input.vocab or 0))


def localise_results(ctx: Any, results: Sequence[Any], baseline: Any,
                     sample: int = DEFAULT_SAMPLE) -> dict[str, Any] | None:
    """The pipeline hook: localise every quantized stage that ran and has a tracer.

    ``ctx`` is the run's :class:`~edge_gru.stages.base.BuildContext` (its ``out_dir`` holds
    the artifacts), ``results`` the :class:`~edge_gru.drift.harness.StageResult` rows,
    ``baseline`` the :class:`~edge_gru.drift.harness.Baseline`. None when nothing to trace.
    """
    from .traces import traced_stages

    known = set(traced_stages())
    chosen = [r for r in results if r.kind == "quantized" and not r.skipped
              and r.outputs is not None and r.name in known]
    if not chosen or sample <= 0:
        return None
    inputs = ExplainInputs(
        ir=ctx.ir, folder=ctx.out_dir, x=baseline.x, float_outputs=baseline.outputs,
        task=baseline.task, seed=ctx.seed,
        words=words_for(ctx.ir, getattr(ctx.data, "word_index", None)), options=ctx.options,
    )
    stages = [(r.name, flipped_inputs(baseline.task, r.outputs, baseline.outputs), r.n)
              for r in chosen]
    return localise(stages, inputs, sample)
