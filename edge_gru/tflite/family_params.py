"""Float32 constants of the family graph (:mod:`edge_gru.tflite.family`), computed in NumPy.

One GRU direction's parameters in the layout the unrolled step uses, as in the seed unroll
(:func:`edge_gru.tflite.unroll.split_params`): the input kernel in two parts, ``[z, r]``
(``(D, 2u)``) and ``h`` (``(D, u)``), so one even SPLIT of the ``[z, r]`` gate gives ``z`` and
``r``; with ``reset_after`` the recurrent biases of ``z`` and ``r`` are added unconditionally
and so are folded into the input projection's bias, leaving ``rb_h`` (``(u,)``) as the only
recurrent bias.

A ``Normalization`` directly in front of the first recurrent layer is folded into that
layer's input kernels (:func:`fold_normalization`): with ``s = 1 / scale``,
``((x - mean) * s) W + b = x (diag(s) W) + (b - (mean * s) W)``, computed in float64 and
rounded once to float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ir


@dataclass(frozen=True)
class GruParams:
    """One GRU direction as the step reads it (float32).

    ``w_zr (D, 2u)``, ``b_zr (2u,)``, ``w_h (D, u)``, ``b_h (u,)``, ``u_zr (u, 2u)``,
    ``u_h (u, u)``, ``rb_h (u,)`` (zeros when ``reset_after`` is False: Keras then has one
    bias, all of it in ``b_zr``/``b_h``).
    """

    units: int
    reset_after: bool
    go_backwards: bool
    w_zr: np.ndarray
    b_zr: np.ndarray
    w_h: np.ndarray
    b_h: np.ndarray
    u_zr: np.ndarray
    u_h: np.ndarray
    rb_h: np.ndarray


@dataclass(frozen=True)
class Affine:
    """``x -> x * scale + shift`` per feature, float64 ``(F,)`` each (a folded Normalization)."""

    scale: np.ndarray
    shift: np.ndarray


def normalization_affine(layer: ir.Normalization) -> Affine:
    """``(x - mean) / scale`` as ``x * s + c`` with ``s = 1 / scale``, ``c = -mean / scale``."""
    inv = 1.0 / layer.scale.astype(np.float64)
    return Affine(inv, -layer.mean.astype(np.float64) * inv)


def fold_normalization(kernel: np.ndarray, bias: np.ndarray, affine: Affine | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel (D, k), bias (k,))`` of ``affine(x) W + b``, float64."""
    w = kernel.astype(np.float64)
    b = bias.astype(np.float64)
    if affine is None:
        return w, b
    return affine.scale[:, None] * w, b + affine.shift @ w


def gru_params(layer: ir.GRU, affine: Affine | None = None) -> GruParams:
    """The step layout of ``layer``; ``affine`` folds a Normalization in front of it."""
    u = layer.units
    kernel, bias = fold_normalization(layer.kernel, layer.input_bias, affine)
    rb = layer.recurrent_bias.astype(np.float64)
    if layer.reset_after:
        bias = bias + np.concatenate([rb[: 2 * u], np.zeros(u)])
        rb_h = rb[2 * u :]
    else:
        rb_h = np.zeros(u)
    rk = layer.recurrent_kernel

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32)

    return GruParams(
        units=u,
        reset_after=layer.reset_after,
        go_backwards=layer.go_backwards,
        w_zr=f32(kernel[:, : 2 * u]),
        b_zr=f32(bias[: 2 * u]),
        w_h=f32(kernel[:, 2 * u :]),
        b_h=f32(bias[2 * u :]),
        u_zr=f32(rk[:, : 2 * u]),
        u_h=f32(rk[:, 2 * u :]),
        rb_h=f32(rb_h),
    )


def mask_table(vocab: int) -> np.ndarray:
    """``(vocab, 1)`` float32: 0 for id 0, 1 otherwise; GATHER by the ids gives the mask.

    The ``mask_zero`` mask ``ids != 0`` as a table lookup needs no NOT_EQUAL/CAST ops and
    is exact (ids outside ``[0, vocab)`` are out of range for the embedding GATHER too).
    """
    table = np.ones((vocab, 1), np.float32)
    table[0] = 0.0
    return table
