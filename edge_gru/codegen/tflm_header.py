"""Per-model C symbol names and the ``model_data.h`` comment of the TFLM sources.

Symbol names. One firmware may link several generated models, so every symbol carries a
per-model ``prefix``: a lower-case C identifier in snake case (``[a-z][a-z0-9]*`` words
joined by single ``_``), e.g. ``model_int8``. With ``Camel`` = the prefix's words
capitalised and joined (``model_step_int8`` -> ``ModelStepInt8``):

================================  =======================================
``g_<prefix>``                    the flatbuffer, ``alignas(16) const unsigned char[]``
``g_<prefix>_len``                its length in bytes, ``const unsigned int``
``k<Camel>TensorArenaSize``       the measured arena in bytes, ``constexpr unsigned int``
``<Camel>OpResolver``             ``tflite::MicroMutableOpResolver<N>``
``Register<Camel>Ops(r)``         adds exactly the model's builtin ops to ``r``
``EDGE_GRU_<PREFIX>_MODEL_DATA_H_``  include guard of ``model_data.h``
``EDGE_GRU_<PREFIX>_OP_RESOLVER_H_`` include guard of ``op_resolver.h``
================================  =======================================

The header comment lists each input and output tensor (index, name, type, shape and its
affine quantization ``real = scale * (q - zero_point)``, TFLite's quantization spec:
https://ai.google.dev/edge/litert/models/quantization_spec), and, when given, the task
(what the prediction output means, the decision rule in real and in quantized units, the
class names) and the recurrent state tensors of a step model (which input is fed from
which output, shape, quantization, the quantized initial value).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..errors import EdgeGruError
from ..ir import Task

_PREFIX = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_TYPES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}
_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


@dataclass(frozen=True)
class SymbolNames:
    """The C names of one model's generated sources (see the module docstring)."""

    prefix: str
    array: str
    length: str
    arena: str
    resolver: str
    register: str
    data_guard: str
    resolver_guard: str


def symbol_names(prefix: str) -> SymbolNames:
    """Names for ``prefix`` (e.g. ``model_int8`` -> ``g_model_int8``, ``ModelInt8OpResolver``)."""
    if not _PREFIX.fullmatch(prefix):
        raise EdgeGruError(
            f"TFLM symbol prefix {prefix!r} must be lower-case snake case, e.g. model_int8"
        )
    camel = "".join(word.capitalize() for word in prefix.split("_"))
    upper = prefix.upper()
    return SymbolNames(
        prefix=prefix,
        array=f"g_{prefix}",
        length=f"g_{prefix}_len",
        arena=f"k{camel}TensorArenaSize",
        resolver=f"{camel}OpResolver",
        register=f"Register{camel}Ops",
        data_guard=f"EDGE_GRU_{upper}_MODEL_DATA_H_",
        resolver_guard=f"EDGE_GRU_{upper}_OP_RESOLVER_H_",
    )


@dataclass(frozen=True)
class StateTensor:
    """A step model's recurrent state: output ``output`` is fed back into input ``input``.

    ``initial`` is the real value every element starts from (0.0 for a GRU state; a
    running max would start at its lowest value). ``what`` names it in the comment.
    """

    input: int
    output: int
    what: str = "recurrent state"
    initial: float = 0.0


@dataclass(frozen=True)
class TensorInfo:
    """One I/O tensor as the flatbuffer describes it; ``scales``/``zero_points`` empty when
    the tensor is not quantized."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    axis: int

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.shape)
        head = f'"{_safe(self.name)}": {self.dtype} [{shape}]'
        if not self.scales:
            return f"{head}, not quantized"
        if len(self.scales) > 1:
            return f"{head}, per-channel quantized ({len(self.scales)} scales, axis {self.axis})"
        return f"{head}, scale {self.scales[0]:.9g}, zero_point {self.zero_points[0]}"

    def quantize(self, real: float) -> int:
        """``clamp(round(real / scale) + zero_point)`` in the tensor's integer range."""
        lo, hi = _RANGES[self.dtype]
        if math.isinf(real):
            return lo if real < 0 else hi
        q = round(real / self.scales[0]) + self.zero_points[0]
        return int(min(max(q, lo), hi))


def _safe(text: str) -> str:
    """Text that cannot end the C comment it is written into or break its line."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.replace("*/", "* /").replace("/*", "/ *")


def io_tensors(model: bytes) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The inputs and outputs of subgraph 0, in the interpreter's index order."""
    import tflite

    g = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)

    def info(index: int) -> TensorInfo:
        t = g.Tensors(index)
        q = t.Quantization()
        scales: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        axis = 0
        if q is not None and q.ScaleLength() > 0:
            scales = tuple(float(q.Scale(k)) for k in range(q.ScaleLength()))
            zps = tuple(int(q.ZeroPoint(k)) for k in range(q.ZeroPointLength()))
            axis = int(q.QuantizedDimension())
        dtype = _TYPES.get(t.Type(), f"type {t.Type()}")
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        return TensorInfo((t.Name() or b"").decode(), dtype, shape, scales, zps, axis)

    inputs = [info(g.Inputs(k)) for k in range(g.InputsLength())]
    outputs = [info(g.Outputs(k)) for k in range(g.OutputsLength())]
    return inputs, outputs


