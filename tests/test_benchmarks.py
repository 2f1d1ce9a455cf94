"""Benchmarks: one-line errors, never a write into the bundle, bounded memory for --methods."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_onnx  # noqa: E402

SCRIPTS = {"bench_onnx.py": "--bundle", "bench_tflite.py": "--dir",
           "bench_firmware.py": "--weights-dir"}
NEEDS = {"bench_onnx.py": "model.keras", "bench_tflite.py": "model.keras",
         "bench_firmware.py": "edge_gru_weights.h"}


def bench(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_missing_or_empty_folder_is_one_line_exit_2(tmp_path: Path, script: str) -> None:
    flag = SCRIPTS[script]
    gone = bench(script, flag, str(tmp_path / "nope"))
    assert gone.returncode == 2, gone.stderr
    assert gone.stderr == (f"benchmarks/{script}: error: {flag} {tmp_path / 'nope'} does not "
                           "exist (run python -m edge_gru.convert --out DIR first)\n")
    empty = bench(script, flag, str(tmp_path))
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1
    assert f"has no {NEEDS[script]}" in empty.stderr and "Traceback" not in empty.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_flag_is_one_line_exit_2() -> None:
    done = bench("bench_onnx.py", "--bundle", "x", "--rounds", "many")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("benchmarks/bench_onnx.py: error: argument --rounds")


def test_scores_in_bounded_chunks_as_one_column() -> None:
    calls: list[int] = []

    def predict(x: np.ndarray) -> np.ndarray:  # a runtime answering (n, 1), as they all do
        calls.append(len(x))
        return x[:, :1].astype(np.float64) / 10

    ids = np.arange(2500 * 3).reshape(2500, 3) % 7
    probs = bench_onnx.score(predict, ids)
    assert calls == [1000, 1000, 500]
    assert probs.shape == (2500,)
    np.testing.assert_array_equal(probs, ids[:, 0] / 10)
    with pytest.raises(RuntimeError, match="expected 2500 probabilities"):
        bench_onnx.score(lambda x: np.zeros((len(x), 2)), ids)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_bench_onnx_leaves_the_bundle_untouched(tmp_path: Path, data_dir: Path) -> None:
    """A small random-weight seed-shape model (T=10); the probe and --methods both run."""
    import keras

    from edge_gru.data.imdb import load_imdb
    from edge_gru.model.training import extract_weights

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(10,), dtype="int32"),
                              keras.layers.Embedding(10000, 4), keras.layers.GRU(4),
                              keras.layers.Dense(1, activation="sigmoid")])
    bundle = tmp_path / "build"
    bundle.mkdir()
    model.save(bundle / "model.keras")
    w = extract_weights(model, 10)
    calibration = load_imdb(data_dir, 10000, 10).x_train[:50]
    bench_onnx.unrolled_int8_tflite(w, calibration, bundle / "model_int8.tflite")
    before = _snapshot(bundle)
    done = bench("bench_onnx.py", "--bundle", str(bundle), "--data", str(data_dir),
                 "--rounds", "1", "--budget", "0.001", "--methods", "--reviews", "300")
    assert done.returncode == 0, done.stderr
    assert _snapshot(bundle) == before  # no probe file, no exported model beside the user's
    assert "converting an unrolled int8 baseline" not in done.stdout  # the probe passed
    row = re.search(r"^\| float \| [\d,]+ \| ([\d.]+) \| ([\d.]+) \| \S+ \| (\S+) \|",
                    done.stdout, re.MULTILINE)
    assert row is not None, done.stdout
    # Float ONNX vs float Keras, review by review: broadcasting (N,) against (N, 1) would
    # compare every pair and report ~0.5 agreement and a max diff near 1.
    assert float(row.group(2)) == 1.0 and float(row.group(3)) < 1e-5
    assert "300 test reviews vs float Keras" in done.stdout
    peak = re.search(r"peak resident memory: ([\d,]+) MB", done.stdout)
    assert peak is not None and int(peak.group(1).replace(",", "")) < 3000
