"""What a stage is: a named way to build an artifact and run it, plus its gate kind.

The drift harness walks a registry of these; adding a runtime means adding one
``Stage`` to a module in ``edge_gru/stages/``, never editing the harness.
Every stage exposes the same interface, whatever runs underneath (Python, C, QEMU):
``predict(x) -> outputs (N, K)``, with ``x`` ``(N, T)`` int32 token ids or ``(N, T, F)``
float32 features, and the outputs what the Keras model returns (a ``(N,)`` result is
read as ``K = 1``). A stage reads the model from ``ctx.ir`` (:class:`~edge_gru.ir.ModelIR`);
one that cannot take a model says why in :attr:`Stage.supports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..ir import ModelIR
from ..recipe import Recipe
from ..weights import GruWeights, seed_view

StageKind = Literal["float", "quantized"]
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class BuildContext:
    """Everything a stage may build from; artifacts go into ``out_dir`` (a temp folder).

    ``shared`` memoises artifacts several stages use (e.g. one int8 ``.tflite`` run by
    LiteRT and by TFLM): call :meth:`artifact` with a key and a builder.
    """

    out_dir: Path
    recipe: Recipe
    ir: ModelIR
    keras_model: Any
    data: Any  # edge_gru.data.Dataset: x_train, y_train, x_test, y_test, class_names
    seed: int
    quiet: bool = False
    shared: dict[str, Any] = field(default_factory=dict)

    def artifact(self, key: str, build: Callable[[], Any]) -> Any:
        """Build once per run, whichever stage asks first."""
        if key not in self.shared:
            self.shared[key] = build()
        return self.shared[key]

    @property
    def weights(self) -> GruWeights:
        """The seed-shape view for backends that implement only that shape (see ``supports``)."""
        return seed_view(self.ir)

    def calibration_inputs(self, count: int = 500) -> np.ndarray:
        """Seeded representative inputs from the training set (never the test set)."""
        rng = np.random.default_rng(self.seed)
        n = min(count, len(self.data.x_train))
        return self.data.x_train[np.sort(rng.choice(len(self.data.x_train), n, replace=False))]

    calibration_ids = calibration_inputs  # the seed backends' name

    def options(self, stage: str) -> dict[str, Any]:
        return self.recipe.options_for(stage)


@dataclass
class StageRunner:
    """A built stage, ready to evaluate.

    ``extra_metrics(x, outputs)`` may add stage-specific numbers (e.g. an LSB histogram
    against another runtime, bit-exact mismatches); numeric ones can be gated in the
    recipe like the standard metrics. ``close`` releases emulators or subprocesses.
    """

    predict: Predict
    artifact: Path | None = None
    size_bytes: int | None = None
    batch_size: int = 1024
    extra_metrics: Callable[[np.ndarray, np.ndarray], dict[str, Any]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] | None = None


class StageUnavailable(Exception):
    """The stage cannot run on this machine (e.g. no binfmt for arm64); the message says why.

    In CI (``CI=true``) the harness turns this into a failure; elsewhere the stage is
    reported as skipped with the message.
    """


@dataclass(frozen=True)
class Stage:
    """A registry entry: ``build(ctx)`` makes the artifact and returns its runner."""

    name: str
    kind: StageKind
    runtime: str
    build: Callable[[BuildContext], StageRunner]
    description: str
    default_max_eval: int | None = None  # emulated targets may evaluate fewer reviews
    opt_in: bool = False  # run only when named in --stages or the recipe
    # Why this stage cannot take a model (one line), or None when it can. The harness
    # reports the stage as skipped with that line, in CI too: it is a known limit.
    supports: Callable[[ModelIR], str | None] | None = None
    # Checks the tools the stage needs before any training; raises StageUnavailable.
    preflight: Callable[[], None] | None = None
