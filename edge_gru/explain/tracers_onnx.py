"""Tracers of the ONNX stages: every GRU node's ``Y`` made a graph output, run by onnxruntime.

ONNX ``GRU`` outputs ``Y (T, directions, N, u)`` in *input* order (ONNX operator spec): a
``reverse`` direction's ``Y[t]`` is the state after processing steps ``T-1 .. t``, so its
processing step ``s`` is ``Y[T-1-s]``. The export names no ``Y`` when it only needs ``Y_h``;
the tracer names it, adds it as a graph output and runs the rest of the model unchanged.
A node with ``sequence_lens`` (a masked model) runs on the counted steps moved to the front
in their order (:mod:`edge_gru.onnx.recurrent`): its ``Y[k]`` is the state after the ``k``-th
counted step (forward) or after the counted steps ``k .. L-1`` (reverse); the tracer maps it
back with the model's mask, a masked step repeating the state as Keras does.
The GRU node computes in float32 in both stages (``onnx_int8`` stores weights/embedding in
int8 and dequantizes them before the node), so nothing needs dequantizing here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir import GRU, Bidirectional
from ..reference import recurrent_input
from .traces import LayerTrace, NotTraceable, StageTrace, TraceSource, register

FLOAT_FILE = "model_float.onnx"
INT8_FILE = "model_int8.onnx"


def _layer_names(source: TraceSource) -> list[list[str]]:
    """Per recurrent layer of the IR, the reference trace names of its directions."""
    names = []
    for layer in source.ir.layers:
        if isinstance(layer, Bidirectional):
            names.append([f"{layer.name}/forward", f"{layer.name}/backward"])
        elif isinstance(layer, GRU):
            names.append([layer.name])
    return names


def trace_onnx(stage: str, path: Path, source: TraceSource, x: np.ndarray) -> StageTrace:
    """Run ``path`` with every GRU node's states exposed; see the module docstring."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    nodes = [n for n in model.graph.node if n.op_type == "GRU"]
    names = _layer_names(source)
    if len(nodes) != len(names):
        raise NotTraceable(f"{path.name} has {len(nodes)} GRU nodes for {len(names)} GRU layers")
    extra: list[tuple[str, str, bool]] = []  # (output name, direction, masked)
    for k, node in enumerate(nodes):
        masked = len(node.input) > 4 and bool(node.input[4])
        slot = 0
        if not node.output:
            node.output.append("")
        if not node.output[slot]:
            node.output[slot] = f"explain_gru{k}_Y"
        direction = next((onnx.helper.get_attribute_value(a).decode() for a in node.attribute
                          if a.name == "direction"), "forward")
        extra.append((node.output[slot], direction, masked))
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(node.output[slot], onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}.get(inp.type, np.float32)
    found = session.run(None, {inp.name: np.asarray(x).astype(dtype)})
    n_out = len(found) - len(extra)
    outputs = np.asarray(found[0], np.float64).reshape(len(x), -1)
    steps = int(np.asarray(x).shape[1])
    mask = recurrent_input(source.ir, x)[1] if any(m for _, _, m in extra) else None
    layers: list[LayerTrace] = []
    for (_, direction, masked), value, dirs in zip(extra, found[n_out:], names):
        y = np.asarray(value, np.float64)
        for d, name in enumerate(dirs):
            backward = direction == "reverse" or (direction == "bidirectional" and d == 1)
            seq = y[:, d]  # (T, N, u), input order (or compact order when masked)
            if masked and mask is not None:
                states = uncompact(seq, mask, backward)
            else:
                states = np.ascontiguousarray((seq[::-1] if backward else seq).transpose(1, 0, 2))
            layers.append(LayerTrace(name, states, np.arange(steps)))
    return StageTrace(stage, outputs, tuple(layers),
                      f"{path.name} in onnxruntime with every GRU node's Y as an output")


def uncompact(y: np.ndarray, mask: np.ndarray, backward: bool) -> np.ndarray:
    """Compact ``Y (T, N, u)`` of a masked node -> states ``(N, T, u)`` in processing order.

    ``mask (N, T)`` bool. Forward: processing step ``t`` holds ``Y[c_t - 1]`` with ``c_t``
    the counted steps up to ``t`` (zero state before the first). Reverse: processing step
    ``s`` reads input position ``p = T-1-s`` and holds ``Y[L - m]`` with ``m`` the counted
    positions ``>= p`` and ``L`` all counted ones (zero state while ``m = 0``).
    """
    n, steps = mask.shape
    m = mask.astype(np.int64)
    if backward:
        counted = np.cumsum(m[:, ::-1], axis=1)  # m for s = 0..T-1
        index = m.sum(axis=1, keepdims=True) - counted
    else:
        counted = np.cumsum(m, axis=1)
        index = counted - 1
    rows = np.clip(index, 0, steps - 1)
    states = y[rows, np.arange(n)[:, None]]  # (N, T, u)
    return np.where((counted > 0)[..., None], states, 0.0)


@register("onnx_int8")
def trace_onnx_int8(source: TraceSource, x: np.ndarray) -> StageTrace:
    return trace_onnx("onnx_int8", source.artifact(INT8_FILE), source, x)


@register("onnx_float")
def trace_onnx_float(source: TraceSource, x: np.ndarray) -> StageTrace:
    return trace_onnx("onnx_float", source.artifact(FLOAT_FILE), source, x)
