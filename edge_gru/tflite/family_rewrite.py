"""Store a full-integer unrolled GRU-family model compactly (bit-identical outputs).

The generalisation of :func:`edge_gru.tflite.rewrite.share_steps` (read its docstring for
what sharing must not touch) to several GRU directions and to steps whose outputs are used
after the recurrence. Operators are grouped by the ``g{k}_s{t}_`` names of
:mod:`edge_gru.tflite.family`; with one quantization per step role
(:func:`edge_gru.tflite.family_int8.role_ranges`) steps ``1..T-1`` of a direction compute
with the same numbers, and a tensor of step ``t >= 2``

* read only inside its own step (an intermediate) is step 1's tensor;
* read only by its own and the next step (the state) alternates between step 1's and
  step 2's tensor;
* read after the recurrence (a returned sequence, a bidirectional merge, a graph output)
  or written by an operator that reads a per-step input row keeps its own tensor.

A masked direction (``..._keep_step`` operators) is left as it is: with its steps
shared, XNNPACK (ai-edge-litert 2.3) crashes preparing the int8 model.

The flatbuffer writer then stores identical operators, tensors and tables once
(:mod:`edge_gru.tflite.flatbuffer_io`). Names are dropped except the graph's inputs and
outputs. The per-step bytes that remain are reported by :func:`step_bytes`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from .rewrite import RewriteError, _Graph, _name, _q, _set_q, merged_quantization

_STEP = re.compile(r"(?:^|;)g(\d+)_s(\d+)_")
Key = tuple[int, int]  # (direction k, step t)


def _op_key(graph: _Graph, op: Any) -> Key | None:
    found = {(int(k), int(t)) for i in op.outputs
             for k, t in _STEP.findall(_name(graph.g.tensors[i]))}
    if len(found) > 1:
        raise RewriteError(f"an operator belongs to several steps: {sorted(found)}")
    return found.pop() if found else None


def _groups(graph: _Graph) -> dict[int, dict[int, list[int]]]:
    """Operator indices per direction and step: ``{k: {t: [op, ...]}}``."""
    groups: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, op in enumerate(graph.g.operators):
        key = _op_key(graph, op)
        if key is not None:
            groups[key[0]][key[1]].append(index)
    return groups


def _role(graph: _Graph, op_index: int) -> str:
    """An operator's role in its step: its first output's name without ``g{k}_s{t}_``."""
    op = graph.g.operators[op_index]
    return _STEP.sub(";", _name(graph.g.tensors[op.outputs[0]]))


def share_family_steps(data: bytes, steps_shared: bool = True,
                       unify_roles: bool = False) -> bytes:
    """Share the step tensors of every GRU direction (see the module docstring).

    Operators are paired across steps by role (output name without ``g{k}_s{t}_``): the
    converter may order a step's operators differently or add one (a QUANTIZE before a
    merge); unpaired operators keep their tensors. Raises
    :class:`~edge_gru.tflite.rewrite.RewriteError` if paired tensors differ in shape, type
    or quantization. A model without step names, or ``steps_shared=False``, is only
    compacted. ``unify_roles`` first gives each role one quantization over all steps
    (:func:`_unify`; for a 16x8 model, whose steps the converter calibrates one by one).
    """
    graph = _Graph(data)
    g = graph.g
    readers: dict[int, set[int]] = defaultdict(set)
    for index, op in enumerate(g.operators):
        for i in op.inputs:
            if i >= 0:
                readers[i].add(index)
    outputs = set(g.outputs)
    groups = _groups(graph)
    produced = {i for steps in groups.values() for ops in steps.values()
                for k in ops for i in g.operators[k].outputs}  # written by a step
    alias: dict[int, int] = {}
    for steps in groups.values() if steps_shared else ():
        order = sorted(steps)
        roles = {t: {_role(graph, k): k for k in steps[t]} for t in order}
        if len(order) < 3 or any(r.endswith("keep_step") for r in roles[1]):
            continue  # a masked direction: shared, XNNPACK crashes on it (ai-edge-litert 2.3)
        code = {t: {r: graph.codes[g.operators[k].opcodeIndex] for r, k in roles[t].items()}
                for t in order}
        step_of = {k: t for t in order for k in steps[t]}

        def kind(tensor: int, t: int, step_of: dict[int, int] = step_of) -> str:
            """``inner`` | ``state`` | ``kept`` for an output of step ``t``."""
            if tensor in outputs:
                return "kept"
            after = {step_of.get(r) for r in readers[tensor]}
            if after <= {t}:
                return "inner"
            if after <= {t, t + 1}:
                return "state"
            return "kept"

        if unify_roles:
            inside = {k for t in order for k in steps[t]}
            private = {i for t in order for k in steps[t] for i in g.operators[k].outputs
                       if i not in outputs and readers[i] <= inside}
            _unify(graph, roles, code, order[1:], private)

        for t in order[2:]:
            for role, kt in roles[t].items():
                if code[1].get(role) != code[t][role] or role not in roles[2]:
                    continue  # an operator only this step has (e.g. a QUANTIZE): its own
                op = g.operators[kt]
                if any(i >= 0 and i not in produced and not graph.is_const(i)
                       for i in op.inputs):
                    continue  # reads its step's input row: keeps its outputs (in-place kernels)
                for j, b in enumerate(op.outputs):
                    kb = kind(b, t)
                    a = g.operators[roles[1][role]].outputs[j]
                    if kb == "inner" and kind(a, 1) == "inner":
                        alias[b] = a
                    elif kb == "state" and t >= 3:
                        twin_step = 1 + (t - 1) % 2
                        twin = g.operators[roles[twin_step][role]].outputs[j]
                        if kind(twin, twin_step) == "state":
                            alias[b] = twin
    for b, a in list(alias.items()):
        ta, tb = g.tensors[a], g.tensors[b]
        if (list(ta.shape), ta.type, _q(ta)) != (list(tb.shape), tb.type, _q(tb)):
            if not unify_roles:
                raise RewriteError("steps' tensors differ in shape, type or quantization")
            del alias[b]  # 16x8: a tensor next to a returned sequence keeps its own scale
    graph.redirect(alias)
    if unify_roles:
        graph.requantize_biases()
    return graph.compact(_io_names(graph))


def _unify(graph: _Graph, roles: dict[int, dict[str, int]], code: dict[int, dict[str, int]],
           steps: list[int], private: set[int]) -> None:
    """Give each role's tensors one quantization over ``steps`` (the widest range).

    For a model calibrated step by step (16x8: no fake-quant ranges), this makes the steps
    identical; FULLY_CONNECTED biases are then re-quantized to their new input scale
    (:meth:`~edge_gru.tflite.rewrite._Graph.requantize_biases`), every other kernel derives
    its multipliers from the tensors' scales when it is prepared. Only ``private``
    tensors (read by the direction's steps alone) change: PACK and CONCATENATION after the
    recurrence copy their inputs' bytes as they are quantized now; a role any of whose
    tensors is read outside (the last state, read by the head) keeps every step's scale
    (unifying the others was measured to break stacked models: left for later).
    """
    g = graph.g
    for role, k1 in roles[steps[0]].items():
        if any(code[t].get(role) != code[steps[0]][role] for t in steps):
            continue
        for j in range(len(g.operators[k1].outputs)):
            tensors = [g.operators[roles[t][role]].outputs[j] for t in steps]
            if not set(tensors) <= private:
                continue
            params = [_q(g.tensors[i]) for i in tensors]
            if any(p is None for p in params) or len(set(params)) == 1:
                continue
            merged = merged_quantization(params)  # type: ignore[arg-type]
            if all(p[1] == 0 for p in params):  # int16: symmetric, zero point 0
                merged = (max(p[0] for p in params), 0)  # type: ignore[index]
            for i in tensors:
                _set_q(g.tensors[i], merged)


def _io_names(graph: _Graph) -> dict[int, str]:
    """Inputs and outputs keep their signature names (``ids``/``features``, ``output_0``)."""
    g = graph.g
    return {i: _name(g.tensors[i]).split(":")[0] for i in (*g.inputs, *g.outputs)}
