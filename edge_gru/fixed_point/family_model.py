"""Bit-exact NumPy model of ``firmware/src/edge_gru_family.c``: any IR model, integers only.

Vectorised over examples; dot products run as float64 matrix products, exact here (every
partial sum is an integer below 2^53). Rounding: ``+ half, >>`` (arithmetic shifts). The
GRU step is the seed's (:mod:`edge_gru.fixed_point.model`), per layer and direction.
Mask rules follow :mod:`edge_gru.reference`: a masked step keeps the state; a
Bidirectional returning sequences outputs zeros there; ``go_backwards`` outputs in
processing order; mean pooling averages unmasked steps (0 when none), max and flatten
ignore the mask.

``forward(q, xi, record=True)`` also returns, per GRU direction, the int16 Q0.15 states
after every step in processing order and the Q0.15 gates z, r, n (:class:`IntTrace`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .family_lut import softmax_q15
from .family_scheme import RAW_SHIFT, FamilyQuant, QDense, QGru, QRecurrent
from .lut import sigmoid_q15, tanh_q15
from .model import q15_gru_step

HALF32 = 1 << 31
HALF15 = 1 << 14


@dataclass(frozen=True)
class IntTrace:
    """One GRU direction's run in processing order: ``states (N, T, u)`` Q0.15 after each
    step (a masked step repeats the state) and ``gates`` z, r, n ``(N, T, u)`` Q0.15 (empty
    unless recorded). Divide by 2^15 for real values; names match the float reference's."""

    name: str
    states: np.ndarray
    gates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class FamilyResult:
    """``outputs (N, K)`` int64: Q0.15 (sigmoid/tanh/softmax) or Q(31-F).F (linear/relu,
    ``F = out_frac``); ``traces`` one per GRU direction when recorded, else empty."""

    outputs: np.ndarray
    out_frac: int
    traces: tuple[IntTrace, ...] = ()

    @property
    def values(self) -> np.ndarray:
        """Outputs in real units, float64 ``(N, K)``."""
        return self.outputs.astype(np.float64) / 2.0**self.out_frac


def out_frac(q: FamilyQuant) -> int:
    """Fraction bits of the model output: 15, or the last Dense's F for linear/relu."""
    last = q.head[-1]
    return 15 if last.activation in ("sigmoid", "tanh", "softmax") else last.pre_frac


# -- inputs --------------------------------------------------------------------------------
def quantize_features(q: FamilyQuant, x: np.ndarray) -> np.ndarray:
    """Float readings ``(..., F)`` -> int16 frames: ``rint((x - offset) / divisor * 2^k)``."""
    i = q.input
    assert i.k is not None and i.offset is not None and i.divisor is not None
    v = (np.asarray(x, np.float64) - i.offset) / i.divisor * 2.0**i.k
    return np.clip(np.rint(v), -32768, 32767).astype(np.int16)


def raw_readings(q: FamilyQuant, x: np.ndarray) -> np.ndarray:
    """Float readings -> the int32 raw values the raw helper takes (``x * 2^raw_frac``)."""
    assert q.input.raw_frac is not None
    v = np.rint(np.asarray(x, np.float64) * 2.0**q.input.raw_frac)
    return np.clip(v, -(2**31), 2**31 - 1).astype(np.int32)


def features_from_raw(q: FamilyQuant, raw: np.ndarray) -> np.ndarray:
    """``edge_gru_family_from_raw``: int32 raw ``(..., F)`` -> int16 frames (integer only)."""
    i = q.input
    assert i.raw_offset is not None and i.raw_mult is not None
    d = np.asarray(raw, np.int64) - i.raw_offset
    v = (d * i.raw_mult + (1 << (RAW_SHIFT - 1))) >> RAW_SHIFT
    return np.clip(v, -32768, 32767).astype(np.int16)


