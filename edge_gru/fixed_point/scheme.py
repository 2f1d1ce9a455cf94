"""The quantization scheme: float ``GruWeights`` -> integer tensors the C library consumes.

Number formats (``F`` = ``pre_frac``, chosen per model, at most 24):

* embedding: int8 ``emb_q (V, E)`` with a per-row uint8 multiplier ``emb_mult (V,)``; the
  embedded token is the int16 ``x = emb_q * emb_mult`` with value ``x * 2^-emb_exp``
  (exact: ``|x| <= 127 * 255``, no rounding in C).
* kernel / recurrent kernel: int8, one scale per output row (symmetric, max-abs / 127),
  stored transposed and gate-interleaved: row ``3 i + g`` is gate ``g`` (z, r, h) of unit ``i``.
* hidden state: int16 Q0.15. Accumulators: int32.
* gate pre-activations: int32 Q(31-F).F. An accumulator ``a`` becomes Q.F through a
  per-row int32 multiplier ``M``: ``(a * M + 2^31) >> 32`` (int64 product, round half up,
  arithmetic shift); ``M = round(scale * 2^(F + 32 - input_frac))``.
* biases: int32 Q.F (``bias_x`` for every row; z and r rows hold ``b_i + b_r``;
  ``bias_h`` holds the recurrent candidate bias when ``reset_after``).
* dense: int8 per-tensor, multiplier like a gate row, bias int32 Q.F; score Q0.15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import EdgeGruError
from ..weights import GruWeights

OOV_ID = 2  # keras.datasets.imdb oov_char
PAD_ID = 0
MAX_PRE_FRAC = 24  # the LUT interpolation product must fit int32
MIN_PRE_FRAC = 12
EMB_Q_MAX = 127
EMB_MULT_MAX = 255
STATE_FRAC = 15


@dataclass(frozen=True)
class QuantizedGru:
    """Every integer tensor and constant of the fixed-point model (shapes in the names)."""

    vocab: int
    embed_dim: int
    units: int
    maxlen: int
    reset_after: bool
    oov_id: int
    emb_q: np.ndarray  # (V, E) int8
    emb_mult: np.ndarray  # (V,) uint8
    emb_exp: int
    w_q: np.ndarray  # (3u, E) int8, gate-interleaved rows
    w_mult: np.ndarray  # (3u,) int32
    u_q: np.ndarray  # (3u, u) int8, gate-interleaved rows
    u_mult: np.ndarray  # (3u,) int32
    bias_x: np.ndarray  # (3u,) int32 Q.F, gate-interleaved
    bias_h: np.ndarray  # (u,) int32 Q.F, recurrent candidate bias (zeros unless reset_after)
    dense_q: np.ndarray  # (u,) int8
    dense_mult: int
    dense_bias: int
    pre_frac: int

    @property
    def weight_bytes(self) -> int:
        """Bytes of every weight array as stored in flash (LUTs excluded)."""
        arrays = (self.emb_q, self.emb_mult, self.w_q, self.w_mult, self.u_q, self.u_mult,
                  self.bias_x, self.bias_h, self.dense_q)
        return int(sum(a.nbytes for a in arrays)) + 8


def _interleave(matrix: np.ndarray, units: int) -> np.ndarray:
    """``(..., 3u)`` in Keras' [z | r | h] blocks -> ``(..., 3u)`` ordered unit by unit."""
    lead = matrix.shape[:-1]
    return matrix.reshape(*lead, 3, units).swapaxes(-1, -2).reshape(*lead, 3 * units)


