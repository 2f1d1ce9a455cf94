"""Float32 and full-integer int8 ``.tflite`` export of the unrolled GRU and of the step model.

I/O types, and why:

* unrolled model: input ``ids (1, maxlen) int32`` (they index a 10,000-row table, which
  int8 cannot address; GATHER takes int32 indices), output ``probability (1, 1) int8``
  with scale 1/256 and zero point -128 (LOGISTIC's fixed int8 output), so the firmware
  reads ``p = (q + 128) / 256`` and decides positive when ``q > 0``.
* step model: inputs ``token (1, 1) int32`` and ``state (1, units) int8``, outputs
  ``new_state (1, units) int8`` and ``probability (1, 1) int8``. The state stays int8
  between calls, and the rewrite gives the state input and output one quantization so
  the firmware copies ``new_state`` back into ``state`` byte for byte.

The representative data is seeded: training reviews from ``BuildContext.calibration_ids``
and, for the step model, (token, state) pairs taken from the float reference run on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import reference
from ..weights import GruWeights
from .rewrite import share_steps, unify_state
from .step_ranges import role_ranges
from .unroll import step_function, unrolled_function

UNROLLED_CALIBRATION = 200
STEP_CALIBRATION_PAIRS = 4000


def convert_function(
    fn: Any, representative: Callable[[], Iterator[list[np.ndarray]]] | None,
    precision: str = "int8",
) -> bytes:
    """Convert a ``tf.function``: float32 without ``representative``, else full integer.

    ``precision`` ``"int8"``: int8 activations (``TFLITE_BUILTINS_INT8``); ``"int16x8"``:
    int16 activations with int8 weights
    (``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``). Integer models take
    and return the activation type (int32 token ids stay int32).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        if precision == "int16x8":
            ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            io_type = tf.int16
        else:
            ops, io_type = tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.int8
        converter.target_spec.supported_ops = [ops]
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    return bytes(converter.convert())


def float_tflite(w: GruWeights) -> bytes:
    """``model_float.tflite``: the batch-1 unrolled graph in float32."""
    return convert_function(unrolled_function(w, 1), None)


def raw_int8_tflite(w: GruWeights, calibration_ids: np.ndarray) -> bytes:
    """The converter's int8 unrolled model, before the compaction.

    The same calibration reviews give the per-role ranges of the steps (fake-quant ops)
    and the converter's representative data for the rest (prologue, step 0, epilogue).
    """
    ids = np.asarray(calibration_ids, np.int32)

    def representative() -> Iterator[list[np.ndarray]]:
        for row in ids:
            yield [row[None, :]]

    return convert_function(unrolled_function(w, 1, role_ranges(w, ids)), representative)


def int8_tflite(w: GruWeights, calibration_ids: np.ndarray) -> bytes:
    """``model_int8.tflite``: the converter's int8 unrolled model, stored compactly."""
    return share_steps(raw_int8_tflite(w, calibration_ids[:UNROLLED_CALIBRATION]))


def step_calibration(
    w: GruWeights, calibration_ids: np.ndarray, pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(token, state before it)`` pairs from the float reference on real reviews."""
    ids = np.asarray(calibration_ids)
    states = reference.forward(w, ids).states.astype(np.float32)
    rng = np.random.default_rng(seed)
    review = rng.integers(0, len(ids), pairs)
    step = rng.integers(0, ids.shape[1], pairs)
    before = np.where(
        (step > 0)[:, None], states[review, np.maximum(step - 1, 0)], 0.0
    ).astype(np.float32)
    return ids[review, step].astype(np.int32), before


def step_int8_tflite(w: GruWeights, calibration_ids: np.ndarray, seed: int) -> bytes:
    """``model_step_int8.tflite``: one timestep, int8 state in and out with one quantization."""
    tokens, states = step_calibration(w, calibration_ids, STEP_CALIBRATION_PAIRS, seed)

    def representative() -> Iterator[list[np.ndarray]]:
        for tok, st in zip(tokens, states):
            yield [tok.reshape(1, 1), st.reshape(1, -1)]

    return unify_state(convert_function(step_function(w), representative))
