"""Store the converter's int8 unrolled GRU compactly, through the flatbuffer schema.

The converter describes each of the 100 steps anew: its own tensors, names such as
``rows_zr;rows_zr1;...`` and operators. With one int8 range per step role (fixed by
:mod:`edge_gru.tflite.step_ranges`) every step computes with the same numbers, so this rewrite
(on the object API, see :mod:`edge_gru.tflite.flatbuffer_io`) keeps every operator and
quantization parameter, and so every output bit, but

* lets steps ``2..T-1`` write into step 1's tensors (one tensor per step role) and the
  state ping-pong between two tensors, so their operators become identical and are stored
  once or twice instead of 100 times;
* drops names (keeping ``ids`` / ``probability``), metadata and signature tables;
* points every non-constant tensor at the one empty buffer and merges equal constants;
* omits operator options equal to the schema defaults and gives the most used operator
  code index 0 (flatbuffers does not store default values);
* writes each distinct shape, quantization table, operand list, tensor and operator once.

What the sharing must not touch, found on ai-edge-litert 2.3 and tflite-micro (and
checked by the tests on every LiteRT mode and TFLM, bit for bit against the unshared
model): an operator that reads a per-step input row keeps its own output tensor, because
LiteRT's builtin kernels may compute ADD/MUL in place into a single-use input, which
would put a shared tensor inside one step's row. The per-step ``[z, r]`` split is a
SPLIT, not a SPLIT_V: XNNPACK delegates SPLIT, so the steps form one XNNPACK subgraph;
with SPLIT_V between them, each step is a separate delegate partition, and a tensor
written by several partitions makes XNNPACK fail or compute wrong values.
:func:`unify_state` re-quantizes the step model's state (a bias re-quantization, see
:meth:`_Graph.requantize_biases`).

Steps are recognised by the ``s{t}_`` op names of :mod:`edge_gru.tflite.unroll`; steps ``1..T-1``
must have identical op sequences, otherwise :class:`RewriteError` is raised.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from .flatbuffer_io import read_model, schema, write_model

_STEP = re.compile(r"(?:^|;)s(\d+)_")


class RewriteError(RuntimeError):
    """The model does not have the step structure this rewrite expects."""


def _name(t: Any) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")


def _q(t: Any) -> tuple[float, int] | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def merged_quantization(params: list[tuple[float, int]]) -> tuple[float, int]:
    """One int8 (scale, zero point) covering every given int8 range (and 0)."""
    if len(set(params)) == 1:
        return params[0]
    lo = min(min((-128 - z) * s for s, z in params), 0.0)
    hi = max(max((127 - z) * s for s, z in params), 0.0)
    scale = (hi - lo) / 255.0
    zero = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zero


def _set_q(t: Any, qz: tuple[float, int]) -> None:
    t.quantization = copy.deepcopy(t.quantization)
    t.quantization.scale = np.asarray([qz[0]], np.float32)
    t.quantization.zeroPoint = np.asarray([qz[1]], np.int64)


class _Graph:
    """The model's first subgraph plus producer/constant lookups."""

    def __init__(self, data: bytes) -> None:
        self.s = schema()
        self.m = read_model(data)
        if len(self.m.subgraphs) != 1:
            raise RewriteError("expected a single-subgraph model")
        self.g = self.m.subgraphs[0]
        self.codes = [c.builtinCode for c in self.m.operatorCodes]
        self.orig_q = {i: _q(t) for i, t in enumerate(self.g.tensors)}
        self.orig_inputs = [list(op.inputs) for op in self.g.operators]

    def is_const(self, i: int) -> bool:
        buf = self.m.buffers[self.g.tensors[i].buffer]
        return buf.data is not None and len(buf.data) > 0

    def add_tensor(self, t: Any) -> int:
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def redirect(self, alias: dict[int, int]) -> None:
        """Make operators and graph outputs use tensor ``alias[i]`` wherever they used ``i``."""
        for op in self.g.operators:
            op.inputs = [alias.get(i, i) for i in op.inputs]
            op.outputs = [alias.get(i, i) for i in op.outputs]
        self.g.outputs = [alias.get(i, i) for i in self.g.outputs]

    def requantize_biases(self) -> None:
        """Give each FULLY_CONNECTED bias the scale its (possibly new) input scale implies.

        FULLY_CONNECTED operators with equal weights (by content), equal new input scale
        and the same float bias (to 1e-4 of its largest value: each step rounded it to its
        own scale) get one bias tensor, so unrolled steps given one input scale share it.
        """
        fc = self.s.BuiltinOperator.FULLY_CONNECTED
        done: dict[tuple[bytes, float, bytes], int] = {}  # -> bias tensor
        for op, orig_inputs in zip(self.g.operators, self.orig_inputs):
            if self.codes[op.opcodeIndex] != fc or len(op.inputs) < 3 or op.inputs[2] < 0:
                continue
            old_in = self.orig_q[orig_inputs[0]]
            new_in = _q(self.g.tensors[op.inputs[0]])
            if old_in is None or new_in is None:
                continue
            bias = self.g.tensors[op.inputs[2]]
            dtype = np.int64 if bias.type == self.s.TensorType.INT64 else np.int32  # 16x8: int64
            values = np.frombuffer(bytes(self.m.buffers[bias.buffer].data), dtype)
            real = values.astype(np.float64) * np.asarray(bias.quantization.scale, np.float64)
            weights = self.g.tensors[op.inputs[1]]
            top = float(np.abs(real).max()) or 1.0  # steps' biases differ by their rounding
            key = (bytes(self.m.buffers[weights.buffer].data), new_in[0],
                   np.round(real / top, 4).tobytes())
            op.inputs = list(op.inputs)
            if key in done:  # the same float bias: re-quantize it once, for every step
                op.inputs[2] = done[key]
                continue
            if old_in[0] == new_in[0]:
                done[key] = op.inputs[2]
                continue
            ratio = np.float64(old_in[0]) / np.float64(new_in[0])
            new_values = np.round(values.astype(np.float64) * ratio).astype(dtype)
            buf = self.s.BufferT()
            buf.data = np.frombuffer(new_values.tobytes(), np.uint8)
            self.m.buffers.append(buf)
            new_bias = copy.deepcopy(bias)
            new_bias.buffer = len(self.m.buffers) - 1
            new_bias.quantization.scale = (
                np.asarray(bias.quantization.scale, np.float64) / ratio
            ).astype(np.float32)
            op.inputs[2] = done[key] = self.add_tensor(new_bias)

    def compact(self, names: dict[int, str]) -> bytes:
        """Merge equal constants, drop unused tensors/buffers, name only the graph's I/O."""
        g, m = self.g, self.m
        const_of: dict[Any, int] = {}
        alias: dict[int, int] = {}
        for i, t in enumerate(g.tensors):
            if self.is_const(i):
                q = t.quantization
                qkey = None if q is None or q.scale is None else (
                    tuple(np.asarray(q.scale).tolist()), tuple(np.asarray(q.zeroPoint).tolist()),
                    q.quantizedDimension)
                shape = () if t.shape is None else tuple(t.shape)  # a scalar may have none
                key = (t.type, shape, bytes(m.buffers[t.buffer].data), qkey)
                alias[i] = const_of.setdefault(key, i)

        self.redirect(alias)
        used = sorted({i for op in g.operators for i in (*op.inputs, *op.outputs) if i >= 0}
                      | set(g.inputs) | set(g.outputs))
        new_index = {old: new for new, old in enumerate(used)}
        buffers = [self.s.BufferT()]  # buffer 0: the empty sentinel
        buf_index: dict[int, int] = {}
        tensors = []
        for old in used:
            t = copy.copy(g.tensors[old])
            if self.is_const(old):
                if t.buffer not in buf_index:
                    buffers.append(m.buffers[t.buffer])
                    buf_index[t.buffer] = len(buffers) - 1
                t.buffer = buf_index[t.buffer]
            else:
                t.buffer = 0
            t.name = names[old].encode() if old in names else None
            tensors.append(t)
        g.tensors = tensors
        for op in g.operators:
            op.inputs = [new_index[i] if i >= 0 else -1 for i in op.inputs]
            op.outputs = [new_index[i] for i in op.outputs]
        g.inputs = [new_index[i] for i in g.inputs]
        g.outputs = [new_index[i] for i in g.outputs]
        m.buffers = buffers
        # The most used operator code gets index 0: a default-valued field is not stored.
        uses = Counter(op.opcodeIndex for op in g.operators)
        order = sorted(range(len(m.operatorCodes)), key=lambda c: (-uses[c], c))
        m.operatorCodes = [m.operatorCodes[c] for c in order]
        for op in g.operators:
            op.opcodeIndex = order.index(op.opcodeIndex)
        m.metadata, m.metadataBuffer, m.signatureDefs = None, None, None
        m.description = b"edge_gru"
        return write_model(m)


