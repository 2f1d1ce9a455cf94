"""What both runners share: quantising inputs and de-quantising int8 outputs."""

from __future__ import annotations

from typing import Any

import numpy as np


def quantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float -> the input tensor's dtype using its (per-tensor) scale and zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f" or np.asarray(values).dtype.kind in "iu":
        return np.asarray(values, dtype)
    scale, zero = _params(detail)
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """An output tensor's values as float64 (identity for float tensors)."""
    if np.dtype(detail["dtype"]).kind == "f":
        return np.asarray(values, np.float64)
    scale, zero = _params(detail)
    return (np.asarray(values, np.float64) - zero) * scale


class ReviewRunner:
    """Per-review driving shared by the interpreters: one call of :meth:`run` per review.

    Subclasses provide ``run(*inputs) -> list of raw output arrays`` and ``outputs``
    (the output tensor details), and so get the drift harness' ``predict`` interface.
    """

    outputs: list[dict[str, Any]]

    def run(self, *values: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def raw_outputs(self, ids: np.ndarray) -> np.ndarray:
        """The (single) output tensor's raw values, one per review: ``(N,)``."""
        return np.array([self.run(row[None, :])[0].reshape(-1)[0] for row in ids])

    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        """Probabilities from :meth:`raw_outputs`."""
        return dequantize(raw, self.outputs[0])

    def predict(self, ids: np.ndarray) -> np.ndarray:
        """Seed models: the single output per review, ``(N,)`` float64."""
        return self.predict_raw(self.raw_outputs(np.asarray(ids, np.int32)))

    def raw_output_rows(self, x: np.ndarray) -> np.ndarray:
        """The (first) output tensor's raw values ``(N, K)``, one invoke per row of ``x``."""
        k = int(np.prod(self.outputs[0]["shape"][1:]))
        rows = [self.run(row[None])[0].reshape(-1) for row in x]
        return np.stack(rows) if rows else np.empty((0, k), np.dtype(self.outputs[0]["dtype"]))

    def predict_outputs(self, x: np.ndarray) -> np.ndarray:
        """Every output of the (first) output tensor, ``(N, K)`` float64, one invoke per row.

        ``x`` is ``(N, T)`` integer token ids or ``(N, T, F)`` float features; each row is fed
        as a batch of one (cast or quantized to the input tensor's type).
        """
        k = int(np.prod(self.outputs[0]["shape"][1:]))
        rows = [dequantize(self.run(row[None])[0], self.outputs[0]).reshape(-1) for row in x]
        return np.stack(rows) if rows else np.empty((0, k), np.float64)


def _params(detail: dict[str, Any]) -> tuple[float, int]:
    if "quantization_parameters" in detail:
        qp = detail["quantization_parameters"]
        return float(qp["scales"][0]), int(qp["zero_points"][0])
    scale, zero = detail["quantization"]
    return float(scale), int(zero)
