"""Read and write ``.tflite`` flatbuffers through the generated schema classes, writing
identical tables and vectors once.

Reading uses the flatbuffers-generated object API that ships with TensorFlow
(``tensorflow.lite.python.schema_py_generated``: ``ModelT`` and friends). Writing walks the
same objects and emits every table with the generated builder functions, but caches the
offset of each distinct table/vector: an unrolled graph repeats the same shapes,
quantization tables, operator options, operand lists and (after
:mod:`edge_gru.tflite.rewrite`) whole tensors and operators, and a flatbuffer may point to
one stored copy from many places. Constant buffers are 16-byte aligned (the schema's
``force_align: 16``, which TFLM's kernels rely on). No byte of the output is patched.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np

TFLITE_IDENTIFIER = b"TFL3"


def schema() -> Any:
    """The flatbuffers-generated TFLite schema module (object API)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def read_model(data: bytes) -> Any:
    """Unpack a ``.tflite`` file into a mutable ``ModelT``."""
    s = schema()
    return s.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _key(value: Any) -> Any:
    """A hashable, order-stable fingerprint of a generated ``...T`` object or value."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.ndarray):
        return (str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    return (type(value).__name__, tuple((k, _key(v)) for k, v in sorted(vars(value).items())))


def _is_default(options: Any) -> bool:
    """Options equal to their schema defaults: omitted, as flatbuffers omits default fields.

    TFLite's and TFLM's parsers (the shared ``flatbuffer_conversions.cc``) fill the same
    defaults when an operator has no options table.
    """
    return options is None or _key(options) == _key(type(options)())


class _Writer:
    """Emit a ``ModelT`` with each distinct table or vector stored once."""

    def __init__(self) -> None:
        self.b = flatbuffers.Builder(1 << 20)
        self.s = schema()
        self.cache: dict[Any, int] = {}

    def _once(self, key: Any, make: Any) -> int:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def ints(self, values: Any, width: int = 4) -> int:
        vals = [int(v) for v in values]

        def make() -> int:
            self.b.StartVector(width, len(vals), width)
            prepend = {4: self.b.PrependInt32, 8: self.b.PrependInt64}[width]
            for v in reversed(vals):
                prepend(v)
            return self.b.EndVector()

        return self._once(("ints", width, tuple(vals)), make)

    def floats(self, values: Any) -> int:
        vals = [float(np.float32(v)) for v in values]

        def make() -> int:
            self.b.StartVector(4, len(vals), 4)
            for v in reversed(vals):
                self.b.PrependFloat32(v)
            return self.b.EndVector()

        return self._once(("floats", tuple(vals)), make)

    def offsets(self, offs: list[int]) -> int:
        def make() -> int:
            self.b.StartVector(4, len(offs), 4)
            for off in reversed(offs):
                self.b.PrependUOffsetTRelative(off)
            return self.b.EndVector()

        return self._once(("offsets", tuple(offs)), make)

    def string(self, text: Any) -> int | None:
        if not text:
            return None
        raw = text if isinstance(text, bytes) else str(text).encode()
        return self._once(("str", raw), lambda: self.b.CreateString(raw))

    def packed(self, obj: Any) -> int | None:
        """Generated object-API tables without nested sharing (options, metadata...)."""
        if obj is None:
            return None
        return self._once(("packed", _key(obj)), lambda: obj.Pack(self.b))

    def quantization(self, q: Any) -> int | None:
        if q is None or (q.scale is None and q.min is None and q.max is None):
            return None
        s = self.s

        def make() -> int:
            scale = self.floats(q.scale) if q.scale is not None else None
            zero = self.ints(q.zeroPoint, 8) if q.zeroPoint is not None else None
            s.QuantizationParametersStart(self.b)
            if scale is not None:
                s.QuantizationParametersAddScale(self.b, scale)
            if zero is not None:
                s.QuantizationParametersAddZeroPoint(self.b, zero)
            if q.quantizedDimension:
                s.QuantizationParametersAddQuantizedDimension(self.b, q.quantizedDimension)
            return s.QuantizationParametersEnd(self.b)

        return self._once(("quant", _key(q.scale), _key(q.zeroPoint), q.quantizedDimension), make)

    def tensor(self, t: Any) -> int:
        s = self.s

        def make() -> int:
            shape = self.ints(t.shape if t.shape is not None else [])
            quant = self.quantization(t.quantization)
            name = self.string(t.name)
            s.TensorStart(self.b)
            s.TensorAddShape(self.b, shape)
            s.TensorAddType(self.b, t.type)
            s.TensorAddBuffer(self.b, t.buffer)
            if name is not None:
                s.TensorAddName(self.b, name)
            if quant is not None:
                s.TensorAddQuantization(self.b, quant)
            if t.isVariable:
                s.TensorAddIsVariable(self.b, True)
            return s.TensorEnd(self.b)

        return self._once(("tensor", _key(t.shape), t.type, t.buffer, t.name,
                           _key(t.quantization), t.isVariable), make)

    def operator(self, op: Any) -> int:
        s = self.s

        def make() -> int:
            inputs = self.ints(op.inputs)
            outputs = self.ints(op.outputs)
            options = None if _is_default(op.builtinOptions) else self.packed(op.builtinOptions)
            s.OperatorStart(self.b)
            s.OperatorAddOpcodeIndex(self.b, op.opcodeIndex)
            s.OperatorAddInputs(self.b, inputs)
            s.OperatorAddOutputs(self.b, outputs)
            if options is not None:
                s.OperatorAddBuiltinOptionsType(self.b, op.builtinOptionsType)
                s.OperatorAddBuiltinOptions(self.b, options)
            return s.OperatorEnd(self.b)

        key = ("op", op.opcodeIndex, _key(op.inputs), _key(op.outputs),
               op.builtinOptionsType, _key(op.builtinOptions))
        return self._once(key, make)

    def buffer(self, data: Any) -> int:
        s = self.s
        raw = b"" if data is None else np.asarray(data, np.uint8).tobytes()

        def make() -> int:
            vec = None
            if raw:
                self.b.StartVector(1, len(raw), 16)
                self.b.head -= len(raw)
                self.b.Bytes[self.b.head : self.b.head + len(raw)] = raw
                vec = self.b.EndVector()
            s.BufferStart(self.b)
            if vec is not None:
                s.BufferAddData(self.b, vec)
            return s.BufferEnd(self.b)

        return self._once(("buffer", raw), make)

    def subgraph(self, g: Any) -> int:
        s = self.s
        # Large constant data first, so it sits at the end of the file, as the converter does.
        tensors = self.offsets([self.tensor(t) for t in g.tensors])
        operators = self.offsets([self.operator(op) for op in g.operators])
        inputs, outputs = self.ints(g.inputs), self.ints(g.outputs)
        name = self.string(g.name)
        s.SubGraphStart(self.b)
        s.SubGraphAddTensors(self.b, tensors)
        s.SubGraphAddInputs(self.b, inputs)
        s.SubGraphAddOutputs(self.b, outputs)
        s.SubGraphAddOperators(self.b, operators)
        if name is not None:
            s.SubGraphAddName(self.b, name)
        return s.SubGraphEnd(self.b)

    def model(self, m: Any) -> bytes:
        s = self.s
        buffers = self.offsets([self.buffer(buf.data) for buf in m.buffers])
        codes = self.offsets([self.packed(code) for code in m.operatorCodes])
        subgraphs = self.offsets([self.subgraph(g) for g in m.subgraphs])
        description = self.string(m.description)
        s.ModelStart(self.b)
        s.ModelAddVersion(self.b, m.version)
        s.ModelAddOperatorCodes(self.b, codes)
        s.ModelAddSubgraphs(self.b, subgraphs)
        if description is not None:
            s.ModelAddDescription(self.b, description)
        s.ModelAddBuffers(self.b, buffers)
        self.b.Finish(s.ModelEnd(self.b), file_identifier=TFLITE_IDENTIFIER)
        return bytes(self.b.Output())


def write_model(m: Any) -> bytes:
    """Serialise ``m`` (single or several subgraphs); metadata and signatures are dropped."""
    return _Writer().model(m)
