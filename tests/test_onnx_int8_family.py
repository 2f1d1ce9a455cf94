"""ONNX int8 for the whole GRU family: every zoo model quantized, run in onnxruntime, vs Keras.

Zoo models have random weights and T = 12 (tests/model_zoo.py). Measured on them with
the chosen methods: max |int8 - Keras| 8.0e-3 (seq_flatten: a 96x3 Flatten head), under
1e-3 for most; onnxruntime's ``quantize_dynamic`` for comparison drifted up to 0.24
and changed an example's output by up to 0.2 depending on its batch-mates.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_gru.data.dataset import Dataset
from edge_gru.drift.metrics import decisions
from edge_gru.errors import EdgeGruError
from edge_gru.frontend import from_keras
from edge_gru.ir import ModelIR
from edge_gru.onnx.export import export_float, export_model
from edge_gru.onnx.quantize import quantize_int8
from edge_gru.onnx.quantize_family import choose_method, quantize_family
from edge_gru.onnx.quantize_weights import MIN_ELEMENTS, quantize_rows
from edge_gru.recipe import Recipe
from edge_gru.stages.base import BuildContext
from edge_gru.stages.onnx import int8_model, int8_supports
from edge_gru.weights import seed_shape_problem, seed_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import VOCAB, T, ZooModel, build_zoo  # noqa: E402

ZOO = build_zoo()
TOLERANCE = 2e-2  # max |int8 - Keras| on any output (measured <= 8.0e-3, see docstring)
BATCH_TOLERANCE = 1e-6  # one row alone vs in its batch: float rounding only


@functools.cache
def zoo(name: str) -> tuple[ZooModel, ModelIR, np.ndarray]:
    z = ZOO[name]()
    ir = from_keras(z.model, timesteps=T)
    keras_out = np.asarray(z.model.predict(z.x, verbose=0), np.float64).reshape(len(z.x), -1)
    return z, ir, keras_out


def _run(data: bytes, ir: ModelIR, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    dtype = np.int32 if ir.input.kind == "tokens" else np.float32
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x.astype(dtype)})[0],
                      np.float64)


def _margin(ir: ModelIR, out: np.ndarray) -> np.ndarray:
    """How far each Keras output is from a decision boundary, ``(N,)`` (or ``(N, K)``)."""
    if ir.task.kind in {"binary", "multilabel"}:
        return np.abs(out - 0.5) if ir.task.kind == "multilabel" else np.abs(out[:, 0] - 0.5)
    if ir.task.kind == "binary_logits":
        return np.abs(out[:, 0])
    top = np.sort(out, axis=1)
    return top[:, -1] - top[:, -2]


def _quantized(name: str, tmp_path: Path) -> tuple[ZooModel, ModelIR, np.ndarray, Path, Path]:
    z, ir, keras_out = zoo(name)
    src = export_model(ir, tmp_path / "model_float.onnx")
    calibration = z.x if ir.input.kind == "tokens" else None
    path, method = quantize_family(ir, src, tmp_path / "model_int8.onnx", "auto", calibration)
    assert method == choose_method(ir)
    return z, ir, keras_out, src, path


NON_SEED = sorted(n for n in ZOO if seed_shape_problem(zoo(n)[1]) is not None)


@pytest.mark.parametrize("name", NON_SEED)
def test_zoo_int8_matches_keras(name: str, tmp_path: Path) -> None:
    """Outputs within TOLERANCE of Keras, same decisions away from the boundary, a batch-1
    run equal to the batched run, the GRU node float and its big weights stored int8."""
    z, ir, keras_out, src, path = _quantized(name, tmp_path)
    data = path.read_bytes()
    got = _run(data, ir, z.x)
    assert got.shape == keras_out.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(keras_out))
    assert float(np.nanmax(np.abs(got - keras_out))) <= TOLERANCE
    if ir.task.kind != "regression":
        clear = _margin(ir, keras_out) > 2 * TOLERANCE
        same = decisions(ir.task, got) == decisions(ir.task, keras_out)
        assert np.all(same[clear])
    one_by_one = np.concatenate([_run(data, ir, z.x[i : i + 1]) for i in range(len(z.x))])
    assert float(np.nanmax(np.abs(one_by_one - got))) <= BATCH_TOLERANCE

    model, float_model = onnx.load(path), onnx.load(src)
    inits = {i.name: i for i in model.graph.initializer}
    float_inits = {i.name: i for i in float_model.graph.initializer}
    stored_int8 = 0
    for node in float_model.graph.node:
        names = node.input[1:3] if node.op_type == "GRU" else node.input[1:2]
        if node.op_type not in {"GRU", "Gemm"}:
            continue
        for w in names:
            big = np.prod(float_inits[w].dims) >= MIN_ELEMENTS
            assert (w + "_int8" in inits) == big, w
            assert (w in inits) != big, w  # the float copy is gone when the int8 one is there
            stored_int8 += int(big)
    if ir.input.kind == "tokens":
        assert inits["embedding_quantized"].data_type == onnx.TensorProto.INT8
        assert "embedding" not in inits
        stored_int8 += 1
    gru_inputs = {i for n in model.graph.node if n.op_type == "GRU" for i in n.input}
    assert not gru_inputs & {k for k, v in inits.items() if v.data_type != onnx.TensorProto.FLOAT
                             and k.endswith("_int8")}
    if stored_int8:
        assert path.stat().st_size < src.stat().st_size
    else:  # nothing big enough: the graph is the float one
        assert path.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("name", ["stacked_three_tokens", "masking_stacked_softmax"])
def test_int8_bytes_are_deterministic(name: str, tmp_path: Path) -> None:
    """Two builds from the same weights give the same bytes (tokens and features)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _quantized(name, tmp_path / "a")[4].read_bytes()
    assert first == _quantized(name, tmp_path / "b")[4].read_bytes()


