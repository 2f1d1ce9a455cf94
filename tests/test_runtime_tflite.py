"""The runtime's LiteRT path: ``.tflite`` classifiers (dynamic or fixed batch, float or int8
output) and the streaming step model, with I/O quantization read from the interpreter.

The models are converted here with TFLiteConverter from a plain TensorFlow GRU (the real
exports come from ``edge_gru.tflite.export``); what is tested is that the runtime feeds and
reads any of these shapes and dtypes correctly, against the NumPy reference.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from edge_gru import reference
from edge_gru.errors import EdgeGruError
from edge_gru.runtime import Predictor
from edge_gru.runtime.backends import TfliteBackend, TfliteStepBackend, open_backend
from edge_gru.tflite.export import convert_function
from edge_gru.weights import GruWeights

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runtime import HEAVY, make_bundle  # noqa: E402


def _consts(w: GruWeights) -> dict[str, Any]:
    arrays = {"E": w.embedding, "K": w.kernel, "U": w.recurrent_kernel, "bi": w.input_bias,
              "br": w.recurrent_bias, "d": w.dense_kernel.reshape(-1, 1)}
    return {k: tf.constant(v) for k, v in arrays.items()}


def _cell(w: GruWeights, c: dict[str, Any], xp: Any, h: Any) -> Any:
    u = w.units
    hp = tf.matmul(h, c["U"]) + c["br"]
    z = tf.sigmoid(xp[:, :u] + hp[:, :u])
    r = tf.sigmoid(xp[:, u : 2 * u] + hp[:, u : 2 * u])
    n = tf.tanh(xp[:, 2 * u :] + r * hp[:, 2 * u :])  # reset_after=True (the seed model)
    return z * h + (1 - z) * n


def classifier(w: GruWeights, batch: int | None) -> Any:
    c = _consts(w)

    @tf.function(input_signature=[tf.TensorSpec([batch, w.maxlen], tf.int32, name="ids")])
    def classify(ids: Any) -> Any:
        xp = tf.matmul(tf.gather(c["E"], ids), c["K"]) + c["bi"]
        h = tf.zeros_like(xp[:, 0, : w.units])
        for t in range(w.maxlen):
            h = _cell(w, c, xp[:, t], h)
        return tf.sigmoid(tf.matmul(h, c["d"]) + w.dense_bias)

    return classify


def step(w: GruWeights) -> Any:
    c = _consts(w)

    @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token"),
                                  tf.TensorSpec([1, w.units], tf.float32, name="state")])
    def one_step(token: Any, state: Any) -> Any:
        xp = tf.matmul(tf.gather(c["E"], token[:, 0]), c["K"]) + c["bi"]
        h = _cell(w, c, xp, state)
        return h, tf.sigmoid(tf.matmul(h, c["d"]) + w.dense_bias)

    return one_step


@pytest.fixture(scope="module")
def models(small_model, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A convert bundle plus three LiteRT models of the same weights beside it."""
    w = small_model.weights
    out = make_bundle(small_model, data_dir, tmp_path_factory).out
    cal = small_model.data.x_train[:16]
    states = reference.forward(w, cal).states.astype(np.float32)

    def reviews() -> Iterator[list[np.ndarray]]:
        for row in cal:
            yield [row[None]]

    def pairs() -> Iterator[list[np.ndarray]]:
        for i, t in np.ndindex(len(cal), 8):
            k = 12 * t + 5
            yield [cal[i, k].reshape(1, 1), states[i, k - 1][None]]

    (out / "model_float.tflite").write_bytes(convert_function(classifier(w, None), None))
    (out / "model_int8.tflite").write_bytes(convert_function(classifier(w, 1), reviews))
    (out / "model_step_int8.tflite").write_bytes(convert_function(step(w), pairs))
    return out


def test_float_tflite_dynamic_batch(models: Path, small_model) -> None:
    backend = open_backend(models / "model_float.tflite")
    assert isinstance(backend, TfliteBackend) and backend.dynamic
    ids = small_model.data.x_test[:64]
    expected = reference.predict(small_model.weights, ids)
    np.testing.assert_allclose(backend.run(ids), expected, atol=1e-5)
    np.testing.assert_allclose(backend.run(ids[:3]), expected[:3], atol=1e-5)  # resized again


