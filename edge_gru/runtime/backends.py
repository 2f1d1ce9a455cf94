"""Model runners for the Pi: onnxruntime for ``.onnx``, LiteRT for ``.tflite``, nothing else.

Imports only NumPy at module level; onnxruntime and the LiteRT interpreter are imported
when a model of their kind is opened, so a Pi with only ``.[pi]`` installed never needs
the other one, and TensorFlow / Keras are never imported.

Every backend answers ``run(x) -> outputs (N, K) float64`` -- what Keras' ``predict``
returns -- for ``x`` ``(N, T)`` int token ids (``input_kind == "tokens"``) or ``(N, T, F)``
float32 features (``input_kind == "features"``); the kind, ``T`` (``maxlen``) and ``F`` are
read from the model file. Quantized ``.tflite`` I/O is converted with the tensor's own
``(scale, zero_point)`` read from the interpreter, never assumed; token ids are cast,
never scaled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import EdgeGruError

ONNX_SUFFIX = ".onnx"
TFLITE_SUFFIX = ".tflite"


class Backend(Protocol):
    runtime: str
    maxlen: int | None  # T, when the model fixes it
    input_kind: str  # "tokens" or "features"
    features: int | None  # F for feature models

    def run(self, x: np.ndarray) -> np.ndarray: ...


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class OnnxBackend:
    """onnxruntime session on the CPU; the batch dimension may be dynamic or fixed.

    One input: ``(batch, T)`` integer ids or ``(batch, T, F)`` float32 features.
    """

    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EdgeGruError("onnxruntime is not installed: pip install '.[pi]'") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise EdgeGruError(f"cannot load ONNX model {path.name}: {_first_line(exc)}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) not in (2, 3):
            raise EdgeGruError(
                f"{path.name}: expected one (batch, T) ids or (batch, T, F) features input"
            )
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.input_kind = "tokens" if len(shape) == 2 else "features"
        if self.input_kind == "tokens":
            self.input_dtype: type = np.int64 if "int64" in inputs[0].type else np.int32
            self.features = None
        else:
            self.input_dtype = np.float32
            self.features = shape[2] if isinstance(shape[2], int) else None
        batch, steps = shape[0], shape[1]
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.maxlen = steps if isinstance(steps, int) else None

    def run(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(self.input_dtype, copy=False)
        step = self.fixed_batch or max(len(x), 1)
        out = []
        for i in range(0, len(x), step):
            rows = x[i : i + step]
            out.append(self.session.run(None, {self.input_name: rows})[0].reshape(len(rows), -1))
        return np.concatenate(out).astype(np.float64) if out else np.empty((0, 1))


LITERT_KERNELS = ("default", "reference")


def _litert_interpreter(path: Path, threads: int, kernels: str = "default") -> Any:
    """LiteRT with its default (optimised, XNNPACK) kernels or its portable reference kernels.

    The optimised int8 kernels differ by CPU (x86 vs arm64 outputs can differ by a few
    LSB); the reference kernels give the same bits on every CPU.
    """
    if kernels not in LITERT_KERNELS:
        raise EdgeGruError(f"unknown LiteRT kernels {kernels!r}: expected one of {LITERT_KERNELS}")
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType
        except ImportError as exc:
            raise EdgeGruError(
                "no LiteRT interpreter: pip install 'edge_gru[litert]' (ai-edge-litert) "
                "or tflite-runtime"
            ) from exc
    try:
        if kernels == "reference":
            return Interpreter(
                model_path=str(path),
                num_threads=threads,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            )
        return Interpreter(model_path=str(path), num_threads=threads)
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError for bad flatbuffers
        raise EdgeGruError(f"cannot load TFLite model {path.name}: {_first_line(exc)}") from exc


def _quant(detail: dict[str, Any]) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)


def quantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Real values -> the tensor's dtype, using its quantization if it has one."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = _quant(detail)
    if scale > 0 and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        q = np.round(np.asarray(values, np.float64) / scale) + zero
        return np.clip(q, info.min, info.max).astype(dtype)
    return np.asarray(values).astype(dtype)


def dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """The tensor's values as float64, undoing its quantization if it has one."""
    scale, zero = _quant(detail)
    if scale > 0 and np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return (values.astype(np.float64) - zero) * scale
    return values.astype(np.float64)


