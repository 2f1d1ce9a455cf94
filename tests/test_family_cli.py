"""The GRU family through ``python -m edge_gru.convert``: the public-report shapes convert
through the float stages on the user's own .npz, and every refusal or data fault is one
line, exit 2, and no output folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_zoo import T, ZooModel, build_refused, build_zoo

from edge_gru.convert import main

FLOAT_STAGES = "reference,tflite_float,onnx_float"
# The shapes of the first paragraph (public bug reports and tutorials).
PUBLIC_SHAPES = [
    "features_gru_softmax",
    "tokens_gru_softmax2",
    "tokens_gru_logits",
    "hidden_dense_relu",
    "stacked",
    "seq_flatten",
    "seq_global_average",
    "bidirectional_concat",
    "mask_zero",
    "masking_stacked_softmax",
    "dynamic_length_tokens",
]


def _labels(task: str, outputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, k = outputs.shape
    if task == "multiclass":
        return rng.integers(0, k, n).astype(np.int64)
    if task == "multilabel":
        return rng.integers(0, 2, (n, k)).astype(np.float32)
    if task == "regression":
        return rng.normal(size=(n, k) if k > 1 else n).astype(np.float32)
    return rng.integers(0, 2, n).astype(np.int64)


def _user_files(z: ZooModel, folder: Path) -> tuple[Path, Path]:
    """The zoo model saved as .keras and an .npz of its inputs in the user layout."""
    model_path = folder / f"{z.name}.keras"
    z.model.save(model_path)
    rng = np.random.default_rng(5)
    out = z.model.predict(z.x, verbose=0)
    y = _labels(z.task, out, rng)
    npz = folder / f"{z.name}.npz"
    np.savez(npz, x_train=z.x, y_train=y, x_test=z.x, y_test=y)
    return model_path, npz


def _convert(tmp: Path, *args: str) -> tuple[int, Path]:
    out = tmp / "out"
    code = main([*args, "--out", str(out), "--quiet"])
    return code, out


@pytest.mark.parametrize("name", PUBLIC_SHAPES)
def test_public_shapes_convert_through_the_float_stages(name: str, tmp_path: Path) -> None:
    z = build_zoo()[name]()
    model, npz = _user_files(z, tmp_path)
    extra = ["--maxlen", str(T)] if name == "dynamic_length_tokens" else []
    code, out = _convert(
        tmp_path,
        "--model",
        str(model),
        "--data",
        str(npz),
        "--stages",
        f"{FLOAT_STAGES},fixed_point",
        *extra,
    )
    report = json.loads((out / "report.json").read_text())
    assert code == 0, report["breaches"]
    assert report["task"] == z.task
    stages = {s["name"]: s for s in report["stages"]}
    for stage in FLOAT_STAGES.split(","):
        assert stages[stage]["n"] == len(z.x)
        assert stages[stage]["max_abs_diff"] <= 1e-5, stage
    fixed = stages["fixed_point"]  # the fixed-point C takes every shape of the family
    assert "skipped" not in fixed and fixed["n"] == len(z.x)
    assert (out / "model_float.tflite").is_file() and (out / "model_float.onnx").is_file()


@pytest.mark.parametrize("name", sorted(build_refused()))
def test_refused_models_exit_2_before_any_work(name: str, tmp_path: Path, capsys) -> None:
    build, word = build_refused()[name]
    path = tmp_path / "m.keras"
    build().save(path)
    npz = tmp_path / "d.npz"
    x = np.zeros((4, T, 5), np.float32)
    np.savez(npz, x_train=x, y_train=np.zeros(4), x_test=x, y_test=np.zeros(4))
    code, out = _convert(tmp_path, "--model", str(path), "--data", str(npz))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and word in err, err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def _bad_data(tmp: Path) -> dict[str, tuple[dict[str, np.ndarray], str]]:
    x = np.random.default_rng(0).normal(size=(8, T, 5)).astype(np.float32)
    y = np.arange(8) % 10
    nan = x.copy()
    nan[2, 3, 1] = np.nan
    return {
        "missing key": ({"x_train": x, "y_train": y, "x_test": x}, "y_test"),
        "wrong feature count": (
            {"x_train": x[..., :4], "y_train": y, "x_test": x[..., :4], "y_test": y},
            "feature",
        ),
        "nan": ({"x_train": x, "y_train": y, "x_test": nan, "y_test": y}, "NaN"),
        "label out of range": (
            {"x_train": x, "y_train": y, "x_test": x, "y_test": y + 5},
            "out of range",
        ),
        "empty test set": ({"x_train": x, "y_train": y, "x_test": x[:0], "y_test": y[:0]}, "empty"),
    }


@pytest.mark.parametrize(
    "case", ["missing key", "wrong feature count", "nan", "label out of range", "empty test set"]
)
def test_data_faults_exit_2_with_one_line(case: str, tmp_path: Path, capsys) -> None:
    z = build_zoo()["features_gru_softmax"]()
    model, _ = _user_files(z, tmp_path)
    arrays, word = _bad_data(tmp_path)[case]
    npz = tmp_path / "bad.npz"
    np.savez(npz, **arrays)
    code, out = _convert(tmp_path, "--model", str(model), "--data", str(npz))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and word.lower() in err.lower(), err
    assert not out.exists()