def test_int8_tflite_output_dequantized(models: Path, small_model) -> None:
    """int8 output read with its own (scale, zero point); batch-1 model run row by row."""
    backend = open_backend(models / "model_int8.tflite")
    assert isinstance(backend, TfliteBackend) and not backend.dynamic and backend.batch == 1
    assert np.dtype(backend.output["dtype"]) == np.int8 and backend.output["quantization"][0] > 0
    ids = small_model.data.x_test[:200]
    probs, expected = backend.run(ids), reference.predict(small_model.weights, ids)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert np.abs(probs - expected).mean() < 0.02
    assert np.mean((probs > 0.5) == (expected > 0.5)) >= 0.95


def test_reference_kernels_option_runs_litert_reference_kernels(models: Path, small_model) -> None:
    """``--kernels reference`` gives exactly LiteRT's reference-kernel outputs, bit for bit."""
    from edge_gru.runners.litert import LiteRTModel

    path = models / "model_int8.tflite"
    ids = small_model.data.x_test[:100]
    ours = open_backend(path, kernels="reference").run(ids)
    theirs = LiteRTModel(path.read_bytes(), mode="reference").predict(ids)
    np.testing.assert_array_equal(ours, np.asarray(theirs).reshape(len(ids), -1))
    with pytest.raises(EdgeGruError, match="unknown LiteRT kernels"):
        open_backend(path, kernels="fastest")


def test_step_model_streams_tokens(models: Path, small_model) -> None:
    """(token, int8 state) in, (int8 state, probability) out, called once per token."""
    backend = open_backend(models / "model_step_int8.tflite", maxlen=100)
    assert isinstance(backend, TfliteStepBackend)
    assert np.dtype(backend.state_in["dtype"]) == np.int8
    assert np.dtype(backend.token["dtype"]) == np.int32
    ids = small_model.data.x_test[:40]
    probs, expected = backend.run(ids), reference.predict(small_model.weights, ids)
    assert np.abs(probs - expected).mean() < 0.03
    assert np.mean((probs > 0.5) == (expected > 0.5)) >= 0.9


def test_predict_cli_with_tflite_and_no_tensorflow(models: Path) -> None:
    """``predict --model model_int8.tflite "a wonderful film"`` in a TF-free interpreter."""
    script = (
        "import sys, json\n"
        "from edge_gru.predict import main\n"
        f"code = main(['--model', {str(models / 'model_int8.tflite')!r}, '--json', "
        "'a wonderful film', ''])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    lines = out.stdout.strip().splitlines()
    doc, status = json.loads(lines[0]), json.loads(lines[-1])
    assert status == {"code": 0, "heavy": []}
    assert doc["runtime"] == "litert" and len(doc["results"]) == 2


def test_tflite_and_onnx_agree_on_text(models: Path) -> None:
    texts = ["A moving, beautifully acted film.", "Dreadful. Two hours I will never get back."]
    onnx_probs = Predictor.from_bundle(models / "model_float.onnx").predict_texts(texts)
    tfl_probs = Predictor.from_bundle(models / "model_float.tflite").predict_texts(texts)
    np.testing.assert_allclose(tfl_probs, onnx_probs, atol=1e-5)


def test_bad_tflite_is_one_line_error(tmp_path: Path, models: Path) -> None:
    from edge_gru.errors import EdgeGruError

    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(EdgeGruError, match="cannot load TFLite"):
        Predictor.from_bundle(bad)
    shutil.copy(models / "metadata.json", tmp_path / "metadata.json")
    meta = json.loads((tmp_path / "metadata.json").read_text())
    meta["maxlen"] = 50
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    shutil.copy(models / "model_float.tflite", tmp_path / "m.tflite")
    with pytest.raises(EdgeGruError, match="says 50"):
        Predictor.from_bundle(tmp_path / "m.tflite")
