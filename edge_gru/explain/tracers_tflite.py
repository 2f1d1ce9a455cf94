"""Tracers of the seed's int8 TFLite stages, from the ``.tflite`` files in the output folder.

* ``tflite_step_int8_tflm``: ``model_step_int8.tflite`` in TFLite Micro, one invoke per token
  as the firmware runs it; TFLM's ``kPreserveAllTensors`` keeps every tensor of the one step,
  so each call gives the state it returns and the gates: ``z``/``r`` (the ``(1, 2u)``
  LOGISTIC output) and ``n`` (the TANH output).
* ``tflite_int8_litert`` / ``tflite_int8_tflm``: the unrolled ``model_int8.tflite``. Its
  rewrite (:mod:`edge_gru.tflite.rewrite`) makes steps share tensors, the state ping-ponging
  between two, so after an invoke only the last step's state is left: these tracers read
  ``h_T`` (the input of the final FULLY_CONNECTED) and the output.

Every int8 tensor is dequantized with its own scale and zero point
(``real = scale * (q - zero_point)``, the TFLite quantization spec).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..weights import seed_shape_problem
from .traces import LayerTrace, NotTraceable, StageTrace, TraceSource, register

LOGISTIC, TANH, FULLY_CONNECTED = 14, 28, 9  # tflite BuiltinOperator codes
TFLM_ARENA = 1 << 20  # generous: the trace keeps every tensor alive


@dataclass(frozen=True)
class _Tensor:
    index: int
    shape: tuple[int, ...]
    scale: float
    zero: int


@dataclass(frozen=True)
class _Graph:
    """The tensors and operators of subgraph 0, read with the ``tflite`` schema package."""

    tensors: list[_Tensor]
    ops: list[tuple[int, list[int], list[int]]]  # (builtin code, inputs, outputs)
    outputs: list[int]


def _read_graph(data: bytes) -> _Graph:
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    g = model.Subgraphs(0)
    tensors = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        q = t.Quantization()
        scale = float(q.ScaleAsNumpy()[0]) if q is not None and q.ScaleLength() else 1.0
        zero = int(q.ZeroPointAsNumpy()[0]) if q is not None and q.ZeroPointLength() else 0
        tensors.append(_Tensor(i, tuple(int(d) for d in t.ShapeAsNumpy()), scale, zero))
    ops = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        ops.append((builtin, [int(i) for i in op.InputsAsNumpy()],
                    [int(i) for i in op.OutputsAsNumpy()]))
    return _Graph(tensors, ops, [int(i) for i in g.OutputsAsNumpy()])


def _dequantize(values: np.ndarray, t: _Tensor) -> np.ndarray:
    return (np.asarray(values, np.float64) - t.zero) * t.scale


def _single(found: list[int], what: str) -> int:
    if len(found) != 1:
        raise NotTraceable(f"cannot identify the {what} tensor ({len(found)} candidates)")
    return found[0]


def _seed_only(source: TraceSource) -> str:
    problem = seed_shape_problem(source.ir)
    if problem is not None:
        raise NotTraceable(f"the seed tracer {problem} (a family model is traced through its "
                           "step model)")
    return source.ir.layers[1].name


def _tflm(data: bytes, preserve: bool) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve
              else runtime.InterpreterConfig.kAllocationRecording)
    return runtime.Interpreter.from_bytes(data, arena_size=TFLM_ARENA, intrepreter_config=config)


def _tflm_tensor(interp: Any, index: int) -> np.ndarray:
    return np.asarray(interp.GetTensor(index, 0)["tensor_data"])


@register("tflite_step_int8_tflm")
def trace_step_tflm(source: TraceSource, x: np.ndarray) -> StageTrace:
    """Every call of the step model: state, z, r, n after each token, and the last probability."""
    from ..runners.tflm import TflmStepModel

    layer = _seed_only(source)
    data = source.artifact("model_step_int8.tflite").read_bytes()
    graph = _read_graph(data)
    u = int(source.ir.layers[1].units)
    zr = _single([o[2][0] for o in graph.ops if o[0] == LOGISTIC
                  and graph.tensors[o[2][0]].shape[-1] == 2 * u], "[z, r]")
    n_idx = _single([o[2][0] for o in graph.ops if o[0] == TANH], "n")
    step = TflmStepModel(data, TFLM_ARENA)
    step.interp = _tflm(data, preserve=True)  # same kernels, every tensor kept readable
    state_t = graph.tensors[graph.outputs[step.state_out]]
    prob_t = graph.tensors[graph.outputs[step.prob_out]]
    ids = np.asarray(x, np.int32)
    n, steps = ids.shape
    states = np.empty((n, steps, u))
    gates = {k: np.empty((n, steps, u)) for k in ("z", "r", "n")}
    probs = np.empty(n)
    for i, row in enumerate(ids):
        state = step.zero_state
        for t, token in enumerate(row):
            step.interp.set_input(np.full((1, 1), token, np.int32), step.token_in)
            step.interp.set_input(state, step.state_in)
            step.interp.invoke()
            state = np.array(step.interp.get_output(step.state_out))
            states[i, t] = _dequantize(state.reshape(-1), state_t)
            zr_q = _dequantize(_tflm_tensor(step.interp, zr).reshape(-1), graph.tensors[zr])
            gates["z"][i, t], gates["r"][i, t] = zr_q[:u], zr_q[u:]
            gates["n"][i, t] = _dequantize(_tflm_tensor(step.interp, n_idx).reshape(-1),
                                           graph.tensors[n_idx])
        probs[i] = _dequantize(np.asarray(step.interp.get_output(step.prob_out)).reshape(-1),
                               prob_t)[0]
    return StageTrace(
        stage="tflite_step_int8_tflm",
        outputs=probs.reshape(-1, 1),
        layers=(LayerTrace(layer, states, np.arange(steps), gates),),
        how="model_step_int8.tflite in TFLite Micro, one invoke per token (kPreserveAllTensors)",
    )


def _final_state_tensor(graph: _Graph) -> int:
    """``h_T``: the input of the FULLY_CONNECTED whose output feeds the output's LOGISTIC."""
    out = graph.outputs[0]
    logistic = [o for o in graph.ops if o[0] == LOGISTIC and o[2][0] == out]
    if not logistic:
        raise NotTraceable("the output is not a LOGISTIC: not the seed's unrolled model")
    logit = logistic[0][1][0]
    dense = [o for o in graph.ops if o[0] == FULLY_CONNECTED and o[2][0] == logit]
    if not dense:
        raise NotTraceable("no FULLY_CONNECTED before the output")
    return dense[0][1][0]


