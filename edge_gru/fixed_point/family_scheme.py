"""Integer scheme for every model of the GRU family (the IR): float ``ModelIR`` -> integers.

The seed shape keeps :mod:`edge_gru.fixed_point.scheme`; this module quantizes any
``ModelIR`` for :mod:`edge_gru.fixed_point.family_model` and ``firmware/src/edge_gru_family.c``.
Every activation vector between layers is int16 with a power-of-two exponent ``e``
(value = ``x * 2^-e``):

* feature input: ``x[f]`` is the GRU-input value (after ``Normalization``) in
  ``Q(15-k_f).k_f``; ``k_f`` per feature from calibration data (4x headroom). The
  Normalization's mean and scale and the per-feature ``2^(e - k_f)`` fold into the first
  kernel (``e = max k_f``). Raw readings: :class:`QInput` ``raw_*`` fields.
* token input: int8 embedding rows with a per-row uint8 multiplier (the seed's scheme),
  ``e = emb_exp``.
* GRU (each direction): int8 kernels with one scale per row, int32 multipliers
  ``M = round(scale * 2^(F + 32 - e_in))``, Q(31-F).F gate inputs and biases, Q0.15 gates
  and state (the seed's equations and rounding, ``F`` per layer).
* Bidirectional merge: concat / mul / ave give Q0.15 (``e = 15``), sum gives ``e = 14``
  (``(a + b + 1) >> 1``, the same integer as ave).
* Dense: int8 weights per output row, multiplier to Q.F (``F`` per layer), int32 bias;
  sigmoid / tanh through the tables (Q0.15), relu / linear hidden layers rounded to int16
  with an exponent from calibration data; the last layer's output is sigmoid Q0.15,
  softmax Q0.15 (integer, :mod:`edge_gru.fixed_point.family_lut`) or linear int32 Q.F.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ir as I
from .. import reference
from ..errors import EdgeGruError
from .scheme import EMB_Q_MAX, MAX_PRE_FRAC, MIN_PRE_FRAC, OOV_ID, _quantize_embedding

STATE_EXP = 15
HEADROOM = 4.0  # calibration max |value| uses a quarter of the int16 range
RAW_SHIFT = 24  # raw-reading helper: x = (raw - offset) * mult >> RAW_SHIFT
ACC_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class QInput:
    """Input side. Tokens: ``emb_q (V, E)`` int8, ``emb_mult (V,)`` uint8, value exponent
    ``emb_exp``. Features: ``k (F,)`` exponents of the int16 frame; ``mask_q (F,)`` the masked
    frame (``None`` without masking); raw helper ``x[f] = sat16(((raw[f] - raw_offset[f]) *
    raw_mult[f] + 2^23) >> 24)`` with ``raw = reading * 2^raw_frac[f]``."""

    kind: str
    timesteps: int
    features: int
    vocab: int
    exp: int  # value exponent of the vector the first GRU reads
    pad_value: float
    mask_zero: bool = False
    oov_id: int = 0
    emb_q: np.ndarray | None = None
    emb_mult: np.ndarray | None = None
    k: np.ndarray | None = None  # (F,) int
    offset: np.ndarray | None = None  # (F,) float64 reading offset (Normalization mean)
    divisor: np.ndarray | None = None  # (F,) float64 (Normalization scale, else 1)
    mask_q: np.ndarray | None = None  # (F,) int16
    raw_frac: np.ndarray | None = None  # (F,) int
    raw_offset: np.ndarray | None = None  # (F,) int32
    raw_mult: np.ndarray | None = None  # (F,) int32


@dataclass(frozen=True)
class QGru:
    """One GRU direction; rows in Keras' block order ``[z | r | h]`` (C interleaves them)."""

    name: str
    units: int
    input_dim: int
    in_exp: int
    reset_after: bool
    go_backwards: bool
    w_q: np.ndarray  # (3u, D) int8
    w_mult: np.ndarray  # (3u,) int64 (< 2^31)
    u_q: np.ndarray  # (3u, u) int8
    u_mult: np.ndarray  # (3u,) int64
    bias_x: np.ndarray  # (3u,) int64 Q.F; z, r rows hold b_i + b_r when reset_after
    bias_h: np.ndarray  # (u,) int64 Q.F recurrent candidate bias (zeros unless reset_after)
    pre_frac: int


