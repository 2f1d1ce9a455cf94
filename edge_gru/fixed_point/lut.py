"""Integer sigmoid and tanh: 257-point Q0.15 tables over [0, 8] with linear interpolation.

The C library evaluates exactly these functions (the tables are generated into the
weights source), so the NumPy versions here are the specification. Input is a gate
pre-activation in Q(31-F).F (``F = pre_frac``); output is Q0.15 in ``[0, 32767]``
(sigmoid) or ``[-32767, 32767]`` (tanh). Negative inputs use the symmetries
``sigmoid(-x) = 1 - sigmoid(x)`` and ``tanh(-x) = -tanh(x)``; ``|x| >= 8`` saturates to
the last table entry.

Interpolation between ``T[i]`` and ``T[i+1]`` with ``f`` the ``F - 5`` fraction bits:
``T[i] + (((T[i+1] - T[i]) * f + 2^(F-6)) >> (F - 5))`` (round half up).
"""

from __future__ import annotations

import numpy as np

SEGMENTS_PER_UNIT = 32  # table step 1/32
LUT_RANGE = 8  # |x| >= 8 saturates
LUT_POINTS = SEGMENTS_PER_UNIT * LUT_RANGE + 1  # 257
SEG_BITS = 5  # log2(SEGMENTS_PER_UNIT)
Q15_ONE = 1 << 15


def _q15(values: np.ndarray) -> np.ndarray:
    return np.minimum(np.rint(values * Q15_ONE), Q15_ONE - 1).astype(np.int16)


def sigmoid_table() -> np.ndarray:
    """``round(sigmoid(i / 32) * 2^15)`` for ``i = 0..256``, int16."""
    x = np.arange(LUT_POINTS, dtype=np.float64) / SEGMENTS_PER_UNIT
    return _q15(0.5 * (1.0 + np.tanh(0.5 * x)))


def tanh_table() -> np.ndarray:
    """``round(tanh(i / 32) * 2^15)`` for ``i = 0..256``, clipped to 32767, int16."""
    x = np.arange(LUT_POINTS, dtype=np.float64) / SEGMENTS_PER_UNIT
    return _q15(np.tanh(x))


SIGMOID_LUT = sigmoid_table()
TANH_LUT = tanh_table()


def _padded(table: np.ndarray) -> np.ndarray:
    """int64 copy with the last point repeated, so ``t[i + 1]`` exists at the clamp."""
    return np.append(table, table[-1]).astype(np.int64)


_SIGMOID64 = _padded(SIGMOID_LUT)
_TANH64 = _padded(TANH_LUT)


def _interp(t: np.ndarray, pre: np.ndarray, frac: int) -> np.ndarray:
    """Table value at ``|pre|`` (Q.frac), int64, before applying the sign symmetry."""
    shift = frac - SEG_BITS
    # Clamping |pre| to 8.0 lands on the last entry with fraction 0: the saturated value.
    a = np.minimum(np.abs(pre), LUT_RANGE << frac)
    i = a >> shift
    f = a & ((1 << shift) - 1)
    lo = t[i]
    return lo + (((t[i + 1] - lo) * f + (1 << (shift - 1))) >> shift)


def sigmoid_q15(pre: np.ndarray, frac: int) -> np.ndarray:
    """Integer sigmoid of a Q.frac pre-activation -> Q0.15 (int64 array)."""
    y = _interp(_SIGMOID64, pre, frac)
    return np.where(pre < 0, Q15_ONE - y, y)


def tanh_q15(pre: np.ndarray, frac: int) -> np.ndarray:
    """Integer tanh of a Q.frac pre-activation -> Q0.15 (int64 array)."""
    y = _interp(_TANH64, pre, frac)
    return np.where(pre < 0, -y, y)


def max_error(frac: int = 20, samples: int = 1 << 18) -> dict[str, float]:
    """Measured max |integer - exact| over ``[-10, 10]`` for both functions (in real units)."""
    x = np.linspace(-10.0, 10.0, samples)
    pre = np.rint(x * (1 << frac)).astype(np.int64)
    xr = pre / float(1 << frac)
    exact_s = 0.5 * (1.0 + np.tanh(0.5 * xr))
    return {
        "sigmoid": float(np.max(np.abs(sigmoid_q15(pre, frac) / Q15_ONE - exact_s))),
        "tanh": float(np.max(np.abs(tanh_q15(pre, frac) / Q15_ONE - np.tanh(xr)))),
    }