def map_ids(q: FamilyQuant, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    return np.where((ids < 0) | (ids >= q.input.vocab), q.input.oov_id, ids)


def pad_value_frame(q: FamilyQuant) -> np.ndarray:
    """The frame (int16 ``(F,)``) or id the whole-sequence call pre-pads with."""
    if q.input.kind == "tokens":
        return np.zeros(1, np.int64)
    if q.input.mask_q is not None:
        return q.input.mask_q.astype(np.int16)
    return quantize_features(q, np.full(q.input.features, q.input.pad_value))


def pad_stream(q: FamilyQuant, stream: np.ndarray) -> np.ndarray:
    """The whole-sequence rule: keep the last T steps, pre-pad to T with the pad id/frame."""
    t = q.input.timesteps
    s = np.asarray(stream)
    kept = s[-t:] if len(s) else s[:0]
    if q.input.kind == "tokens":
        return np.concatenate([np.zeros(t - len(kept), np.int64), kept.astype(np.int64)])
    pad = np.tile(pad_value_frame(q), (t - len(kept), 1))
    return np.concatenate([pad, kept.reshape(-1, q.input.features).astype(np.int16)])


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, np.float64) @ np.asarray(b, np.float64)).astype(np.int64)


# -- layers --------------------------------------------------------------------------------
def gru_step(g: QGru, acc_x: np.ndarray, h: np.ndarray,
             gates: dict[str, list] | None = None) -> np.ndarray:
    """One step: input accumulators ``(N, 3u)`` (block order), state ``(N, u)`` Q0.15."""
    return q15_gru_step(acc_x, h, np.asarray(g.u_q.T, np.float64), g.w_mult, g.u_mult,
                        g.bias_x, g.bias_h, g.pre_frac, g.reset_after, gates)


def run_direction(g: QGru, x: np.ndarray, mask: np.ndarray | None, seq: bool, zero_out: bool,
                  record: bool) -> tuple[np.ndarray, IntTrace]:
    """``x (N, T, D)`` int16 values -> outputs ``(N, T, u)`` (processing order) or ``(N, u)``."""
    if g.go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    n, steps = x.shape[:2]
    acc_x = _matmul(x.reshape(n * steps, -1), g.w_q.T).reshape(n, steps, -1)
    h = np.zeros((n, g.units), np.int64)
    states = np.empty((n, steps, g.units), np.int64)
    gates: dict[str, list] | None = {"z": [], "r": [], "n": []} if record else None
    for t in range(steps):
        new = gru_step(g, acc_x[:, t], h, gates)
        h = new if mask is None else np.where(mask[:, t, None], new, h)
        states[:, t] = h
    if seq:
        out = states if (mask is None or not zero_out) else states * mask[..., None]
    else:
        out = h
    trace = IntTrace(g.name, states if record else np.zeros((0,)),
                     {k: np.stack(v, axis=1) for k, v in gates.items()} if gates else {})
    return out, trace


