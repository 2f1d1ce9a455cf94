"""TensorFlow Lite Micro runner: the real TFLM kernels through the ``tflite-micro`` package.

TFLM's C++ sources are not on any registry we can reach, so the host interpreter of the
``tflite-micro`` wheel is the TFLM we test against; it runs the same kernels as firmware.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..stages.base import StageUnavailable
from .common import ReviewRunner, dequantize, quantize


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise StageUnavailable(f"tflite-micro is not installed ({exc})") from exc
    return runtime


class TflmModel(ReviewRunner):
    """A TFLM interpreter over one model with an explicit tensor arena size."""

    def __init__(self, model: bytes, arena_size: int | None = None) -> None:
        runtime = _runtime()
        self.model = model
        self.interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        n_in = len(_io(model)[0])
        n_out = len(_io(model)[1])
        self.inputs = [self.interp.get_input_details(i) for i in range(n_in)]
        self.outputs = [self.interp.get_output_details(i) for i in range(n_out)]

    def run(self, *values: np.ndarray) -> list[np.ndarray]:
        for k, (detail, value) in enumerate(zip(self.inputs, values)):
            self.interp.set_input(quantize(value, detail).reshape(detail["shape"]), k)
        self.interp.invoke()
        return [np.array(self.interp.get_output(k)) for k in range(len(self.outputs))]


class TflmStepModel(TflmModel):
    """The step model driven as the firmware does: one invoke per token, int8 state kept."""

    def __init__(self, model: bytes, arena_size: int | None = None) -> None:
        super().__init__(model, arena_size)
        shapes = [tuple(d["shape"]) for d in self.outputs]
        self.state_out = next(k for k, s in enumerate(shapes) if s[-1] > 1)
        self.prob_out = 1 - self.state_out
        in_shapes = [tuple(d["shape"]) for d in self.inputs]
        self.state_in = next(k for k, s in enumerate(in_shapes) if s[-1] > 1)
        self.token_in = 1 - self.state_in
        self.zero_state = quantize(np.zeros(in_shapes[self.state_in], np.float32),
                                   self.inputs[self.state_in])

    def raw_review(self, ids: np.ndarray) -> tuple[int, np.ndarray]:
        """Raw int8 probability after the last token and the final int8 state."""
        state = self.zero_state
        interp = self.interp
        out = np.zeros(1, np.int8)
        for token in np.asarray(ids, np.int32):
            interp.set_input(np.full((1, 1), token, np.int32), self.token_in)
            interp.set_input(state, self.state_in)
            interp.invoke()
            state = np.array(interp.get_output(self.state_out))
            out = interp.get_output(self.prob_out)
        return int(np.asarray(out).reshape(-1)[0]), state

    def raw_outputs(self, ids: np.ndarray) -> np.ndarray:
        return np.array([self.raw_review(row)[0] for row in ids])

    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        return dequantize(raw, self.outputs[self.prob_out])

    def predict_outputs(self, x: np.ndarray) -> np.ndarray:
        """The probability after each review's last token, ``(N, 1)``."""
        return self.predict(x).reshape(-1, 1)


def registered_ops() -> frozenset[str]:
    """Builtin ops the ``tflite-micro`` interpreter registers, read from its native module.

    Its op resolver calls one ``tflite::Register_<OP>()`` per builtin; the mangled names
    (``_ZN6tflite12Register_ADDEv``) are in the shared library's symbol strings.
    """
    import re
    from pathlib import Path

    runtime = _runtime()
    blob = (Path(runtime.__file__).parent / "_runtime.so").read_bytes()
    return frozenset(m.decode() for m in re.findall(rb"Register_([A-Z0-9_]+?)Ev", blob))


def _io(model: bytes) -> tuple[list[int], list[int]]:
    """Graph input and output tensor indices, read with the ``tflite`` schema package."""
    import tflite

    m = tflite.Model.GetRootAsModel(model, 0)
    g = m.Subgraphs(0)
    return list(g.InputsAsNumpy()), list(g.OutputsAsNumpy())


class TflmFamilyStepModel(TflmModel):
    """A GRU-family step model (:mod:`edge_gru.tflite.family_step`) driven as firmware does.

    Inputs ``[x, state_0, ..., (max_state)]``, outputs in ``output_names`` order. Each
    sequence starts from zero states (and a running max of -1) and feeds one step per
    invoke, copying every ``new_*`` output back into its input byte for byte.
    """

    def __init__(self, model: bytes, output_names: list[str], arena_size: int | None = None,
                 max_start: float = -1.0) -> None:
        super().__init__(model, arena_size)
        self.output_names = output_names
        self.result = output_names.index("output")
        n_states = len(self.inputs) - 1
        state_outputs = [n for n in output_names if n.startswith("new_state_")]
        self.feedback = [output_names.index(n) for n in state_outputs]
        if "new_max_state" in output_names:
            self.feedback.append(output_names.index("new_max_state"))
        if len(self.feedback) != n_states:
            raise ValueError("step model inputs and outputs do not pair up")
        self.start = [quantize(np.zeros(d["shape"], np.float32), d) for d in self.inputs[1:]]
        if "new_max_state" in output_names:
            d = self.inputs[-1]
            self.start[-1] = quantize(np.full(d["shape"], max_start, np.float32), d)

    def raw_sequence(self, x: np.ndarray) -> np.ndarray:
        """The raw ``output`` after the last step of one sequence ``(T,)`` or ``(T, F)``."""
        states = list(self.start)
        interp = self.interp
        out = np.zeros(self.outputs[self.result]["shape"], self.outputs[self.result]["dtype"])
        x_detail = self.inputs[0]
        for step in np.asarray(x):
            interp.set_input(quantize(np.asarray(step).reshape(x_detail["shape"]), x_detail), 0)
            for k, s in enumerate(states):
                interp.set_input(s, k + 1)
            interp.invoke()
            states = [np.array(interp.get_output(j)) for j in self.feedback]
            out = np.array(interp.get_output(self.result))
        return out.reshape(-1)

    def raw_output_rows(self, x: np.ndarray) -> np.ndarray:
        rows = [self.raw_sequence(row) for row in x]
        k = int(np.prod(self.outputs[self.result]["shape"][1:]))
        return np.stack(rows) if rows else np.empty((0, k), self.outputs[self.result]["dtype"])

    def predict_outputs(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(N, K)`` float64 after each sequence's last step."""
        return dequantize(self.raw_output_rows(x), self.outputs[self.result])
