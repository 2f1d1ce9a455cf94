"""The bit-exact NumPy model of ``firmware/src/edge_gru.c``: integer arithmetic only.

Vectorised over reviews (all 25,000 test reviews in seconds). Dot products run as
float64 matrix products, which are exact here: every product and partial sum is an
integer below 2^53. Everything else is int64 NumPy arithmetic with the C code's
rounding (``+ half, >>``; NumPy's ``>>`` is arithmetic, as GCC's is on signed ints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lut import sigmoid_q15, tanh_q15
from .scheme import PAD_ID, QuantizedGru

HALF32 = 1 << 31
HALF15 = 1 << 14


def map_ids(q: QuantizedGru, ids: np.ndarray) -> np.ndarray:
    """Token ids outside ``[0, vocab)`` become the OOV id, as ``edge_gru_step`` does."""
    ids = np.asarray(ids, np.int64)
    return np.where((ids < 0) | (ids >= q.vocab), q.oov_id, ids)


def _mulhi(a: np.ndarray, m: np.ndarray | int) -> np.ndarray:
    return (a * m + HALF32) >> 32


def _blocks(q: QuantizedGru) -> np.ndarray:
    """Permutation from gate-interleaved rows (C layout) to [z | r | h] blocks (fast slicing)."""
    return np.arange(3 * q.units).reshape(q.units, 3).T.reshape(-1)


@dataclass(frozen=True)
class _Prepared:
    """The model's arrays in the layout NumPy computes fastest with (blocks, contiguous)."""

    table: np.ndarray  # (V, 3u) int64 input accumulators, block order
    u_t: np.ndarray  # (u, 3u) float64 recurrent kernel, block order
    mx: np.ndarray
    mh: np.ndarray
    bx: np.ndarray
    dense: np.ndarray


def input_table(q: QuantizedGru) -> np.ndarray:
    """Input accumulators of every token, ``(V, 3u)`` int64: ``sum_j x[j] * w_q[k, j]``."""
    x16 = q.emb_q.astype(np.float64) * q.emb_mult.astype(np.float64)[:, None]
    return (x16 @ q.w_q.T.astype(np.float64)).astype(np.int64)


def _prepare(q: QuantizedGru) -> _Prepared:
    order = _blocks(q)
    return _Prepared(
        table=np.ascontiguousarray(input_table(q)[:, order]),
        u_t=np.ascontiguousarray(q.u_q[order].T.astype(np.float64)),
        mx=q.w_mult.astype(np.int64)[order],
        mh=q.u_mult.astype(np.int64)[order],
        bx=q.bias_x.astype(np.int64)[order],
        dense=q.dense_q.astype(np.float64),
    )


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.astype(np.float64) @ b).astype(np.int64)  # exact: integers below 2^53


def q15_gru_step(
    acc_x: np.ndarray,
    h: np.ndarray,
    u_t: np.ndarray,
    mx: np.ndarray,
    mh: np.ndarray,
    bx: np.ndarray,
    bias_h: np.ndarray,
    pre_frac: int,
    reset_after: bool,
    gates: dict[str, list[np.ndarray]] | None = None,
) -> np.ndarray:
    """One GRU step of the integer scheme (the seed's and the family's model share it).

    ``acc_x`` ``(N, 3u)`` int64 input accumulators, ``mx``/``mh``/``bx`` ``(3u,)`` int64
    multipliers and bias (Q.pre_frac) in block order ``[z | r | h]``; ``u_t`` ``(u, 3u)`` the
    int8 recurrent kernel transposed, as float64 (products exact below 2^53); ``h`` ``(N, u)``
    Q0.15; ``bias_h`` ``(u,)`` Q.pre_frac (read when ``reset_after``). Returns the new state.
    ``gates``, when given, receives this step's ``z``, ``r``, ``n`` (each ``(N, u)`` int64
    Q0.15, the values the C code computes); the arithmetic is the same either way.
    """
    u, f = h.shape[1], pre_frac
    acc_h = _matmul(h, u_t)  # the h columns are unused when reset_before
    zr = (acc_x[:, : 2 * u] * mx[: 2 * u] + acc_h[:, : 2 * u] * mh[: 2 * u] + HALF32) >> 32
    zr = sigmoid_q15(zr + bx[: 2 * u], f)
    z, r = zr[:, :u], zr[:, u:]
    if reset_after:
        xh = _mulhi(acc_x[:, 2 * u :], mx[2 * u :]) + bx[2 * u :]
        hh = _mulhi(acc_h[:, 2 * u :], mh[2 * u :]) + bias_h
        pre_n = xh + ((r * hh + HALF15) >> 15)
    else:
        rh = (r * h + HALF15) >> 15
        acc_rh = _matmul(rh, u_t[:, 2 * u :])
        pre_n = (acc_x[:, 2 * u :] * mx[2 * u :] + acc_rh * mh[2 * u :] + HALF32) >> 32
        pre_n = pre_n + bx[2 * u :]
    n = tanh_q15(pre_n, f)
    if gates is not None:
        gates["z"].append(z)
        gates["r"].append(r)
        gates["n"].append(n)
    return np.clip(n + ((z * (h - n) + HALF15) >> 15), -32768, 32767)


