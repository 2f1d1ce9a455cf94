"""TFLite stages: float unrolled graph (LiteRT), int8 unrolled (LiteRT and TFLM), int8 step (TFLM).

``tflite_float`` takes every model of the GRU family: the seed shape
(``Embedding -> GRU -> Dense(1, sigmoid)``) through the seed unroll
(:func:`edge_gru.tflite.export.float_tflite`, unchanged bytes), any other shape through the
family graph (:func:`edge_gru.tflite.family.family_float_tflite`). ``model_int8.tflite`` is
the seed's int8 unroll for the seed shape (unchanged bytes) and the family's
(:func:`edge_gru.tflite.family_int8.family_int8_tflite`) for every other model; the opt-in
``tflite_int16x8_tflm`` builds ``model_int16x8.tflite`` (int16 activations, int8 weights)
for models whose int8 state loses too much over long sequences, and the opt-in
``tflite_step_int16x8_tflm`` its streaming twin ``model_step_int16x8.tflite``. The step model
(``model_step_int8.tflite``) is the seed's step export for the seed shape and
:mod:`edge_gru.tflite.family_step`'s for every other model that can stream; the others
say why not through ``supports``.

Artifacts (in the output folder): ``model_float.tflite``, ``model_int8.tflite``,
``model_step_int8.tflite`` and, for both int8 models, the TFLM sources in
``tflm/model_int8/`` and ``tflm/model_step_int8/`` (``model_data.cc/.h``, ``op_resolver.h``).
Each model is built once per run through ``ctx.artifact`` and shared by the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..codegen.tflm import Arena, write_tflm_sources
from ..codegen.tflm_header import StateTensor, io_index
from ..drift.metrics import decisions
from ..ir import ModelIR
from ..runners.common import dequantize
from ..tflite.size import size_breakdown
from ..weights import seed_shape_problem
from .base import BuildContext, Stage, StageRunner

RERUN_CHECK = 200  # reviews run twice through TFLM to prove run-to-run bit-exactness


@dataclass(frozen=True)
class TfliteArtifact:
    path: Path
    data: bytes
    arena: Arena | None = None


def int8_supports(model: ModelIR) -> str | None:
    """Every model of the family has an int8 unrolled model."""
    return None


def step_supports(model: ModelIR) -> str | None:
    """Why ``model`` has no streaming step model (one line), or None."""
    from ..tflite.family_step import step_problem

    return step_problem(model)


def int16x8_supports(model: ModelIR) -> str | None:
    """16x8 needs ops the converter quantizes to int16: no Masking, no masked mean."""
    from ..tflite.family_int8 import int16x8_problem

    return int16x8_problem(model)


def _float_model(ctx: BuildContext) -> TfliteArtifact:
    from ..tflite.export import float_tflite
    from ..tflite.family import family_float_tflite

    def build() -> TfliteArtifact:
        if seed_shape_problem(ctx.ir) is None:
            data = float_tflite(ctx.weights)  # the seed's model_float.tflite, byte for byte
        else:
            data = family_float_tflite(ctx.ir)
        path = ctx.out_dir / "model_float.tflite"
        path.write_bytes(data)
        return TfliteArtifact(path, data)

    return ctx.artifact("tflite_float", build)


def _store(ctx: BuildContext, stem: str, data: bytes,
           states: tuple[StateTensor, ...] = ()) -> TfliteArtifact:
    """Write ``<out>/<stem>.tflite`` and its TFLM sources in ``<out>/tflm/<stem>/`` (symbol
    prefix ``stem``); the arena is measured there."""
    path = ctx.out_dir / f"{stem}.tflite"
    path.write_bytes(data)
    arena = write_tflm_sources(data, ctx.out_dir / "tflm" / stem, path.name, prefix=stem,
                               task=ctx.ir.task, states=states)
    return TfliteArtifact(path, data, arena)


def int8_model(ctx: BuildContext) -> TfliteArtifact:
    """``model_int8.tflite`` and its TFLM sources, built once per run for every stage using it."""
    from ..tflite.export import UNROLLED_CALIBRATION, int8_tflite
    from ..tflite.family_int8 import CALIBRATION, family_int8_tflite

    def build() -> TfliteArtifact:
        if seed_shape_problem(ctx.ir) is None:
            data = int8_tflite(ctx.weights, ctx.calibration_ids(UNROLLED_CALIBRATION))
        else:
            data = family_int8_tflite(ctx.ir, ctx.calibration_inputs(CALIBRATION), "int8")
        return _store(ctx, "model_int8", data)

    return ctx.artifact("tflite_int8", build)


def int16x8_model(ctx: BuildContext) -> TfliteArtifact:
    """``model_int16x8.tflite`` (int16 activations, int8 weights) and its TFLM sources."""
    from ..tflite.family_int8 import CALIBRATION, family_int8_tflite

    def build() -> TfliteArtifact:
        data = family_int8_tflite(ctx.ir, ctx.calibration_inputs(CALIBRATION), "int16x8")
        return _store(ctx, "model_int16x8", data)

    return ctx.artifact("tflite_int16x8", build)


def _step_model(ctx: BuildContext) -> TfliteArtifact:
    """``model_step_int8.tflite``: the seed's step model, or the family's for a streamable model."""
    from ..tflite.export import step_int8_tflite
    from ..tflite.family_step import family_step_tflite, output_names

    def build() -> TfliteArtifact:
        if seed_shape_problem(ctx.ir) is None:
            data = step_int8_tflite(ctx.weights, ctx.calibration_ids(500), ctx.seed)
            states: tuple[StateTensor, ...] = (StateTensor(
                input=io_index(data, "input", "state"),
                output=io_index(data, "output", "new_state"),
                what=f"GRU hidden state ({ctx.weights.units} units)"),)
        else:
            data = family_step_tflite(ctx.ir, ctx.calibration_inputs(500), ctx.seed)
            states = _family_states(ctx.ir, output_names(ctx.ir))
        return _store(ctx, "model_step_int8", data, states)

    return ctx.artifact("tflite_step_int8", build)


def _step_int16x8_model(ctx: BuildContext) -> TfliteArtifact:
    """``model_step_int16x8.tflite``: the family step model with int16 activations and states."""
    from ..tflite.family_step import family_step_tflite, output_names

    def build() -> TfliteArtifact:
        data = family_step_tflite(ctx.ir, ctx.calibration_inputs(500), ctx.seed, "int16x8")
        return _store(ctx, "model_step_int16x8", data,
                      _family_states(ctx.ir, output_names(ctx.ir)))

    return ctx.artifact("tflite_step_int16x8", build)


def _family_states(model: ModelIR, outputs: list[str]) -> tuple[StateTensor, ...]:
    """Input ``k + 1`` is GRU layer ``k``'s state (then the running max), fed from its output."""
    from ..ir import GRU
    from ..tflite.family_step import MAX_START

    grus = [x for x in model.layers if isinstance(x, GRU)]
    states = [StateTensor(input=k + 1, output=outputs.index(f"new_state_{k}"),
                          what=f"GRU layer {k} ('{g.name}') hidden state ({g.units} units)")
              for k, g in enumerate(grus)]
    if "new_max_state" in outputs:
        states.append(StateTensor(input=len(grus) + 1, output=outputs.index("new_max_state"),
                                  what="running max over time (GlobalMaxPooling1D)",
                                  initial=MAX_START))
    return tuple(states)