@dataclass(frozen=True)
class QRecurrent:
    """A GRU (``backward`` None) or a Bidirectional layer; output exponent ``out_exp``."""

    name: str
    forward: QGru
    backward: QGru | None
    merge: str | None
    return_sequences: bool
    out_exp: int

    @property
    def output_dim(self) -> int:
        u = self.forward.units
        return 2 * u if self.merge == "concat" else u


@dataclass(frozen=True)
class QDense:
    """``w_q (out, in)`` int8, ``mult (out,)``, ``bias (out,)`` Q.F; ``out_exp`` of the int16
    output of a hidden relu/linear layer (15 for sigmoid/tanh, None for the last layer)."""

    name: str
    w_q: np.ndarray
    mult: np.ndarray
    bias: np.ndarray
    pre_frac: int
    in_exp: int
    activation: str
    out_exp: int | None


@dataclass(frozen=True)
class FamilyQuant:
    """The whole quantized model; ``task`` and ``outputs`` as in the IR."""

    name: str
    input: QInput
    recurrent: tuple[QRecurrent, ...]
    reduction: str | None
    head: tuple[QDense, ...]
    task: str
    outputs: int

    @property
    def masked(self) -> bool:
        return self.input.mask_zero or self.input.mask_q is not None

    @property
    def output_kind(self) -> str:
        """``sigmoid`` / ``softmax`` (Q0.15) or ``linear`` (int32 Q.F, F = last pre_frac)."""
        act = self.head[-1].activation
        return act if act in ("sigmoid", "softmax") else "linear"

    @property
    def streamable(self) -> bool:
        """True when every GRU runs forward in time (per-step calls are possible)."""
        return all(r.backward is None and not r.forward.go_backwards for r in self.recurrent)

    @property
    def weight_bytes(self) -> int:
        total = 0
        if self.input.emb_q is not None:
            total += self.input.emb_q.size + self.input.vocab
        for r in self.recurrent:
            for g in (r.forward, r.backward):
                if g is not None:
                    total += g.w_q.size + g.u_q.size + 4 * (10 * g.units)
        for d in self.head:
            total += d.w_q.size + 8 * d.w_q.shape[0]
        return int(total)