def _step(
    q: QuantizedGru,
    p: _Prepared,
    acc_x: np.ndarray,
    h: np.ndarray,
    gates: dict[str, list[np.ndarray]] | None = None,
) -> np.ndarray:
    """One seed GRU step: ``(N, 3u)`` input accumulators (block order), ``(N, u)`` Q0.15."""
    return q15_gru_step(acc_x, h, p.u_t, p.mx, p.mh, p.bx, q.bias_h, q.pre_frac,
                        q.reset_after, gates)


def _score(q: QuantizedGru, p: _Prepared, h: np.ndarray) -> np.ndarray:
    acc = (h.astype(np.float64) @ p.dense).astype(np.int64)
    return sigmoid_q15(_mulhi(acc, q.dense_mult) + q.dense_bias, q.pre_frac)


def _forward(q: QuantizedGru, p: _Prepared, ids: np.ndarray) -> np.ndarray:
    h = np.zeros((ids.shape[0], q.units), np.int64)
    for t in range(ids.shape[1]):
        h = _step(q, p, p.table[ids[:, t]], h)
    return _score(q, p, h)


def forward_q15(q: QuantizedGru, ids: np.ndarray, batch: int = 256) -> np.ndarray:
    """Q0.15 scores ``(N,)`` int64 of already padded ``ids (N, T)`` (all T steps from h = 0)."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be (N, T), got shape {ids.shape}")
    ids = map_ids(q, ids)
    p = _prepare(q)
    parts = [_forward(q, p, ids[i : i + batch]) for i in range(0, len(ids), batch)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass(frozen=True)
class FixedPointTrace:
    """Every step of the integer model: all int64, Q0.15 (divide by ``2^15`` for real values).

    ``scores (N,)``; ``states (N, T, u)``: ``h_t`` after step ``t``; ``gates``: ``"z"``,
    ``"r"``, ``"n"`` each ``(N, T, u)``, the LUT outputs of step ``t``.
    """

    scores: np.ndarray
    states: np.ndarray
    gates: dict[str, np.ndarray]


def forward_trace(q: QuantizedGru, ids: np.ndarray) -> FixedPointTrace:
    """:func:`forward_q15` that also keeps every step's state and gates (same arithmetic).

    Memory is ``4 * N * T * u`` int64 values: trace a sample, not a whole test set.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be (N, T), got shape {ids.shape}")
    ids = map_ids(q, ids)
    p = _prepare(q)
    h = np.zeros((ids.shape[0], q.units), np.int64)
    gates: dict[str, list[np.ndarray]] = {"z": [], "r": [], "n": []}
    states = []
    for t in range(ids.shape[1]):
        h = _step(q, p, p.table[ids[:, t]], h, gates)
        states.append(h)
    shape = (ids.shape[0], 0, q.units)
    return FixedPointTrace(
        scores=_score(q, p, h),
        states=np.stack(states, axis=1) if states else np.zeros(shape, np.int64),
        gates={k: np.stack(v, axis=1) if v else np.zeros(shape, np.int64)
               for k, v in gates.items()},
    )


def pad_stream(q: QuantizedGru, tokens: Sequence[int]) -> np.ndarray:
    """``edge_gru_run``'s padding rule (the training one): keep the last ``maxlen``, pre-pad 0."""
    kept = list(tokens)[-q.maxlen :] if len(tokens) else []
    return np.array([PAD_ID] * (q.maxlen - len(kept)) + kept, np.int64)


def run_streams_q15(q: QuantizedGru, streams: Sequence[Sequence[int]]) -> np.ndarray:
    """Scores of raw token streams of any length, padded as ``edge_gru_run`` pads them."""
    if not len(streams):
        return np.zeros(0, np.int64)
    return forward_q15(q, np.stack([pad_stream(q, s) for s in streams]))


def predict(q: QuantizedGru, ids: np.ndarray) -> np.ndarray:
    """Probabilities ``score / 2^15`` for the drift harness, ``(N,)`` float64."""
    return forward_q15(q, ids).astype(np.float64) / 32768.0
