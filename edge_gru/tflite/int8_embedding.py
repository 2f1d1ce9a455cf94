"""A 16x8 model's embedding table as int8, so TFLite Micro can run it.

The 16x8 converter quantizes the embedding table like any activation, to int16, and TFLM's
GATHER has no int16 kernel ("Type 'INT16' is not supported by gather", tflite-micro
``kernels/gather.cc``: float32, int8 and int32 only). This rewrite stores the table as int8
(symmetric, one scale: ``s8 = max|table| / 127``, the precision the int8 model's table has)
and requantizes each gathered row to the int16 tensor the rest of the graph reads, with a
QUANTIZE operator (int8 -> int16; TFLM and LiteRT both implement this requantization):

    GATHER(int16 table, ids) -> x16      becomes
    GATHER(int8 table, ids) -> x8 ; QUANTIZE(x8) -> x16

It also halves the table's bytes once the old table is dropped: run it before a compaction
(:meth:`edge_gru.tflite.rewrite._Graph.compact`), which removes unused tensors and buffers.
Nothing else in the graph changes.
"""

from __future__ import annotations

import copy

import numpy as np

from .flatbuffer_io import read_model, schema, write_model


def int8_embedding_tables(data: bytes) -> bytes:
    """Rewrite every GATHER from a constant int16 table (see the module docstring)."""
    s = schema()
    m = read_model(data)
    g = m.subgraphs[0]
    codes = [c.builtinCode for c in m.operatorCodes]
    int16, int8 = s.TensorType.INT16, s.TensorType.INT8

    def const(i: int) -> bool:
        buf = m.buffers[g.tensors[i].buffer]
        return buf.data is not None and len(buf.data) > 0

    targets = [k for k, op in enumerate(g.operators)
               if codes[op.opcodeIndex] == s.BuiltinOperator.GATHER
               and g.tensors[op.inputs[0]].type == int16 and const(op.inputs[0])]
    if not targets:
        return data
    if s.BuiltinOperator.QUANTIZE not in codes:
        code = s.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.QUANTIZE
        code.version = 1
        m.operatorCodes.append(code)
        codes.append(s.BuiltinOperator.QUANTIZE)
    quantize_code = codes.index(s.BuiltinOperator.QUANTIZE)
    for k in reversed(targets):
        op = g.operators[k]
        table = g.tensors[op.inputs[0]]
        values = np.frombuffer(bytes(m.buffers[table.buffer].data), np.int16).astype(np.float64)
        real = values * float(table.quantization.scale[0])
        scale8 = float(np.float32(max(np.abs(real).max(), 1e-12) / 127.0))
        q8 = np.clip(np.round(real / scale8), -127, 127).astype(np.int8)

        def int8_tensor(like: object, name: bytes, buffer: int, scale8: float = scale8) -> int:
            t = copy.deepcopy(like)
            t.type = int8
            t.name = name
            t.buffer = buffer
            t.quantization.scale = np.asarray([scale8], np.float32)
            t.quantization.zeroPoint = np.asarray([0], np.int64)
            g.tensors.append(t)
            return len(g.tensors) - 1

        buf = s.BufferT()
        buf.data = np.frombuffer(q8.tobytes(), np.uint8)
        m.buffers.append(buf)
        table8 = int8_tensor(table, b"embedding_int8", len(m.buffers) - 1)
        x16 = op.outputs[0]
        x8 = int8_tensor(g.tensors[x16], b"embedded_int8", 0)
        op.inputs = np.asarray([table8, *list(op.inputs)[1:]], np.int32)
        op.outputs = np.asarray([x8], np.int32)
        requant = s.OperatorT()
        requant.opcodeIndex = quantize_code
        requant.inputs = np.asarray([x8], np.int32)
        requant.outputs = np.asarray([x16], np.int32)
        g.operators.insert(k + 1, requant)
    return write_model(m)
