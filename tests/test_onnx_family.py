"""Float ONNX for the whole GRU family: every zoo model in onnxruntime vs Keras' predict.

Masks get extra cases the zoo's front padding never produces (masked steps in the middle
of a sequence, a forward-running GRU wrapped as the backward half of a Bidirectional),
because the exporter's mask handling (a stable compaction feeding ``sequence_lens``) must
hold for any mask Keras accepts, not only for pre-padding.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_gru.frontend import from_keras
from edge_gru.ir import ModelIR
from edge_gru.onnx.export import build_ir_model, export_float, export_model, model_bytes
from edge_gru.weights import seed_shape_problem, seed_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import F, T, ZooModel, build_zoo  # noqa: E402

ZOO = build_zoo()
TOLERANCE = 1e-5


@functools.cache
def zoo(name: str) -> tuple[ZooModel, ModelIR, np.ndarray]:
    """The zoo model, its IR and Keras' outputs on its batch (built once per session)."""
    z = ZOO[name]()
    ir = from_keras(z.model, timesteps=T)
    return z, ir, _keras(z.model, z.x)


def _keras(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, verbose=0), np.float64).reshape(len(x), -1)


def _session(model_or_path) -> ort.InferenceSession:
    data = model_or_path.read_bytes() if isinstance(model_or_path, Path) else model_or_path
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, ir: ModelIR, x: np.ndarray) -> np.ndarray:
    dtype = np.int32 if ir.input.kind == "tokens" else np.float32
    out = session.run(None, {session.get_inputs()[0].name: x.astype(dtype)})[0]
    return np.asarray(out, np.float64)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b|; NaN must sit at the same places (Keras' masked mean over no step)."""
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b)))


def _gru_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "GRU"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_matches_keras(name: str, tmp_path: Path) -> None:
    """Within 1e-5 of Keras, one native GRU node per recurrent layer, no loop."""
    z, ir, keras_out = zoo(name)
    path = export_model(ir, tmp_path / "model_float.onnx")
    model = onnx.load(path)
    got = _run(_session(path), ir, z.x)
    assert got.shape == (len(z.x), ir.task.outputs)
    assert _max_diff(got, keras_out) <= TOLERANCE
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Loop", "Scan", "If"}
    assert len(_gru_nodes(model)) == len(ir.recurrent)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == T
    if ir.input.kind == "features":
        assert dims[2].dim_value == F
    if seed_shape_problem(ir) is None:  # the seed graph, byte for byte as before
        seed = export_float(seed_view(ir), tmp_path / "seed.onnx").read_bytes()
        assert path.read_bytes() == seed


def _masked_names() -> list[str]:
    return [n for n in sorted(ZOO) if n.startswith(("mask", "go_backwards_seq"))]


@pytest.mark.parametrize("name", _masked_names())
def test_masked_steps_inside_the_sequence(name: str) -> None:
    """Masked steps anywhere (not only front padding): the state is kept, as in Keras."""
    z, ir, _ = zoo(name)
    assert ir.masked
    rng = np.random.default_rng(11)
    x = z.x.copy()
    holes = rng.random(x.shape[:2]) < 0.3
    x[holes] = 0 if ir.input.kind == "tokens" else ir.input.pad_value
    assert (holes[:, :-1] & ~holes[:, 1:]).any()  # some hole sits before a real step
    got = _run(_session(model_bytes(build_ir_model(ir))), ir, x)
    assert _max_diff(got, _keras(z.model, x)) <= TOLERANCE


