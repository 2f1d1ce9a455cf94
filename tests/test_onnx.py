"""ONNX export and int8 quantization: parity with Keras, graph shape, gates, reproducibility."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_gru import reference
from edge_gru.drift.harness import Baseline, evaluate_stage
from edge_gru.frontend import from_keras
from edge_gru.ir import Task
from edge_gru.onnx.export import build_model, export_float, gru_onnx_params
from edge_gru.onnx.quantize import METHODS, quantize_int8
from edge_gru.recipe import Recipe
from edge_gru.stages import select_stages
from edge_gru.stages.base import BuildContext


def _run(path: Path | bytes, ids: np.ndarray) -> np.ndarray:
    """The model's ``(N, 1)`` probabilities."""
    source = path if isinstance(path, bytes) else str(path)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    out = session.run(None, {"ids": ids.astype(np.int32)})[0]
    return out.reshape(len(ids), -1).astype(np.float64)


def _context(tmp_path: Path, recipe: Recipe, trained) -> BuildContext:
    """What the pipeline hands the stages: the model's IR and its data."""
    return BuildContext(tmp_path, recipe, from_keras(trained.keras), trained.keras,
                        trained.data, seed=42, quiet=True)


def _baseline(trained, n: int) -> Baseline:
    from edge_gru.model.training import keras_predict

    ids = trained.data.x_test[:n]
    return Baseline(ids, trained.data.y_test[:n], keras_predict(trained.keras, ids),
                    Task("binary", 1))


