"""The Pi runtime on a real convert bundle: raw Stanford text -> same ids and same predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_gru.data.imdb import KERAS_SHUFFLE_SEED, iter_stanford_reviews, resolve_source
from edge_gru.data.text import OOV_CHAR
from edge_gru.errors import EdgeGruError
from edge_gru.pipeline import ConvertOptions, ConvertResult, run_convert
from edge_gru.runtime import Predictor

REPO = Path(__file__).resolve().parent.parent
N_EVAL = 300
HEAVY = ("tensorflow", "keras", "tf2onnx", "tf_keras", "onnx", "jax", "torch")
_BUNDLES: dict[int, ConvertResult] = {}


def make_bundle(small_model, data_dir: Path, factory: pytest.TempPathFactory) -> ConvertResult:
    """``convert`` with the small model and the two ONNX stages: a real deployable folder.

    Built once per session (test_predict and test_runtime_tflite reuse it; the latter only
    adds ``.tflite`` files beside the ONNX models).
    """
    from edge_gru.model.save import save_deterministic

    if id(small_model) in _BUNDLES:
        return _BUNDLES[id(small_model)]
    folder = factory.mktemp("bundle")
    model_path = folder / "small.keras"
    save_deterministic(small_model.keras, model_path)
    opts = ConvertOptions(out=folder / "build", data=data_dir, model=model_path,
                          stages=("onnx_float", "onnx_int8"), max_eval=N_EVAL, quiet=True)
    _BUNDLES[id(small_model)] = run_convert(opts)
    return _BUNDLES[id(small_model)]


@pytest.fixture(scope="module")
def bundle(small_model, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ConvertResult:
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


def _stage_probs(result: ConvertResult, name: str) -> np.ndarray:
    stage = next(s for s in result.stages if s.name == name)
    assert stage.probabilities is not None
    return stage.probabilities


@pytest.mark.parametrize("model", ["model_int8.onnx", "model_float.onnx"])
def test_raw_stanford_text_gives_npz_ids_and_harness_prediction(
    model: str, bundle: ConvertResult, stanford_test_texts, small_model
) -> None:
    texts, labels = stanford_test_texts
    np.testing.assert_array_equal(labels, small_model.data.y_test[:N_EVAL])
    predictor = Predictor.from_bundle(bundle.out / model)
    ids = predictor.encode(texts)
    np.testing.assert_array_equal(ids, small_model.data.x_test[:N_EVAL])
    probs = predictor.predict_texts(texts, batch=64)
    harness = _stage_probs(bundle, "onnx_int8" if "int8" in model else "onnx_float")
    np.testing.assert_allclose(probs, harness, atol=1e-6)
    assert ((probs > 0.5) == (harness > 0.5)).all()


def test_bundle_metadata_describes_the_models(bundle: ConvertResult) -> None:
    meta = json.loads((bundle.out / "metadata.json").read_text())
    assert meta["default_model"] == "model_int8.onnx" and meta["threshold"] == 0.5
    assert meta["maxlen"] == 100 and meta["vocab"] == 10000
    entry = meta["models"]["model_int8.onnx"]
    assert entry["inputs"] == [{"name": "ids", "dtype": "int32", "shape": ["N", 100]}]
    assert entry["outputs"][0]["dtype"] == "float32"
    assert entry["bytes"] == (bundle.out / "model_int8.onnx").stat().st_size
    assert entry["stages"]["onnx_int8"]["agreement"] == bundle.report["stages"][1]["agreement"]
    assert (bundle.out / meta["tokenizer"]["word_index"]).is_file()


def test_runtime_never_imports_tensorflow(bundle: ConvertResult) -> None:
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


def test_awkward_texts(bundle: ConvertResult) -> None:
    """Empty, 50,000 words, unknown words, non-UTF-8 leftovers: a probability each, no error."""
    p = Predictor.from_bundle(bundle.out / "model_int8.onnx")
    long_review = " ".join(["great"] * 49_999 + ["awful"])
    texts = ["", long_review, "zzqxv blorfnik", "bad \udcff\udcfe bytes", "\ufffd\ufffd"]
    probs = p.predict_texts(texts)
    assert probs.shape == (5,) and np.isfinite(probs).all() and ((0 <= probs) & (probs <= 1)).all()
    ids = p.encode(texts)
    assert ids[1, -1] == p.encoder.encode("awful")[-1]  # pre-truncation keeps the end
    np.testing.assert_array_equal(ids[2], ids[0])  # words outside the index are dropped
    rare = next(w for w, r in p.encoder.word_index.items() if r + 3 >= p.vocab)
    assert p.encoder.encode(rare) == [1, OOV_CHAR]  # in the index, past num_words -> OOV


def test_ids_checks(bundle: ConvertResult, small_model) -> None:
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
    assert p.predict_ids(np.zeros((0, 100), np.int32)).shape == (0,)


def test_model_without_bundle(bundle: ConvertResult, small_model, tmp_path: Path) -> None:
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
