"""TFLite stages: float unrolled graph (LiteRT), int8 unrolled (LiteRT and TFLM), int8 step (TFLM).

``tflite_float`` takes every model of the GRU family: the seed shape
(``Embedding -> GRU -> Dense(1, sigmoid)``) through the seed unroll
(:func:`edge_gru.tflite.export.float_tflite`, unchanged bytes), any other shape through the
family graph (:func:`edge_gru.tflite.family.family_float_tflite`). The int8 stages implement
the seed shape only and say so through ``supports``.

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
from ..ir import ModelIR
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
    """Why the int8 TFLite stages cannot take ``model`` (one line), or None for the seed shape."""
    problem = seed_shape_problem(model)
    return None if problem is None else f"int8 TFLite {problem}"


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


def int8_model(ctx: BuildContext) -> TfliteArtifact:
    """``model_int8.tflite`` and its TFLM sources, built once per run for every stage using it."""
    from ..tflite.export import UNROLLED_CALIBRATION, int8_tflite

    def build() -> TfliteArtifact:
        data = int8_tflite(ctx.weights, ctx.calibration_ids(UNROLLED_CALIBRATION))
        path = ctx.out_dir / "model_int8.tflite"
        path.write_bytes(data)
        arena = write_tflm_sources(data, ctx.out_dir / "tflm" / "model_int8", path.name,
                                   prefix="model_int8", task=ctx.ir.task)
        return TfliteArtifact(path, data, arena)

    return ctx.artifact("tflite_int8", build)


def _step_model(ctx: BuildContext) -> TfliteArtifact:
    from ..tflite.export import step_int8_tflite

    def build() -> TfliteArtifact:
        data = step_int8_tflite(ctx.weights, ctx.calibration_ids(500), ctx.seed)
        path = ctx.out_dir / "model_step_int8.tflite"
        path.write_bytes(data)
        state = StateTensor(input=io_index(data, "input", "state"),
                            output=io_index(data, "output", "new_state"),
                            what=f"GRU hidden state ({ctx.weights.units} units)")
        arena = write_tflm_sources(data, ctx.out_dir / "tflm" / "model_step_int8", path.name,
                                   prefix="model_step_int8", task=ctx.ir.task, states=(state,))
        return TfliteArtifact(path, data, arena)

    return ctx.artifact("tflite_step_int8", build)


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


def _build_litert(ctx: BuildContext) -> StageRunner:
    from ..runners.litert import LiteRTModel

    art = int8_model(ctx)
    mode = ctx.options("tflite_int8_litert").get("mode", "xnnpack")
    model = LiteRTModel(art.data, mode)

    def predict(ids: np.ndarray) -> np.ndarray:
        raw = model.raw_outputs(np.asarray(ids, np.int32))
        ctx.shared.setdefault("litert_int8_raw", []).append(raw)
        return model.predict_raw(raw)

    def extra(ids: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        return {"size_breakdown": size_breakdown(art.data),
                "parameters": ctx.weights.parameter_count,
                "size_per_parameter": len(art.data) / ctx.weights.parameter_count}

    ctx.shared.pop("litert_int8_raw", None)
    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=500, extra_metrics=extra, info={"litert_mode": mode})


def _build_tflm(ctx: BuildContext) -> StageRunner:
    from ..runners.litert import LiteRTModel
    from ..runners.tflm import TflmModel

    art = int8_model(ctx)
    assert art.arena is not None
    model = TflmModel(art.data, art.arena.size)
    raws: list[np.ndarray] = []

    def predict(ids: np.ndarray) -> np.ndarray:
        raw = model.raw_outputs(np.asarray(ids, np.int32))
        raws.append(raw)
        return model.predict_raw(raw)

    def extra(ids: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        tflm = np.concatenate(raws)
        cached = ctx.shared.get("litert_int8_raw")
        litert = np.concatenate(cached) if cached else np.array([])
        if len(litert) != len(tflm):
            litert = LiteRTModel(art.data).raw_outputs(np.asarray(ids, np.int32))
        again = TflmModel(art.data, art.arena.size).raw_outputs(ids[:RERUN_CHECK])
        diff = np.abs(litert.astype(np.int64) - tflm.astype(np.int64))
        return {
            "lsb_histogram_vs_litert": lsb_histogram(litert, tflm),
            "max_lsb_vs_litert": int(diff.max()),
            "within_8_lsb_vs_litert": float(np.mean(diff <= 8)),
            "decision_agreement_vs_litert": float(np.mean((litert > 0) == (tflm > 0))),
            "rerun_mismatches": int(np.sum(again != tflm[: len(again)])),
            "arena_bytes": art.arena.size,
            "arena_measured_min_bytes": art.arena.minimum,
            "arena_used_bytes_reported": art.arena.recorded,
        }

    return StageRunner(predict=predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=250, extra_metrics=extra,
                       info={"tflm_sources": "tflm/model_int8", "arena_bytes": art.arena.size})


def _build_step(ctx: BuildContext) -> StageRunner:
    from ..runners.tflm import TflmStepModel

    art = _step_model(ctx)
    assert art.arena is not None
    model = TflmStepModel(art.data, art.arena.size)

    def extra(ids: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        return {"arena_bytes": art.arena.size, "arena_measured_min_bytes": art.arena.minimum,
                "arena_used_bytes_reported": art.arena.recorded,
                "size_breakdown": size_breakdown(art.data),
                "invokes_per_review": int(ids.shape[1])}

    return StageRunner(predict=model.predict, artifact=art.path, size_bytes=len(art.data),
                       batch_size=250, extra_metrics=extra,
                       info={"tflm_sources": "tflm/model_step_int8", "arena_bytes": art.arena.size})


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
        supports=int8_supports,
        description="streaming one-step int8 model in TFLite Micro, invoked once per token",
    ),
]
