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