@pytest.mark.parametrize("fixture", ["small_model", "small_model_reset_before"])
def test_float_onnx_matches_keras(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Max abs diff <= 1e-5 vs Keras on 1,000 real test reviews, both reset_after variants."""
    from edge_gru.model.training import keras_predict

    trained = request.getfixturevalue(fixture)
    ids = trained.data.x_test[:1000]
    path = export_float(trained.weights, tmp_path / "model_float.onnx")
    probs = _run(path, ids)
    keras = keras_predict(trained.keras, ids)
    assert probs.shape == keras.shape == (1000, 1)
    assert np.abs(probs - keras).max() <= 1e-5
    assert np.abs(probs - reference.predict(trained.weights, ids)).max() <= 1e-5
    gru = next(n for n in onnx.load(path).graph.node if n.op_type == "GRU")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gru.attribute}
    assert attrs["linear_before_reset"] == int(trained.weights.reset_after)
    assert attrs["hidden_size"] == trained.weights.units


def test_tf2onnx_loop_baseline_matches_keras(small_model, tmp_path: Path) -> None:
    """The benchmark's tf2onnx graph is the same model (a Loop), just slower."""
    from edge_gru.model.training import keras_predict
    from edge_gru.onnx.export import export_tf2onnx_loop

    path = export_tf2onnx_loop(small_model.keras, small_model.weights.maxlen, tmp_path / "l.onnx")
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert "Loop" in ops and "GRU" not in ops
    ids = small_model.data.x_test[:200]
    assert np.abs(_run(path, ids) - keras_predict(small_model.keras, ids)).max() <= 1e-5


def test_gru_params_layout(small_model_reset_before) -> None:
    """W, R are the transposed Keras kernels; B = [input bias, recurrent bias (0 if one bias)]."""
    w = small_model_reset_before.weights
    W, R, B = gru_onnx_params(w)
    u, e = w.units, w.embed_dim
    assert W.shape == (1, 3 * u, e) and R.shape == (1, 3 * u, u) and B.shape == (1, 6 * u)
    np.testing.assert_array_equal(W[0, u : 2 * u], w.kernel[:, u : 2 * u].T)  # reset gate rows
    np.testing.assert_array_equal(B[0, :3 * u], w.input_bias)
    assert not B[0, 3 * u :].any()  # reset_after=False: Keras has a single bias


def test_dynamic_batch_and_checker(small_model, tmp_path: Path) -> None:
    """One graph for every batch size; a review's output does not depend on its batch."""
    model = build_model(small_model.weights)
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == small_model.weights.maxlen
    assert [n.op_type for n in model.graph.node].count("GRU") == 1
    assert not any(n.op_type in {"Loop", "Scan"} for n in model.graph.node)
    path = export_float(small_model.weights, tmp_path / "m.onnx")
    ids = small_model.data.x_test[:300]
    whole = _run(path, ids)
    singles = np.concatenate([_run(path, ids[i : i + 1]) for i in range(0, 300, 37)])
    np.testing.assert_allclose(singles, whole[::37], atol=1e-6)


def test_same_weights_same_bytes(small_model, tmp_path: Path) -> None:
    """Float and int8 files are byte-identical when rebuilt from the same weights."""
    a = export_float(small_model.weights, tmp_path / "a.onnx").read_bytes()
    b = export_float(small_model.weights, tmp_path / "b.onnx").read_bytes()
    assert a == b
    cal = small_model.data.x_train[:200]
    qa = quantize_int8(tmp_path / "a.onnx", tmp_path / "qa.onnx", calibration=cal).read_bytes()
    qb = quantize_int8(tmp_path / "b.onnx", tmp_path / "qb.onnx", calibration=cal).read_bytes()
    assert qa == qb and len(qa) < 0.3 * len(a)
    changed = replace(small_model.weights, dense_bias=small_model.weights.dense_bias + 1.0)
    assert export_float(changed, tmp_path / "c.onnx").read_bytes() != a


def test_int8_embedding_is_int8_and_gru_float(small_model, tmp_path: Path) -> None:
    """The chosen method stores the table as int8 and reads int8 rows (no full-table dequantize)."""
    src = export_float(small_model.weights, tmp_path / "f.onnx")
    cal = small_model.data.x_train[:200]
    model = onnx.load(quantize_int8(src, tmp_path / "q.onnx", calibration=cal))
    tensors = {t.name: t for t in model.graph.initializer}
    shape = list(small_model.weights.embedding.shape)
    table = next(t for t in tensors.values() if list(t.dims) == shape)
    assert table.data_type == onnx.TensorProto.INT8
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    assert gather.input[0] == table.name  # Gather reads the int8 table directly
    gru = next(n for n in model.graph.node if n.op_type == "GRU")
    assert tensors[gru.input[1]].data_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize("method", METHODS)
def test_every_method_stays_close(method: str, small_model, tmp_path: Path) -> None:
    """Each measured option (embedding, dynamic, static QDQ with calibration) runs and agrees."""
    src = export_float(small_model.weights, tmp_path / "f.onnx")
    calibration = small_model.data.x_train[:200]
    q = quantize_int8(src, tmp_path / f"{method}.onnx", method, calibration)
    ids = small_model.data.x_test[:500]
    base, probs = _run(src, ids), _run(q, ids)
    assert np.mean((base > 0.5) == (probs > 0.5)) >= 0.98
    assert np.abs(base - probs).mean() < 0.01


def test_bad_quantization_requests_are_one_line_errors(small_model, tmp_path: Path) -> None:
    from edge_gru.errors import EdgeGruError

    src = export_float(small_model.weights, tmp_path / "f.onnx")
    with pytest.raises(EdgeGruError, match="unknown ONNX quantization"):
        quantize_int8(src, tmp_path / "q.onnx", "fp4")
    with pytest.raises(EdgeGruError, match="needs calibration"):
        quantize_int8(src, tmp_path / "q.onnx", "embedding", calibration=None)


def test_stages_pass_their_gates(small_model, tmp_path: Path) -> None:
    """onnx_float passes max_abs_diff <= 1e-5 and onnx_int8 the int8 gates, via the harness;
    the seed model's file is the seed exporter's, byte for byte."""
    n = 2000
    baseline = _baseline(small_model, n)
    recipe = Recipe(model=small_model.config)
    ctx = _context(tmp_path, recipe, small_model)
    results = {s.name: evaluate_stage(s, ctx, baseline, recipe, None)
               for s in select_stages(["onnx_float", "onnx_int8"])}
    flt, q = results["onnx_float"], results["onnx_int8"]
    assert flt.passed and flt.gates == {"max_abs_diff": 1e-5}, flt.breaches
    assert q.passed and set(q.gates) == {"accuracy_drop_pp", "agreement"}, q.breaches
    assert q.n == n and q.agreement >= 0.99 and q.info["method"] == "embedding"
    assert (tmp_path / "model_float.onnx").is_file() and (tmp_path / "model_int8.onnx").is_file()
    assert q.size_bytes < 0.3 * flt.size_bytes
    seed_bytes = export_float(small_model.weights, tmp_path / "seed.onnx").read_bytes()
    assert (tmp_path / "model_float.onnx").read_bytes() == seed_bytes


def test_a_tight_gate_fails_the_int8_stage(small_model, tmp_path: Path) -> None:
    """Gates bite: int8 cannot meet a float-sized bound on max abs diff."""
    baseline = _baseline(small_model, 500)
    recipe = Recipe(model=small_model.config,
                    stage_options={"onnx_int8": {"gates": {"max_abs_diff": 1e-5}}})
    ctx = _context(tmp_path, recipe, small_model)
    (stage,) = select_stages(["onnx_int8"])
    result = evaluate_stage(stage, ctx, baseline, recipe, None)
    assert not result.passed and any("max_abs_diff" in b for b in result.breaches)
