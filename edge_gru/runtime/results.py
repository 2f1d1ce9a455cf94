"""What a model's ``(K,)`` output means, per task, for the Pi runtime's answers.

The rules are :class:`edge_gru.ir.Task`'s: binary ``p = out``, decision ``p > threshold``;
binary_logits ``p = sigmoid(out)``, decision ``out > 0`` (the same as ``p > 0.5``);
multiclass: softmax probabilities, decision ``argmax``; multilabel: per-label sigmoid,
decision ``p > threshold`` per label; regression: the values themselves.
NumPy only; non-finite numbers (a masked mean over no step is NaN, as in Keras) become
``None`` so every answer is valid JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import Task

POSITIVE, NEGATIVE = "positive", "negative"


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def binary_names(task: Task) -> tuple[str, str]:
    """``(negative, positive)`` label names: the two class names, else negative/positive."""
    if len(task.class_names) == 2:
        return task.class_names[0], task.class_names[1]
    return NEGATIVE, POSITIVE


def class_names(task: Task) -> list[str]:
    """One name per output column (``class_<k>`` where the bundle gives none)."""
    if len(task.class_names) == task.outputs:
        return list(task.class_names)
    return [f"class_{k}" for k in range(task.outputs)]


def sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def interpret(task: Task, row: np.ndarray, threshold: float) -> dict[str, Any]:
    """The answer for one output row ``(K,)``: ``output`` plus the task's fields."""
    values = [_num(v) for v in np.asarray(row, np.float64).reshape(-1)]
    out: dict[str, Any] = {"output": values}
    first = values[0] if values else None
    if task.kind in ("binary", "binary_logits"):
        if task.kind == "binary_logits":
            out["logit"] = first
            p = None if first is None else sigmoid(first)
        else:
            p = first
        out["probability"] = p
        negative, positive = binary_names(task)
        out["label"] = None if p is None else (positive if p > threshold else negative)
    elif task.kind == "multiclass":
        names = class_names(task)
        out["probabilities"] = values
        finite = [(-math.inf if v is None else v) for v in values]
        out["label"] = None if first is None else names[int(np.argmax(finite))]
    elif task.kind == "multilabel":
        names = class_names(task)
        out["probabilities"] = values
        out["labels"] = [n for n, v in zip(names, values) if v is not None and v > threshold]
    else:
        out["values"] = values
    return out


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def summary(task: Task, answer: dict[str, Any]) -> str:
    """The answer as ``value<TAB>verdict`` for plain-text output (one line per input)."""
    names = class_names(task)
    if "probability" in answer:  # binary, binary_logits
        verdict = answer["label"]
        return f"{_fmt(answer['probability'])}\t{verdict if verdict is not None else '-'}"
    if "labels" in answer:  # multilabel
        probs = " ".join(f"{n}={_fmt(v)}" for n, v in zip(names, answer["probabilities"]))
        labels = answer["labels"]
        return f"{{{','.join(labels)}}}\t{probs}" if labels is not None else f"-\t{probs}"
    if "probabilities" in answer:  # multiclass
        probs = " ".join(f"{n}={_fmt(v)}" for n, v in zip(names, answer["probabilities"]))
        return f"{answer['label'] if answer['label'] is not None else '-'}\t{probs}"
    return " ".join(_fmt(v) for v in answer["values"])
