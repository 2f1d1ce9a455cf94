"""Tracers for the GRU-family step models (:mod:`edge_gru.tflite.family_step`, int8 and
16x8) in TFLite Micro.

The step model returns every GRU layer's state after each call, so the trace holds every
layer at every step (dequantized with each state tensor's scale and zero point); gates are
inside the call and not read here. The unrolled family model shares its step tensors like
the seed's: the seed's tracers report its last state only, and so does this module not
add one for it.
"""

from __future__ import annotations

import numpy as np

from ..ir import GRU
from ..runners.common import dequantize
from ..tflite.family import as_model_input
from ..weights import seed_shape_problem
from .traces import LayerTrace, NotTraceable, StageTrace, TraceSource, register


@register("tflite_step_int8_tflm")
def trace_family_step(source: TraceSource, x: np.ndarray) -> StageTrace:
    """Each layer's state after every step; the output after the last one."""
    if seed_shape_problem(source.ir) is None:
        raise NotTraceable("the seed shape has its own step tracer")
    return _trace_step(source, x, "tflite_step_int8_tflm", "model_step_int8.tflite")


@register("tflite_step_int16x8_tflm")
def trace_family_step_int16x8(source: TraceSource, x: np.ndarray) -> StageTrace:
    """The 16x8 step model (any model, the seed shape too): int16 states every step."""
    return _trace_step(source, x, "tflite_step_int16x8_tflm", "model_step_int16x8.tflite")


def _trace_step(source: TraceSource, x: np.ndarray, stage: str, file: str) -> StageTrace:
    from ..runners.tflm import TflmFamilyStepModel
    from ..tflite.family_step import output_names

    model = source.ir
    data = source.artifact(file).read_bytes()
    names = output_names(model)
    step = TflmFamilyStepModel(data, names, arena_size=1 << 20)
    grus = [layer for layer in model.layers if isinstance(layer, GRU)]
    x = as_model_input(model, x)
    n, steps = x.shape[:2]
    states = [np.empty((n, steps, g.units)) for g in grus]
    outputs = np.empty((n, model.task.outputs))
    state_outputs = [names.index(f"new_state_{k}") for k in range(len(grus))]
    detail = step.inputs[0]
    for i, row in enumerate(x):
        carried = list(step.start)
        for t, value in enumerate(row):
            step.interp.set_input(_input(value, detail), 0)
            for k, s in enumerate(carried):
                step.interp.set_input(s, k + 1)
            step.interp.invoke()
            carried = [np.array(step.interp.get_output(j)) for j in step.feedback]
            for k, j in enumerate(state_outputs):
                states[k][i, t] = dequantize(np.array(step.interp.get_output(j)).reshape(-1),
                                             step.outputs[j])
        outputs[i] = dequantize(np.array(step.interp.get_output(step.result)).reshape(-1),
                                step.outputs[step.result])
    return StageTrace(
        stage=stage,
        outputs=outputs,
        layers=tuple(LayerTrace(g.name, s, np.arange(steps)) for g, s in zip(grus, states)),
        how=f"{file} in TFLite Micro, one invoke per step, every layer's state",
        limits="gates are inside the call: states only",
    )


def _input(value: np.ndarray, detail: dict) -> np.ndarray:
    from ..runners.common import quantize

    return quantize(np.asarray(value).reshape(detail["shape"]), detail)
