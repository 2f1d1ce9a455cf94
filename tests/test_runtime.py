"""The Pi runtime on a real text bundle: raw Stanford text -> same ids and same predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_gru.data.imdb import KERAS_SHUFFLE_SEED, iter_stanford_reviews, resolve_source
from edge_gru.data.text import OOV_CHAR
from edge_gru.errors import EdgeGruError
from edge_gru.runtime import Predictor

REPO = Path(__file__).resolve().parent.parent
N_EVAL = 300
HEAVY = ("tensorflow", "keras", "tf2onnx", "tf_keras", "onnx", "jax", "torch")


@dataclass(frozen=True)
class TextBundle:
    """A convert-style output folder and the harness results of its two ONNX stages."""

    out: Path
    stages: list[Any]  # edge_gru.drift.harness.StageResult, outputs (N_EVAL, 1)
    report: dict[str, Any]


_BUNDLES: dict[int, TextBundle] = {}


def make_bundle(small_model, data_dir: Path, factory: pytest.TempPathFactory) -> TextBundle:
    """What ``convert`` does after the model is loaded, for the small model and the two ONNX
    stages: the stages through the drift harness, then ``metadata.json`` + word index.

    Built once per session (test_predict and test_runtime_tflite reuse it; the latter only
    adds ``.tflite`` files beside the ONNX models).
    """
    from edge_gru.bundle import write_bundle
    from edge_gru.data.dataset import Dataset
    from edge_gru.drift.harness import Baseline, evaluate_stage
    from edge_gru.frontend import from_keras
    from edge_gru.model.training import keras_predict
    from edge_gru.recipe import Recipe
    from edge_gru.stages import select_stages
    from edge_gru.stages.base import BuildContext

    if id(small_model) in _BUNDLES:
        return _BUNDLES[id(small_model)]
    out = factory.mktemp("bundle") / "build"
    out.mkdir()
    d = small_model.data
    data = Dataset(d.x_train, d.y_train, d.x_test, d.y_test, "npz:imdb.npz",
                   word_index=data_dir / "imdb_word_index.json")
    ir = from_keras(small_model.keras)
    recipe = Recipe(model=small_model.config)
    ctx = BuildContext(out, recipe, ir, small_model.keras, data, seed=42, quiet=True)
    x = d.x_test[:N_EVAL]
    baseline = Baseline(x, d.y_test[:N_EVAL], keras_predict(small_model.keras, x), ir.task)
    stages = [evaluate_stage(s, ctx, baseline, recipe, None)
              for s in select_stages(["onnx_float", "onnx_int8"])]
    report = {"float_accuracy": baseline.accuracy, "stages": [s.to_json() for s in stages]}
    write_bundle(ctx, report)
    _BUNDLES[id(small_model)] = TextBundle(out, stages, report)
    return _BUNDLES[id(small_model)]


@pytest.fixture(scope="module")
def bundle(small_model, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TextBundle:
    return make_bundle(small_model, data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def stanford_test_texts(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """The raw texts of ``x_test[:N_EVAL]``: Stanford order, then Keras' seed-113 shuffle."""
    source = resolve_source(data_dir / "aclImdb_labeled.tar.gz")
    reviews = list(iter_stanford_reviews(source, "test"))
    rng = np.random.RandomState(KERAS_SHUFFLE_SEED)
    train_order = np.arange(25000)
    rng.shuffle(train_order)  # load_data shuffles train first, with the same generator
    test_order = np.arange(len(reviews))
    rng.shuffle(test_order)
    chosen = [reviews[i] for i in test_order[:N_EVAL]]
    return [r.text for r in chosen], np.asarray([r.label for r in chosen])


def _stage_outputs(result: TextBundle, name: str) -> np.ndarray:
    stage = next(s for s in result.stages if s.name == name)
    assert stage.outputs is not None and stage.outputs.shape == (N_EVAL, 1)
    return stage.outputs


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_float.onnx"])
def test_raw_stanford_text_gives_npz_ids_and_harness_prediction(
    model: str, bundle: TextBundle, stanford_test_texts, small_model
) -> None:
    texts, labels = stanford_test_texts
    np.testing.assert_array_equal(labels, small_model.data.y_test[:N_EVAL])
    predictor = Predictor.from_bundle(bundle.out / model)
    ids = predictor.encode(texts)
    np.testing.assert_array_equal(ids, small_model.data.x_test[:N_EVAL])
    probs = predictor.predict_texts(texts, batch=64)
    harness = _stage_outputs(bundle, "onnx_int8" if "int8" in model else "onnx_float")
    np.testing.assert_allclose(probs, harness, atol=1e-6)
    assert ((probs > 0.5) == (harness > 0.5)).all()


