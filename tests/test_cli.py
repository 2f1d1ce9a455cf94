"""``python -m edge_gru.convert``: exit codes, one-line errors, and all-or-nothing output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_gru.convert import main


@pytest.fixture(scope="module")
def small_model_file(small_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "small.keras"
    small_model.keras.save(path)
    return path


@pytest.fixture(scope="module")
def lstm_model_file(tmp_path_factory) -> Path:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(100,), dtype="int32"),
            keras.layers.Embedding(100, 4),
            keras.layers.LSTM(4),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    path = tmp_path_factory.mktemp("lstm") / "lstm.keras"
    model.save(path)
    return path


def _bad_inputs(tmp: Path, model: Path, lstm: Path, data: Path) -> dict[str, list[str]]:
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    (corrupt / "imdb.npz").write_bytes(b"PK\x03\x04 truncated")
    (corrupt / "imdb_word_index.json").write_text("{}")
    bad_recipe = tmp / "bad.toml"
    bad_recipe.write_text("[model]\nunits = 'many'\n")
    return {
        "missing data": ["--data", str(tmp / "nowhere"), "--model", str(model)],
        "corrupt npz": ["--data", str(corrupt), "--model", str(model)],
        "missing model": ["--data", str(data), "--model", str(tmp / "none.keras")],
        "unsupported model": ["--data", str(data), "--model", str(lstm)],
        "bad epochs": ["--epochs", "0"],
        "bad max-eval": ["--max-eval", "many"],
        "unknown stage": ["--data", str(data), "--stages", "reference,warp_drive"],
        "bad recipe": ["--data", str(data), "--recipe", str(bad_recipe)],
        "missing recipe": ["--recipe", str(tmp / "nope.toml")],
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing data",
        "corrupt npz",
        "missing model",
        "unsupported model",
        "bad epochs",
        "bad max-eval",
        "unknown stage",
        "bad recipe",
        "missing recipe",
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(
    case, tmp_path, small_model_file, lstm_model_file, data_dir, capsys
) -> None:
    args = _bad_inputs(tmp_path, small_model_file, lstm_model_file, data_dir)[case]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if case in ("bad epochs", "bad max-eval") else _no_raise():
        code = main([*args, "--out", str(out), "--quiet"])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "EDGE_GRU_DATA": str(tmp_path / "missing")}
    proc = subprocess.run(
        [sys.executable, "-m", "edge_gru.convert", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("python -m edge_gru.convert: error:")


def _convert_reference(data: Path, model: Path, out: Path, n: int, *extra: str) -> int:
    """The CLI on a saved model, the reference stage only, the first ``n`` test reviews."""
    args = ["--data", str(data), "--model", str(model), "--out", str(out)]
    return main([*args, *extra, "--stages", "reference", "--max-eval", str(n), "--quiet"])


def test_loaded_model_run_writes_report_and_keeps_contract(
    tmp_path, small_model_file, data_dir, small_model
) -> None:
    out = tmp_path / "build"
    assert _convert_reference(data_dir, small_model_file, out, 400) == 0
    doc = json.loads((out / "report.json").read_text())
    (stage,) = doc["stages"]
    for key in (
        "name",
        "accuracy",
        "agreement",
        "mean_abs_diff",
        "max_abs_diff",
        "n",
        "size_bytes",
        "passed",
    ):
        assert key in stage
    assert stage["name"] == "reference" and stage["n"] == 400 and stage["passed"]
    assert stage["agreement"] == 1.0 and stage["max_abs_diff"] <= 1e-5
    expected = np.mean(
        (small_model.keras.predict(small_model.data.x_test[:400], verbose=0)[:, 0] > 0.5)
        == small_model.data.y_test[:400]
    )
    assert doc["float_accuracy"] == pytest.approx(expected)
    for name in ("report.md", "drift.png", "model.keras", "metadata.json", "word_index.txt.gz"):
        assert (out / name).is_file(), name
    assert "| reference |" in (out / "report.md").read_text()
    from edge_gru.model.training import load_model

    reloaded = load_model(out / "model.keras")  # the normalised archive still loads
    ids = small_model.data.x_test[:50]
    np.testing.assert_array_equal(
        reloaded.predict(ids, verbose=0), small_model.keras.predict(ids, verbose=0)
    )


def test_gate_breach_exits_1_and_still_reports(
    tmp_path, small_model_file, data_dir, capsys
) -> None:
    recipe = tmp_path / "strict.toml"
    recipe.write_text("[stages.reference.gates]\nmax_abs_diff = 1e-15\n")
    out = tmp_path / "build"
    code = _convert_reference(data_dir, small_model_file, out, 200, "--recipe", str(recipe))
    assert code == 1
    assert "drift gate breached: reference: max_abs_diff" in capsys.readouterr().err
    doc = json.loads((out / "report.json").read_text())
    assert doc["passed"] is False and doc["stages"][0]["passed"] is False


def test_missing_tool_of_a_named_stage_fails_before_training(tmp_path, monkeypatch, capsys):
    """``--stages fixed_point_qemu`` without qemu: one line, exit 2, before data or training."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no make, gcc or qemu-system-arm here
    # no data either: had the data been read first, that would be the error
    monkeypatch.setenv("EDGE_GRU_DATA", str(tmp_path / "no-data"))
    code = main(["--stages", "fixed_point_qemu", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("python -m edge_gru.convert: error: stage fixed_point_qemu cannot run")
    assert "not installed" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