_LIMIT = ("the unrolled model shares its state tensors across steps (edge_gru.tflite.rewrite): "
          "only the last step's state is readable after an invoke")


def _unrolled_trace(stage: str, layer: str, outputs: np.ndarray, final: np.ndarray,
                    steps: int, how: str) -> StageTrace:
    trace = LayerTrace(layer, final[:, None, :], np.array([steps - 1]))
    return StageTrace(stage, outputs.reshape(-1, 1), (trace,), how, _LIMIT)


@register("tflite_int8_litert")
def trace_unrolled_litert(source: TraceSource, x: np.ndarray) -> StageTrace:
    """``model_int8.tflite`` in LiteRT (``experimental_preserve_all_tensors``): h_T and output."""
    from ai_edge_litert.interpreter import Interpreter

    from ..runners.litert import _resolver

    layer = _seed_only(source)
    data = source.artifact("model_int8.tflite").read_bytes()
    graph = _read_graph(data)
    h_idx = _final_state_tensor(graph)
    # XNNPACK keeps the steps' tensors inside its delegate: trace with the built-in kernels.
    mode = str(source.options.get("mode", "xnnpack"))
    mode = "no_delegates" if mode == "xnnpack" else mode
    interp = Interpreter(model_content=data, experimental_op_resolver_type=_resolver(mode),
                         experimental_preserve_all_tensors=True, num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    ids = np.asarray(x, np.int32)
    final = np.empty((len(ids), graph.tensors[h_idx].shape[-1]))
    outputs = np.empty(len(ids))
    for i, row in enumerate(ids):
        interp.set_tensor(inp["index"], row.reshape(inp["shape"]))
        interp.invoke()
        final[i] = _dequantize(interp.get_tensor(h_idx).reshape(-1), graph.tensors[h_idx])
        outputs[i] = _dequantize(interp.get_tensor(graph.outputs[0]).reshape(-1),
                                 graph.tensors[graph.outputs[0]])[0]
    return _unrolled_trace("tflite_int8_litert", layer, outputs, final, ids.shape[1],
                           f"model_int8.tflite in LiteRT ({mode} kernels, "
                           "experimental_preserve_all_tensors)")


@register("tflite_int8_tflm")
def trace_unrolled_tflm(source: TraceSource, x: np.ndarray) -> StageTrace:
    """``model_int8.tflite`` in TFLite Micro (``kPreserveAllTensors``): h_T and output."""
    layer = _seed_only(source)
    data = source.artifact("model_int8.tflite").read_bytes()
    graph = _read_graph(data)
    h_idx = _final_state_tensor(graph)
    interp = _tflm(data, preserve=True)
    ids = np.asarray(x, np.int32)
    final = np.empty((len(ids), graph.tensors[h_idx].shape[-1]))
    outputs = np.empty(len(ids))
    for i, row in enumerate(ids):
        interp.set_input(row.reshape(1, -1), 0)
        interp.invoke()
        final[i] = _dequantize(_tflm_tensor(interp, h_idx).reshape(-1), graph.tensors[h_idx])
        outputs[i] = _dequantize(np.asarray(interp.get_output(0)).reshape(-1),
                                 graph.tensors[graph.outputs[0]])[0]
    return _unrolled_trace("tflite_int8_tflm", layer, outputs, final, ids.shape[1],
                           "model_int8.tflite in TFLite Micro (kPreserveAllTensors)")
