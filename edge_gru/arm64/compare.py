"""arm64 vs x86: the same model, the same inputs, two CPUs; how far apart are the answers?

ONNX outputs are compared as absolute probability differences; LiteRT int8 outputs are
quantized, so their difference is also given in output LSBs (the output tensor's scale;
TFLite's int8 logistic output is fixed at 1/256).
"""

from __future__ import annotations

from typing import Any

import numpy as np

THRESHOLD = 0.5
INT8_LOGISTIC_SCALE = 1.0 / 256.0


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probs > THRESHOLD) == (labels > 0.5)))


def vs_x86(
    arm_ids: np.ndarray,
    x86_ids: np.ndarray,
    arm_raw: np.ndarray,
    x86_raw: np.ndarray,
    raw_labels: np.ndarray,
    lsb: float | None = None,
) -> dict[str, Any]:
    """Report fields: diffs over encoded + raw reviews together, plus raw-text accuracy.

    ``decision_equal_fraction`` counts reviews where both CPUs give the same label.
    """
    arm = np.concatenate([arm_ids, arm_raw]).astype(np.float64)
    x86 = np.concatenate([x86_ids, x86_raw]).astype(np.float64)
    diff = np.abs(arm - x86)
    out: dict[str, Any] = {
        "x86_compared_n": int(len(arm)),
        "max_abs_diff_vs_x86": float(diff.max()) if len(diff) else 0.0,
        "mean_abs_diff_vs_x86": float(diff.mean()) if len(diff) else 0.0,
        "decision_equal_fraction": float(np.mean((arm > THRESHOLD) == (x86 > THRESHOLD))),
        "raw_n": int(len(arm_raw)),
        "raw_accuracy": _accuracy(arm_raw, raw_labels),
        "raw_accuracy_x86": _accuracy(x86_raw, raw_labels),
        "raw_max_abs_diff_vs_x86": float(np.abs(arm_raw - x86_raw).max()) if len(arm_raw) else 0.0,
    }
    if lsb is not None and lsb > 0:
        lsbs = np.rint(diff / lsb).astype(np.int64)
        out["max_lsb_diff_vs_x86"] = int(lsbs.max()) if len(lsbs) else 0
        values, counts = np.unique(lsbs, return_counts=True)
        out["lsb_histogram_vs_x86"] = {str(int(v)): int(c) for v, c in zip(values, counts)}
    return out