def io_index(model: bytes, kind: str, name: str) -> int:
    """Index of the ``kind`` ("input"/"output") tensor called ``name``."""
    inputs, outputs = io_tensors(model)
    names = [t.name for t in (inputs if kind == "input" else outputs)]
    if name not in names:
        raise ValueError(f"the model has no {kind} tensor {name!r} (it has {names})")
    return names.index(name)


def _threshold(t: TensorInfo, real: float) -> str:
    """``real output > real`` as a condition on q (exact: the float32 scale as a fraction)."""
    if len(t.scales) != 1:
        return ""
    bound = t.zero_points[0] + Fraction(real) / Fraction(t.scales[0])
    return f", i.e. q > {math.floor(bound)}"


def _task_lines(task: Task, outputs: list[TensorInfo], predictions: list[int]) -> list[str]:
    lines = [f"Task: {task.kind}, {task.outputs} output value(s)."]
    for k in predictions:
        t = outputs[k]
        ref = f'output {k} ("{_safe(t.name)}")'
        if task.kind == "binary":
            lines.append(f"{ref} = p, the probability of class 1; decision p > 0.5"
                         + _threshold(t, 0.5) + ".")
        elif task.kind == "binary_logits":
            lines.append(f"{ref} = a logit; p = 1 / (1 + exp(-logit)); decision logit > 0"
                         + _threshold(t, 0.0) + ".")
        elif task.kind == "multiclass":
            lines.append(f"{ref} = softmax probabilities; decision argmax (the argmax of q is"
                         " the same class, ties aside).")
        elif task.kind == "multilabel":
            lines.append(f"{ref} = one sigmoid probability per label; label j is on when"
                         " p[j] > 0.5" + _threshold(t, 0.5) + ".")
        else:
            lines.append(f"{ref} = the regression values (dequantized as above).")
    names = [_safe(n) for n in task.class_names]
    if names and task.kind in ("binary", "binary_logits") and len(names) == 2:
        lines.append(f"Classes: 0 = {names[0]} (decision false), 1 = {names[1]} (decision true).")
    elif names:
        lines.append("Classes (value index = class):")
        lines.extend(f"  {j}: {name}" for j, name in enumerate(names))
    return lines


def _state_lines(states: tuple[StateTensor, ...], inputs: list[TensorInfo],
                 outputs: list[TensorInfo]) -> list[str]:
    lines = ["State (streaming step model: one Invoke() per timestep; before the first step",
             "set each state input to its initial value, after each Invoke() copy the state",
             "output back into the state input):"]
    for s in states:
        if not (0 <= s.input < len(inputs) and 0 <= s.output < len(outputs)):
            raise ValueError(f"state {s} refers to a missing input or output")
        i, o = inputs[s.input], outputs[s.output]
        if i.shape != o.shape or i.dtype != o.dtype:
            raise ValueError(f"state input {i.name} and output {o.name} differ in shape or type")
        lines.append(f"  {_safe(s.what)}: input {s.input} <- output {s.output},"
                     f" {i.dtype} [{'x'.join(str(d) for d in i.shape)}]")
        if len(i.scales) != 1 or len(o.scales) != 1:
            lines.append(f"    not per-tensor quantized; initial value {s.initial:g}")
            continue
        if (i.scales, i.zero_points) == (o.scales, o.zero_points):
            lines.append(f"    scale {i.scales[0]:.9g}, zero_point {i.zero_points[0]} (input and"
                         " output alike: copy the bytes, memcpy)")
        else:
            ratio = o.scales[0] / i.scales[0]
            lines.append(f"    requantize: q_in = round({ratio:.9g} * (q_out -"
                         f" ({o.zero_points[0]}))) + ({i.zero_points[0]})")
        lines.append(f"    initial value {s.initial:g}: q = {i.quantize(s.initial)} in every"
                     " element")
    return lines


def header_comment(model: bytes, task: Task | None = None,
                   states: tuple[StateTensor, ...] = ()) -> str:
    """The ``/* ... */`` block of ``model_data.h`` describing I/O, task and state."""
    inputs, outputs = io_tensors(model)
    lines = ["Tensors (a quantized tensor holds integers q: real = scale * (q - zero_point)):"]
    lines += [f"  input {k} {t.describe()}" for k, t in enumerate(inputs)]
    lines += [f"  output {k} {t.describe()}" for k, t in enumerate(outputs)]
    if task is not None:
        state_outputs = {s.output for s in states}
        predictions = [k for k in range(len(outputs)) if k not in state_outputs]
        lines += [""] + _task_lines(task, outputs, predictions)
    if states:
        lines += [""] + _state_lines(states, inputs, outputs)
    body = "\n".join(f" * {line}".rstrip() for line in lines)
    return f"/*\n{body}\n */\n"

