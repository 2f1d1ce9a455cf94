"""Float ONNX for every model the IR describes (:class:`~edge_gru.ir.ModelIR`).

Graph (batch ``N`` dynamic, ``T`` fixed; time-major inside, as the ONNX ``GRU`` wants)::

    ids (N, T) int32        -> Transpose -> Gather(table)          -> (T, N, E)
    features (N, T, F) f32  -> Transpose -> [Sub/Div normalization] [Masking] -> (T, N, F)
      -> GRU / Bidirectional nodes (see :mod:`.recurrent`; masks handled exactly there)
      -> [ReduceMean | masked mean | ReduceMax | Flatten | last step]
      -> Gemm (+ Relu | Tanh | Sigmoid | Softmax) per Dense  -> output (N, K) float32

Layer semantics are Keras' (``edge_gru/reference.py`` documents them): ``mask_zero`` masks
id 0; ``Masking`` masks a step whose features all equal ``mask_value`` and zeroes it
(``x * any(x != v)``); ``Normalization`` is ``(x - mean) / max(sqrt(var), 1e-7)``;
``GlobalAveragePooling1D`` averages the unmasked steps (an all-masked row gives NaN, as in
Keras), ``GlobalMaxPooling1D`` and ``Flatten`` ignore the mask; a returned sequence carries
the mask on, a last state drops it. Node and tensor names are numbered, never taken from
Keras layer names, so the same weights always give the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import (
    GRU,
    Bidirectional,
    Dense,
    Embedding,
    Masking,
    ModelIR,
    Normalization,
    Reduction,
)
from .builder import GraphBuilder
from .recurrent import Mask, bidirectional_layer, gru_layer

TOKENS_INPUT = "ids"
FEATURES_INPUT = "features"
FAMILY_OUTPUT = "output"
GRAPH_NAME = "edge_gru_float"

_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def input_name(model: ModelIR) -> str:
    """``ids`` for token models, ``features`` for feature models."""
    return TOKENS_INPUT if model.input.kind == "tokens" else FEATURES_INPUT


class _State:
    """The running tensor: ``(T, N, D)`` while a sequence, ``(N, D)`` after it."""

    def __init__(self, name: str, width: int, sequence: bool = True) -> None:
        self.name = name
        self.width = width
        self.sequence = sequence
        self.mask: Mask | None = None


def _input(g: GraphBuilder, model: ModelIR) -> tuple[_State, Any]:
    from onnx import TensorProto, helper

    spec = model.input
    if spec.kind == "tokens":
        info = helper.make_tensor_value_info(TOKENS_INPUT, TensorProto.INT32, ["N", spec.timesteps])
        ids = g.op("Transpose", [TOKENS_INPUT], "ids_time_major", perm=[1, 0])
        return _State(ids, 0), info
    f = int(spec.features or 0)
    info = helper.make_tensor_value_info(FEATURES_INPUT, TensorProto.FLOAT,
                                         ["N", spec.timesteps, f])
    x = g.op("Transpose", [FEATURES_INPUT], "x_time_major", perm=[1, 0, 2])
    return _State(x, f), info


def _embedding(g: GraphBuilder, s: _State, layer: Embedding, steps: int) -> None:
    ids = s.name
    s.name = g.op("Gather", [g.const("embedding", np.asarray(layer.table, np.float32)), ids],
                  "embedded", axis=0)
    s.width = layer.dim
    if layer.mask_zero:
        zero = g.op("Equal", [ids, g.const("pad_id", np.asarray(0, np.int32))], "is_pad")
        s.mask = Mask(g.op("Cast", [g.op("Not", [zero], "not_pad")], "mask", to=1), steps)


def _normalization(g: GraphBuilder, s: _State, layer: Normalization) -> None:
    centred = g.op("Sub", [s.name, g.const("norm_mean", np.asarray(layer.mean, np.float32))],
                   "centred")
    s.name = g.op("Div", [centred, g.const("norm_scale", layer.scale.astype(np.float32))],
                  "normalized")


def _masking(g: GraphBuilder, s: _State, layer: Masking, steps: int) -> None:
    value = g.const("mask_value", np.asarray(layer.mask_value, np.float32))
    differs = g.op("Not", [g.op("Equal", [s.name, value], "eq_mask_value")], "ne_mask_value")
    keep = g.op("ReduceMax", [g.op("Cast", [differs], "ne_f", to=1)], "mask",
                axes=[2], keepdims=0)
    s.mask = Mask(keep, steps)
    s.name = g.op("Mul", [s.name, s.mask.column(g)], "masked")


def _reduction(g: GraphBuilder, s: _State, layer: Reduction, steps: int) -> None:
    if layer.op == "mean" and s.mask is not None:
        col = s.mask.column(g)
        total = g.op("ReduceSum", [g.op("Mul", [s.name, col], "pool_in"), g.i64(0)], "pool_sum",
                     keepdims=0)
        count = g.op("ReduceSum", [col, g.i64(0)], "pool_count", keepdims=0)
        s.name = g.op("Div", [total, count], "masked_mean")
    elif layer.op == "mean":
        s.name = g.op("ReduceMean", [s.name], "mean", axes=[0], keepdims=0)
    elif layer.op == "max":
        s.name = g.op("ReduceMax", [s.name], "max", axes=[0], keepdims=0)
    elif layer.op == "flatten":
        batch_major = g.op("Transpose", [s.name], "batch_major", perm=[1, 0, 2])
        s.name = g.op("Reshape", [batch_major, g.i64(0, steps * s.width)], "flatten")
        s.width *= steps
    else:  # last
        index = g.const("last_step", np.asarray(steps - 1, np.int64))
        s.name = g.op("Gather", [s.name, index], "last", axis=0)
    s.sequence = False
    s.mask = None


def _dense(g: GraphBuilder, s: _State, layer: Dense) -> None:
    kernel = g.const("dense_W", np.asarray(layer.kernel, np.float32))
    bias = g.const("dense_b", np.asarray(layer.bias, np.float32))
    s.name = g.op("Gemm", [s.name, kernel, bias], "dense")
    s.width = layer.units
    if layer.activation == "softmax":
        s.name = g.op("Softmax", [s.name], "softmax", axis=-1)
    elif layer.activation in _ACTIVATIONS:
        s.name = g.op(_ACTIVATIONS[layer.activation], [s.name], layer.activation)


def build_family_model(model: ModelIR, opset: int, ir_version: int, producer: str) -> Any:
    """The float model as an ``onnx.ModelProto``: input ``ids``/``features``, output ``(N, K)``."""
    from onnx import TensorProto, helper

    g = GraphBuilder()
    steps = model.input.timesteps
    state, input_info = _input(g, model)
    for layer in model.layers:
        if isinstance(layer, Embedding):
            _embedding(g, state, layer, steps)
        elif isinstance(layer, Normalization):
            _normalization(g, state, layer)
        elif isinstance(layer, Masking):
            _masking(g, state, layer, steps)
        elif isinstance(layer, GRU):
            state.name = gru_layer(g, state.name, state.width, layer, state.mask, steps)
            _after_recurrent(state, layer.units, layer.return_sequences)
        elif isinstance(layer, Bidirectional):
            state.name = bidirectional_layer(g, state.name, state.width, layer, state.mask, steps)
            _after_recurrent(state, layer.output_dim, layer.return_sequences)
        elif isinstance(layer, Reduction):
            _reduction(g, state, layer, steps)
        elif isinstance(layer, Dense):
            _dense(g, state, layer)
    g.nodes[-1].output[0] = FAMILY_OUTPUT
    outputs = [helper.make_tensor_value_info(FAMILY_OUTPUT, TensorProto.FLOAT,
                                             ["N", model.task.outputs])]
    return g.model(GRAPH_NAME, [input_info], outputs, opset, ir_version, producer)


def _after_recurrent(state: _State, width: int, sequence: bool) -> None:
    state.width = width
    state.sequence = sequence
    if not sequence:
        state.mask = None