def _row_scales(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maxabs = np.max(np.abs(rows), axis=1) if rows.shape[1] else np.zeros(rows.shape[0])
    scale = maxabs / EMB_Q_MAX
    divisor = np.where(maxabs > 0, scale, 1.0)
    q = np.clip(np.rint(rows / divisor[:, None]), -EMB_Q_MAX, EMB_Q_MAX).astype(np.int8)
    return q, scale


def _check_finite(name: str, *arrays: np.ndarray) -> None:
    for a in arrays:
        if not np.all(np.isfinite(a)):
            raise EdgeGruError(f"{name} holds non-finite values")


def _exponent(maxabs: float, lo: int = 0, hi: int = 15) -> int:
    """Largest exponent e in [lo, hi] with ``maxabs * HEADROOM * 2^e <= 32767``."""
    if maxabs <= 0 or not math.isfinite(maxabs):
        return hi
    return int(min(hi, max(lo, math.floor(math.log2(32767.0 / (HEADROOM * maxabs))))))


def _quantize_gru(layer: I.GRU, name: str, in_exp: int, x_bound: np.ndarray | float,
                  kernel: np.ndarray | None = None) -> QGru:
    """``x_bound``: worst-case |x . w_q row| per row (array) or the max |x| (float)."""
    k = np.asarray(layer.kernel if kernel is None else kernel, np.float64)
    _check_finite(f"GRU {name}", k, layer.recurrent_kernel, layer.input_bias, layer.recurrent_bias)
    u = layer.units
    w_q, w_scale = _row_scales(k.T)
    u_q, u_scale = _row_scales(np.asarray(layer.recurrent_kernel, np.float64).T)
    bi = np.asarray(layer.input_bias, np.float64)
    br = np.asarray(layer.recurrent_bias, np.float64)
    bx = bi.copy()
    if layer.reset_after:
        bx[: 2 * u] += br[: 2 * u]
        bh = br[2 * u :]
    else:
        bh = np.zeros(u)
    if np.ndim(x_bound) == 0:
        acc_x = np.sum(np.abs(w_q.astype(np.float64)), axis=1) * float(x_bound)
    else:
        acc_x = np.asarray(x_bound, np.float64)
    acc_h = np.sum(np.abs(u_q.astype(np.float64)), axis=1) * 32768
    if max(acc_x.max(initial=0), acc_h.max(initial=0)) > ACC_LIMIT:
        raise EdgeGruError(f"GRU {name}: input too wide for int32 accumulators")
    for frac in range(MAX_PRE_FRAC, MIN_PRE_FRAC - 1, -1):
        mx = np.rint(w_scale * 2.0 ** (frac + 32 - in_exp)).astype(np.int64)
        mh = np.rint(u_scale * 2.0 ** (frac + 32 - STATE_EXP)).astype(np.int64)
        if max(mx.max(), mh.max()) >= 2**31:
            continue
        bxq = np.rint(bx * 2.0**frac).astype(np.int64)
        bhq = np.rint(bh * 2.0**frac).astype(np.int64)
        bound = (acc_x * mx + acc_h * mh) / 2.0**32 + np.abs(bxq) + 2
        bound[2 * u :] += np.abs(bhq)
        if bound.max() < 2**30:
            return QGru(name, u, k.shape[0], in_exp, layer.reset_after, layer.go_backwards,
                        w_q, mx, u_q, mh, bxq, bhq, frac)
    raise EdgeGruError(f"GRU {name}: weights too large for the fixed-point format")


def _quantize_dense(layer: I.Dense, in_exp: int, in_bound: float, out_exp: int | None,
                    max_frac: int = MAX_PRE_FRAC) -> QDense:
    kern = np.asarray(layer.kernel, np.float64)
    _check_finite(f"Dense {layer.name}", kern, layer.bias)
    w_q, scale = _row_scales(kern.T)
    acc = np.sum(np.abs(w_q.astype(np.float64)), axis=1) * in_bound
    if acc.max(initial=0) > ACC_LIMIT:
        raise EdgeGruError(f"Dense {layer.name}: input too wide for int32 accumulators")
    for frac in range(max_frac, MIN_PRE_FRAC - 1, -1):
        m = np.rint(scale * 2.0 ** (frac + 32 - in_exp)).astype(np.int64)
        if m.max(initial=0) >= 2**31:
            continue
        b = np.rint(np.asarray(layer.bias, np.float64) * 2.0**frac).astype(np.int64)
        if (acc * m / 2.0**32 + np.abs(b) + 2).max(initial=0) < 2**30:
            oe = None if out_exp is None else min(out_exp, frac)
            return QDense(layer.name, w_q, m, b, frac, in_exp, layer.activation, oe)
    raise EdgeGruError(f"Dense {layer.name}: weights too large for the fixed-point format")


def _features_input(ir: I.ModelIR, calib: np.ndarray) -> tuple[QInput, np.ndarray]:
    """Feature quantization and the first GRU's folded kernel scale ``(F,)``."""
    nf = int(ir.input.features or 0)
    norm, masking = ir.normalization, ir.masking
    offset = np.zeros(nf) if norm is None else np.asarray(norm.mean, np.float64)
    divisor = np.ones(nf) if norm is None else np.asarray(norm.scale, np.float64)
    _check_finite("Normalization", offset, divisor)
    v = (np.asarray(calib, np.float64).reshape(-1, nf) - offset) / divisor
    maxabs = np.max(np.abs(v), axis=0) if len(v) else np.ones(nf)
    k = np.array([_exponent(float(m)) for m in maxabs], np.int64)
    e = int(k.max())
    mask_q = None
    if masking is not None:
        mask_q = np.clip(np.rint(masking.mask_value * 2.0**k), -32768, 32767).astype(np.int16)
    # raw readings: int32 raw = reading * 2^raw_frac, raw_frac leaving 2^7 headroom
    rmax = np.max(np.abs(np.asarray(calib, np.float64).reshape(-1, nf)), axis=0) if len(v) else \
        np.ones(nf)
    raw_frac = np.array([int(np.clip(math.floor(math.log2(2**24 / max(m, 1e-6))), -8, 24))
                         for m in rmax], np.int64)
    raw_offset = np.rint(offset * 2.0**raw_frac).astype(np.int64)
    raw_mult = np.rint(2.0 ** (k - raw_frac + RAW_SHIFT) / divisor).astype(np.int64)
    if raw_mult.max() >= 2**31 or np.abs(raw_offset).max() >= 2**31:
        raise EdgeGruError("feature scales out of range for the raw-reading helper")
    q = QInput("features", ir.input.timesteps, nf, 0, e, float(ir.input.pad_value),
               k=k, offset=offset, divisor=divisor, mask_q=mask_q, raw_frac=raw_frac,
               raw_offset=raw_offset, raw_mult=raw_mult)
    return q, 2.0 ** (e - k)


def _float_activations(ir: I.ModelIR, upto: int, x: np.ndarray) -> np.ndarray:
    """Float output of ``ir.layers[:upto + 1]`` on ``x`` (the reference, truncated)."""
    part = I.ModelIR(ir.name, ir.input, ir.layers[: upto + 1], ir.task)
    return reference.predict(part, x)


def quantize_family(ir: I.ModelIR, calibration: np.ndarray) -> FamilyQuant:
    """Quantize any IR model; ``calibration`` inputs (like the model's ``x``) set the feature
    and hidden relu/linear ranges. Raises :class:`EdgeGruError` if no format fits."""
    calibration = np.asarray(calibration)
    fold: np.ndarray | None = None
    emb = ir.embedding
    if ir.input.kind == "tokens":
        assert emb is not None
        table = np.asarray(emb.table, np.float64)
        _check_finite("embedding", table)
        emb_q, emb_mult, emb_exp = _quantize_embedding(table)
        qin = QInput("tokens", ir.input.timesteps, 0, emb.vocab, emb_exp,
                     float(ir.input.pad_value), mask_zero=emb.mask_zero,
                     oov_id=OOV_ID if emb.vocab > OOV_ID else 0, emb_q=emb_q, emb_mult=emb_mult)
        x16 = emb_q.astype(np.float64) * emb_mult[:, None]
    else:
        qin, fold = _features_input(ir, calibration)
        x16 = None
    recurrent: list[QRecurrent] = []
    in_exp = qin.exp
    for layer in ir.recurrent:
        first = not recurrent
        dirs = [layer] if isinstance(layer, I.GRU) else [layer.forward, layer.backward]
        names = [layer.name] if isinstance(layer, I.GRU) else [
            f"{layer.name}/forward", f"{layer.name}/backward"]
        qd = []
        for g, name in zip(dirs, names):
            kernel = np.asarray(g.kernel, np.float64)
            if first and fold is not None:
                kernel = kernel * fold[:, None]
            if first and x16 is not None:
                w_q, _ = _row_scales(kernel.T)
                bound: np.ndarray | float = np.max(np.abs(x16 @ w_q.T.astype(np.float64)), axis=0)
            else:
                bound = 32768.0
            qd.append(_quantize_gru(g, name, in_exp, bound, kernel))
        if isinstance(layer, I.GRU):
            rec = QRecurrent(layer.name, qd[0], None, None, layer.return_sequences, STATE_EXP)
        else:
            out_exp = 14 if layer.merge_mode == "sum" else STATE_EXP
            rec = QRecurrent(layer.name, qd[0], qd[1], layer.merge_mode,
                             layer.return_sequences, out_exp)
        recurrent.append(rec)
        in_exp = rec.out_exp
    red = ir.reduction
    head: list[QDense] = []
    dense_index = [i for i, layer in enumerate(ir.layers) if isinstance(layer, I.Dense)]
    for j, li in enumerate(dense_index):
        layer = ir.layers[li]
        assert isinstance(layer, I.Dense)
        last = j == len(dense_index) - 1
        out_exp: int | None = None
        if not last:
            if layer.activation in ("sigmoid", "tanh"):
                out_exp = STATE_EXP
            elif layer.activation in ("relu", "linear"):
                act = _float_activations(ir, li, calibration)
                out_exp = _exponent(float(np.nanmax(np.abs(act))) if act.size else 0.0)
            else:
                raise EdgeGruError(f"hidden Dense({layer.activation}) is not supported")
        # the first Dense takes at most the last GRU's F: on the seed shape this is the seed
        # scheme's single F, so the family path gives the seed's bits there
        cap = recurrent[-1].forward.pre_frac if not head else MAX_PRE_FRAC
        d = _quantize_dense(layer, in_exp, 32768.0, out_exp, max(cap, MIN_PRE_FRAC))
        head.append(d)
        in_exp = d.out_exp if d.out_exp is not None else in_exp
    if ir.task.kind == "multiclass" and head[-1].activation != "softmax":
        raise EdgeGruError("a multiclass model must end in Dense(softmax)")
    return FamilyQuant(ir.name, qin, tuple(recurrent), None if red is None else red.op,
                       tuple(head), ir.task.kind, ir.task.outputs)
