"""arm64 vs x86: the same model, the same inputs, two CPUs; how far apart are the answers?

Outputs are ``(N, K)`` (a ``(N,)`` array is read as ``K = 1``) and compared as absolute
differences; LiteRT int8 outputs are quantized, so their difference is also given in
output LSBs (the output tensor's scale; TFLite's int8 logistic output is fixed at 1/256).
Decisions follow the task (:class:`edge_gru.ir.Task`): ``p > 0.5`` (binary), ``logit > 0``
(binary_logits), ``argmax`` (multiclass), every label ``p > 0.5`` (multilabel); a
regression has no decision, so its decision fields are ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import Task

THRESHOLD = 0.5
INT8_LOGISTIC_SCALE = 1.0 / 256.0
BINARY = Task("binary", 1)


def _cols(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim == 1:
        return arr[:, None]
    return arr if arr.ndim == 2 else arr.reshape(len(arr), -1)


def decisions(task: Task, outputs: np.ndarray) -> np.ndarray | None:
    """``(N, D)`` decisions per input (rows compared whole), or None for regression."""
    out = _cols(outputs)
    if task.kind == "binary":
        return out[:, :1] > THRESHOLD
    if task.kind == "binary_logits":
        return out[:, :1] > 0.0
    if task.kind == "multiclass":
        return np.argmax(out, axis=1)[:, None]
    if task.kind == "multilabel":
        return out > THRESHOLD
    return None


def accuracy(task: Task, outputs: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of inputs whose decision is the label (class index / 0-1 / multi-hot)."""
    found = decisions(task, outputs)
    if found is None or not len(found):
        return None
    truth = np.asarray(labels).reshape(len(found), -1)
    if task.kind == "multilabel":
        return float(np.mean(np.all(found == (truth > 0.5), axis=1)))
    if task.kind == "multiclass":
        return float(np.mean(found[:, 0] == truth[:, 0]))
    return float(np.mean(found[:, 0] == (truth[:, 0] > 0.5)))


def _equal_fraction(task: Task, a: np.ndarray, b: np.ndarray) -> float | None:
    da, db = decisions(task, a), decisions(task, b)
    if da is None or db is None or not len(da):
        return None
    return float(np.mean(np.all(da == db, axis=1)))


def abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a - b|`` where NaN on both sides (a masked mean over no step) counts as equal and
    NaN on one side only as an infinite difference."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    diff[np.isnan(a) & np.isnan(b)] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


def _max(diff: np.ndarray) -> float:
    return float(diff.max()) if diff.size else 0.0


def vs_x86(
    arm_main: np.ndarray,
    x86_main: np.ndarray,
    arm_raw: np.ndarray,
    x86_raw: np.ndarray,
    raw_labels: np.ndarray | None,
    lsb: float | None = None,
    task: Task = BINARY,
) -> dict[str, Any]:
    """Report fields: diffs over the main and the raw inputs together, plus raw accuracy.

    ``main`` are the encoded test inputs the harness evaluates; ``raw`` the inputs given
    the way a user gives them (review text, or CSV files for feature models).
    ``decision_equal_fraction`` counts inputs where both CPUs decide the same.
    """
    arm_raw, x86_raw = _cols(arm_raw), _cols(x86_raw)
    arm = np.concatenate([_cols(arm_main), arm_raw]) if len(arm_raw) else _cols(arm_main)
    x86 = np.concatenate([_cols(x86_main), x86_raw]) if len(x86_raw) else _cols(x86_main)
    diff = abs_diff(arm, x86)
    has_labels = raw_labels is not None and len(arm_raw)
    out: dict[str, Any] = {
        "x86_compared_n": int(len(arm)),
        "max_abs_diff_vs_x86": _max(diff),
        "mean_abs_diff_vs_x86": float(diff.mean()) if diff.size else 0.0,
        "decision_equal_fraction": _equal_fraction(task, arm, x86),
        "raw_n": int(len(arm_raw)),
        "raw_accuracy": accuracy(task, arm_raw, raw_labels) if has_labels else None,
        "raw_accuracy_x86": accuracy(task, x86_raw, raw_labels) if has_labels else None,
        "raw_max_abs_diff_vs_x86": _max(abs_diff(arm_raw, x86_raw)),
    }
    if lsb is not None and lsb > 0:
        lsbs = np.rint(np.minimum(diff, 1e9) / lsb).astype(np.int64).reshape(-1)
        out["max_lsb_diff_vs_x86"] = int(lsbs.max()) if len(lsbs) else 0
        values, counts = np.unique(lsbs, return_counts=True)
        out["lsb_histogram_vs_x86"] = {str(int(v)): int(c) for v, c in zip(values, counts)}
    return out
