"""ONNX stages: the float GRU-node model and its int8-embedding variant, run by onnxruntime.

Both run through :mod:`edge_gru.runtime` -- the code the Raspberry Pi runs -- so the
drift figures in the report are those of the deployed path, on the full test set.
``onnx_float`` takes every IR model (:func:`edge_gru.onnx.export.export_model`);
``onnx_int8`` quantizes the seed shape's embedding only, and says so for other models.
Recipe options: ``[stages.onnx_int8] method = "embedding" | "dynamic" | "static_qdq"``,
``calibration = 500`` (training reviews for ``static_qdq``).
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
    """Why ``onnx_int8`` cannot take ``model`` (one line), or None for the seed shape."""
    problem = seed_shape_problem(model)
    return None if problem is None else f"int8 ONNX {problem}"


def int8_model(ctx: BuildContext) -> tuple[Path, str]:
    """``model_int8.onnx`` (and the method that made it), built once per run."""
    from ..onnx.quantize import DEFAULT_METHOD, quantize_int8

    opts = ctx.options("onnx_int8")
    method = str(opts.get("method", DEFAULT_METHOD))

    def build() -> Path:
        calibration = ctx.calibration_ids(int(opts.get("calibration", 500)))
        return quantize_int8(float_model(ctx), ctx.out_dir / INT8_FILE, method, calibration)

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
        description="ONNX int8 embedding + float GRU node (onnxruntime.quantization) vs Keras",
        supports=int8_supports,
    ),
]
