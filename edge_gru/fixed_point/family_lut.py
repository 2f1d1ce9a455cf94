"""Integer softmax for the family's classification heads: an ``exp(-d)`` table, Q0.15 out.

Input: the last Dense layer's pre-activations ``(N, K)`` in Q(31-F).F (``|pre| < 2^30``).
``d_k = max(pre) - pre_k >= 0``; ``e_k = exp(-d_k)`` from a 513-point Q0.15 table over
``[0, 16]`` (step 1/32, entry 0 = 32768) with the sigmoid/tanh tables' linear
interpolation (round half up, arithmetic shift), ``d >= 16`` gives 0; then
``p_k = min((e_k * 2^15 + S / 2) / S, 32767)`` with ``S = sum e_k`` (integer division,
truncating). The C in ``firmware/src/edge_gru_family.c`` computes exactly this.
"""

from __future__ import annotations

import numpy as np

EXP_RANGE = 16
EXP_SEGMENTS = 32
EXP_POINTS = EXP_RANGE * EXP_SEGMENTS + 1  # 513
SEG_BITS = 5


def exp_table() -> np.ndarray:
    """``round(exp(-i / 32) * 2^15)`` for ``i = 0..512``, int32 (entry 0 is 32768)."""
    i = np.arange(EXP_POINTS, dtype=np.float64)
    return np.rint(np.exp(-i / EXP_SEGMENTS) * 32768.0).astype(np.int32)


EXP_LUT = exp_table()
_EXP64 = np.append(EXP_LUT, 0).astype(np.int64)


def exp_q15(d: np.ndarray, frac: int) -> np.ndarray:
    """``exp(-d)`` for ``d >= 0`` in Q.frac -> Q0.15 (int64, 0..32768)."""
    shift = frac - SEG_BITS
    a = np.minimum(np.asarray(d, np.int64), EXP_RANGE << frac)
    i = a >> shift
    f = a & ((1 << shift) - 1)
    lo = _EXP64[i]
    return lo + (((_EXP64[i + 1] - lo) * f + (1 << (shift - 1))) >> shift)


def softmax_q15(pre: np.ndarray, frac: int) -> np.ndarray:
    """Integer softmax of ``(N, K)`` Q.frac pre-activations -> ``(N, K)`` Q0.15 int64."""
    pre = np.asarray(pre, np.int64)
    e = exp_q15(pre.max(axis=-1, keepdims=True) - pre, frac)
    s = e.sum(axis=-1, keepdims=True)
    return np.minimum((e * 32768 + s // 2) // s, 32767)


def softmax_max_error(frac: int = 20, samples: int = 20000, classes: int = 10,
                      seed: int = 0) -> float:
    """Measured max |integer - exact| probability over random logits in [-12, 12]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-12, 12, (samples, classes))
    pre = np.rint(x * 2.0**frac).astype(np.int64)
    xr = pre / 2.0**frac
    ex = np.exp(xr - xr.max(axis=1, keepdims=True))
    exact = ex / ex.sum(axis=1, keepdims=True)
    return float(np.max(np.abs(softmax_q15(pre, frac) / 32768.0 - exact)))
