"""Where the bytes of a GRU ``.tflite`` go: embedding, recurrent (GRU), dense, graph.

Read with the ``tflite`` schema package: constants feeding GATHER are the embedding,
constants of the FULLY_CONNECTED whose output feeds the probability's LOGISTIC are the
dense layer, every other constant is the GRU's; "graph" is the rest of the file (tensor and
operator tables, shapes, quantization, vectors, padding).
"""

from __future__ import annotations


def size_breakdown(model: bytes) -> dict[str, int]:
    import tflite

    m = tflite.Model.GetRootAsModel(model, 0)
    g = m.Subgraphs(0)
    ops = [g.Operators(k) for k in range(g.OperatorsLength())]
    code = [m.OperatorCodes(op.OpcodeIndex()) for op in ops]
    kind = [max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) for c in code]
    producer = {int(i): k for k, op in enumerate(ops) for i in op.OutputsAsNumpy()}

    def const_bytes(t: int) -> int:
        return int(m.Buffers(g.Tensors(t).Buffer()).DataLength()) if t >= 0 else 0

    prob = [int(i) for i in g.OutputsAsNumpy() if int(g.Tensors(int(i)).ShapeAsNumpy().prod()) == 1]
    dense_inputs: set[int] = set()
    if prob and prob[0] in producer:
        logistic = ops[producer[prob[0]]]
        fc_out = int(logistic.InputsAsNumpy()[0])
        if fc_out in producer and kind[producer[fc_out]] == tflite.BuiltinOperator.FULLY_CONNECTED:
            dense_inputs = {int(i) for i in ops[producer[fc_out]].InputsAsNumpy()}
    emb_inputs = {int(i) for op, k in zip(ops, kind) if k == tflite.BuiltinOperator.GATHER
                  for i in op.InputsAsNumpy()}
    counted: set[int] = set()  # buffers, so a shared constant is counted once
    out = {"embedding": 0, "recurrent": 0, "dense": 0}
    for t in range(g.TensorsLength()):
        size, buf = const_bytes(t), g.Tensors(t).Buffer()
        if size == 0 or buf in counted:
            continue
        counted.add(buf)
        key = "embedding" if t in emb_inputs else "dense" if t in dense_inputs else "recurrent"
        out[key] += size
    out["graph"] = len(model) - sum(out.values())
    out["total"] = len(model)
    return out
