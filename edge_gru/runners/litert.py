"""LiteRT (``ai_edge_litert``) runner in its three kernel modes.

* ``xnnpack``: the default op resolver, which applies the XNNPACK delegate;
* ``no_delegates``: optimized builtin kernels without any default delegate;
* ``reference``: TFLite's reference kernels (the closest to TFLM's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EdgeGruError
from .common import ReviewRunner, quantize

MODES = ("xnnpack", "no_delegates", "reference")


def _resolver(mode: str) -> Any:
    from ai_edge_litert.interpreter import OpResolverType

    table = {
        "xnnpack": OpResolverType.AUTO,
        "no_delegates": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        "reference": OpResolverType.BUILTIN_REF,
    }
    if mode not in table:
        raise EdgeGruError(f"unknown LiteRT mode {mode!r}; known: {', '.join(MODES)}")
    return table[mode]


class LiteRTModel(ReviewRunner):
    """One interpreter over a ``.tflite`` byte string; batch-1 inputs, as the model has."""

    def __init__(self, model: bytes, mode: str = "xnnpack", threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.mode = mode
        self.interp = Interpreter(
            model_content=model, experimental_op_resolver_type=_resolver(mode), num_threads=threads
        )
        self.interp.allocate_tensors()
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def run(self, *values: np.ndarray) -> list[np.ndarray]:
        """Raw output tensors (int8 stays int8) for one set of inputs."""
        for detail, value in zip(self.inputs, values):
            value = quantize(value, detail).reshape(detail["shape"])
            self.interp.set_tensor(detail["index"], value)
        self.interp.invoke()
        return [self.interp.get_tensor(d["index"]).copy() for d in self.outputs]