def test_quantize_rows_error_is_half_a_step() -> None:
    """Per-row symmetric int8: every weight within scale/2 of its value, row peak at 127."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (24, 7)).astype(np.float32)
    w[5] = 0.0
    q, scale = quantize_rows(w, axis=0)
    assert q.dtype == np.int8 and scale.shape == (24,)
    assert scale[5] == 1.0 and not q[5].any()
    err = np.abs(q * scale[:, None] - w)
    assert np.all(err <= scale[:, None] / 2 + 1e-7)
    assert np.all(np.abs(q[np.arange(24) != 5]).max(axis=1) == 127)


def test_methods_needing_an_embedding_refuse_feature_models(tmp_path: Path) -> None:
    _, ir, _ = zoo("stacked")
    src = export_model(ir, tmp_path / "f.onnx")
    with pytest.raises(EdgeGruError, match="needs an Embedding"):
        quantize_family(ir, src, tmp_path / "q.onnx", "embedding_weights")
    with pytest.raises(EdgeGruError, match="unknown ONNX quantization"):
        quantize_family(ir, src, tmp_path / "q.onnx", "fp4")


def test_every_zoo_model_is_supported() -> None:
    assert all(int8_supports(zoo(n)[1]) is None for n in ZOO)


def test_seed_shape_keeps_its_int8_file(tmp_path: Path) -> None:
    """The stage's seed-shaped ``model_int8.onnx`` is the old ``quantize_int8`` output,
    byte for byte (method ``embedding``, seeded calibration over the training ids)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(VOCAB, 6),
                              keras.layers.GRU(8), keras.layers.Dense(1, activation="sigmoid")])
    ir = from_keras(model, timesteps=T)
    assert seed_shape_problem(ir) is None
    rng = np.random.default_rng(1)
    x = rng.integers(0, VOCAB, (40, T)).astype(np.int32)
    y = rng.integers(0, 2, 40)
    data = Dataset(x, y, x[:8], y[:8], source="test")
    ctx = BuildContext(tmp_path, Recipe(), ir, model, data, seed=42, quiet=True)
    path, method = int8_model(ctx)
    assert method == "embedding" and path.name == "model_int8.onnx"
    old_float = export_float(seed_view(ir), tmp_path / "old_float.onnx")
    old = quantize_int8(old_float, tmp_path / "old_int8.onnx", "embedding",
                        ctx.calibration_ids(500))
    assert path.read_bytes() == old.read_bytes()
