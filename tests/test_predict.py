"""``python -m edge_gru.predict``: inputs, JSON shape, and bad input -> one line + exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_gru.predict import main

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runtime import TextBundle, make_bundle  # noqa: E402


@pytest.fixture(scope="module")
def bundle(small_model, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TextBundle:
    return make_bundle(small_model, data_dir, tmp_path_factory)


def cli(*args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "edge_gru.predict", *args], input=stdin,
                          capture_output=True, env=env, timeout=120)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_text_args_json_shape(bundle: TextBundle, capsys) -> None:
    model = str(bundle.out / "model_int8.onnx")
    doc = _json(capsys, ["--model", model, "--json", "a wonderful film", "awful, boring, bad"])
    assert set(doc) == {"model", "runtime", "task", "threshold", "class_names", "results"}
    assert doc["model"] == "model_int8.onnx" and doc["runtime"] == "onnxruntime"
    assert doc["task"] == "binary" and doc["class_names"] == []
    keys = {"output", "probability", "label", "known_tokens"}
    assert [set(r) for r in doc["results"]] == [keys] * 2
    assert [r["known_tokens"] for r in doc["results"]] == [3, 3]
    for row in doc["results"]:
        assert row["output"] == [row["probability"]]
        assert row["label"] == ("positive" if row["probability"] > 0.5 else "negative")


def test_no_known_word_is_not_a_verdict(bundle: TextBundle) -> None:
    """Only unknown words: the output is the bias -- said on stderr and in the JSON."""
    out = cli("--model", str(bundle.out / "model_int8.onnx"), "--json", "zzqxv blorfnik",
              "a wonderful film")
    assert out.returncode == 0
    unknown, known = json.loads(out.stdout)["results"]
    assert unknown["known_tokens"] == 0 and unknown["label"] is None and "bias" in unknown["note"]
    assert known["known_tokens"] == 3 and known["label"] is not None and "note" not in known
    err = out.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and "no known word" in err
    plain = cli("--model", str(bundle.out / "model_int8.onnx"), "zzqxv")
    assert plain.stdout.decode().split("\t")[1] == "-"


def test_plain_output_one_line_per_review(bundle: TextBundle, capsys) -> None:
    assert main(["--model", str(bundle.out / "model_float.onnx"), "great", "terrible plot"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    prob, label, text = lines[1].split("\t")
    assert 0.0 <= float(prob) <= 1.0 and label in {"positive", "negative"}
    assert text == "terrible plot"


def test_file_ids_and_stdin_agree(bundle: TextBundle, tmp_path: Path, capsys) -> None:
    """The same reviews by --file, stdin and --ids (encoded, the arm64 check's contract)."""
    from edge_gru.runtime import Predictor

    model = str(bundle.out / "model_int8.onnx")
    texts = ["A wonderful, moving film.", "", "Dull. I walked out!", "zzqxv"]
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("\n".join(texts) + "\n", encoding="utf-8")
    ids_file = tmp_path / "ids.npy"
    np.save(ids_file, Predictor.from_bundle(model).encode(texts))
    by_file = _json(capsys, ["--model", model, "--file", str(reviews), "--json", "--batch", "3"])
    by_ids = _json(capsys, ["--model", model, "--ids", str(ids_file), "--json"])
    assert len(by_file["results"]) == 4 and by_file["results"] == by_ids["results"]
    out = cli("--model", model, "--json", stdin=reviews.read_bytes())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["results"] == by_file["results"]


def test_ids_file_matches_harness(
    bundle: TextBundle, small_model, tmp_path: Path, capsys
) -> None:
    ids_file = tmp_path / "ids.npy"
    np.save(ids_file, small_model.data.x_test[:300])
    doc = _json(capsys, ["--model", str(bundle.out / "model_int8.onnx"), "--ids", str(ids_file),
                         "--json"])
    probs = np.array([r["output"] for r in doc["results"]])
    harness = next(s for s in bundle.stages if s.name == "onnx_int8").outputs
    np.testing.assert_allclose(probs, harness, atol=1e-6)


def test_awkward_input_never_tracebacks(bundle: TextBundle, tmp_path: Path) -> None:
    model = str(bundle.out / "model_int8.onnx")
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"great film \xff\xfe\x80 truly\n\nbad \xc3\x28 acting\n")
    huge = tmp_path / "huge.txt"
    huge.write_text(" ".join(["boring"] * 50_000) + "\n")
    for args in ([b"caf\xe9 \xff nonsense"], ["--file", str(raw)], ["--file", str(huge)], [""]):
        out = cli("--model", model, "--json", *args)
        assert out.returncode == 0, out.stderr
        results = json.loads(out.stdout)["results"]
        assert results and all(0.0 <= r["probability"] <= 1.0 for r in results)
    doc = json.loads(cli("--model", model, "--json", "--file", str(raw)).stdout)
    assert len(doc["results"]) == 3  # the blank line is an (empty) review


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "{out}/missing.onnx", "x"], "model file not found"),
        (["--model", "{out}/metadata.json", "x"], "unsupported model"),
        (["--model", "{out}/model_int8.onnx", "--bogus"], "unrecognized arguments"),
        (["--model", "{out}/model_int8.onnx", "--batch", "0", "x"], "positive integer"),
        (["--model", "{out}/model_int8.onnx", "--file", "{out}/nope.txt"], "cannot read --file"),
        (["--model", "{out}/model_int8.onnx", "--ids", "{out}/metadata.json"], "cannot read --ids"),
        (["--model", "{out}/model_int8.onnx", "--ids", "{out}/x.npy", "text"], "one way"),
        (["--model", "{out}/model_int8.onnx", "--npy", "{out}/x.npy"], "not feature sequences"),
        (["x"], "--model"),
    ],
)
def test_bad_input_one_line_exit_2(bundle: TextBundle, args: list[str], message: str) -> None:
    out = cli(*[a.format(out=bundle.out) for a in args])
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_empty_stdin_gives_no_results(bundle: TextBundle) -> None:
    out = cli("--model", str(bundle.out / "model_int8.onnx"), "--json", stdin=b"")
    assert out.returncode == 0 and json.loads(out.stdout)["results"] == []


def test_wrong_ids_array_exit_2(bundle: TextBundle, tmp_path: Path) -> None:
    arrays = {"short": np.ones((3, 50), np.int32), "neg": -np.ones((2, 100), np.int32),
              "float": np.ones((2, 100), np.float32)}
    for name, array in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array)
        out = cli("--model", str(bundle.out / "model_int8.onnx"), "--ids", str(path))
        assert out.returncode == 2 and len(out.stderr.decode().strip().splitlines()) == 1
