"""Full-integer ``.tflite`` of any GRU-family model: int8 (or 16x8) unrolled graph.

The float family graph (:mod:`edge_gru.tflite.family`) converted by the TFLite converter
with representative data, as the seed's int8 export does (:mod:`edge_gru.tflite.export`):

* **one range per step role.** The converter would calibrate every step's tensors
  separately (step 7's gate input gets another scale than step 8's), so no two steps could
  share their tensors' descriptions. As in :mod:`edge_gru.tflite.step_ranges`, each role of
  each GRU direction (``g{k}_gzr``: "direction k's ``[z, r]`` gate input", ``g{k}_h``, ...)
  gets one range over all steps and calibration inputs, measured on the float graph itself
  (:func:`role_ranges`), and enters the graph as a ``fake_quant`` op; the steps are then
  identical and :func:`edge_gru.tflite.family_rewrite.share_family_steps` stores them once.
* **int8** (``"int8"``): int8 activations and weights (per-channel), int32 biases; token
  ids stay int32 (they index the embedding), float features enter as int8 with the input's
  scale and zero point (the ``Normalization`` folded into the first projection).
* **16x8** (``"int16x8"``): int16 activations, int8 weights, int64 biases
  (``tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``); the
  fake-quant ranges are not used (they are 8-bit), so every tensor is calibrated on its
  own: more accurate, larger.

Outputs: LOGISTIC and SOFTMAX have the runtime's fixed output quantization (int8: scale
1/256, zero point -128), other heads a calibrated scale; the header states them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from .. import ir
from .export import convert_function
from .family import as_model_input, family_function

Precision = Literal["int8", "int16x8"]
PRECISIONS: tuple[str, ...] = ("int8", "int16x8")
CALIBRATION = 200  # representative inputs for the converter (as the seed's unrolled model)
_ROLE = re.compile(r"^(g\d+)_s\d+_(\w+)$")

Ranges = dict[str, tuple[float, float]]


def role_key(name: str) -> str | None:
    """``g{k}_s{t}_{role}`` -> ``g{k}_{role}`` (one range per direction and role), else None."""
    m = _ROLE.match(name)
    return None if m is None else f"{m.group(1)}_{m.group(2)}"


def role_ranges(model: ir.ModelIR, calibration: np.ndarray, batch: int = 50) -> Ranges:
    """``{g{k}_{role}: (min, max)}`` over every step of the float graph, ``min <= 0 <= max``.

    ``calibration`` is ``(N, T)`` int ids or ``(N, T, F)`` float features; the float family
    graph runs on it with every step role recorded (in float32, as the converter sees it).
    """
    import tensorflow as tf

    from .family import _Graph, input_spec

    @tf.function(input_signature=[input_spec(model, batch)], autograph=False)
    def tapped(x: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def record(t: Any, name: str) -> Any:
            if role_key(name) is not None:
                found[name] = t
            return t

        _Graph(model, batch, record, integer=True).build(x)
        return found

    x = as_model_input(model, calibration)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        pad = batch - len(chunk)
        full = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)]) if pad else chunk
        for name, value in tapped(full).items():
            key = role_key(name)
            assert key is not None
            v = value.numpy()[: len(chunk)]
            lo[key] = min(lo.get(key, 0.0), float(v.min()))
            hi[key] = max(hi.get(key, 0.0), float(v.max()))
    return {k: (lo[k], hi[k]) for k in sorted(lo)}


def fake_quant_tap(ranges: Ranges) -> Any:
    """A :data:`~edge_gru.tflite.family.Tap` fixing each step role's int8 range."""
    import tensorflow as tf

    def tap(x: Any, name: str) -> Any:
        key = role_key(name)
        if key is None:
            return x
        lo, hi = ranges[key]
        if hi - lo < 1e-6:  # a constant role (e.g. all zero): any small range is exact
            hi = lo + 1e-6
        return tf.quantization.fake_quant_with_min_max_args(x, min=lo, max=hi, num_bits=8,
                                                            name=f"{name}_q")

    return tap


def representative(model: ir.ModelIR, calibration: np.ndarray) -> Any:
    """The converter's representative dataset: each calibration input as a batch of one."""
    x = as_model_input(model, calibration)

    def rows() -> Iterator[list[np.ndarray]]:
        for row in x:
            yield [row[None]]

    return rows


def raw_family_tflite(model: ir.ModelIR, calibration: np.ndarray,
                      precision: Precision = "int8") -> bytes:
    """The converter's full-integer unrolled model (before the step sharing)."""
    calibration = np.asarray(calibration)[:CALIBRATION]
    if precision == "int8":
        tap = fake_quant_tap(role_ranges(model, calibration))
        fn = family_function(model, 1, tap, integer=True)
    else:
        fn = family_function(model, 1, integer=True)
    return convert_function(fn, representative(model, calibration), precision)


def family_int8_tflite(model: ir.ModelIR, calibration: np.ndarray,
                       precision: Precision = "int8") -> bytes:
    """``model_int8.tflite`` (or ``model_int16x8.tflite``): the unrolled model, stored compactly.

    ``calibration``: ``(N, T)`` ids or ``(N, T, F)`` features (the first
    :data:`CALIBRATION` are used). Outputs are bit-identical to :func:`raw_family_tflite`'s.
    """
    from .family_rewrite import share_family_steps
    from .int8_embedding import int8_embedding_tables

    raw = raw_family_tflite(model, calibration, precision)
    if precision == "int16x8":  # before the compaction, which then drops the int16 table
        raw = int8_embedding_tables(raw)
    return share_family_steps(raw, unify_roles=precision == "int16x8")


def int16x8_problem(model: ir.ModelIR) -> str | None:
    """Why the 16x8 converter cannot take ``model`` (one line), or None.

    TensorFlow 2.21's converter has no int16 version of NOT_EQUAL/CAST (``Masking``) or of
    DIV (a masked mean): "Quantization to 16x8-bit not yet supported for op"; TFLite
    Micro's REDUCE_MAX takes float32 and int8 only.
    """
    if model.masked and any(isinstance(x, ir.Masking) for x in model.layers):
        return "16x8: the converter has no int16 NOT_EQUAL/CAST for Masking (TF 2.21)"
    if model.masked and any(isinstance(x, ir.Reduction) and x.op == "mean"
                            for x in model.layers):
        return "16x8: the converter has no int16 DIV for a masked mean (TF 2.21)"
    if any(isinstance(x, ir.Reduction) and x.op == "max" for x in model.layers):
        return "16x8: TFLite Micro's REDUCE_MAX has no int16 kernel"
    return None


def bytes_per_step(model: ir.ModelIR, calibration: np.ndarray, stored: bytes,
                   precision: Precision = "int8") -> int:
    """What one more time step adds to the stored model, in bytes.

    The model is built again at ``T + 1`` (the calibration inputs pre-padded by one step with
    the input's pad value) and compared with ``stored`` (the model at ``T``): the per-step
    tensors, operators and quantization tables that step sharing cannot remove (a step's
    input rows, a returned sequence's states, a masked direction's steps).
    """
    import dataclasses

    spec = model.input
    longer = dataclasses.replace(
        model, input=dataclasses.replace(spec, timesteps=spec.timesteps + 1))
    x = np.asarray(calibration)[:CALIBRATION]
    pad = np.full((len(x), 1, *x.shape[2:]), spec.pad_value, x.dtype)
    grown = family_int8_tflite(longer, np.concatenate([pad, x], axis=1), precision)
    return len(grown) - len(stored)