def _op_step(graph: _Graph, op: Any) -> int | None:
    found = {int(x) for i in op.outputs for x in _STEP.findall(_name(graph.g.tensors[i]))}
    if len(found) > 1:
        raise RewriteError(f"an operator belongs to several steps: {sorted(found)}")
    return found.pop() if found else None


def _steps(graph: _Graph) -> tuple[dict[int, list[int]], list[int]]:
    """Operators per step, and each step's state tensor (the one read after the step)."""
    g = graph.g
    by_step: dict[int, list[int]] = defaultdict(list)
    for k, op in enumerate(g.operators):
        step = _op_step(graph, op)
        if step is not None:
            by_step[step].append(k)
    steps = sorted(by_step)
    if len(steps) < 3 or steps != list(range(len(steps))):
        raise RewriteError("no s{t}_ step structure found (is this an edge_gru unrolled model?)")
    template = [graph.codes[g.operators[k].opcodeIndex] for k in by_step[1]]
    for t in steps[1:]:
        if [graph.codes[g.operators[k].opcodeIndex] for k in by_step[t]] != template:
            raise RewriteError(f"step {t} differs from step 1")
    outside = [k for k, op in enumerate(g.operators) if _op_step(graph, op) is None]
    state: list[int] = []
    for t in steps:
        mine = {i for k in by_step[t] for i in g.operators[k].outputs}
        readers = [k for s in steps if s != t for k in by_step[s]] + outside
        out = sorted({i for k in readers for i in g.operators[k].inputs if i in mine})
        if len(out) != 1:
            raise RewriteError(f"step {t} hands {len(out)} tensors to later ops (expected 1)")
        state.append(out[0])
    return by_step, state


