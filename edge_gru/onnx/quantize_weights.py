"""Weight-only int8 storage for the float ONNX graph: ``int8 -> DequantizeLinear -> GRU/Gemm``.

onnxruntime has no int8 ``GRU`` kernel (ort#9796) and its quantization tools skip the node,
so a feature model (no ``Embedding``: nearly all its parameters are the GRU's ``W`` and
``R``) gains nothing from them. This rewrite stores those matrices (and the ``Gemm``
kernels of the Dense layers) as int8 with one symmetric scale per output row, and puts a
``DequantizeLinear`` (ONNX opset 13+, per-axis) between the stored tensor and the node;
onnxruntime computes the dequantized float weights from constants only, so activations
stay float and every example's output is independent of its batch-mates.

Layout: a GRU matrix ``(dirs, 3u, D)`` is stored as ``(dirs * 3u, D)`` int8 with a
``(dirs * 3u,)`` float32 scale (axis 0) and reshaped back; a Gemm kernel ``(in, out)`` is
stored as is with a ``(out,)`` scale (axis 1). Scale of row ``r``: ``max|w_r| / 127``
(1.0 for an all-zero row), ``q = clip(rint(w / scale), -127, 127)``, zero point 0
(ONNX ``DequantizeLinear``: ``y = (q - 0) * scale``). The maximum rounding error of a weight
is half its row's scale. Tensors with fewer than :data:`MIN_ELEMENTS` entries stay float:
the scales, the nodes and their names would cost about what they save. Biases stay float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_ELEMENTS = 128
QMAX = 127


def quantize_rows(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per slice along ``axis`` of a 2-D float matrix: ``(q int8, scale f32)``."""
    w = np.asarray(w, np.float32)
    reduce_axis = 1 - axis
    peak = np.max(np.abs(w), axis=reduce_axis)
    scale = np.where(peak > 0, peak / QMAX, 1.0).astype(np.float32)
    shaped = scale[:, None] if axis == 0 else scale[None, :]
    q = np.clip(np.rint(w / shaped), -QMAX, QMAX).astype(np.int8)
    return q, scale


def _targets(graph: Any) -> dict[str, str]:
    """Initializer name -> ``"gru"`` or ``"gemm"`` for the weights this rewrite stores as int8."""
    targets: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "GRU":
            for name in node.input[1:3]:  # W, R
                targets.setdefault(name, "gru")
        elif node.op_type == "Gemm" and len(node.input) > 1:
            attrs = {a.name: a.i for a in node.attribute}
            if not attrs.get("transB", 0):
                targets.setdefault(node.input[1], "gemm")
    return targets


def quantize_weights(model: Any, min_elements: int = MIN_ELEMENTS) -> tuple[Any, int]:
    """Rewrite ``model`` (an ``onnx.ModelProto``, changed in place) -> (model, tensors stored).

    Nodes are inserted at the front of the graph in initializer order, so the result is
    topologically sorted and its bytes depend only on the input model.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    targets = _targets(graph)
    users = {n for node in graph.node for n in node.input}
    kept, new_nodes, done = [], [], 0
    for init in graph.initializer:
        kind = targets.get(init.name)
        w = numpy_helper.to_array(init) if kind else None
        if w is None or w.dtype != np.float32 or w.size < min_elements or init.name not in users:
            kept.append(init)
            continue
        if kind == "gru":
            q, scale = quantize_rows(w.reshape(-1, w.shape[-1]), axis=0)
            axis = 0
        else:
            q, scale = quantize_rows(w, axis=1)
            axis = 1
        base = init.name
        kept += [numpy_helper.from_array(q, f"{base}_int8"),
                 numpy_helper.from_array(scale, f"{base}_scale"),
                 numpy_helper.from_array(np.zeros_like(scale, np.int8), f"{base}_zero")]
        deq = f"{base}_dequantized" if kind == "gru" else base
        new_nodes.append(helper.make_node(
            "DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero"], [deq],
            name=f"dequantize_{base}", axis=axis))
        if kind == "gru":
            kept.append(numpy_helper.from_array(np.asarray(w.shape, np.int64), f"{base}_shape"))
            new_nodes.append(helper.make_node("Reshape", [deq, f"{base}_shape"], [base],
                                              name=f"reshape_{base}"))
        done += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model, done