def lsb_histogram(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    """``{"|a-b|": count}`` of two int8 output vectors, as JSON-friendly string keys."""
    diff = np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64))
    values, counts = np.unique(diff, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts)}


def _build_float(ctx: BuildContext) -> StageRunner:
    from ..runners.litert import LiteRTModel

    art = _float_model(ctx)
    model = LiteRTModel(art.data, ctx.options("tflite_float").get("mode", "xnnpack"))
    return StageRunner(predict=model.predict_outputs, artifact=art.path,
                       size_bytes=len(art.data), batch_size=500)


def _size_metrics(ctx: BuildContext, data: bytes) -> dict[str, Any]:
    params = ctx.ir.parameter_count
    return {"size_breakdown": size_breakdown(data), "parameters": params,
            "size_per_parameter": len(data) / params}


def _step_bytes(ctx: BuildContext, data: bytes) -> dict[str, Any]:
    """A family model's bytes per time step and the size bound they enter:
    ``1.10 x parameters + 16 KiB + T x bytes_per_step`` (the seed's export reports none)."""
    from ..tflite.family_int8 import CALIBRATION, bytes_per_step

    if seed_shape_problem(ctx.ir) is None:
        return {}
    per_step = bytes_per_step(ctx.ir, ctx.calibration_inputs(CALIBRATION), data)
    bound = int(1.10 * ctx.ir.parameter_count + 16 * 1024
                + ctx.ir.input.timesteps * per_step)
    return {"bytes_per_step": per_step, "size_bound_bytes": bound,
            "within_size_bound": len(data) <= bound}


