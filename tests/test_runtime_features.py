"""The Pi runtime on feature-input bundles: ``--npy`` / ``--csv``, padding, tasks, bad input.

Each bundle is made the way ``convert`` makes one -- a zoo model's IR, ``model_float.onnx``
from the ``onnx_float`` stage's builder and ``metadata.json`` from :mod:`edge_gru.bundle` --
and then read only by the TensorFlow-free runtime.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edge_gru.predict import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import F, T, build_zoo  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("tensorflow", "keras", "tf2onnx", "tf_keras", "onnx", "jax", "torch")
NAMES = {"masking_stacked_softmax": ("still", "walk", "run", "jump", "sit", "stand", "lie",
                                     "climb", "swim"),
         "masking_bidirectional_last": (), "multilabel": (), "regression": (),
         "tokens_gru_logits": ()}


@dataclass(frozen=True)
class ZooBundle:
    name: str
    folder: Path
    x: np.ndarray  # the zoo batch, already padded to T
    keras: np.ndarray  # Keras' outputs (N, K)
    meta: dict

    @property
    def model(self) -> str:
        return str(self.folder / "model_float.onnx")


def make_zoo_bundle(name: str, folder: Path) -> ZooBundle:
    """A convert-style folder for a zoo model: the float ONNX and metadata.json."""
    from edge_gru.bundle import write_bundle
    from edge_gru.data.dataset import Dataset
    from edge_gru.frontend import from_keras
    from edge_gru.recipe import load_recipe
    from edge_gru.stages.base import BuildContext
    from edge_gru.stages.onnx import float_model

    z = build_zoo()[name]()
    ir = from_keras(z.model, timesteps=T, class_names=NAMES[name])
    keras_out = np.asarray(z.model.predict(z.x, verbose=0), np.float64).reshape(len(z.x), -1)
    y = np.zeros(len(z.x), np.int64)
    ctx = BuildContext(folder, load_recipe(None), ir, z.model, Dataset(z.x, y, z.x, y, "zoo"),
                       seed=0, quiet=True)
    float_model(ctx)
    write_bundle(ctx, {"float_accuracy": None, "stages": []})
    meta = json.loads((folder / "metadata.json").read_text())
    return ZooBundle(name, folder, z.x, keras_out, meta)


_BUNDLES: dict[str, ZooBundle] = {}


@pytest.fixture(params=["masking_stacked_softmax", "masking_bidirectional_last", "multilabel",
                        "regression"])
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ZooBundle:
    name = request.param
    if name not in _BUNDLES:
        _BUNDLES[name] = make_zoo_bundle(name, tmp_path_factory.mktemp(name))
    return _BUNDLES[name]


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory: pytest.TempPathFactory) -> ZooBundle:
    if "masking_stacked_softmax" not in _BUNDLES:
        _BUNDLES["masking_stacked_softmax"] = make_zoo_bundle(
            "masking_stacked_softmax", tmp_path_factory.mktemp("masking_stacked_softmax"))
    return _BUNDLES["masking_stacked_softmax"]


def _trimmed(b: ZooBundle, i: int) -> np.ndarray:
    """Row ``i`` as a user would give it: the front padding (pad-value rows) removed."""
    row = b.x[i]
    real = np.flatnonzero(np.any(row != np.float32(b.meta["input"]["pad_value"]), axis=-1))
    return row[real[0]:] if len(real) else row[:0]


def _write_csv(path: Path, seq: np.ndarray, header: bool) -> Path:
    np.savetxt(path, seq, delimiter=",", fmt="%.9g", comments="",
               header=",".join(f"ch{j}" for j in range(F)) if header else "")
    return path


def _doc(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _outputs(doc: dict) -> np.ndarray:
    return np.asarray([[math.nan if v is None else v for v in r["output"]]
                       for r in doc["results"]], np.float64)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "edge_gru.predict", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_predictor_and_cli_without_tensorflow(bundle: ZooBundle, tmp_path: Path) -> None:
    """Predictor and ``--npy`` in a fresh interpreter: Keras' outputs within 1e-5, and no
    TensorFlow / Keras / onnx module is ever imported."""
    np.save(tmp_path / "x.npy", bundle.x)
    script = (
        "import sys, json, io, contextlib\n"
        "import numpy as np\n"
        "from edge_gru.runtime import Predictor\n"
        "from edge_gru.predict import main\n"
        f"p = Predictor.from_bundle({bundle.model!r})\n"
        f"direct = p.predict_features(np.load({str(tmp_path / 'x.npy')!r})).tolist()\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    code = main(['--model', {bundle.model!r}, '--npy', {str(tmp_path / 'x.npy')!r},"
        " '--json'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'heavy': heavy, 'code': code, 'direct': direct,"
        " 'doc': json.loads(buf.getvalue())}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [] and report["code"] == 0
    direct = np.asarray(report["direct"], np.float64)
    assert direct.shape == bundle.keras.shape
    assert np.nanmax(np.abs(direct - bundle.keras)) <= 1e-5
    np.testing.assert_array_equal(_outputs(report["doc"]), direct)


def test_npy_and_csv_give_identical_outputs(bundle: ZooBundle, tmp_path: Path, capsys) -> None:
    """The padded batch by ``--npy`` and the trimmed rows as CSV files (every other one with
    a header row) reach the model as the same numbers."""
    n = 6
    np.save(tmp_path / "x.npy", bundle.x[:n])
    files = [str(_write_csv(tmp_path / f"s{i}.csv", _trimmed(bundle, i), header=i % 2 == 0))
             for i in range(n)]
    by_npy = _doc(capsys, ["--model", bundle.model, "--npy", str(tmp_path / "x.npy"), "--json"])
    by_csv = _doc(capsys, ["--model", bundle.model, "--csv", *files, "--json"])
    assert by_npy["results"] == by_csv["results"]
    assert len(by_csv["results"]) == n
    masked = bundle.meta["input"]["mask_value"] is not None
    for i, row in enumerate(by_csv["results"]):
        expected = len(_trimmed(bundle, i))
        if masked:
            expected = int(np.any(bundle.x[i] != bundle.meta["input"]["mask_value"], -1).sum())
        assert row["frames"] == expected


def test_front_padding_and_truncation(multiclass: ZooBundle, tmp_path: Path) -> None:
    """A short sequence is padded at the front with the pad value; a long one keeps its last
    T steps (``pad_sequences(padding="pre", truncating="pre")``)."""
    from edge_gru.runtime import Predictor

    p = Predictor.from_bundle(multiclass.model)
    assert (p.maxlen, p.features, p.pad_value, p.mask_value) == (T, F, 0.0, 0.0)
    rng = np.random.default_rng(0)
    longer = [np.concatenate([rng.normal(size=(7, F)).astype(np.float32), multiclass.x[i]])
              for i in range(4)]
    short = [_trimmed(multiclass, i) for i in range(4)]
    assert any(len(s) < T for s in short)
    expected = p.predict_features(multiclass.x[:4])
    np.testing.assert_array_equal(p.predict_sequences(longer), expected)
    np.testing.assert_array_equal(p.predict_sequences(short), expected)
    np.testing.assert_allclose(p.predict_features(short[1]), expected[1:2], atol=1e-6)
    np.testing.assert_array_equal(p.pad([short[1]])[0], multiclass.x[1])
    assert np.abs(expected - multiclass.keras[:4]).max() <= 1e-5


def test_answers_follow_the_task(bundle: ZooBundle, capsys) -> None:
    """Class names and probabilities (multiclass), probability + decision (binary), label
    sets (multilabel), values (regression); one text line per input."""
    doc = _doc(capsys, ["--model", bundle.model, "--npy", _save(bundle), "--json"])
    task = bundle.meta["task"]
    assert doc["task"] == task["kind"] and doc["class_names"] == task["class_names"]
    for row, out in zip(doc["results"], bundle.keras):
        assert np.allclose(row["output"], out, atol=1e-5)
        if task["kind"] == "multiclass":
            assert row["label"] == NAMES[bundle.name][int(np.argmax(row["probabilities"]))]
        elif task["kind"] == "binary":
            assert row["label"] == ("positive" if row["probability"] > 0.5 else "negative")
        elif task["kind"] == "multilabel":
            names = [f"class_{k}" for k in range(task["outputs"])]
            assert row["labels"] == [n for n, v in zip(names, row["probabilities"]) if v > 0.5]
        else:
            assert row["values"] == row["output"] and len(row["values"]) == 3
    assert main(["--model", bundle.model, "--npy", _save(bundle)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(bundle.x) and lines[0].endswith("\tx.npy[0]")
    if task["kind"] == "multiclass":
        first = doc["results"][0]
        assert lines[0].startswith(f"{first['label']}\t{NAMES[bundle.name][0]}=")


def _save(bundle: ZooBundle) -> str:
    path = bundle.folder / "x.npy"
    if not path.is_file():
        np.save(path, bundle.x)
    return str(path)


def test_no_frame_is_not_a_verdict(multiclass: ZooBundle, tmp_path: Path) -> None:
    """A CSV with a header only, or only masked frames: frames 0, no label, a stderr note."""
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,c,d,e\n")
    masked = _write_csv(tmp_path / "masked.csv", np.zeros((4, F), np.float32), header=False)
    real = _write_csv(tmp_path / "real.csv", _trimmed(multiclass, 3), header=True)
    done = cli("--model", multiclass.model, "--json", "--csv", str(empty), str(masked), str(real))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]
    assert [r["frames"] for r in rows[:2]] == [0, 0] and rows[2]["frames"] > 0
    assert rows[0]["label"] is None and "bias" in rows[0]["note"] and "note" not in rows[2]
    assert rows[2]["label"] is not None
    assert done.stderr.count("\n") == 1 and "2 input(s)" in done.stderr


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong_f_csv", "takes 5 features"),
        ("ragged_csv", "data row 2 has 4 columns"),
        ("nan_csv", "NaN"),
        ("text_cell_csv", "not a number"),
        ("nan_npy", "NaN"),
        ("wrong_f_npy", "takes 5 features"),
        ("rank1_npy", "expected (N, T, 5) or (T, 5)"),
        ("pickle_npy", "cannot read --npy"),
        ("text_args", "give --npy FILE.npy or --csv FILE"),
        ("npy_and_csv", "one way"),
        ("missing_csv", "cannot read --csv"),
    ],
)
def test_bad_input_one_line_exit_2(multiclass: ZooBundle, tmp_path: Path, case: str,
                                   message: str) -> None:
    good = _write_csv(tmp_path / "good.csv", _trimmed(multiclass, 1), header=True)
    files = {
        "wrong_f_csv": lambda p: p.write_text("1,2,3,4\n5,6,7,8\n"),
        "ragged_csv": lambda p: p.write_text("1,2,3,4,5\n1,2,3,4\n"),
        "nan_csv": lambda p: p.write_text("a,b,c,d,e\n1,2,nan,4,5\n"),
        "text_cell_csv": lambda p: p.write_text("1,2,3,4,5\n1,2,x,4,5\n"),
        "nan_npy": lambda p: np.save(p, np.full((2, T, F), np.nan, np.float32)),
        "wrong_f_npy": lambda p: np.save(p, np.zeros((2, T, F + 1), np.float32)),
        "rank1_npy": lambda p: np.save(p, np.zeros(T, np.float32)),
        "pickle_npy": lambda p: np.save(p, np.array([np.zeros((3, F)), np.zeros((4, F))],
                                                    dtype=object), allow_pickle=True),
    }
    argv = ["--model", multiclass.model]
    if case in files:
        path = tmp_path / (case + (".npy" if case.endswith("npy") else ".csv"))
        files[case](path)
        argv += ["--npy" if case.endswith("npy") else "--csv", str(path)]
    elif case == "text_args":
        argv += ["a review"]
    elif case == "npy_and_csv":
        np.save(tmp_path / "x.npy", multiclass.x[:2])
        argv += ["--npy", str(tmp_path / "x.npy"), "--csv", str(good)]
    else:
        argv += ["--csv", str(good), str(tmp_path / "nope.csv")]
    done = cli(*argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_metadata_layout(multiclass: ZooBundle) -> None:
    meta = multiclass.meta
    assert meta["task"] == {"kind": "multiclass", "outputs": 9,
                            "class_names": list(NAMES["masking_stacked_softmax"])}
    assert meta["input"] == {"kind": "features", "timesteps": T, "features": F, "vocab": None,
                             "pad_value": 0.0, "mask_value": 0.0, "padding": "pre",
                             "truncating": "pre"}
    assert meta["maxlen"] == T and meta["default_model"] == "model_float.onnx"
    assert "tokenizer" not in meta and "vocab" not in meta and "labels" not in meta
    assert not (multiclass.folder / "word_index.txt.gz").exists()
    entry = meta["models"]["model_float.onnx"]
    assert entry["inputs"] == [{"name": "features", "dtype": "float32", "shape": ["N", T, F]}]
    assert entry["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["N", 9]}]


def test_token_bundle_without_word_index(tmp_path: Path, capsys) -> None:
    """A token model trained on ids (no word index): ``--ids`` only; binary_logits gives
    ``sigmoid(logit)``; the all-padding row reports ``known_tokens: 0`` and no label."""
    b = make_zoo_bundle("tokens_gru_logits", tmp_path)
    assert b.meta["task"]["kind"] == "binary_logits" and "tokenizer" not in b.meta
    assert b.meta["input"]["mask_value"] is None and b.meta["vocab"] == 50
    np.save(tmp_path / "ids.npy", b.x)
    doc = _doc(capsys, ["--model", b.model, "--ids", str(tmp_path / "ids.npy"), "--json"])
    rows = doc["results"]
    for row, ids, out in zip(rows, b.x, b.keras[:, 0]):
        assert abs(row["logit"] - out) <= 1e-5
        assert row["probability"] == pytest.approx(1 / (1 + math.exp(-row["logit"])), abs=1e-12)
        assert row["known_tokens"] == int((ids != 0).sum())
    assert rows[0]["known_tokens"] == 0 and rows[0]["label"] is None
    assert all(r["label"] == ("positive" if r["logit"] > 0 else "negative") for r in rows[1:])
    done = cli("--model", b.model, "some text")
    assert done.returncode == 2 and "tokenizer" in done.stderr


def test_deploy_bundle_for_features(multiclass: ZooBundle, tmp_path: Path) -> None:
    """``edge_gru.deploy`` ships a feature bundle without a word index; INSTALL shows --csv."""
    from edge_gru.deploy import make_bundle

    built = make_bundle(multiclass.folder, tmp_path / "pi", say=lambda _m: None)
    assert "metadata.json" in built.files and "model_float.onnx" in built.files
    assert "word_index.txt.gz" not in built.files
    install = (built.path / "INSTALL.txt").read_text()
    assert "--csv sequence.csv" in install and "a wonderful film" not in install


def _tflite_feature_model(tmp_path: Path, int8: bool) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small ``(batch, T, F) -> (batch, 3)`` LiteRT model (mean over time, dense, softmax)
    and its exact float function; the int8 one has int8 input and output tensors."""
    import tensorflow as tf

    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.5, (F, 3)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None if not int8 else 1, T, F], tf.float32)])
    def model(x):
        return tf.nn.softmax(tf.matmul(tf.reduce_mean(x, axis=1), w))

    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if int8:
        sample = rng.normal(0, 1, (32, 1, T, F)).astype(np.float32)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([s] for s in sample)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    path = tmp_path / ("model_int8.tflite" if int8 else "model_float.tflite")
    path.write_bytes(conv.convert())
    x = rng.normal(0, 1, (10, T, F)).astype(np.float32)
    logits = x.mean(axis=1).astype(np.float64) @ w
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return path, x, e / e.sum(axis=1, keepdims=True)


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
@pytest.mark.parametrize("int8", [False, True])
def test_litert_backend_takes_feature_inputs(tmp_path: Path, int8: bool) -> None:
    """``(N, T, F)`` float input: a dynamic batch resized per call, or a batch-1 int8 model fed
    with the input tensor's own scale; outputs ``(N, K)`` dequantized."""
    from edge_gru.runtime.backends import TfliteBackend, open_backend

    path, x, expected = _tflite_feature_model(tmp_path, int8)
    backend = open_backend(path)
    assert isinstance(backend, TfliteBackend)
    assert (backend.input_kind, backend.maxlen, backend.features) == ("features", T, F)
    got = backend.run(x)
    assert got.shape == (10, 3)
    if int8:
        assert np.dtype(backend.input["dtype"]) == np.int8 and not backend.dynamic
        assert np.abs(got - expected).max() < 0.03  # a few output LSBs (1/256)
        assert (np.argmax(got, 1) == np.argmax(expected, 1)).mean() >= 0.9
    else:
        assert backend.dynamic and np.abs(got - expected).max() <= 1e-6
        np.testing.assert_allclose(backend.run(x[:3]), got[:3], atol=1e-7)  # resized again
