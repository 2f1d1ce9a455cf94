"""The NumPy float reference as a stage: proves the IR and its equations match Keras."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import reference
from ..ir import ModelIR
from ..weights import seed_shape_problem
from .base import BuildContext, Stage, StageRunner

ARTIFACT = "model_ir.npz"
SEED_ARTIFACT = "gru_weights.npz"  # the seed shape's file, read by edge_gru.fixed_point.board


def save_ir(model: ModelIR, path: Path) -> None:
    """Every weight of the IR in one ``.npz`` (``LAYER/ARRAY`` keys) plus its description."""
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        inner = [layer.forward, layer.backward] if hasattr(layer, "forward") else [layer]
        for item in inner:
            for key, value in vars(item).items():
                if isinstance(value, np.ndarray):
                    arrays[f"{item.name}/{key}"] = value
    arrays["description"] = np.asarray(
        json.dumps(
            {
                "model": model.describe(),
                "task": model.task.kind,
                "input": model.input.kind,
                "timesteps": model.input.timesteps,
            },
            sort_keys=True,
        )
    )
    np.savez(path, **arrays)


def _build(ctx: BuildContext) -> StageRunner:
    if seed_shape_problem(ctx.ir) is None:
        path = ctx.out_dir / SEED_ARTIFACT
        ctx.weights.save(path)
    else:
        path = ctx.out_dir / ARTIFACT
        save_ir(ctx.ir, path)
    return StageRunner(
        predict=lambda x: reference.predict(ctx.ir, x),
        artifact=path,
        size_bytes=path.stat().st_size,
        batch_size=2048,
    )


STAGES = [
    Stage(
        name="reference",
        kind="float",
        runtime="numpy",
        build=_build,
        description="NumPy float64 reference of the model description (edge_gru.reference)",
    )
]
