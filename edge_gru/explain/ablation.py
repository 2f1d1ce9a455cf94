"""Which tensor's quantization: the float reference with one weight tensor quantized at a time.

A tracer that knows its stage's quantized weights offers *variants*: copies of the IR in
which one tensor group holds the stage's dequantized values and everything else stays
float. The float64 reference runs each on the sample; the state error each causes alone
(pooled relative L2, as in :mod:`.localise`) says which tensor's quantization matters,
and ``all weights`` against the stage's own error says how much is weights rather than
arithmetic (integer activations, state rounding).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import reference
from ..fixed_point.scheme import STATE_FRAC, QuantizedGru
from ..ir import GRU, Dense, Embedding, ModelIR
from .localise import pooled_relative

ALL = "all weights"


def _blocks(rows: np.ndarray, units: int) -> np.ndarray:
    """Gate-interleaved rows ``(3u, D)`` (row ``3i + g``) -> Keras' ``(D, 3u)`` [z|r|h] blocks."""
    d = rows.shape[1]
    return rows.reshape(units, 3, d).transpose(2, 1, 0).reshape(d, 3 * units)


def _blocks_vec(values: np.ndarray, units: int) -> np.ndarray:
    return values.reshape(units, 3).T.reshape(-1)


def fixed_point_variants(ir: ModelIR, q: QuantizedGru) -> dict[str, ModelIR]:
    """The seed IR with each tensor group as the fixed-point C computes with it.

    Effective real values (see :mod:`edge_gru.fixed_point.scheme`): embedding
    ``emb_q * emb_mult * 2^-emb_exp``; a kernel row ``w_q * M / 2^(F + 32 - emb_exp)``;
    a recurrent row ``u_q * M / 2^(F + 32 - 15)``; biases ``b / 2^F`` (z and r hold
    ``b_i + b_r``, so the recurrent z/r biases become 0); dense likewise.
    """
    emb, gru, dense = ir.layers
    assert isinstance(emb, Embedding) and isinstance(gru, GRU) and isinstance(dense, Dense)
    u, f = q.units, q.pre_frac
    table = q.emb_q.astype(np.float64) * q.emb_mult.astype(np.float64)[:, None] * 2.0**-q.emb_exp
    w_rows = q.w_q.astype(np.float64) * q.w_mult.astype(np.float64)[:, None] / 2.0 ** (
        f + 32 - q.emb_exp)
    u_rows = q.u_q.astype(np.float64) * q.u_mult.astype(np.float64)[:, None] / 2.0 ** (
        f + 32 - STATE_FRAC)
    bias_x = _blocks_vec(q.bias_x.astype(np.float64), u) / 2.0**f
    rec_bias = np.zeros(3 * u)
    if q.reset_after:
        rec_bias[2 * u :] = q.bias_h.astype(np.float64) / 2.0**f
    d_kernel = (q.dense_q.astype(np.float64) * q.dense_mult / 2.0 ** (f + 32 - STATE_FRAC))
    groups: dict[str, tuple[Any, Any, Any]] = {
        "embedding": (replace(emb, table=table), gru, dense),
        "kernel": (emb, replace(gru, kernel=_blocks(w_rows, u)), dense),
        "recurrent kernel": (emb, replace(gru, recurrent_kernel=_blocks(u_rows, u)), dense),
        "biases": (emb, replace(gru, input_bias=bias_x, recurrent_bias=rec_bias), dense),
        "dense": (emb, gru, replace(dense, kernel=d_kernel.reshape(-1, 1),
                                    bias=np.array([q.dense_bias / 2.0**f]))),
    }
    every = (groups["embedding"][0],
             replace(gru, kernel=_blocks(w_rows, u), recurrent_kernel=_blocks(u_rows, u),
                     input_bias=bias_x, recurrent_bias=rec_bias),
             groups["dense"][2])
    variants = {name: replace(ir, layers=layers) for name, layers in groups.items()}
    variants[ALL] = replace(ir, layers=every)
    return variants


def ablate(variants: dict[str, ModelIR], x: np.ndarray,
           ref: reference.ReferenceOutput) -> dict[str, dict[str, float]]:
    """Per variant: mean and final pooled state error of the last GRU trace, output error."""
    found: dict[str, dict[str, float]] = {}
    base = ref.traces[-1].states
    for name, model in variants.items():
        out = reference.forward(model, x)
        err = pooled_relative(out.traces[-1].states - base, base)
        found[name] = {
            "mean_rel_l2": float(f"{err.mean():.4g}"),
            "final_rel_l2": float(f"{err[-1]:.4g}"),
            "output_abs_diff_mean": float(f"{np.nanmean(np.abs(out.outputs - ref.outputs)):.4g}"),
        }
    return found


def dominant_tensor(found: dict[str, dict[str, float]]) -> str | None:
    """The single tensor group whose quantization alone gives the largest mean state error."""
    single = {k: v["mean_rel_l2"] for k, v in found.items() if k != ALL}
    return max(single, key=lambda k: single[k]) if single else None