def _build_litert(ctx: BuildContext) -> StageRunner:
    from ..runners.litert import LiteRTModel

    art = int8_model(ctx)
    mode = ctx.options("tflite_int8_litert").get("mode", "xnnpack")
    model = LiteRTModel(art.data, mode)

    def predict(x: np.ndarray) -> np.ndarray:
        raw = model.raw_output_rows(_inputs(ctx, x))
        ctx.shared.setdefault("litert_int8_raw", []).append(raw)
        return dequantize(raw, model.outputs[0])

    def extra(x: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        return {**_size_metrics(ctx, art.data), **_step_bytes(ctx, art.data)}

    ctx.shared.pop("litert_int8_raw", None)
    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=500, extra_metrics=extra, info={"litert_mode": mode})


def _inputs(ctx: BuildContext, x: np.ndarray) -> np.ndarray:
    from ..tflite.family import as_model_input

    return as_model_input(ctx.ir, x)


def _tflm_runner(ctx: BuildContext, art: TfliteArtifact, litert_key: str | None) -> StageRunner:
    """TFLM on an unrolled model, cross-checked against LiteRT bit for bit and against a rerun."""
    from ..runners.litert import LiteRTModel
    from ..runners.tflm import TflmModel

    assert art.arena is not None
    arena = art.arena
    model = TflmModel(art.data, arena.size)
    raws: list[np.ndarray] = []

    def predict(x: np.ndarray) -> np.ndarray:
        raw = model.raw_output_rows(_inputs(ctx, x))
        raws.append(raw)
        return dequantize(raw, model.outputs[0])

    def extra(x: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        x = _inputs(ctx, x)
        tflm = np.concatenate(raws)
        cached = ctx.shared.get(litert_key) if litert_key else None
        litert = np.concatenate(cached) if cached else np.array([])
        if len(litert) != len(tflm):
            litert = LiteRTModel(art.data).raw_output_rows(x)
        again = TflmModel(art.data, arena.size).raw_output_rows(x[:RERUN_CHECK])
        diff = np.abs(litert.astype(np.int64) - tflm.astype(np.int64))
        agreement: dict[str, float] = {}
        if ctx.ir.task.kind != "regression":  # a regression model takes no decisions
            same = decisions(ctx.ir.task, dequantize(litert, model.outputs[0])) == decisions(
                ctx.ir.task, dequantize(tflm, model.outputs[0]))
            agreement["decision_agreement_vs_litert"] = float(np.mean(same)) if same.size else 1.0
        return {
            "lsb_histogram_vs_litert": lsb_histogram(litert, tflm),
            "max_lsb_vs_litert": int(diff.max()) if diff.size else 0,
            "within_8_lsb_vs_litert": float(np.mean(diff <= 8)) if diff.size else 1.0,
            **agreement,
            "rerun_mismatches": int(np.sum(np.any(again != tflm[: len(again)], axis=-1))),
            "arena_bytes": arena.size,
            "arena_measured_min_bytes": arena.minimum,
            "arena_used_bytes_reported": arena.recorded,
            **_size_metrics(ctx, art.data),
        }

    folder = art.path.stem
    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=250, extra_metrics=extra,
                       info={"tflm_sources": f"tflm/{folder}", "arena_bytes": arena.size})