def test_bundle_metadata_describes_the_models(bundle: TextBundle) -> None:
    meta = json.loads((bundle.out / "metadata.json").read_text())
    assert meta["default_model"] == "model_int8.onnx" and meta["threshold"] == 0.5
    assert meta["maxlen"] == 100 and meta["vocab"] == 10000
    assert meta["task"] == {"kind": "binary", "outputs": 1, "class_names": []}
    assert meta["input"]["kind"] == "tokens" and meta["input"]["timesteps"] == 100
    assert meta["input"]["mask_value"] is None and meta["input"]["pad_value"] == 0.0
    assert meta["labels"] == {"positive": "probability > threshold", "negative": "otherwise"}
    assert {"units", "embed_dim", "reset_after", "tokenizer", "float_accuracy"} <= set(meta)
    entry = meta["models"]["model_int8.onnx"]
    assert entry["inputs"] == [{"name": "ids", "dtype": "int32", "shape": ["N", 100]}]
    assert entry["outputs"][0]["dtype"] == "float32"
    assert entry["bytes"] == (bundle.out / "model_int8.onnx").stat().st_size
    assert entry["stages"]["onnx_int8"]["agreement"] == bundle.report["stages"][1]["agreement"]
    assert (bundle.out / meta["tokenizer"]["word_index"]).is_file()


def test_runtime_never_imports_tensorflow(bundle: TextBundle) -> None:
    """Load, encode and predict in a fresh interpreter; no TF/Keras/onnx module may appear."""
    script = (
        "import sys, json\n"
        "from edge_gru.runtime import Predictor\n"
        "from edge_gru.predict import main\n"
        f"p = Predictor.from_bundle({str(bundle.out / 'model_int8.onnx')!r})\n"
        "probs = p.predict_texts(['a wonderful film', ''])\n"
        f"assert main(['--model', {str(bundle.out / 'model_float.onnx')!r}, 'dull']) == 0\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'heavy': heavy, 'ort': 'onnxruntime' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"heavy": [], "ort": True}


def test_awkward_texts(bundle: TextBundle) -> None:
    """Empty, 50,000 words, unknown words, non-UTF-8 leftovers: a probability each, no error."""
    p = Predictor.from_bundle(bundle.out / "model_int8.onnx")
    long_review = " ".join(["great"] * 49_999 + ["awful"])
    texts = ["", long_review, "zzqxv blorfnik", "bad \udcff\udcfe bytes", "\ufffd\ufffd"]
    probs = p.predict_texts(texts)
    assert probs.shape == (5, 1) and np.isfinite(probs).all()
    assert ((0 <= probs) & (probs <= 1)).all()
    ids = p.encode(texts)
    assert p.known_tokens(ids).tolist()[0] == 0 and p.known_tokens(ids)[2] == 0
    assert p.known_tokens(ids)[1] == 100  # every id of the window is a word
    assert ids[1, -1] == p.encoder.encode("awful")[-1]  # pre-truncation keeps the end
    np.testing.assert_array_equal(ids[2], ids[0])  # words outside the index are dropped
    rare = next(w for w, r in p.encoder.word_index.items() if r + 3 >= p.vocab)
    assert p.encoder.encode(rare) == [1, OOV_CHAR]  # in the index, past num_words -> OOV


def test_ids_checks(bundle: TextBundle, small_model) -> None:
    p = Predictor.from_bundle(bundle.out / "model_float.onnx")
    ids = small_model.data.x_test[:10]
    with pytest.raises(EdgeGruError, match="shape"):
        p.predict_ids(ids[:, :50])
    with pytest.raises(EdgeGruError, match="negative"):
        p.predict_ids(-ids)
    with pytest.raises(EdgeGruError, match="integers"):
        p.predict_ids(ids.astype(np.float32))
    big = ids.copy()
    big[:, -1] = 123_456  # ids past the vocabulary read as OOV, as load_data maps them
    fixed = ids.copy()
    fixed[:, -1] = OOV_CHAR
    np.testing.assert_array_equal(p.predict_ids(big), p.predict_ids(fixed))
    assert p.predict_ids(np.zeros((0, 100), np.int32)).shape == (0, 1)


def test_model_without_bundle(bundle: TextBundle, small_model, tmp_path: Path) -> None:
    """A model copied alone still predicts ids; text needs the bundle, said in one line."""
    lone = tmp_path / "model_int8.onnx"
    lone.write_bytes((bundle.out / "model_int8.onnx").read_bytes())
    p = Predictor.from_bundle(lone)
    ids = small_model.data.x_test[:20]
    np.testing.assert_allclose(
        p.predict_ids(ids), Predictor.from_bundle(bundle.out / "model_int8.onnx").predict_ids(ids)
    )
    with pytest.raises(EdgeGruError, match="metadata.json"):
        p.predict_texts(["hello"])
    assert p.answers(p.predict_ids(ids[:1]))[0]["label"] in {"positive", "negative"}


def test_bad_model_files(tmp_path: Path) -> None:
    with pytest.raises(EdgeGruError, match="not found"):
        Predictor.from_bundle(tmp_path / "missing.onnx")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgeGruError, match="cannot load ONNX"):
        Predictor.from_bundle(bad)
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(EdgeGruError, match="unsupported model"):
        Predictor.from_bundle(other)
    with pytest.raises(EdgeGruError, match="folder"):
        Predictor.from_bundle(tmp_path)
