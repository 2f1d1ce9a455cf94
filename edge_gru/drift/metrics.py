"""Task-aware drift metrics: a stage's outputs against float Keras' and the true labels.

Outputs are ``(N, K)`` as the Keras model returns them. What a decision is follows the
task (:class:`edge_gru.ir.Task`): binary ``p > 0.5``; binary logits ``out > 0``
(probability ``sigmoid(out)``); multi-class ``argmax``; multi-label ``p > 0.5`` per label
(an example agrees when its whole label set does); regression has no decision and is
measured by the change of its error against the targets.

Every metric is a plain float so recipes can gate it (``metric = bound``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import Task


def decisions(task: Task, outputs: np.ndarray) -> np.ndarray:
    """``(N,)`` class indices (binary: 0/1) or ``(N, K)`` bool label sets for multi-label."""
    if task.kind == "binary":
        return (outputs[:, 0] > 0.5).astype(np.int64)
    if task.kind == "binary_logits":
        return (outputs[:, 0] > 0.0).astype(np.int64)
    if task.kind == "multiclass":
        return np.argmax(outputs, axis=1)
    if task.kind == "multilabel":
        return outputs > 0.5
    raise ValueError("regression has no decisions")


def probabilities(task: Task, outputs: np.ndarray) -> np.ndarray:
    """What the user reads as probabilities ``(N, K)``; the raw values for regression."""
    if task.kind == "binary_logits":
        return 0.5 * (1.0 + np.tanh(0.5 * outputs))
    return outputs


def _label_decisions(task: Task, labels: np.ndarray) -> np.ndarray:
    if task.kind == "multilabel":
        return np.asarray(labels) > 0.5
    return np.asarray(labels).reshape(-1).astype(np.int64)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-example equality; a multi-label example is equal when every label is."""
    eq = a == b
    return eq.all(axis=1) if eq.ndim == 2 else eq


def classification_accuracy(task: Task, outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(_same(decisions(task, outputs), _label_decisions(task, labels))))


def regression_errors(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """``(MAE, RMSE)`` in the targets' units, over every output column."""
    err = outputs.astype(np.float64) - np.asarray(targets, np.float64).reshape(outputs.shape)
    return float(np.mean(np.abs(err))), float(np.sqrt(np.mean(err * err)))


def compare_outputs(
    task: Task, stage: np.ndarray, float_out: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    """All drift metrics of ``stage`` vs ``float_out`` (both ``(n, K)``) on ``labels``.

    Classification: ``accuracy``, ``float_accuracy``, ``accuracy_drop_pp`` (float minus
    stage, in percentage points: positive = the stage is worse), ``agreement`` (same
    decision as float), ``flips_to_wrong`` / ``flips_to_right`` (decisions that changed and
    became wrong / right), the raw output diffs; multi-class adds ``confusion_vs_float``
    (rows: float's class, columns: the stage's), multi-label ``label_agreement`` (per-label
    mean). Regression: ``mae``, ``rmse``, ``float_mae``, ``float_rmse``, ``mae_change``,
    ``rmse_change`` (stage minus float, target units) and ``rmse_change_pct``.
    """
    stage = np.asarray(stage, np.float64)
    float_out = np.asarray(float_out, np.float64)
    diff = np.abs(stage - float_out)
    diff[np.isnan(stage) & np.isnan(float_out)] = 0.0  # the same NaN (e.g. a mean over no step)
    finite = np.isfinite(diff)
    out: dict[str, Any] = {
        "n": int(len(stage)),
        "mean_abs_diff": float(diff[finite].mean()) if finite.any() else float("nan"),
        "max_abs_diff": float(diff.max()) if finite.all() else float("inf"),
    }
    if not task.is_classification:
        mae, rmse = regression_errors(stage, labels)
        float_mae, float_rmse = regression_errors(float_out, labels)
        out.update(
            mae=mae,
            rmse=rmse,
            float_mae=float_mae,
            float_rmse=float_rmse,
            mae_change=mae - float_mae,
            rmse_change=rmse - float_rmse,
            rmse_change_pct=100.0 * (rmse - float_rmse) / float_rmse if float_rmse else 0.0,
        )
        return out
    truth = _label_decisions(task, labels)
    mine, base = decisions(task, stage), decisions(task, float_out)
    mine_right, base_right = _same(mine, truth), _same(base, truth)
    agree = _same(mine, base)
    out.update(
        accuracy=float(mine_right.mean()),
        float_accuracy=float(base_right.mean()),
        accuracy_drop_pp=100.0 * float(base_right.mean() - mine_right.mean()),
        agreement=float(agree.mean()),
        flips_to_wrong=int(np.sum(base_right & ~mine_right)),
        flips_to_right=int(np.sum(~base_right & mine_right)),
    )
    if task.kind == "multiclass":
        k = stage.shape[1]
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (base, mine), 1)
        out["confusion_vs_float"] = confusion.tolist()
    if task.kind == "multilabel":
        out["label_agreement"] = float(np.mean(mine == base))
    return out