def _ids_for(ids: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Token ids are integers, not real values: cast, never rescale (an id has no scale)."""
    return ids.astype(np.dtype(detail["dtype"]))


class TfliteBackend:
    """LiteRT for a whole-sequence model: one ``(batch, T)`` or ``(batch, T, F)`` input.

    A dynamic batch dimension (``shape_signature`` -1) is resized per call; a fixed batch
    (the unrolled int8 model is batch 1) is run row by row. Feature inputs are quantized
    with the input tensor's scale when it is int8; token ids are cast.
    """

    runtime = "litert"

    def __init__(self, interpreter: Any) -> None:
        self.interp = interpreter
        self.input = interpreter.get_input_details()[0]
        self.output = interpreter.get_output_details()[0]
        signature = list(self.input.get("shape_signature", self.input["shape"]))
        self.dynamic = signature[0] == -1
        self.batch = 0 if self.dynamic else int(self.input["shape"][0])
        shape = [int(d) for d in self.input["shape"]]
        self.input_kind = "tokens" if len(shape) == 2 else "features"
        self.maxlen = shape[1]
        self.features = shape[2] if len(shape) == 3 else None
        if not self.dynamic:
            interpreter.allocate_tensors()

    def _invoke(self, rows: np.ndarray) -> np.ndarray:
        if self.dynamic and self.batch != len(rows):
            self.interp.resize_tensor_input(self.input["index"], [len(rows), *rows.shape[1:]])
            self.interp.allocate_tensors()
            self.batch = len(rows)
        if self.input_kind == "tokens":
            value = _ids_for(rows, self.input)
        else:
            value = quantize(rows, self.input)
        self.interp.set_tensor(self.input["index"], value)
        self.interp.invoke()
        out = dequantize(self.interp.get_tensor(self.output["index"]), self.output)
        return out.reshape(len(rows), -1)

    def run(self, x: np.ndarray) -> np.ndarray:
        step = len(x) if self.dynamic else self.batch
        if len(x) == 0:
            return np.empty((0, 1))
        return np.concatenate([self._invoke(x[i : i + step]) for i in range(0, len(x), step)])


class TfliteStepBackend:
    """LiteRT for the streaming step model: (token id, state) in, (state, probability) out.

    Called once per token of the padded review, like the firmware does; the state output is
    fed back through float so differing in/out quantization would still be handled.
    The tensors are told apart by size: the token and the probability hold one value,
    the states ``units`` values.
    """

    runtime = "litert-step"
    input_kind = "tokens"
    features = None

    def __init__(self, interpreter: Any, maxlen: int | None) -> None:
        interpreter.allocate_tensors()
        self.interp = interpreter
        ins = sorted(interpreter.get_input_details(), key=lambda d: int(np.prod(d["shape"])))
        outs = sorted(interpreter.get_output_details(), key=lambda d: int(np.prod(d["shape"])))
        if len(ins) != 2 or len(outs) != 2:
            raise EdgeGruError("step model must have 2 inputs (token, state) and 2 outputs")
        self.token, self.state_in = ins
        self.prob, self.state_out = outs
        self.maxlen = maxlen

    def _one(self, row: np.ndarray) -> float:
        interp = self.interp
        state = np.zeros(self.state_in["shape"], np.float64)
        token_shape = self.token["shape"]
        for token in row:
            token_in = _ids_for(np.full(token_shape, token), self.token)
            interp.set_tensor(self.token["index"], token_in)
            interp.set_tensor(self.state_in["index"], quantize(state, self.state_in))
            interp.invoke()
            state = dequantize(interp.get_tensor(self.state_out["index"]), self.state_out)
        prob = dequantize(interp.get_tensor(self.prob["index"]), self.prob)
        return float(prob.reshape(-1)[0])

    def run(self, ids: np.ndarray) -> np.ndarray:
        """``(N, 1)`` probabilities, one streamed review at a time."""
        return np.asarray([self._one(row) for row in ids], np.float64).reshape(len(ids), 1)


def open_backend(
    path: Path, threads: int = 1, maxlen: int | None = None, kernels: str = "default"
) -> Backend:
    """Pick the runner by file suffix; a one-line error for anything else.

    ``kernels`` selects LiteRT's kernels for ``.tflite`` models (see :data:`LITERT_KERNELS`).
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise EdgeGruError(f"model file not found: {path}")
    if suffix == ONNX_SUFFIX:
        return OnnxBackend(path, threads)
    if suffix == TFLITE_SUFFIX:
        interp = _litert_interpreter(path, threads, kernels)
        if len(interp.get_input_details()) == 2:
            return TfliteStepBackend(interp, maxlen)
        return TfliteBackend(interp)
    raise EdgeGruError(f"unsupported model {path.name}: expected a .onnx or .tflite file")
