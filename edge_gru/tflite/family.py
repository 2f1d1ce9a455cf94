"""Any model of the GRU family (a :class:`~edge_gru.ir.ModelIR`) as an explicitly unrolled TF graph.

The generalisation of the seed unroll (:mod:`edge_gru.tflite.unroll`; why not
``keras.layers.GRU(unroll=True)``: it emits SHAPE/FILL/SELECT_V2 that TFLM rejects) to
every IR construct, with Keras' inference semantics as :mod:`edge_gru.reference` states them:

* input: ``Embedding`` is a GATHER; its ``mask_zero`` mask is a second GATHER from a 0/1
  table (:func:`~edge_gru.tflite.family_params.mask_table`). ``Normalization`` right before
  the first recurrent layer is folded into its input kernels, elsewhere it is
  ``(x - mean) * (1 / scale)`` in the graph. ``Masking`` is Keras' own formula:
  ``keep = max_f(x != v)`` (NOT_EQUAL, CAST, REDUCE_MAX), ``x = x * keep``.
* a recurrent layer's input projection is one FULLY_CONNECTED over all steps (rows
  ``t``-major: ``(T * B, D)``, a returned sequence PACKed: TFLM's CONCATENATION takes at
  most 10 inputs), SPLIT into per-step rows; each step is the seed's op sequence
  (step 0 with ``h_0 = 0`` written out). A masked step keeps the state with the 0/1 mask
  ``m_t (B, 1)``: ``h_t = h_{t-1} + m_t * (h_new - h_{t-1})`` (``h_{t-1}`` exactly when
  ``m_t = 0``; no ``1 - m`` tensor, see :meth:`_Graph.direction`).
* ``go_backwards`` runs the rows in reverse and returns outputs in that order;
  ``Bidirectional`` flips the backward outputs back, zeroes masked steps' outputs when it
  returns sequences (``out_t = h_t * m_t``) and merges with CONCATENATION/ADD/MUL
  (``ave`` = ``(a + b) * 0.5``). A returned sequence carries the input's mask on.
* reductions: ``mean`` = PACK + MEAN, or ``sum_t(h_t m_t) / sum_t(m_t)`` (PACK, SUM, DIV)
  under a mask (an all-masked row gives NaN, as Keras); ``max`` = PACK + REDUCE_MAX;
  ``flatten`` = PACK + RESHAPE; ``last`` = the last row.
* head: FULLY_CONNECTED with RELU/TANH/LOGISTIC/SOFTMAX or nothing.

Every op is a TFLite builtin that TFLite Micro registers (:data:`TFLM_FLOAT_OPS`). Step ops
are named ``g{k}_s{t}_{role}`` (``k`` = GRU direction in layer order, ``t`` = processing
step), the names the seed's flatbuffer rewrite keys on; ``tap(tensor, name)`` sees every
step role and layer output, so a later int8 path can wrap them in fake-quant ops.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ir
from .family_params import Affine, GruParams, gru_params, mask_table, normalization_affine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Builtin ops the family graph may convert to; each is registered by TFLite Micro (its
# python interpreter's resolver, ``Register_*`` in tflite_micro/_runtime.so).
TFLM_FLOAT_OPS = frozenset({
    "ADD", "CAST", "CONCATENATION", "DIV", "FULLY_CONNECTED", "GATHER", "LOGISTIC", "MEAN",
    "MUL", "NOT_EQUAL", "PACK", "REDUCE_MAX", "RELU", "RESHAPE", "SLICE", "SOFTMAX", "SPLIT",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE",
})

Tap = Callable[[Any, str], Any]


def _no_tap(x: Any, name: str) -> Any:
    return x


@dataclass
class _Mask:
    """0/1 step mask in input order: ``full (B, T)`` and its rows ``m[t]`` (B, 1)."""

    full: Any
    m: list[Any]


class _Graph:
    """Builds the unrolled ops of one model inside a ``tf.function`` trace."""

    def __init__(self, model: ir.ModelIR, batch: int, tap: Tap, integer: bool = False) -> None:
        import tensorflow as tf

        self.tf = tf
        self.integer = integer
        # The step model (edge_gru.tflite.family_step): each direction starts from its
        # state input instead of h_0 = 0, and its last state is a graph output.
        self.initial_states: list[Any] | None = None
        self.final_states: list[Any] = []
        self.model = model
        self.batch = batch
        self.steps = model.input.timesteps
        self.tap = tap
        self.gru_count = 0

    # -- input -------------------------------------------------------------------------
    def rows_mask(self, full: Any) -> _Mask:
        if self.steps == 1:  # the step model: no SPLIT into one row (fewer TFLM operators)
            return _Mask(full, [full])
        return _Mask(full, list(self.tf.split(full, self.steps, axis=1, name="mask_rows")))

    def embed(self, layer: ir.Embedding, ids: Any) -> tuple[Any, _Mask | None]:
        tf = self.tf
        x = tf.gather(tf.constant(layer.table.astype(np.float32), name="embedding"), ids,
                      name="embed")
        if not layer.mask_zero:
            return x, None
        table = tf.constant(mask_table(layer.vocab), name="mask_table")
        full = tf.reshape(tf.gather(table, ids), [self.batch, self.steps], name="mask")
        return x, self.rows_mask(full)

    def normalize(self, affine: Affine, x: Any) -> Any:
        tf = self.tf
        scale = tf.constant(affine.scale.astype(np.float32), name="norm_scale")
        shift = tf.constant(affine.shift.astype(np.float32), name="norm_shift")
        return tf.add(tf.multiply(x, scale), shift, name="normalized")

    def masking(self, layer: ir.Masking, x: Any) -> tuple[Any, _Mask]:
        tf = self.tf
        if self.integer:  # x - v: the mask value lands on the zero point, which is exact
            diff = tf.subtract(x, np.float32(layer.mask_value), name="mask_diff")
            ne = tf.cast(tf.not_equal(diff, np.float32(0.0)), tf.float32, name="ne")
        else:
            ne = tf.cast(tf.not_equal(x, np.float32(layer.mask_value)), tf.float32, name="ne")
        keep = tf.reduce_max(ne, axis=-1, keepdims=True, name="keep")
        x = tf.multiply(x, keep, name="masked")
        return x, self.rows_mask(tf.reshape(keep, [self.batch, self.steps], name="mask"))

    # -- recurrent layers ----------------------------------------------------------------
    def flat(self, src: Any | list[Any]) -> Any:
        """``(B, T, D)`` tensor or T rows ``(B, D)`` -> ``(T * B, D)``, step-major."""
        tf = self.tf
        if isinstance(src, list) and len(src) == 1 and self.batch == 1:
            return src[0]  # the step model's one row is already (T * B, D)
        if isinstance(src, list):  # PACK, not CONCATENATION: TFLM concatenates <= 10 inputs
            src = tf.stack(src, axis=0)
        elif self.batch > 1:
            src = tf.transpose(src, [1, 0, 2])
        dim = int(src.shape[-1])
        return tf.reshape(src, [self.steps * self.batch, dim], name=f"g{self.gru_count}_in")

    def project(self, p: GruParams, x2: Any, k: int) -> tuple[list[Any], list[Any]]:
        tf = self.tf
        pzr = tf.add(tf.matmul(x2, tf.constant(p.w_zr)), tf.constant(p.b_zr), name=f"g{k}_pzr")
        ph = tf.add(tf.matmul(x2, tf.constant(p.w_h)), tf.constant(p.b_h), name=f"g{k}_ph")
        pzr, ph = self.tap(pzr, f"g{k}_pzr"), self.tap(ph, f"g{k}_ph")
        if self.steps == 1:  # the step model: the projection is the one row
            return [pzr], [ph]
        rows_zr = tf.split(pzr, self.steps, axis=0, name=f"g{k}_rows_zr")
        rows_h = tf.split(ph, self.steps, axis=0, name=f"g{k}_rows_h")
        return list(rows_zr), list(rows_h)

    def step(self, p: GruParams, c: dict[str, Any], xzr: Any, xh: Any, h: Any | None,
             name: str) -> Any:
        """One GRU step (the seed's op sequence); ``h is None`` means ``h_0 = 0``."""
        tf, u = self.tf, p.units

        def tap(x: Any, role: str) -> Any:
            return self.tap(x, f"{name}_{role}")

        if h is None and not p.reset_after:
            # r only multiplies h_0 = 0: it is not computed (a dead SPLIT output makes the
            # converter's output differ from run to run).
            z = tf.math.sigmoid(tf.slice(xzr, [0, 0], [-1, u], name=f"{name}_xz"), name=f"{name}_z")
            n = tf.math.tanh(xh, name=f"{name}_n")
            return tap(tf.subtract(n, tf.multiply(z, n, name=f"{name}_zd"), name=f"{name}_h"), "h")
        if h is None:
            zr = tf.math.sigmoid(xzr, name=f"{name}_zr")
        else:
            a = tap(tf.matmul(h, c["u_zr"], name=f"{name}_azr"), "azr")
            zr = tf.math.sigmoid(tap(tf.add(xzr, a, name=f"{name}_gzr"), "gzr"), name=f"{name}_zr")
        z, r = tf.split(zr, 2, axis=1, name=f"{name}_split")
        if h is None:  # reset_after, h_0 = 0: n = tanh(x W_h + b_ih + r * b_rh)
            pre = tf.add(xh, tf.multiply(r, c["rb_h"], name=f"{name}_rhh"), name=f"{name}_gh")
            n = tf.math.tanh(pre, name=f"{name}_n")
            return tap(tf.subtract(n, tf.multiply(z, n, name=f"{name}_zd"), name=f"{name}_h"), "h")
        if p.reset_after:
            hh = tf.add(tf.matmul(h, c["u_h"], name=f"{name}_mh"), c["rb_h"], name=f"{name}_hh")
            rhh = tf.multiply(r, tap(hh, "hh"), name=f"{name}_rhh")
        else:
            rh = tap(tf.multiply(r, h, name=f"{name}_rh"), "rh")
            rhh = tf.matmul(rh, c["u_h"], name=f"{name}_rhh")
        gh = tap(tf.add(xh, tap(rhh, "rhh"), name=f"{name}_gh"), "gh")
        n = tf.math.tanh(gh, name=f"{name}_n")
        d = tap(tf.subtract(h, n, name=f"{name}_d"), "d")
        zd = tap(tf.multiply(z, d, name=f"{name}_zd"), "zd")
        return tap(tf.add(n, zd, name=f"{name}_h"), "h")

    def direction(self, p: GruParams, x2: Any, mask: _Mask | None, zero_masked: bool
                  ) -> list[Any]:
        """Run one GRU direction; its outputs (or states) in processing order."""
        tf = self.tf
        k = self.gru_count
        self.gru_count += 1
        rows_zr, rows_h = self.project(p, x2, k)
        c = {"u_zr": tf.constant(p.u_zr), "u_h": tf.constant(p.u_h), "rb_h": tf.constant(p.rb_h)}
        order = range(self.steps - 1, -1, -1) if p.go_backwards else range(self.steps)
        h: Any | None = self.initial_states[k] if self.initial_states is not None else None
        outputs = []
        for s, t in enumerate(order):
            name = f"g{k}_s{s}"
            new = self.step(p, c, rows_zr[t], rows_h[t], h, name)
            if mask is None:
                h = new
            elif h is None:
                h = self.tap(tf.multiply(mask.m[t], new, name=f"{name}_keep"), f"{name}_keep")
            else:  # h + m (new - h): a masked step keeps h exactly (same role scale)
                # No (1 - m) rows: the TFLite quantizer sometimes leaves a SPLIT of such a
                # computed tensor in float (DEQUANTIZE + float SPLIT + QUANTIZE per step),
                # depending on its own iteration order: same inputs, different bytes.
                step = tf.multiply(mask.m[t], tf.subtract(new, h, name=f"{name}_keep_delta"),
                                   name=f"{name}_keep_step")
                h = self.tap(tf.add(h, step, name=f"{name}_keep"), f"{name}_keep")
            out = h
            if zero_masked and mask is not None:
                out = tf.multiply(h, mask.m[t], name=f"{name}_out")
            outputs.append(out)
        self.final_states.append(h)
        return outputs

    def merge(self, a: Any, b: Any, mode: str, name: str) -> Any:
        tf = self.tf
        if mode == "concat":
            return tf.concat([a, b], axis=-1, name=name)
        if mode == "sum":
            return tf.add(a, b, name=name)
        if mode == "mul":
            return tf.multiply(a, b, name=name)
        return tf.multiply(tf.add(a, b), np.float32(0.5), name=name)  # ave: (a + b) / 2

    def recurrent(self, layer: ir.Recurrent, src: Any | list[Any], mask: _Mask | None,
                  affine: Affine | None, index: int) -> Any | list[Any]:
        """A GRU or Bidirectional; T rows ``(B, D)`` when it returns sequences, else ``(B, D)``."""
        x2 = self.flat(src)
        if isinstance(layer, ir.GRU):
            outs = self.direction(gru_params(layer, affine), x2, mask, False)
            return outs if layer.return_sequences else outs[-1]
        seq = layer.return_sequences
        fwd = self.direction(gru_params(layer.forward, affine), x2, mask, seq)
        bwd = self.direction(gru_params(layer.backward, affine), x2, mask, seq)
        if not seq:
            return self.merge(fwd[-1], bwd[-1], layer.merge_mode, f"l{index}_merge")
        back = bwd[::-1]  # Keras flips the backward outputs back to input order
        return [self.merge(a, b, layer.merge_mode, f"l{index}_merge_s{t}")
                for t, (a, b) in enumerate(zip(fwd, back))]

    # -- after the recurrent layers ------------------------------------------------------
    def reduce(self, layer: ir.Reduction, rows: list[Any], mask: _Mask | None) -> Any:
        tf = self.tf
        if layer.op == "last":
            return rows[-1]
        if layer.op == "flatten":
            width = len(rows) * int(rows[0].shape[-1])
            return tf.reshape(tf.stack(rows, axis=1), [self.batch, width], name="flatten")
        if layer.op == "max":
            return tf.reduce_max(tf.stack(rows, axis=1), axis=1, name="max_pool")
        if mask is None:
            return tf.reduce_mean(tf.stack(rows, axis=1), axis=1, name="mean_pool")
        masked = [tf.multiply(r, m) for r, m in zip(rows, mask.m)]
        total = tf.reduce_sum(tf.stack(masked, axis=1), axis=1, name="masked_sum")
        count = tf.reduce_sum(mask.full, axis=1, keepdims=True, name="mask_count")
        if self.integer:  # an integer DIV cannot divide by 0: an all-masked row gives 0
            count = tf.maximum(count, np.float32(1.0), name="mask_count_1")
        return tf.divide(total, count, name="mean_pool")  # 0 / 0 = NaN, as Keras

    def dense(self, layer: ir.Dense, h: Any, index: int) -> Any:
        tf = self.tf
        y = tf.matmul(h, tf.constant(layer.kernel.astype(np.float32)), name=f"l{index}_matmul")
        if layer.use_bias:
            y = tf.add(y, tf.constant(layer.bias.astype(np.float32)), name=f"l{index}_dense")
        act = layer.activation
        if act == "relu":
            y = tf.nn.relu(y, name=f"l{index}_relu")
        elif act == "tanh":
            y = tf.math.tanh(y, name=f"l{index}_tanh")
        elif act == "sigmoid":
            y = tf.math.sigmoid(y, name=f"l{index}_sigmoid")
        elif act == "softmax":
            y = tf.nn.softmax(y, axis=-1, name=f"l{index}_softmax")
        return self.tap(y, f"l{index}_out")

    def build(self, x: Any) -> Any:
        """The whole model on ``x`` (``(B, T)`` int32 ids or ``(B, T, F)`` float32)."""
        layers: Sequence[ir.Layer] = self.model.layers
        h: Any = x
        mask: _Mask | None = None
        pending: Affine | None = None  # a Normalization waiting to be folded into a GRU
        for i, layer in enumerate(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, ir.Embedding):
                h, mask = self.embed(layer, h)
            elif isinstance(layer, ir.Normalization):
                pending = normalization_affine(layer)
                if not isinstance(nxt, (ir.GRU, ir.Bidirectional)):
                    h, pending = self.normalize(pending, h), None
            elif isinstance(layer, ir.Masking):
                h, mask = self.masking(layer, h)
            elif isinstance(layer, (ir.GRU, ir.Bidirectional)):
                h = self.recurrent(layer, h, mask, pending, i)
                pending = None
                mask = mask if layer.return_sequences else None
            elif isinstance(layer, ir.Reduction):
                h, mask = self.reduce(layer, h, mask), None
            elif isinstance(layer, ir.Dense):
                h = self.dense(layer, h, i)
            else:  # pragma: no cover - the IR has no other layer kinds
                raise TypeError(f"unknown IR layer {type(layer).__name__}")
        return h


def as_model_input(model: ir.ModelIR, x: np.ndarray) -> np.ndarray:
    """``x`` in the graph's input type: int32 token ids or float32 features."""
    return np.asarray(x, np.int32 if model.input.kind == "tokens" else np.float32)


def input_spec(model: ir.ModelIR, batch: int) -> Any:
    """The input ``tf.TensorSpec``: ``ids (B, T) int32`` or ``features (B, T, F) float32``."""
    import tensorflow as tf

    spec = model.input
    if spec.kind == "tokens":
        return tf.TensorSpec([batch, spec.timesteps], tf.int32, name="ids")
    return tf.TensorSpec([batch, spec.timesteps, int(spec.features or 0)], tf.float32,
                         name="features")


def family_function(model: ir.ModelIR, batch: int = 1, tap: Tap = _no_tap,
                    integer: bool = False) -> Any:
    """A ``tf.function`` ``x (batch, T[, F]) -> outputs (batch, K) float32``.

    ``batch == 1`` is the TFLM graph; a larger batch evaluates many examples per call.
    ``integer`` builds the variant for full-integer conversion: ``Masking`` compares
    ``x - mask_value`` with 0 (the quantized input need not hold ``mask_value`` exactly,
    zero it holds), and a masked mean divides by ``max(count, 1)`` (integer DIV rejects 0;
    an all-masked row gives 0 instead of Keras' NaN).
    """
    import tensorflow as tf

    if batch < 1:
        raise ValueError("batch must be >= 1")

    @tf.function(input_signature=[input_spec(model, batch)], autograph=False)
    def outputs(x: Any) -> Any:
        return _Graph(model, batch, tap, integer).build(x)

    return outputs


def predict_graph(model: ir.ModelIR, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Float32 outputs ``(N, K)`` of the unrolled TF graph (no conversion), as float64."""
    x = as_model_input(model, x)
    dtype = x.dtype
    fn = family_function(model, batch)
    out = np.empty((len(x), model.task.outputs), np.float64)
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        pad = batch - len(chunk)
        full = np.concatenate([chunk, np.zeros((pad, *x.shape[1:]), dtype)]) if pad else chunk
        out[start : start + len(chunk)] = fn(full).numpy()[: len(chunk)]
    return out


def family_float_tflite(model: ir.ModelIR) -> bytes:
    """The batch-1 family graph as a float32 ``.tflite`` (input ``ids`` or ``features``)."""
    from .export import convert_function

    return convert_function(family_function(model, 1), None)