def _wrapped_bidirectional(seq: bool, reset_after_backward: bool):
    """Bidirectional(GRU(go_backwards=True), backward_layer=GRU(...)) behind a Masking layer."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    fwd = L.GRU(5, go_backwards=True, return_sequences=seq)
    bwd = L.GRU(5, go_backwards=False, return_sequences=seq, reset_after=reset_after_backward)
    tail = [L.GlobalAveragePooling1D()] if seq else []
    model = keras.Sequential([keras.Input((T, F)), L.Masking(0.0),
                              L.Bidirectional(fwd, backward_layer=bwd, merge_mode="concat"),
                              *tail, L.Dense(2, activation="softmax")])
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    x = rng.normal(size=(16, T, F)).astype(np.float32)
    x[rng.random((16, T)) < 0.3] = 0.0
    return model, x


@pytest.mark.parametrize("seq", [True, False])
@pytest.mark.parametrize("reset_after_backward", [True, False])
def test_bidirectional_that_one_node_cannot_express(seq: bool, reset_after_backward: bool) -> None:
    """A backwards forward layer (or mixed reset_after) becomes two one-way GRU nodes."""
    model, x = _wrapped_bidirectional(seq, reset_after_backward)
    ir = from_keras(model)
    built = build_ir_model(ir)
    directions = sorted(onnx.helper.get_attribute_value(a).decode()
                        for n in _gru_nodes(built) for a in n.attribute if a.name == "direction")
    assert directions == ["forward", "reverse"]
    got = _run(_session(model_bytes(built)), ir, x)
    assert _max_diff(got, _keras(model, x)) <= TOLERANCE


def test_one_bidirectional_node_and_reverse_order() -> None:
    """Keras' usual Bidirectional is one ``bidirectional`` node; go_backwards is ``reverse``."""
    _, bidi, _ = zoo("bidirectional_seq_stacked")
    nodes = _gru_nodes(build_ir_model(bidi))
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in nodes]
    assert [a["direction"] for a in attrs] == [b"bidirectional", b"forward"]
    assert [a["linear_before_reset"] for a in attrs] == [1, 1]
    _, back, _ = zoo("go_backwards")
    (node,) = _gru_nodes(build_ir_model(back))
    assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}["direction"] \
        == b"reverse"
    _, three, _ = zoo("stacked_three_tokens")  # its middle GRU has reset_after=False
    flags = [onnx.helper.get_attribute_value(a) for n in _gru_nodes(build_ir_model(three))
             for a in n.attribute if a.name == "linear_before_reset"]
    assert flags == [1, 0, 1]


def test_same_model_same_bytes_and_batch_independence() -> None:
    """Rebuilding the same Keras model (new layer names) gives the same bytes; a row's output
    does not depend on the rows batched with it."""
    z, ir, _ = zoo("masking_bidirectional_seq")
    again = from_keras(ZOO["masking_bidirectional_seq"]().model, timesteps=T)
    assert [layer.name for layer in again.layers] != [layer.name for layer in ir.layers]
    first = model_bytes(build_ir_model(ir))
    assert model_bytes(build_ir_model(again)) == first
    session = _session(first)
    whole = _run(session, ir, z.x)
    singles = np.concatenate([_run(session, ir, z.x[i : i + 1]) for i in range(len(z.x))])
    np.testing.assert_allclose(singles, whole, atol=1e-6)
    changed = ModelIR(ir.name, ir.input, ir.layers[:-1] + (_shift_bias(ir.layers[-1]),), ir.task)
    assert model_bytes(build_ir_model(changed)) != first


def _shift_bias(dense):
    from dataclasses import replace

    return replace(dense, bias=dense.bias + 1.0)


def test_stages_on_a_feature_model(tmp_path: Path) -> None:
    """``onnx_float`` passes its 1e-5 gate through the harness; ``onnx_int8`` stores the GRU
    and Dense weights as int8 (the arm64 twins run in tests/test_arm64.py)."""
    from edge_gru.data.dataset import Dataset
    from edge_gru.drift.harness import Baseline, evaluate_stage
    from edge_gru.recipe import load_recipe
    from edge_gru.stages import select_stages
    from edge_gru.stages.base import BuildContext

    z, ir, keras_out = zoo("masking_stacked_softmax")
    labels = np.argmax(keras_out, axis=1)
    data = Dataset(z.x, labels, z.x, labels, "zoo")
    recipe = load_recipe(None)
    ctx = BuildContext(tmp_path, recipe, ir, z.model, data, seed=0, quiet=True)
    baseline = Baseline(z.x, labels, keras_out, ir.task)
    stages = select_stages(["onnx_float", "onnx_int8"])
    flt, q = (evaluate_stage(s, ctx, baseline, recipe, None) for s in stages)
    assert flt.passed and flt.skipped is None and flt.n == len(z.x)
    assert flt.max_abs_diff is not None and flt.max_abs_diff <= TOLERANCE
    assert flt.artifact == "model_float.onnx" and "GRU" in flt.info["ops"]
    assert q.passed and q.skipped is None and q.info["method"] == "weights"
    assert q.agreement == 1.0 and "DequantizeLinear" in q.info["ops"]
    assert (tmp_path / "model_int8.onnx").is_file()
