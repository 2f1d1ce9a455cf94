"""Checks of a data set against itself and against the model, one EdgeGruError per fault.

Each check raises on the first fault it finds with a one-line message that names the array,
the first offending sample and what was expected, so a user can fix the file before any
training or conversion starts. Checks that need no model run in ``inspect_npz`` too.
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgeGruError
from ..ir import InputSpec, Task
from .sequences import Sequences

SPLITS = ("train", "test")
INT32_IDS = 2**31  # ids are int32 for the model; the bound when the vocabulary is unknown


def check_sizes(arrays: dict[str, np.ndarray], where: str) -> None:
    """Both splits non-empty, and ``len(x) == len(y)`` in each (shapes ``(N, ...)``)."""
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 0 or y.ndim == 0:
            raise EdgeGruError(f"{where}: x_{split} and y_{split} must be arrays, not scalars")
        if len(x) != len(y):
            raise EdgeGruError(
                f"{where}: x_{split} has {len(x)} samples but y_{split} has {len(y)}"
            )
        if len(x) == 0:
            use = "measures drift" if split == "test" else "trains and calibrates"
            raise EdgeGruError(f"{where}: the {split} split is empty (the {split} split {use})")


def check_same_kind(train: Sequences, test: Sequences, where: str) -> None:
    """Both splits hold the same kind of input with the same feature count."""
    if train.kind != test.kind:
        raise EdgeGruError(f"{where}: x_train holds {train.kind} but x_test holds {test.kind}")
    if train.features != test.features:
        raise EdgeGruError(
            f"{where}: x_train has {train.features} features per step, x_test {test.features}"
        )


def check_values(seqs: Sequences) -> None:
    """Token ids ``>= 0``; features finite (after the cast to float32)."""
    if not seqs.values.size:
        return
    if seqs.kind == "tokens":
        low = int(seqs.values.argmin())
        if seqs.values[low] < 0:
            raise EdgeGruError(
                f"{seqs.locate(low)} holds token id {int(seqs.values[low])} < 0"
            )
        return
    finite = np.isfinite(seqs.values).all(axis=1)
    if not finite.all():
        step = int(np.argmin(finite))
        count = int(np.count_nonzero(~finite))
        raise EdgeGruError(
            f"{seqs.locate(step)} holds NaN or inf (non-finite steps: {count}; "
            f"values beyond float32's range become inf)"
        )


def check_against_spec(seqs: Sequences, spec: InputSpec, vocab: int | None) -> None:
    """The input kind, the feature count and the id range fit the model's input."""
    if seqs.kind != spec.kind:
        want = "token ids (N, T)" if spec.kind == "tokens" else f"features (N, T, {spec.features})"
        raise EdgeGruError(f"{seqs.name} holds {seqs.kind} but the model takes {want}")
    if spec.kind == "features" and seqs.features != spec.features:
        raise EdgeGruError(
            f"{seqs.name} has {seqs.features} features per step; the model takes {spec.features}"
        )
    if spec.kind == "tokens" and seqs.values.size:
        vocab = INT32_IDS if vocab is None else vocab
        high = int(seqs.values.argmax())
        if seqs.values[high] >= vocab:
            count = int(np.count_nonzero(seqs.values >= vocab))
            raise EdgeGruError(
                f"{seqs.locate(high)} holds token id {int(seqs.values[high])} >= the vocabulary "
                f"size {vocab} (out of range: {count} ids)"
            )


def _first_bad(mask: np.ndarray) -> int:
    """Index of the first sample with a fault in a boolean mask ``(N,)`` or ``(N, K)``."""
    rows = mask.reshape(len(mask), -1).any(axis=1)
    return int(np.argmax(rows))


def check_numeric_labels(name: str, y: np.ndarray) -> np.ndarray:
    """``y`` is real-valued, ``(N,)`` or ``(N, K)``, and finite; returned unchanged."""
    if y.dtype.kind not in "biuf":
        raise EdgeGruError(f"{name} has dtype {y.dtype}: labels and targets must be numeric")
    if y.ndim not in (1, 2):
        raise EdgeGruError(f"{name} has shape {y.shape}: expected (N,) or (N, K)")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            raise EdgeGruError(f"{name}[{_first_bad(bad)}] is NaN or inf")
    return y


def _column(name: str, y: np.ndarray, what: str) -> np.ndarray:
    """``(N,)`` or ``(N, 1)`` -> ``(N,)``; anything wider is an error."""
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise EdgeGruError(f"{name} has shape {y.shape}: {what} need (N,)")
    return y


def _in_set(name: str, y: np.ndarray, allowed: str, ok: np.ndarray) -> None:
    if not ok.all():
        i = _first_bad(~ok)
        raise EdgeGruError(f"{name}[{i}] = {y[i].tolist()} is out of range: {allowed}")


def check_labels(name: str, y: np.ndarray, task: Task) -> np.ndarray:
    """Labels/targets fit the task; returns them in the Dataset's dtype and shape.

    binary, binary_logits: 0/1, int64 ``(N,)``. multiclass: class indices ``0..K-1`` (or
    exact one-hot rows ``(N, K)``), int64 ``(N,)``. multilabel: 0/1 ``(N, K)``, float32.
    regression: finite values, float32 ``(N,)`` when K = 1, else ``(N, K)``.
    """
    y = check_numeric_labels(name, np.asarray(y))
    k = task.outputs
    if task.kind in ("binary", "binary_logits"):
        y = _column(name, y, "binary labels")
        _in_set(name, y, "a binary task takes 0 or 1", (y == 0) | (y == 1))
        return y.astype(np.int64)
    if task.kind == "multiclass":
        if y.ndim == 2 and y.shape[1] == k and k > 1:
            one_hot = ((y == 0) | (y == 1)).all(axis=1) & (y.sum(axis=1) == 1)
            _in_set(name, y, f"one-hot rows of width {k} need exactly one 1", one_hot)
            return y.argmax(axis=1).astype(np.int64)
        y = _column(name, y, f"class indices (or one-hot (N, {k}))")
        ok = (y >= 0) & (y < k) & (y == np.floor(y))
        _in_set(name, y, f"{k} classes take integers 0..{k - 1}", ok)
        return y.astype(np.int64)
    if task.kind == "multilabel":
        if y.ndim != 2 or y.shape[1] != k:
            raise EdgeGruError(f"{name} has shape {y.shape}: {k} labels need multi-hot (N, {k})")
        _in_set(name, y, "multi-hot labels are 0 or 1", (y == 0) | (y == 1))
        return y.astype(np.float32)
    if task.kind == "regression":
        if k == 1:
            y = _column(name, y, "one regression output")
        elif y.ndim != 2 or y.shape[1] != k:
            raise EdgeGruError(f"{name} has shape {y.shape}: {k} regression outputs need (N, {k})")
        out = y.astype(np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            raise EdgeGruError(f"{name}[{_first_bad(bad)}] does not fit in float32")
        return out
    raise EdgeGruError(f"unknown task kind {task.kind!r}")


def check_class_names(names: tuple[str, ...], task: Task, where: str) -> None:
    """``class_names`` has one name per class: 2 for binary tasks, K for multi-class/label."""
    if not names or task.kind == "regression":
        return
    want = 2 if task.kind in ("binary", "binary_logits") else task.outputs
    if len(names) != want:
        raise EdgeGruError(
            f"{where}: class_names has {len(names)} names but the {task.kind} model has "
            f"{want} classes"
        )