def merge(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """Bidirectional merge of Q0.15 outputs: concat; sum -> Q1.14 and ave -> Q0.15 (both
    ``(a + b + 1) >> 1``); mul -> Q0.15 ``(a b + 2^14) >> 15``."""
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode in ("sum", "ave"):
        return (a + b + 1) >> 1
    return (a * b + HALF15) >> 15


def run_recurrent(r: QRecurrent, x: np.ndarray, mask: np.ndarray | None,
                  record: bool) -> tuple[np.ndarray, list[IntTrace]]:
    seq = r.return_sequences
    if r.backward is None:
        out, tr = run_direction(r.forward, x, mask, seq, False, record)
        return out, [tr]
    fo, tf_ = run_direction(r.forward, x, mask, seq, True, record)
    bo, tb = run_direction(r.backward, x, mask, seq, True, record)
    if seq:
        bo = bo[:, ::-1]
    return merge(fo, bo, r.merge or "concat"), [tf_, tb]


def round_div(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``s / c`` rounded half away from zero (``c > 0``); 0 where ``c == 0``."""
    c = np.asarray(c, np.int64)
    safe = np.maximum(c, 1)
    q = (np.abs(s) + safe // 2) // safe
    return np.where(c > 0, np.sign(s) * q, 0)


def reduce(op: str, h: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Reductions over time of ``(N, T, D)`` int16 values (same exponent out)."""
    if op == "mean":
        m = np.ones(h.shape[:2], bool) if mask is None else mask
        return round_div((h * m[..., None]).sum(axis=1), m.sum(axis=1)[:, None])
    if op == "max":
        return h.max(axis=1)
    if op == "flatten":
        return h.reshape(h.shape[0], -1)
    return h[:, -1]


def dense(d: QDense, x: np.ndarray, last: bool) -> np.ndarray:
    """Hidden: int16 out (exponent ``out_exp``); last: the model output (see FamilyResult)."""
    pre = ((_matmul(x, d.w_q.T) * d.mult + HALF32) >> 32) + d.bias
    f = d.pre_frac
    if d.activation == "sigmoid":
        return sigmoid_q15(pre, f)
    if d.activation == "tanh":
        return tanh_q15(pre, f)
    if d.activation == "softmax":
        return softmax_q15(pre, f)
    if d.activation == "relu":
        pre = np.maximum(pre, 0)
    if last:
        return pre
    assert d.out_exp is not None
    s = f - d.out_exp
    v = (pre + (1 << (s - 1))) >> s if s > 0 else pre
    return np.clip(v, -32768, 32767)


def masks(q: FamilyQuant, xi: np.ndarray) -> np.ndarray | None:
    """``(N, T)`` True where a step counts (mask_zero / Masking), or None."""
    if q.input.kind == "tokens":
        return (np.asarray(xi) != 0) if q.input.mask_zero else None
    if q.input.mask_q is None:
        return None
    return np.any(np.asarray(xi) != q.input.mask_q, axis=-1)


def forward(q: FamilyQuant, xi: np.ndarray, record: bool = False,
            batch: int = 512) -> FamilyResult:
    """Run on integer inputs: ``(N, T)`` token ids (any int) or ``(N, T, F)`` int16 frames."""
    xi = np.asarray(xi)
    rank = 2 if q.input.kind == "tokens" else 3
    if xi.ndim != rank or (rank == 3 and xi.shape[-1] != q.input.features):
        raise ValueError(f"expected rank {rank} input of the model's shape, got {xi.shape}")
    parts = [_forward(q, xi[i : i + batch], record) for i in range(0, max(len(xi), 1), batch)]
    outs = np.concatenate([p[0] for p in parts]) if len(xi) else np.zeros((0, q.outputs),
                                                                         np.int64)
    traces: tuple[IntTrace, ...] = ()
    if record and len(xi):
        traces = tuple(
            IntTrace(t0.name, np.concatenate([p[1][k].states for p in parts]),
                     {g: np.concatenate([p[1][k].gates[g] for p in parts]) for g in t0.gates})
            for k, t0 in enumerate(parts[0][1]))
    return FamilyResult(outs, out_frac(q), traces)


def _forward(q: FamilyQuant, xi: np.ndarray, record: bool) -> tuple[np.ndarray, list[IntTrace]]:
    mask = masks(q, xi)
    if q.input.kind == "tokens":
        ids = map_ids(q, xi)
        assert q.input.emb_q is not None and q.input.emb_mult is not None
        h = q.input.emb_q.astype(np.int64)[ids] * q.input.emb_mult.astype(np.int64)[ids, None]
    else:
        h = xi.astype(np.int64)
        if mask is not None:  # Keras' Masking zeroes masked frames (only gates see it)
            h = h * mask[..., None]
    traces: list[IntTrace] = []
    for r in q.recurrent:
        h, tr = run_recurrent(r, h, mask, record)
        traces += tr
        mask = mask if r.return_sequences else None
    if q.reduction is not None:
        h = reduce(q.reduction, h, mask)
    for j, d in enumerate(q.head):
        h = dense(d, h, j == len(q.head) - 1)
    return h.astype(np.int64), traces


def to_integer_inputs(q: FamilyQuant, x: np.ndarray) -> np.ndarray:
    """What a stage receives (ids or float features) -> what the integer model reads."""
    return np.asarray(x, np.int64) if q.input.kind == "tokens" else quantize_features(q, x)


def predict(q: FamilyQuant, x: np.ndarray) -> np.ndarray:
    """Outputs as Keras' ``predict`` gives them, ``(N, K)`` float64 (probabilities or values)."""
    return forward(q, to_integer_inputs(q, x)).values


def argmax(result: FamilyResult) -> np.ndarray:
    """Decision per example (first maximum), ``(N,)``."""
    return np.argmax(result.outputs, axis=1)


def run_streams(q: FamilyQuant, streams: Sequence[np.ndarray]) -> np.ndarray:
    """Outputs ``(N, K)`` int64 of integer streams of any length, padded as the C pads them."""
    if not len(streams):
        return np.zeros((0, q.outputs), np.int64)
    return forward(q, np.stack([pad_stream(q, s) for s in streams])).outputs