def _share_step_tensors(graph: _Graph, by_step: dict[int, list[int]], state: list[int]) -> None:
    """Steps ``2..T-1`` write into step 1's tensors; the state alternates between two tensors.

    Outputs of operators that read a per-step input row stay per step (see the module
    docstring). Tensors are only merged when shape, type and quantization are equal.
    """
    g = graph.g
    steps = sorted(by_step)
    produced = {i for t in steps for k in by_step[t] for i in g.operators[k].outputs}

    def same(a: int, b: int) -> bool:
        ta, tb = g.tensors[a], g.tensors[b]
        return (list(ta.shape), ta.type, _q(ta)) == (list(tb.shape), tb.type, _q(tb))

    alias: dict[int, int] = {}
    for t in steps[2:]:
        alias[state[t]] = state[1 + (t - 1) % 2]
        for k1, kt in zip(by_step[1], by_step[t]):
            op = g.operators[kt]
            if any(i >= 0 and i not in produced and not graph.is_const(i) for i in op.inputs):
                continue  # reads its step's input row
            for a, b in zip(g.operators[k1].outputs, op.outputs):
                if b != state[t]:
                    alias[b] = a
    for b, a in alias.items():
        if not same(a, b):
            raise RewriteError("steps' tensors differ in shape, type or quantization")
    graph.redirect(alias)


def share_steps(data: bytes) -> bytes:
    """Store an int8 unrolled GRU compactly (bit-identical outputs); see the module docstring."""
    graph = _Graph(data)
    by_step, state = _steps(graph)
    _share_step_tensors(graph, by_step, state)
    return graph.compact(_io_names(graph))


def unify_state(data: bytes) -> bytes:
    """Give the step model's state input and ``new_state`` output one quantization.

    The state input is the graph input of shape ``(1, units)``; ``new_state`` the output of
    the same shape. With equal parameters the firmware feeds the output back unchanged.
    """
    graph = _Graph(data)
    g = graph.g
    shape_of = {i: tuple(int(d) for d in g.tensors[i].shape) for i in (*g.inputs, *g.outputs)}
    ins = [i for i in g.inputs if len(shape_of[i]) == 2 and shape_of[i][1] > 1]
    outs = [i for i in g.outputs if shape_of[i] in {shape_of[j] for j in ins}]
    if len(ins) != 1 or len(outs) != 1:
        raise RewriteError("expected one (1, units) state input and one state output")
    qz = merged_quantization([graph.orig_q[ins[0]], graph.orig_q[outs[0]]])  # type: ignore[list-item]
    _set_q(g.tensors[ins[0]], qz)
    _set_q(g.tensors[outs[0]], qz)
    graph.requantize_biases()
    names = _io_names(graph)
    names.update({ins[0]: "state", outs[0]: "new_state"})
    return graph.compact(names)


def _io_names(graph: _Graph) -> dict[int, str]:
    """Inputs keep their signature names; the one-element output is ``probability``."""
    g = graph.g
    names = {i: _name(g.tensors[i]).split(":")[0] for i in g.inputs}
    for i in g.outputs:
        names[i] = "probability" if int(np.prod(g.tensors[i].shape)) == 1 else _name(g.tensors[i])
    return names
