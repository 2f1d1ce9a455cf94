"""The drift harness: run every selected stage on the test set and gate it against float Keras.

For each stage: the task's drift metrics (:mod:`.metrics`: accuracy, agreement of the
decision with Keras, output diffs, or the error change for regression), n, and whatever
the stage adds; then the recipe's gates for the stage's kind, judged by the noise-aware
rule of :mod:`.gates`. A breach is data (``passed=False`` + a one-line reason), so the
CLI can write the report and still exit 1. A stage whose ``supports`` refuses the model
is skipped with its reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cli_common import progress_enabled
from ..ir import Task
from ..recipe import Recipe
from ..stages.base import BuildContext, Stage, StageRunner, StageUnavailable
from . import gates as gate_rules
from . import metrics


@dataclass
class StageResult:
    """One row of the report; ``to_json`` gives the contract fields of ``report.json``."""

    name: str
    kind: str
    runtime: str
    description: str
    n: int = 0
    accuracy: float | None = None
    agreement: float | None = None
    mean_abs_diff: float | None = None
    max_abs_diff: float | None = None
    accuracy_drop_pp: float | None = None
    size_bytes: int | None = None
    artifact: str | None = None
    passed: bool = False
    skipped: str | None = None
    breaches: list[str] = field(default_factory=list)
    gates: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    outputs: np.ndarray | None = None  # (n, K), for the report's plots

    @property
    def probabilities(self) -> np.ndarray | None:
        """The first output column ``(n,)``: the positive-class probability of a binary model."""
        return None if self.outputs is None else self.outputs[:, 0]

    def metric(self, name: str) -> Any:
        if name in self.extra:
            return self.extra[name]
        return getattr(self, name, None)

    def to_json(self) -> dict[str, Any]:
        row = {
            "name": self.name,
            "kind": self.kind,
            "runtime": self.runtime,
            "accuracy": self.accuracy,
            "agreement": self.agreement,
            "mean_abs_diff": self.mean_abs_diff,
            "max_abs_diff": self.max_abs_diff,
            "accuracy_drop_pp": self.accuracy_drop_pp,
            "n": self.n,
            "size_bytes": self.size_bytes,
            "artifact": self.artifact,
            "passed": self.passed,
            "gates": self.gates,
            "breaches": self.breaches,
            "seconds": round(self.seconds, 3),
        }
        if self.skipped:
            row["skipped"] = self.skipped
        row.update({k: v for k, v in self.extra.items() if k not in row})
        if self.info:
            row["info"] = self.info
        return row


@dataclass(frozen=True)
class Baseline:
    """Float Keras on the evaluated test inputs: what every stage is compared with.

    ``x`` ``(N, T)`` ids or ``(N, T, F)`` features, ``labels`` the test targets,
    ``outputs (N, K)`` Keras' predictions, ``task`` what they mean.
    """

    x: np.ndarray
    labels: np.ndarray
    outputs: np.ndarray
    task: Task

    @property
    def ids(self) -> np.ndarray:  # the seed's name for x
        return self.x

    @property
    def probabilities(self) -> np.ndarray:
        """Binary tasks: the ``(N,)`` probability of the positive class."""
        return metrics.probabilities(self.task, self.outputs)[:, 0]

    @property
    def accuracy(self) -> float | None:
        if not self.task.is_classification:
            return None
        return metrics.classification_accuracy(self.task, self.outputs, self.labels)

    def errors(self) -> tuple[float, float] | None:
        """``(MAE, RMSE)`` of float Keras for regression, else None."""
        if self.task.is_classification:
            return None
        return metrics.regression_errors(self.outputs, self.labels)


def compare(result: StageResult, outputs: np.ndarray, baseline: Baseline) -> None:
    """Fill ``result``'s drift metrics from a stage's ``(n, K)`` outputs."""
    n = len(outputs)
    found = metrics.compare_outputs(
        baseline.task, outputs, baseline.outputs[:n], baseline.labels[:n]
    )
    result.n = found.pop("n")
    for key in ("accuracy", "agreement", "mean_abs_diff", "max_abs_diff", "accuracy_drop_pp"):
        setattr(result, key, found.pop(key, None))
    found.pop("float_accuracy", None)
    result.extra.update(found)


def apply_gates(result: StageResult, gates: dict[str, float]) -> None:
    """Check each ``metric = bound`` with the noise-aware rule of :mod:`.gates`."""
    result.gates = dict(gates)
    row = {
        **result.extra,
        **{
            k: getattr(result, k)
            for k in (
                "n",
                "accuracy",
                "agreement",
                "mean_abs_diff",
                "max_abs_diff",
                "accuracy_drop_pp",
                "size_bytes",
            )
        },
    }
    result.breaches.extend(gate_rules.check(result.name, row, gates))
    result.passed = not result.breaches


def _progress(total: int, desc: str, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="example", disable=not progress_enabled(quiet), leave=False
    )


def _run(runner: StageRunner, x: np.ndarray, k: int, desc: str, quiet: bool) -> np.ndarray:
    """The stage's outputs ``(N, K)`` in batches of ``runner.batch_size``."""
    out = np.empty((len(x), k), np.float64)
    step = max(1, runner.batch_size)
    with _progress(len(x), desc, quiet) as bar:
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            got = np.asarray(runner.predict(chunk), np.float64).reshape(len(chunk), -1)
            if got.shape != (len(chunk), k):
                expected = (len(chunk), k)
                raise RuntimeError(f"{desc}: predict returned {got.shape}, expected {expected}")
            out[start : start + len(chunk)] = got
            bar.update(len(chunk))
    return out


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def evaluate_stage(
    stage: Stage, ctx: BuildContext, baseline: Baseline, recipe: Recipe, max_eval: int | None
) -> StageResult:
    """Build, run and gate one stage. ``max_eval`` from the CLI wins over stage defaults."""
    result = StageResult(stage.name, stage.kind, stage.runtime, stage.description)
    started = time.perf_counter()
    reason = stage.supports(ctx.ir) if stage.supports is not None else None
    if reason is not None:
        result.skipped = f"not for this model: {reason}"
        result.passed = True
        return result
    try:
        runner = stage.build(ctx)
    except StageUnavailable as exc:
        result.skipped = str(exc)
        if in_ci():
            result.breaches.append(f"{stage.name}: unavailable in CI: {exc}")
        result.passed = not result.breaches
        return result
    try:
        limit = (
            max_eval
            or recipe.options_for(stage.name).get("max_eval")
            or stage.default_max_eval
            or len(baseline.ids)
        )
        x = baseline.x[: min(limit, len(baseline.x))]
        outputs = _run(runner, x, baseline.outputs.shape[1], stage.name, ctx.quiet)
        compare(result, outputs, baseline)
        result.outputs = outputs
        if runner.extra_metrics is not None:
            extra_in = outputs[:, 0] if outputs.shape[1] == 1 else outputs
            result.extra.update(runner.extra_metrics(x, extra_in))
    finally:
        if runner.close is not None:
            runner.close()
    result.artifact = runner.artifact.name if runner.artifact is not None else None
    result.size_bytes = runner.size_bytes
    result.info = dict(runner.info)
    result.seconds = time.perf_counter() - started
    apply_gates(result, recipe.gates_for(stage.name, stage.kind, baseline.task.kind))
    return result
