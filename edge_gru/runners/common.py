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


def _params(detail: dict[str, Any]) -> tuple[float, int]:
    if "quantization_parameters" in detail:
        qp = detail["quantization_parameters"]
        return float(qp["scales"][0]), int(qp["zero_points"][0])
    scale, zero = detail["quantization"]
    return float(scale), int(zero)
