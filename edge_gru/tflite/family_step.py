"""The streaming step model of a GRU-family model: one token or feature vector per call.

``model_step_int8.tflite`` for a model that can stream (its outputs after step ``t`` depend
only on steps ``<= t``): unidirectional GRU layers, stacked or not, with or without a mask,
ending in the last state or a running max over time. Inputs, in this order:

* ``x``: ``token (1, 1) int32`` or ``frame (1, 1, F)`` (int8 with its scale and zero point;
  a ``Normalization`` is folded into the first projection as in the unrolled model);
* ``state_{k}`` ``(1, units_k)`` int8: layer ``k``'s hidden state (0 before the first call);
* ``max_state`` ``(1, units)`` int8, for ``GlobalMaxPooling1D``: the running max (start at
  -1: a GRU's outputs lie in ``[-1, 1]``).

Outputs: ``new_state_{k}`` (and ``new_max_state``) with the same quantization as the
matching input (the firmware copies them back byte for byte) and ``output`` (1, K): the
model's output as if the stream so far were the whole sequence. It is the family graph
(:mod:`edge_gru.tflite.family`) at ``T = 1`` with the states as inputs, so every step op is
the unrolled model's.

Not streamable, in one line each (:func:`step_problem`): ``Bidirectional`` and
``go_backwards`` (need the whole sequence), ``Flatten`` (keeps every step), the mean over
time (a running mean needs the step count, which an int8 state cannot hold exactly).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import ir, reference
from .export import convert_function
from .family import _Graph, as_model_input
from .rewrite import _Graph as _Flatbuffer
from .rewrite import _name, _set_q, merged_quantization

MAX_START = -1.0
STEP_CALIBRATION_PAIRS = 4000


def step_problem(model: ir.ModelIR) -> str | None:
    """Why ``model`` has no step model (one line), or None."""
    for layer in model.layers:
        if isinstance(layer, ir.Bidirectional):
            return "no step model: Bidirectional needs the whole sequence"
        if isinstance(layer, ir.GRU) and layer.go_backwards:
            return "no step model: go_backwards needs the whole sequence"
        if isinstance(layer, ir.Reduction) and layer.op == "flatten":
            return "no step model: Flatten keeps every step's output"
        if isinstance(layer, ir.Reduction) and layer.op == "mean":
            return ("no step model: a running mean needs the step count, which an int8 "
                    "state cannot hold exactly")
    return None


def _grus(model: ir.ModelIR) -> list[ir.GRU]:
    return [x for x in model.layers if isinstance(x, ir.GRU)]


def _has_max(model: ir.ModelIR) -> bool:
    return any(isinstance(x, ir.Reduction) and x.op == "max" for x in model.layers)


class _StepGraph(_Graph):
    """The family graph at T = 1 with state inputs; a running max replaces REDUCE_MAX."""

    def __init__(self, model: ir.ModelIR, tap: Any, max_state: Any | None) -> None:
        one = dataclasses.replace(model, input=dataclasses.replace(model.input, timesteps=1))
        super().__init__(one, 1, tap, integer=True)
        self.max_state = max_state
        self.new_max: Any | None = None

    def reduce(self, layer: ir.Reduction, rows: list[Any], mask: Any) -> Any:
        if layer.op == "max":
            self.new_max = self.tf.maximum(self.max_state, rows[-1], name="new_max_state")
            return self.new_max
        return super().reduce(layer, rows, mask)


def step_function(model: ir.ModelIR, tap: Any = None) -> Any:
    """A ``tf.function`` ``(x, state_0, ..., [max_state])`` ->
    ``{new_state_k, [new_max_state], output}`` (float32; ``tap`` as in the family graph)."""
    import tensorflow as tf

    from .family import _no_tap

    grus = _grus(model)
    spec = model.input
    x_spec = (tf.TensorSpec([1, 1], tf.int32, name="token") if spec.kind == "tokens"
              else tf.TensorSpec([1, 1, int(spec.features or 0)], tf.float32, name="frame"))
    specs = [x_spec] + [tf.TensorSpec([1, g.units], tf.float32, name=f"state_{k}")
                        for k, g in enumerate(grus)]
    has_max = _has_max(model)
    if has_max:
        specs.append(tf.TensorSpec([1, grus[-1].units], tf.float32, name="max_state"))

    @tf.function(input_signature=specs, autograph=False)
    def step(x: Any, *states: Any) -> dict[str, Any]:
        graph = _StepGraph(model, tap or _no_tap, states[-1] if has_max else None)
        graph.initial_states = list(states[: len(grus)])
        out = graph.build(x)
        result = {f"new_state_{k}": h for k, h in enumerate(graph.final_states)}
        if has_max:
            result["new_max_state"] = graph.new_max
        result["output"] = out
        return result

    return step


def step_calibration(model: ir.ModelIR, x: np.ndarray, pairs: int, seed: int
                     ) -> list[list[np.ndarray]]:
    """Seeded ``[x_t, state_0 before t, ..., (running max before t)]`` from the float reference."""
    traces = reference.forward(model, x).traces
    rng = np.random.default_rng(seed)
    row = rng.integers(0, len(x), pairs)
    t = rng.integers(0, x.shape[1], pairs)
    samples = []
    for i, step in zip(row, t):
        inputs = [as_model_input(model, x[i, step]).reshape((1, 1, -1) if x.ndim == 3
                                                             else (1, 1))]
        for trace in traces:
            before = trace.states[i, step - 1] if step > 0 else np.zeros(trace.states.shape[-1])
            inputs.append(before.astype(np.float32)[None])
        if _has_max(model):
            last = traces[-1].states[i, :step]
            start = np.full(last.shape[-1], MAX_START)
            inputs.append(np.maximum(start, last.max(axis=0)).astype(np.float32)[None]
                          if step > 0 else start.astype(np.float32)[None])
        samples.append(inputs)
    return samples


def family_step_tflite(model: ir.ModelIR, calibration: np.ndarray, seed: int,
                       precision: str = "int8") -> bytes:
    """``model_step_int8.tflite`` (module docstring), or with ``precision="int16x8"``
    ``model_step_int16x8.tflite`` (int16 activations and states, int8 weights, the
    embedding table int8 as in :mod:`edge_gru.tflite.int8_embedding`).

    Raises ValueError if ``model`` cannot stream.
    """
    problem = step_problem(model)
    if problem is not None:
        raise ValueError(problem)
    samples = step_calibration(model, np.asarray(calibration), STEP_CALIBRATION_PAIRS, seed)

    def representative() -> Iterator[list[np.ndarray]]:
        yield from samples

    data = convert_function(step_function(model), representative, precision)
    if precision == "int16x8":  # before the compaction, which then drops the int16 table
        from .int8_embedding import int8_embedding_tables

        data = int8_embedding_tables(data)
    return unify_states(data, model)


def output_names(model: ir.ModelIR) -> list[str]:
    """The step model's outputs in flatbuffer order: a ``tf.function``'s dict outputs are
    flattened in sorted key order (``tf.nest``)."""
    names = [f"new_state_{k}" for k in range(len(_grus(model)))] + ["output"]
    if _has_max(model):
        names.append("new_max_state")
    return sorted(names)


def unify_states(data: bytes, model: ir.ModelIR) -> bytes:
    """Give each state input and its ``new_`` output one quantization (bias re-quantized).

    Inputs keep the signature's names (``token``/``frame``, ``state_k``, ``max_state``);
    outputs are named as :func:`output_names` orders them, and their shapes are checked.
    """
    graph = _Flatbuffer(data)
    g = graph.g
    ins = {_name(g.tensors[i]).split(":")[0]: i for i in g.inputs}
    outs = dict(zip(output_names(model), g.outputs))
    names: dict[int, str] = {i: n for n, i in ins.items()}
    for name, o in outs.items():
        names[o] = name
        source = name[len("new_"):] if name.startswith("new_") else None
        if source is None:
            continue
        i = ins[source]
        if list(g.tensors[i].shape) != list(g.tensors[o].shape):
            raise ValueError(f"step model output {name} does not match input {source}")
        pair = [graph.orig_q[i], graph.orig_q[o]]
        if all(p is not None and p[1] == 0 for p in pair):  # int16: symmetric, the wider
            qz = (max(p[0] for p in pair), 0)  # type: ignore[index]
        else:
            qz = merged_quantization(pair)  # type: ignore[arg-type]
        _set_q(g.tensors[i], qz)
        _set_q(g.tensors[o], qz)
    graph.requantize_biases()
    return graph.compact(names)
