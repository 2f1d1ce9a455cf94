"""A small ONNX graph writer: deterministic names, initialisers and nodes in call order.

Names come from a counter per prefix, never from ``id()`` or Keras layer names, so the same
model description always gives the same node and tensor names and therefore the same
bytes (:func:`edge_gru.onnx.export.model_bytes` serialises with a stable field order).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


class GraphBuilder:
    """Collects ``onnx`` nodes and initialisers; :meth:`model` assembles a checked model."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper = helper
        self._numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._counts: dict[str, int] = defaultdict(int)
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def fresh(self, prefix: str) -> str:
        """A new unique name ``prefix`` or ``prefix_<k>``."""
        k = self._counts[prefix]
        self._counts[prefix] += 1
        return prefix if k == 0 else f"{prefix}_{k}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        """An initialiser holding ``value`` (dtype kept); identical small constants are shared."""
        arr = np.array(value, order="C")  # keeps 0-d scalars 0-d (ascontiguousarray does not)
        key = (arr.dtype.str, arr.tobytes(), tuple(arr.shape))
        if arr.size <= 16 and key in self._constants:
            return self._constants[key]
        name = self.fresh(prefix)
        self.initializers.append(self._numpy_helper.from_array(arr, name))
        if arr.size <= 16:
            self._constants[key] = name
        return name

    def i64(self, *values: int) -> str:
        """A 1-D int64 constant (shapes, axes, indices)."""
        return self.const("i64", np.asarray(values, np.int64))

    def f32(self, value: float) -> str:
        """A float32 scalar constant."""
        return self.const("f32", np.asarray(value, np.float32))

    def op(self, op_type: str, inputs: list[str], prefix: str, outputs: int = 1,
           **attrs: Any) -> str | list[str]:
        """Add one node; returns its output name (or names when ``outputs > 1``)."""
        names = [self.fresh(f"{prefix}_out{i}" if outputs > 1 else prefix) for i in range(outputs)]
        node_name = self.fresh(f"node_{prefix}")
        self.nodes.append(
            self._helper.make_node(op_type, inputs, names, name=node_name, **attrs)
        )
        return names if outputs > 1 else names[0]

    def model(self, name: str, inputs: list[Any], outputs: list[Any], opset: int,
              ir_version: int, producer: str) -> Any:
        """The ``onnx.ModelProto``, checked with ``onnx.checker`` (full check)."""
        import onnx

        graph = self._helper.make_graph(
            self.nodes, name, inputs, outputs, initializer=self.initializers
        )
        model = self._helper.make_model(
            graph,
            opset_imports=[self._helper.make_opsetid("", opset)],
            producer_name=producer,
            producer_version="1",
            ir_version=ir_version,
        )
        onnx.checker.check_model(model, full_check=True)
        return model
