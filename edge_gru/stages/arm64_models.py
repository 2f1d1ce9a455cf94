"""The models the arm64 stages ship: the very files the x86 stages of the same run use.

Each comes from the x86 stage module's own builder (memoised per run through
``ctx.artifact``), so ``onnx_int8_arm64`` tests byte for byte the ``model_int8.onnx``
that ``onnx_int8`` evaluated, with the same recipe options. A file whose x86 stage cannot
take the model (:func:`file_supports`, the x86 stage's own ``supports``) is left out of the
bundle, and its arm64 stage is skipped with the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..ir import ModelIR
from .base import BuildContext, StageUnavailable


def _float_onnx(ctx: BuildContext) -> Path:
    from .onnx import float_model

    return float_model(ctx)


def _int8_onnx(ctx: BuildContext) -> Path:
    from .onnx import int8_model  # the memoised builder onnx_int8 uses

    return int8_model(ctx)[0]


def _int8_tflite(ctx: BuildContext) -> Path:
    from .tflite import int8_model  # the memoised builder tflite_int8_litert uses

    return int8_model(ctx).path


BUILDERS: dict[str, Callable[[BuildContext], Path]] = {
    "model_float.onnx": _float_onnx,
    "model_int8.onnx": _int8_onnx,
    "model_int8.tflite": _int8_tflite,
}


# The x86 stage whose model file each arm64 stage ships (and whose limits it shares).
X86_STAGES: dict[str, str] = {
    "model_float.onnx": "onnx_float",
    "model_int8.onnx": "onnx_int8",
    "model_int8.tflite": "tflite_int8_litert",
}


def file_supports(name: str, model: ModelIR) -> str | None:
    """Why the model file ``name`` cannot be built for ``model`` (one line), or None."""
    from . import all_stages  # the registry imports this module: look it up when asked

    stage = next((s for s in all_stages() if s.name == X86_STAGES.get(name)), None)
    if stage is None:
        return f"no x86 stage builds {name}"
    return stage.supports(model) if stage.supports is not None else None


def build_model_file(ctx: BuildContext, name: str) -> Path:
    """The model file ``name`` in the run's output folder, built if no stage made it yet."""
    builder = BUILDERS.get(name)
    if builder is None:
        raise StageUnavailable(f"no builder for {name} in the arm64 bundle")
    try:
        return ctx.artifact(f"arm64_model:{name}", lambda: builder(ctx))
    except ImportError as exc:
        raise StageUnavailable(f"cannot build {name}: {exc}") from exc