def _build_tflm(ctx: BuildContext) -> StageRunner:
    return _tflm_runner(ctx, int8_model(ctx), "litert_int8_raw")


def _build_int16x8(ctx: BuildContext) -> StageRunner:
    return _tflm_runner(ctx, int16x8_model(ctx), None)


def step_int16x8_supports(model: ModelIR) -> str | None:
    """A 16x8 step model needs a model that streams and that 16x8 takes."""
    return step_supports(model) or int16x8_supports(model)


def _build_step_int16x8(ctx: BuildContext) -> StageRunner:
    from ..runners.tflm import TflmFamilyStepModel
    from ..tflite.family_step import output_names

    art = _step_int16x8_model(ctx)
    assert art.arena is not None
    arena = art.arena
    model = TflmFamilyStepModel(art.data, output_names(ctx.ir), arena.size)

    def predict(x: np.ndarray) -> np.ndarray:
        return model.predict_outputs(_inputs(ctx, x))

    def extra(x: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        return {"arena_bytes": arena.size, "arena_measured_min_bytes": arena.minimum,
                "arena_used_bytes_reported": arena.recorded, **_size_metrics(ctx, art.data),
                "invokes_per_review": int(x.shape[1])}

    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=250, extra_metrics=extra,
                       info={"tflm_sources": "tflm/model_step_int16x8", "arena_bytes": arena.size})


def _build_step(ctx: BuildContext) -> StageRunner:
    from ..runners.tflm import TflmFamilyStepModel, TflmStepModel
    from ..tflite.family_step import output_names

    art = _step_model(ctx)
    assert art.arena is not None
    arena = art.arena
    if seed_shape_problem(ctx.ir) is None:
        predict = TflmStepModel(art.data, arena.size).predict
    else:
        family = TflmFamilyStepModel(art.data, output_names(ctx.ir), arena.size)

        def predict(x: np.ndarray) -> np.ndarray:
            return family.predict_outputs(_inputs(ctx, x))

    def extra(x: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        return {"arena_bytes": arena.size, "arena_measured_min_bytes": arena.minimum,
                "arena_used_bytes_reported": arena.recorded,
                "size_breakdown": size_breakdown(art.data),
                "invokes_per_review": int(x.shape[1])}

    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=250, extra_metrics=extra,
                       info={"tflm_sources": "tflm/model_step_int8", "arena_bytes": arena.size})


STAGES = [
    Stage(
        name="tflite_float",
        kind="float",
        runtime="litert",
        build=_build_float,
        description="explicitly unrolled GRU family graph, float32 .tflite in LiteRT "
        "(model_float.tflite)",
    ),
    Stage(
        name="tflite_int8_litert",
        kind="quantized",
        runtime="litert",
        build=_build_litert,
        supports=int8_supports,
        description="unrolled GRU, full-int8 .tflite in LiteRT (model_int8.tflite)",
    ),
    Stage(
        name="tflite_int8_tflm",
        kind="quantized",
        runtime="tflite-micro",
        build=_build_tflm,
        supports=int8_supports,
        description="the same model_int8.tflite in TFLite Micro (host interpreter, real kernels)",
    ),
    Stage(
        name="tflite_step_int8_tflm",
        kind="quantized",
        runtime="tflite-micro",
        build=_build_step,
        supports=step_supports,
        description="streaming one-step int8 model in TFLite Micro, invoked once per token",
    ),
    Stage(
        name="tflite_int16x8_tflm",
        kind="quantized",
        runtime="tflite-micro",
        build=_build_int16x8,
        supports=int16x8_supports,
        opt_in=True,
        description="unrolled model with int16 activations and int8 weights (16x8) in TFLite "
        "Micro (model_int16x8.tflite), cross-checked against LiteRT",
    ),
    Stage(
        name="tflite_step_int16x8_tflm",
        kind="quantized",
        runtime="tflite-micro",
        build=_build_step_int16x8,
        supports=step_int16x8_supports,
        opt_in=True,
        description="streaming step model with int16 activations and states (16x8) in TFLite "
        "Micro (model_step_int16x8.tflite)",
    ),
]
