"""Float ONNX export: native ONNX ``GRU`` nodes, for the seed shape and the whole family.

:func:`export_model` is the entry point: a seed-shaped model (``Embedding -> GRU ->
Dense(1, sigmoid)``, :func:`~edge_gru.weights.seed_shape_problem` is None) is written by
:func:`build_model` below, byte for byte as before the IR existed; any other model by
:mod:`edge_gru.onnx.family` (stacked, bidirectional, masked, feature inputs, any head).

Why not tf2onnx's output: ``tf2onnx.convert.from_keras`` fails on Keras 3 models, and
``from_function`` on the Keras call gives a generic ``Loop`` graph (~20x slower at batch 1;
:func:`export_tf2onnx_loop` builds it, the benchmark's baseline). onnxruntime runs the
native ``GRU`` operator with an optimised kernel, so we write that node ourselves.

The seed graph (batch dimension ``N`` dynamic, ``T = maxlen`` fixed)::

    ids (N, T) int32 -> Transpose -> (T, N) -> Gather(embedding) -> (T, N, E)
      -> GRU(linear_before_reset = reset_after) -> Y_h (1, N, u) -> Reshape (N, u)
      -> Gemm(dense) -> Sigmoid -> probability (N, 1) float32

Keras and ONNX both order the gates ``[z, r, h]``; ONNX stores ``W = kernel^T`` with shape
``(1, 3u, E)``, ``R = recurrent_kernel^T`` ``(1, 3u, u)`` and ``B = [Wb, Rb]`` ``(1, 6u)``.
With ``reset_after=True`` Keras' two bias rows are exactly ``Wb`` and ``Rb`` and the reset
gate multiplies ``(h U_h + b_rh)`` (ONNX ``linear_before_reset=1``); with
``reset_after=False`` Keras has one bias, which goes in ``Wb`` with ``Rb = 0``.
The file bytes depend only on the weights (no timestamps, fixed producer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..ir import ModelIR
from ..weights import GruWeights, seed_shape_problem, seed_view

OPSET = 17
IR_VERSION = 8  # what onnxruntime >= 1.13 (Pi wheels included) loads
INPUT_NAME = "ids"
OUTPUT_NAME = "probability"
PRODUCER = "edge_gru"


def gru_onnx_params(w: GruWeights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras GRU parameters in ONNX layout: ``W (1,3u,E)``, ``R (1,3u,u)``, ``B (1,6u)``."""
    onnx_w = np.ascontiguousarray(w.kernel.T, dtype=np.float32)[None]
    onnx_r = np.ascontiguousarray(w.recurrent_kernel.T, dtype=np.float32)[None]
    onnx_b = np.concatenate([w.input_bias, w.recurrent_bias]).astype(np.float32)[None]
    return onnx_w, onnx_r, onnx_b


def build_model(w: GruWeights, name: str = "edge_gru_float") -> object:
    """The float classifier as an ``onnx.ModelProto`` (checked with ``onnx.checker``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    onnx_w, onnx_r, onnx_b = gru_onnx_params(w)
    u = w.units
    initializers = [
        numpy_helper.from_array(np.asarray(w.embedding, np.float32), "embedding"),
        numpy_helper.from_array(onnx_w, "gru_W"),
        numpy_helper.from_array(onnx_r, "gru_R"),
        numpy_helper.from_array(onnx_b, "gru_B"),
        numpy_helper.from_array(np.asarray(w.dense_kernel, np.float32).reshape(u, 1), "dense_W"),
        numpy_helper.from_array(np.asarray([w.dense_bias], np.float32), "dense_b"),
        numpy_helper.from_array(np.asarray([-1, u], np.int64), "state_shape"),
    ]
    nodes = [
        helper.make_node("Transpose", [INPUT_NAME], ["ids_tn"], name="time_major", perm=[1, 0]),
        helper.make_node("Gather", ["embedding", "ids_tn"], ["x"], name="embedding_lookup", axis=0),
        helper.make_node(
            "GRU", ["x", "gru_W", "gru_R", "gru_B"], ["", "h_last"], name="gru",
            hidden_size=u, linear_before_reset=int(w.reset_after),
        ),
        helper.make_node("Reshape", ["h_last", "state_shape"], ["h"], name="drop_direction"),
        helper.make_node("Gemm", ["h", "dense_W", "dense_b"], ["logit"], name="dense"),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT_NAME], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT32, ["N", w.maxlen])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def model_bytes(model: object) -> bytes:
    """Serialise deterministically (stable field order) so same weights give same bytes."""
    return model.SerializeToString(deterministic=True)  # type: ignore[attr-defined]


def export_float(w: GruWeights, path: str | Path) -> Path:
    """Write ``model_float.onnx`` and return its path."""
    path = Path(path)
    path.write_bytes(model_bytes(build_model(w)))
    return path


def build_ir_model(model: ModelIR) -> object:
    """The float ``onnx.ModelProto`` of any IR model (the seed graph for the seed shape)."""
    if seed_shape_problem(model) is None:
        return build_model(seed_view(model))
    from .family import build_family_model

    return build_family_model(model, OPSET, IR_VERSION, PRODUCER)


def export_model(model: ModelIR, path: str | Path) -> Path:
    """Write ``model_float.onnx`` for any IR model and return its path."""
    path = Path(path)
    path.write_bytes(model_bytes(build_ir_model(model)))
    return path


def export_tf2onnx_loop(keras_model: Any, maxlen: int, path: str | Path) -> Path:
    """tf2onnx's view of the Keras model (``from_function``: the GRU becomes a ``Loop``).

    Correct but slow (the benchmark's baseline); ``from_keras`` fails on Keras 3 models
    (tf2onnx#2329), so the Keras call is wrapped in a ``tf.function``.
    """
    import tensorflow as tf
    import tf2onnx

    path = Path(path)
    spec = [tf.TensorSpec([None, maxlen], tf.int32, name=INPUT_NAME)]
    fn = tf.function(lambda ids: keras_model(ids, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=OPSET, output_path=str(path))
    return path
