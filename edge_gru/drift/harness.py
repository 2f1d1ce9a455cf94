"""The drift harness: run every selected stage on the test set and gate it against float Keras.

For each stage: accuracy, agreement of the 0.5-threshold decision with Keras, mean and
max absolute probability difference, n, and whatever the stage adds; then the recipe's
gates for the stage's kind. A breach is data (``passed=False`` + a one-line reason),
so the CLI can write the report and still exit 1.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..recipe import HIGHER_IS_BETTER, Recipe
from ..stages.base import BuildContext, Stage, StageRunner, StageUnavailable


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
    probabilities: np.ndarray | None = None

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
    """Float Keras on the evaluated test reviews: what every stage is compared with."""

    ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def accuracy(self) -> float:
        return accuracy(self.probabilities, self.labels)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probabilities > 0.5) == (labels > 0.5)))


def compare(result: StageResult, probs: np.ndarray, baseline: Baseline) -> None:
    """Fill the standard drift metrics of ``result`` from a stage's probabilities."""
    n = len(probs)
    base = baseline.probabilities[:n]
    diff = np.abs(probs.astype(np.float64) - base)
    result.n = n
    result.accuracy = accuracy(probs, baseline.labels[:n])
    result.agreement = float(np.mean((probs > 0.5) == (base > 0.5)))
    result.mean_abs_diff = float(diff.mean())
    result.max_abs_diff = float(diff.max())
    result.accuracy_drop_pp = 100.0 * (accuracy(base, baseline.labels[:n]) - result.accuracy)


def apply_gates(result: StageResult, gates: dict[str, float]) -> None:
    """Check each ``metric = bound``; a metric the stage did not produce is a breach too."""
    result.gates = dict(gates)
    for metric, bound in gates.items():
        value = result.metric(metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            result.breaches.append(f"{result.name}: gate on {metric} but the stage has no value")
            continue
        if metric in HIGHER_IS_BETTER:
            if value < bound:
                result.breaches.append(f"{result.name}: {metric} {value:.6g} < {bound:.6g}")
        elif value > bound:
            result.breaches.append(f"{result.name}: {metric} {value:.6g} > {bound:.6g}")
    result.passed = not result.breaches


def _progress(total: int, desc: str, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="review", disable=quiet, leave=False)


def _run(runner: StageRunner, ids: np.ndarray, desc: str, quiet: bool) -> np.ndarray:
    out = np.empty(len(ids), np.float64)
    step = max(1, runner.batch_size)
    with _progress(len(ids), desc, quiet) as bar:
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            probs = np.asarray(runner.predict(chunk), np.float64).reshape(-1)
            if probs.shape != (len(chunk),):
                raise RuntimeError(f"{desc}: predict returned {probs.shape}, expected {len(chunk)}")
            out[start : start + len(chunk)] = probs
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
        ids = baseline.ids[: min(limit, len(baseline.ids))]
        probs = _run(runner, ids, stage.name, ctx.quiet)
        compare(result, probs, baseline)
        result.probabilities = probs
        if runner.extra_metrics is not None:
            result.extra.update(runner.extra_metrics(ids, probs))
    finally:
        if runner.close is not None:
            runner.close()
    result.artifact = runner.artifact.name if runner.artifact is not None else None
    result.size_bytes = runner.size_bytes
    result.info = dict(runner.info)
    result.seconds = time.perf_counter() - started
    apply_gates(result, recipe.gates_for(stage.name, stage.kind))
    return result