def _row_scales(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 quantization: (int8 rows, float scales)."""
    maxabs = np.max(np.abs(rows), axis=1)
    scale = maxabs / EMB_Q_MAX  # an all-zero row gets scale 0 (multiplier 0)
    divisor = np.where(maxabs > 0, scale, 1.0)
    q = np.clip(np.rint(rows / divisor[:, None]), -EMB_Q_MAX, EMB_Q_MAX).astype(np.int8)
    return q, scale


def _quantize_embedding(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-row scale ``emb_mult[t] * 2^-emb_exp``; rows are quantized with the rounded scale."""
    maxabs = np.max(np.abs(emb), axis=1)
    top = float(maxabs.max())
    if not math.isfinite(top):
        raise EdgeGruError("embedding holds non-finite values")
    exp = 30 if top == 0.0 else int(math.floor(math.log2(EMB_MULT_MAX * EMB_Q_MAX / top)))
    while exp > 0 and math.ceil(top * 2.0**exp / EMB_Q_MAX) > EMB_MULT_MAX:
        exp -= 1
    exp = min(exp, 30)
    mult = np.clip(np.ceil(maxabs * 2.0**exp / EMB_Q_MAX), 1, EMB_MULT_MAX)
    scale = mult * 2.0**-exp
    q = np.clip(np.rint(emb / scale[:, None]), -EMB_Q_MAX, EMB_Q_MAX).astype(np.int8)
    return q, mult.astype(np.uint8), exp


def _multiplier(scale: np.ndarray, shift: int) -> np.ndarray:
    return np.rint(np.asarray(scale, np.float64) * 2.0**shift).astype(np.int64)


def quantize(w: GruWeights) -> QuantizedGru:
    """Quantize float weights; raises :class:`EdgeGruError` if no Q.F format fits."""
    for name in ("embedding", "kernel", "recurrent_kernel", "input_bias", "recurrent_bias"):
        if not np.all(np.isfinite(getattr(w, name))):
            raise EdgeGruError(f"GRU {name} holds non-finite values")
    u = w.units
    emb_q, emb_mult, emb_exp = _quantize_embedding(np.asarray(w.embedding, np.float64))
    w_rows = _interleave(np.asarray(w.kernel, np.float64), u).T  # (3u, E)
    u_rows = _interleave(np.asarray(w.recurrent_kernel, np.float64), u).T  # (3u, u)
    w_q, w_scale = _row_scales(w_rows)
    u_q, u_scale = _row_scales(u_rows)
    d = np.asarray(w.dense_kernel, np.float64).reshape(1, -1)
    d_q, d_scale = _row_scales(d)
    bi = np.asarray(w.input_bias, np.float64)
    br = np.asarray(w.recurrent_bias, np.float64)
    bx = bi.copy()
    if w.reset_after:
        bx[: 2 * u] += br[: 2 * u]  # z and r: both biases fold into one
        bh = br[2 * u :]
    else:
        bh = np.zeros(u)
    bx = _interleave(bx, u)
    # Worst-case |accumulator| per row, for the int32 headroom check.
    x16 = emb_q.astype(np.float64) * emb_mult[:, None]
    acc_x = np.max(np.abs(x16 @ w_q.T.astype(np.float64)), axis=0)
    acc_h = np.sum(np.abs(u_q.astype(np.float64)), axis=1) * 32767
    acc_d = float(np.sum(np.abs(d_q.astype(np.float64)))) * 32767
    for frac in range(MAX_PRE_FRAC, MIN_PRE_FRAC - 1, -1):
        mx = _multiplier(w_scale, frac + 32 - emb_exp)
        mh = _multiplier(u_scale, frac + 32 - STATE_FRAC)
        md = _multiplier(d_scale, frac + 32 - STATE_FRAC)
        if max(mx.max(), mh.max(), md.max()) >= 2**31:
            continue
        bxq = np.rint(bx * 2.0**frac)
        bhq = np.rint(bh * 2.0**frac)
        bdq = round(float(w.dense_bias) * 2.0**frac)
        bound = (acc_x * mx + acc_h * mh) / 2.0**32 + np.abs(bxq) + 2
        bound[2::3] += np.abs(bhq)
        dense_bound = acc_d * md[0] / 2.0**32 + abs(bdq) + 2
        if max(bound.max(), dense_bound) < 2**30:
            return QuantizedGru(
                vocab=w.vocab, embed_dim=w.embed_dim, units=u, maxlen=w.maxlen,
                reset_after=w.reset_after, oov_id=OOV_ID if w.vocab > OOV_ID else 0,
                emb_q=emb_q, emb_mult=emb_mult, emb_exp=emb_exp,
                w_q=w_q, w_mult=mx.astype(np.int32), u_q=u_q, u_mult=mh.astype(np.int32),
                bias_x=bxq.astype(np.int32), bias_h=bhq.astype(np.int32),
                dense_q=d_q.reshape(-1), dense_mult=int(md[0]), dense_bias=int(bdq),
                pre_frac=frac,
            )
    raise EdgeGruError("weights too large for the fixed-point format (no Q.F fits int32)")
