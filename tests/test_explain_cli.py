"""The localisation in a real (tiny) conversion, and ``--explain STAGE`` on its output folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_gru.convert import main
from edge_gru.explain.section import HEADING, PLOT_NAME

TINY = Path(__file__).parent / "recipes" / "tiny.toml"
STAGES = ("tflite_int8_litert", "tflite_step_int8_tflm", "onnx_int8", "fixed_point")
N_EVAL, SAMPLE = 60, 20


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("explain") / "out"
    code = main(["--recipe", str(TINY), "--data", str(data_dir), "--out", str(out),
                 "--stages", "reference," + ",".join(STAGES), "--max-eval", str(N_EVAL),
                 "--explain-sample", str(SAMPLE), "--quiet"])
    assert code == 0
    return out


def test_report_has_the_section_for_every_quantized_stage(tiny_out: Path) -> None:
    doc = json.loads((tiny_out / "report.json").read_text())
    section = doc["where_drift_comes_from"]
    assert set(section["stages"]) == set(STAGES)
    rows = {r["name"]: r for r in doc["stages"]}
    for name in STAGES:
        entry = section["stages"][name]
        flips = round((1 - rows[name]["agreement"]) * rows[name]["n"])
        assert len(entry["flipped_inputs"]) == flips
        assert entry["flipped_in_sample"] == flips  # every flipped input is traced
        assert entry["sample"] == max(SAMPLE, flips)
        (layer,) = entry["layers"]
        steps = 1 if name == "tflite_int8_litert" else 100  # the unrolled model: h_T only
        assert len(layer["rel_l2"]) == steps and len(layer["cosine"]) == steps
        assert 0.9 < layer["final_cosine"] <= 1.0
    fixed = section["stages"]["fixed_point"]["layers"][0]
    assert abs(sum(fixed["injected_error_shares"].values()) - 1.0) < 1e-3
    assert fixed["dominant"] in ("z", "r", "n", "state rounding")
    step = section["stages"]["tflite_step_int8_tflm"]["layers"][0]
    # int8 state (1/128 steps) drifts far more than the int16 Q0.15 state of the fixed point.
    assert step["final_rel_l2"] > 3 * fixed["final_rel_l2"]
    worst = section["stages"]["fixed_point"]["worst_inputs"][0]
    assert "[" in worst["tokens"]  # the review's words around its largest error jump
    assert "shares its state tensors" in section["stages"]["tflite_int8_litert"]["limits"]
    md = (tiny_out / "report.md").read_text()
    assert md.count(HEADING) == 1
    assert (tiny_out / PLOT_NAME).stat().st_size > 1000


def test_explain_reruns_one_stage_with_the_same_numbers(tiny_out: Path, data_dir: Path) -> None:
    before = json.loads((tiny_out / "report.json").read_text())["where_drift_comes_from"]
    model_bytes = (tiny_out / "model.keras").read_bytes()
    code = main(["--out", str(tiny_out), "--explain", "fixed_point", "--recipe", str(TINY),
                 "--data", str(data_dir), "--explain-sample", str(SAMPLE), "--quiet"])
    assert code == 0
    after = json.loads((tiny_out / "report.json").read_text())["where_drift_comes_from"]
    assert set(after["stages"]) == set(STAGES)  # the other stages' entries are kept
    old, new = before["stages"]["fixed_point"], after["stages"]["fixed_point"]
    assert new["layers"] == old["layers"]  # same sample (flips kept), same trace
    assert new["worst_inputs"] == old["worst_inputs"]
    assert (tiny_out / "report.md").read_text().count(HEADING) == 1
    assert (tiny_out / "model.keras").read_bytes() == model_bytes


@pytest.mark.parametrize(("stage", "message"), [
    ("tflite_int8_tflm", "is not in this report"),
    ("reference", "no tracer for stage reference"),
])
def test_explain_refuses_what_it_cannot_trace(tiny_out: Path, data_dir: Path, stage: str,
                                              message: str, capsys) -> None:
    code = main(["--out", str(tiny_out), "--explain", stage, "--data", str(data_dir),
                 "--recipe", str(TINY)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_explain_needs_an_output_folder(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--explain", "fixed_point"]) == 2
    assert "needs an output folder with report.json" in capsys.readouterr().err


def test_tflite_tracers_give_the_runtimes_own_outputs(tiny_out: Path, imdb) -> None:
    """Tracing (kPreserveAllTensors, extra reads) runs the same kernels: same output bits."""
    from edge_gru.explain.traces import TraceSource, trace_stage
    from edge_gru.frontend import from_keras
    from edge_gru.model.training import load_model
    from edge_gru.runners.common import dequantize
    from edge_gru.runners.litert import LiteRTModel
    from edge_gru.runners.tflm import TflmModel, TflmStepModel

    ir = from_keras(load_model(tiny_out / "model.keras"))
    x = imdb.x_test[:12].astype(np.int32)
    source = TraceSource(ir, tiny_out)
    step = (tiny_out / "model_step_int8.tflite").read_bytes()
    got = trace_stage("tflite_step_int8_tflm", source, x)
    assert np.array_equal(got.outputs[:, 0], TflmStepModel(step, 1 << 20).predict(x))
    model = TflmStepModel(step, 1 << 20)
    final = np.array([model.raw_review(row)[1].reshape(-1) for row in x])  # int8 h_T
    # the traced state is that int8 state dequantized with its own scale and zero point
    expected = dequantize(final, model.outputs[model.state_out])
    assert np.array_equal(got.layers[0].states[:, -1], expected)
    assert len(np.unique(final)) > 20  # a real state, not a constant
    unrolled = (tiny_out / "model_int8.tflite").read_bytes()
    tflm = trace_stage("tflite_int8_tflm", source, x)
    assert np.array_equal(tflm.outputs[:, 0], TflmModel(unrolled, 1 << 20).predict(x))
    litert = trace_stage("tflite_int8_litert", source, x)
    reference_kernels = LiteRTModel(unrolled, "no_delegates").predict(x)
    assert np.array_equal(litert.outputs[:, 0], reference_kernels)
