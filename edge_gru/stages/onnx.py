"""ONNX stages: the float GRU-node model and its int8-embedding variant, run by onnxruntime.

Both run through :mod:`edge_gru.runtime` -- the code the Raspberry Pi runs -- so the
drift figures in the report are those of the deployed path, on the full test set.
``onnx_float`` takes every IR model (:func:`edge_gru.onnx.export.export_model`);
``onnx_int8`` takes every IR model too: the seed shape keeps its int8 embedding
(:func:`edge_gru.onnx.quantize.quantize_int8`, same bytes as before the IR); other models
get the method :func:`edge_gru.onnx.quantize_family.choose_method` picks per shape (int8
embedding and int8-stored GRU/Dense weights for token models, int8-stored weights for
feature models; the GRU node itself always computes in float).
Recipe options: ``[stages.onnx_int8] method`` -- seed: ``"embedding" | "embedding_dynamic" |
"dynamic" | "static_qdq"``; other models: ``"auto" | "embedding_weights" | "weights" |
"embedding" | "dynamic"`` -- and ``calibration = 500`` (seeded training inputs).
"""

from __future__ import annotations

from pathlib import Path

from ..ir import ModelIR
from ..weights import seed_shape_problem
from .base import BuildContext, Stage, StageRunner, StageUnavailable

FLOAT_FILE = "model_float.onnx"
INT8_FILE = "model_int8.onnx"


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise StageUnavailable(f"onnx/onnxruntime not installed ({exc.name})") from exc


def float_model(ctx: BuildContext) -> Path:
    """``model_float.onnx`` in the output folder, built once per run."""
    from ..onnx.export import export_model

    return ctx.artifact("onnx_float", lambda: export_model(ctx.ir, ctx.out_dir / FLOAT_FILE))


def int8_supports(model: ModelIR) -> str | None:
    """Why ``onnx_int8`` cannot take ``model``: never (None), every IR model has a method."""
    del model
    return None


def int8_model(ctx: BuildContext) -> tuple[Path, str]:
    """``model_int8.onnx`` (and the method that made it), built once per run."""
    from ..onnx.quantize import DEFAULT_METHOD, quantize_int8
    from ..onnx.quantize_family import choose_method, quantize_family

    opts = ctx.options("onnx_int8")
    seed = seed_shape_problem(ctx.ir) is None
    method = str(opts.get("method", DEFAULT_METHOD if seed else "auto"))
    if not seed and method == "auto":
        method = choose_method(ctx.ir)

    def build() -> Path:
        count = int(opts.get("calibration", 500))
        if seed:
            calibration = ctx.calibration_ids(count)
            return quantize_int8(float_model(ctx), ctx.out_dir / INT8_FILE, method, calibration)
        calibration = ctx.calibration_inputs(count) if ctx.ir.input.kind == "tokens" else None
        path, _ = quantize_family(ctx.ir, float_model(ctx), ctx.out_dir / INT8_FILE, method,
                                  calibration)
        return path

    return ctx.artifact("onnx_int8", build), method


def _runner(path: Path, info: dict[str, object]) -> StageRunner:
    from ..runtime.backends import OnnxBackend

    backend = OnnxBackend(path, threads=1)
    ops = sorted(_op_types(path))
    return StageRunner(
        predict=backend.run,
        artifact=path,
        size_bytes=path.stat().st_size,
        batch_size=1000,
        info={**info, "ops": ops},
    )


def _op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(path).graph.node}


def _build_float(ctx: BuildContext) -> StageRunner:
    _require_onnx()
    from ..onnx.export import OPSET

    return _runner(float_model(ctx), {"opset": OPSET, "gru": "native ONNX GRU node(s)"})


def _build_int8(ctx: BuildContext) -> StageRunner:
    _require_onnx()
    path, method = int8_model(ctx)
    return _runner(path, {"method": method})


STAGES = [
    Stage(
        name="onnx_float",
        kind="float",
        runtime="onnxruntime",
        build=_build_float,
        description="float ONNX (native GRU nodes) in onnxruntime vs Keras",
    ),
    Stage(
        name="onnx_int8",
        kind="quantized",
        runtime="onnxruntime",
        build=_build_int8,
        description="ONNX int8 embedding/weights + float GRU node (onnxruntime) vs Keras",
        supports=int8_supports,
    ),
]
