"""The NumPy float reference as a stage: proves the equations match Keras on the test set."""

from __future__ import annotations

from .. import reference
from .base import BuildContext, Stage, StageRunner


def _build(ctx: BuildContext) -> StageRunner:
    path = ctx.out_dir / "gru_weights.npz"
    ctx.weights.save(path)
    return StageRunner(
        predict=lambda ids: reference.predict(ctx.weights, ids),
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
        description="NumPy float64 GRU equations (edge_gru.reference) vs Keras",
    )
]
