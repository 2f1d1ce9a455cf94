"""Tracer of the ``fixed_point`` stage: the bit-exact NumPy model of the C, every step and gate.

The quantized model is rebuilt from the IR (:func:`edge_gru.fixed_point.scheme.quantize` is
deterministic, so it is the model the stage scored and the C sources hold). State and gates
are Q0.15: real value = integer / 2^15; the score is Q0.15 too.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..fixed_point import model as fixed_model
from ..fixed_point.scheme import QuantizedGru, quantize
from ..weights import seed_shape_problem, seed_view
from .ablation import fixed_point_variants
from .traces import LayerTrace, NotTraceable, StageTrace, TraceSource, register

Q15 = 32768.0


def trace_quantized(q: QuantizedGru, ids: np.ndarray, layer: str = "gru") -> StageTrace:
    """The trace of ``q`` on ``ids (N, T)``: states and z/r/n gates at every step, dequantized."""
    found = fixed_model.forward_trace(q, np.asarray(ids))
    steps = np.arange(found.states.shape[1])
    gates = {k: v.astype(np.float64) / Q15 for k, v in found.gates.items()}
    trace = LayerTrace(layer, found.states.astype(np.float64) / Q15, steps, gates)
    return StageTrace(
        stage="fixed_point",
        outputs=(found.scores.astype(np.float64) / Q15).reshape(-1, 1),
        layers=(trace,),
        how="bit-exact NumPy model of the fixed-point C (int16 Q0.15 state, LUT gates)",
    )


@register("fixed_point")
def trace_fixed_point(source: TraceSource, x: np.ndarray) -> StageTrace:
    problem = seed_shape_problem(source.ir)
    if problem is not None:
        raise NotTraceable(f"the seed tracer {problem}")
    gru_name = source.ir.layers[1].name
    q = quantize(seed_view(source.ir))
    trace = trace_quantized(q, x, gru_name)
    return replace(trace, variants=fixed_point_variants(source.ir, q))


@register("fixed_point")
def trace_family_fixed_point(source: TraceSource, x: np.ndarray) -> StageTrace:
    """Any family model: the quantized model the stage wrote (``fixed_point/family_model.npz``),
    every GRU direction's state and z/r/n gates at every step (Q0.15 / 2^15)."""
    from ..fixed_point import family_model
    from ..fixed_point.family_io import FILE, load_quant

    if seed_shape_problem(source.ir) is None:
        raise NotTraceable("the seed shape has its own fixed-point tracer")
    q = load_quant(source.artifact(f"fixed_point/{FILE}"))
    found = family_model.forward(q, family_model.to_integer_inputs(q, x), record=True)
    layers = tuple(
        LayerTrace(t.name, t.states.astype(np.float64) / Q15, np.arange(t.states.shape[1]),
                   {k: v.astype(np.float64) / Q15 for k, v in t.gates.items()})
        for t in found.traces)
    return StageTrace(
        stage="fixed_point",
        outputs=found.values,
        layers=layers,
        how="bit-exact NumPy model of the family fixed-point C (fixed_point/family_model.npz)",
    )
