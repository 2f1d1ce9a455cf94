"""The shipped family recipes train and convert end to end on the real data (few epochs),
with task-aware reports: BasicMotions (sensor -> softmax), JapaneseVowels (variable length,
Masking, stacked GRUs) and imdb_stars (text regression)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import require_tool

from edge_gru.convert import main
from edge_gru.fixed_point import firmware

REPO = Path(__file__).resolve().parent.parent
FLOAT_STAGES = ("reference", "tflite_float", "onnx_float")


def _run(tmp_path: Path, *args: str) -> tuple[int, dict, Path]:
    out = tmp_path / "out"
    code = main(
        [
            *args,
            "--stages",
            ",".join((*FLOAT_STAGES, "tflite_int8_tflm", "fixed_point")),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    return code, json.loads((out / "report.json").read_text()), out


def _float_stages_pass(report: dict) -> dict:
    stages = {s["name"]: s for s in report["stages"]}
    for name in FLOAT_STAGES:
        assert stages[name]["passed"] and stages[name]["max_abs_diff"] <= 1e-5, stages[name]
    for name in ("tflite_int8_tflm", "fixed_point"):  # the microcontroller paths take it
        assert "skipped" not in stages[name] and stages[name]["passed"], stages[name]
    if stages["fixed_point"].get("agreement") is not None:
        assert stages["fixed_point"]["agreement"] >= 0.99
    assert stages["tflite_int8_tflm"]["rerun_mismatches"] == 0
    return stages


def _qemu_test(out: Path, tmp_path: Path) -> None:
    """``make -C firmware qemu-test WEIGHTS_DIR=<out>/fixed_point``, as the README says: the
    recipe's generated C passes its self-test on the emulated Cortex-M4, bit for bit, and
    the NUCLEO-F446RE image builds."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        require_tool(tool)
    weights, build = out / "fixed_point", tmp_path / "firmware"
    log = firmware.make(["qemu-test"], weights, build)
    m = re.search(r"selftest: (\d+)/(\d+) bit-exact", log)
    assert m and m.group(1) == m.group(2) and int(m.group(1)) > 0, log
    firmware.make(["all"], weights, build, BOARD="nucleo_f446re")
    assert (build / "nucleo_f446re" / "serve.elf").stat().st_size > 0


@pytest.mark.parametrize(
    "recipe,classes,floor", [("basic_motions", 4, 0.5), ("japanese_vowels", 9, 0.5)]
)
def test_time_series_recipes(
    recipe: str, classes: int, floor: float, tmp_path: Path, data_dir: Path
) -> None:
    code, report, out = _run(tmp_path, "--recipe", recipe, "--epochs", "8")
    assert code == 0, report["breaches"]
    assert report["task"] == "multiclass"
    assert report["model"]["outputs"] == classes
    assert len(report["model"]["class_names"]) == classes
    assert report["float_accuracy"] > floor  # 8 epochs: well above chance (1/classes)
    stages = _float_stages_pass(report)
    assert stages["reference"]["agreement"] == 1.0
    md = (out / "report.md").read_text()
    assert "accuracy drop (pp)" in md and "task multiclass" in md
    assert (out / "drift.png").stat().st_size > 10_000
    _qemu_test(out, tmp_path)


def test_imdb_stars_text_regression(tmp_path: Path, data_dir: Path) -> None:
    code, report, out = _run(tmp_path, "--recipe", str(REPO / "tests/recipes/imdb_stars_tiny.toml"))
    assert code == 0, report["breaches"]
    assert report["task"] == "regression" and report["float_accuracy"] is None
    assert 1.0 < report["float_mae"] < 3.5  # stars: predicting the mean gives ~3.0
    stages = _float_stages_pass(report)
    assert abs(stages["onnx_float"]["rmse"] - report["float_rmse"]) < 1e-5
    assert "RMSE change" in (out / "report.md").read_text()
    _qemu_test(out, tmp_path)


def test_recipe_and_data_of_different_kinds_is_one_line(tmp_path: Path, data_dir: Path,
                                                        capsys) -> None:
    """A feature recipe given token data (and back) stops before training, exit 2."""
    out = tmp_path / "out"
    code = main(["--recipe", "basic_motions", "--data", str(data_dir / "imdb.npz"),
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert err.count("\n") == 0 and "token ids (N, T)" in err and "Normalization" in err
