"""The GRU written out step by step as a plain TensorFlow graph, from :class:`GruWeights`.

Why not ``keras.layers.GRU(unroll=True)``: Keras 3 emits SHAPE/FILL/SELECT_V2 ops that
TFLite Micro rejects, and TFLM has no GRU kernel. This graph uses only ops every TFLite
runtime has (GATHER, RESHAPE, FULLY_CONNECTED, SPLIT, ADD, SUB, MUL, LOGISTIC, TANH):

* prologue: embed all ``maxlen`` ids, project them with the input kernel in two matmuls
  (``[z, r]`` and ``h`` parts) and split the projections into per-step rows;
* step 0 is the GRU step with ``h_0 = 0`` written out (nothing for the converter to
  constant-fold differently), steps ``1..T-1`` are identical op sequences;
* epilogue: ``sigmoid(h_T . w + b)``.

The recurrent biases of ``z`` and ``r`` are folded into the input projection's bias
(they are added unconditionally), so the per-step ``[z, r]`` matmul has no bias.
Ops are named ``s{t}_{role}`` so the flatbuffer rewrite (:mod:`edge_gru.tflite.rewrite`)
can tell the steps apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..weights import GruWeights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _tf() -> Any:
    import tensorflow as tf

    return tf


def split_params(w: GruWeights) -> dict[str, np.ndarray]:
    """Float32 constants of the unrolled graph, in the layout it uses."""
    u = w.units
    rb = w.recurrent_bias.astype(np.float32)
    fold = np.concatenate([rb[:u], rb[u : 2 * u]]) if w.reset_after else np.zeros(2 * u, np.float32)
    return {
        "embedding": w.embedding.astype(np.float32),
        "w_zr": w.kernel[:, : 2 * u].astype(np.float32),
        "b_zr": (w.input_bias[: 2 * u] + fold).astype(np.float32),
        "w_h": w.kernel[:, 2 * u :].astype(np.float32),
        "b_h": w.input_bias[2 * u :].astype(np.float32),
        "u_zr": w.recurrent_kernel[:, : 2 * u].astype(np.float32),
        "u_h": w.recurrent_kernel[:, 2 * u :].astype(np.float32),
        "rb_h": rb[2 * u :].astype(np.float32),
        "dense_w": w.dense_kernel.reshape(-1, 1).astype(np.float32),
        "dense_b": np.asarray([w.dense_bias], np.float32),
    }


Fq = Callable[[Any, str, int], Any]


def _no_fq(x: Any, role: str, t: int) -> Any:
    return x


def gru_step(
    w: GruWeights, c: dict[str, Any], xzr: Any, xh: Any, h: Any | None, t: int, fq: Fq = _no_fq
) -> Any:
    """One step from the rows ``xzr (B, 2u)``, ``xh (B, u)``; ``h is None`` means ``h_0 = 0``.

    ``fq(tensor, role, t)`` may wrap each role's tensor (a fake-quant range for int8).
    """
    tf = _tf()
    u = w.units
    if h is None and not w.reset_after:
        # h_0 = 0 and r only multiplies h_0: r is not computed at all (a dead SPLIT output
        # makes the converter's output differ from run to run).
        z = tf.math.sigmoid(tf.slice(xzr, [0, 0], [-1, u], name=f"s{t}_xz"), name=f"s{t}_z")
        n = tf.math.tanh(xh, name=f"s{t}_n")
        return fq(tf.subtract(n, tf.multiply(z, n, name=f"s{t}_zd"), name=f"s{t}_h"), "h", t)
    if h is None:
        zr = tf.math.sigmoid(xzr, name=f"s{t}_zr")
    else:
        a = fq(tf.matmul(h, c["u_zr"], name=f"s{t}_azr"), "azr", t)
        zr = tf.math.sigmoid(fq(tf.add(xzr, a, name=f"s{t}_gzr"), "gzr", t), name=f"s{t}_zr")
    # An even split converts to SPLIT, which XNNPACK delegates (SPLIT_V it does not): the
    # steps then form one XNNPACK partition, which sharing tensors across steps requires.
    z, r = tf.split(zr, 2, axis=1, name=f"s{t}_split")
    if h is None:
        # h_0 = 0: reset_after gives n = tanh(x W_h + b_ih + r * b_rh).
        pre = tf.add(xh, tf.multiply(r, c["rb_h"], name=f"s{t}_rhh"), name=f"s{t}_gh")
        n = tf.math.tanh(pre, name=f"s{t}_n")
        return fq(tf.subtract(n, tf.multiply(z, n, name=f"s{t}_zd"), name=f"s{t}_h"), "h", t)
    if w.reset_after:
        hh = tf.add(tf.matmul(h, c["u_h"], name=f"s{t}_mh"), c["rb_h"], name=f"s{t}_hh")
        rhh = tf.multiply(r, fq(hh, "hh", t), name=f"s{t}_rhh")
    else:
        rh = fq(tf.multiply(r, h, name=f"s{t}_rh"), "rh", t)
        rhh = tf.matmul(rh, c["u_h"], name=f"s{t}_rhh")
    gh = fq(tf.add(xh, fq(rhh, "rhh", t), name=f"s{t}_gh"), "gh", t)
    n = tf.math.tanh(gh, name=f"s{t}_n")
    d = fq(tf.subtract(h, n, name=f"s{t}_d"), "d", t)
    zd = fq(tf.multiply(z, d, name=f"s{t}_zd"), "zd", t)
    return fq(tf.add(n, zd, name=f"s{t}_h"), "h", t)


def _constants(w: GruWeights) -> dict[str, Any]:
    tf = _tf()
    return {k: tf.constant(v, name=k) for k, v in split_params(w).items()}


def fake_quant(ranges: dict[str, tuple[float, float]]) -> Fq:
    """Wrap role tensors of steps >= 1 (and every state) in their fixed int8 range."""
    tf = _tf()

    def fq(x: Any, role: str, t: int) -> Any:
        if t == 0 and role != "h":
            return x
        lo, hi = ranges[role]
        return tf.quantization.fake_quant_with_min_max_args(
            x, min=lo, max=hi, num_bits=8, name=f"s{t}_{role}_q"
        )

    return fq


def unrolled_function(
    w: GruWeights, batch: int = 1, ranges: dict[str, tuple[float, float]] | None = None
) -> Any:
    """A ``tf.function`` ``ids (batch, maxlen) int32 -> probability (batch, 1) float32``.

    ``batch == 1`` gives the TFLM-friendly graph (one SPLIT per projection yields the
    per-step rows); larger batches unstack the rows instead, for fast float evaluation.
    ``ranges`` (:func:`edge_gru.tflite.step_ranges.role_ranges`) adds fake-quant ops that fix one
    int8 range per step role for the converter; leave it out for float.
    """
    tf = _tf()
    if batch < 1:
        raise ValueError("batch must be >= 1")
    fq = fake_quant(ranges) if ranges is not None else _no_fq
    c = _constants(w)
    steps, e, u = w.maxlen, w.embed_dim, w.units

    @tf.function(input_signature=[tf.TensorSpec([batch, steps], tf.int32, name="ids")])
    def classify(ids: Any) -> Any:
        x = tf.reshape(tf.gather(c["embedding"], ids), [batch * steps, e], name="x")
        pzr = tf.add(tf.matmul(x, c["w_zr"]), c["b_zr"], name="proj_zr")
        ph = tf.add(tf.matmul(x, c["w_h"]), c["b_h"], name="proj_h")
        if batch == 1:
            rows_zr = tf.split(pzr, steps, axis=0, name="rows_zr")
            rows_h = tf.split(ph, steps, axis=0, name="rows_h")
        else:
            rows_zr = tf.unstack(tf.reshape(pzr, [batch, steps, 2 * u]), axis=1)
            rows_h = tf.unstack(tf.reshape(ph, [batch, steps, u]), axis=1)
        h = None
        for t in range(steps):
            h = gru_step(w, c, rows_zr[t], rows_h[t], h, t, fq)
        logit = tf.add(tf.matmul(h, c["dense_w"]), c["dense_b"], name="logit")
        return tf.math.sigmoid(logit, name="probability")

    return classify


def step_function(w: GruWeights) -> Any:
    """One timestep ``(token (1, 1) int32, h (1, u)) -> (h' (1, u), probability (1, 1))``.

    The probability is ``sigmoid(h' . w + b)``: after the last token it is the classifier's
    output, so the firmware needs no second model.
    """
    tf = _tf()
    c = _constants(w)
    u = w.units

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, 1], tf.int32, name="token"),
            tf.TensorSpec([1, u], tf.float32, name="state"),
        ]
    )
    def step(token: Any, state: Any) -> Any:
        x = tf.reshape(tf.gather(c["embedding"], token), [1, w.embed_dim], name="x")
        xzr = tf.add(tf.matmul(x, c["w_zr"]), c["b_zr"], name="proj_zr")
        xh = tf.add(tf.matmul(x, c["w_h"]), c["b_h"], name="proj_h")
        h = gru_step(w, c, xzr, xh, state, 1)
        logit = tf.add(tf.matmul(h, c["dense_w"]), c["dense_b"], name="logit")
        return {"new_state": h, "probability": tf.math.sigmoid(logit, name="probability")}

    return step


def predict_unrolled(w: GruWeights, ids: np.ndarray, batch: int = 256) -> np.ndarray:
    """Float32 probabilities ``(N,)`` of the unrolled TF graph (the parity check vs Keras)."""
    ids = np.asarray(ids, np.int32)
    fn = unrolled_function(w, batch)
    out = np.empty(len(ids), np.float64)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        pad = batch - len(chunk)
        full = np.concatenate([chunk, np.zeros((pad, ids.shape[1]), np.int32)]) if pad else chunk
        out[start : start + len(chunk)] = fn(full).numpy().reshape(-1)[: len(chunk)]
    return out
