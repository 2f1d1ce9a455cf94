"""Full-integer TFLite for the GRU family: ``model_int8.tflite`` (and 16x8) for every construct.

For each construct of the zoo: the stored (step-shared, compacted) model gives the same
output bits as the converter's own model in every LiteRT mode and in TFLite Micro, stays
close to the float reference, uses only ops TFLM registers, and its generated TFLM sources
compile. 16x8 runs in TFLM (its int16 embedding table rewritten to int8) or says why not.
The streaming step model gives the unrolled model's answers one step per invoke.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from model_zoo import build_zoo

from edge_gru import reference
from edge_gru.codegen.tflm import builtin_ops, write_tflm_sources
from edge_gru.drift.metrics import decisions
from edge_gru.frontend.keras import from_keras
from edge_gru.runners.common import dequantize
from edge_gru.runners.litert import LiteRTModel
from edge_gru.runners.tflm import TflmFamilyStepModel, TflmModel, registered_ops
from edge_gru.tflite.family_int8 import family_int8_tflite, int16x8_problem, raw_family_tflite
from edge_gru.tflite.family_rewrite import share_family_steps
from edge_gru.tflite.family_step import family_step_tflite, output_names, step_problem
from edge_gru.tflite.flatbuffer_io import read_model

CONSTRUCTS = (
    "features_gru_softmax", "tokens_gru_logits", "stacked_three_tokens", "seq_flatten",
    "seq_global_average", "bidirectional_seq_stacked", "mask_zero_seq_average",
    "masking_bidirectional_seq", "go_backwards_seq_masked", "regression",
)
MODES = ("xnnpack", "no_delegates", "reference")
ARENA = 400_000


def _model(name: str):
    z = build_zoo()[name]()
    return z, from_keras(z.model)


def _raw_rows(runner, x: np.ndarray) -> np.ndarray:
    return runner.raw_output_rows(x)


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_int8_stored_model_is_the_converters_bit_for_bit(name: str) -> None:
    z, m = _model(name)
    calibration = np.concatenate([z.x] * 4)
    raw = raw_family_tflite(m, calibration, "int8")
    stored = share_family_steps(raw)
    assert stored == family_int8_tflite(m, calibration, "int8")  # same inputs, same bytes
    assert len(stored) < len(raw) / 2.5, (len(stored), len(raw))
    for mode in MODES:
        a = _raw_rows(LiteRTModel(raw, mode), z.x)
        b = _raw_rows(LiteRTModel(stored, mode), z.x)
        assert np.array_equal(a, b), mode
    tflm = TflmModel(stored, ARENA)
    t = _raw_rows(tflm, z.x)
    assert np.array_equal(t, _raw_rows(TflmModel(raw, ARENA), z.x))
    assert np.array_equal(t, _raw_rows(TflmModel(stored, ARENA), z.x))  # reruns: same bits
    # close to float: what int8 costs on random weights (measured bounds, x3 margin)
    out = dequantize(t, tflm.outputs[0])
    ref = reference.predict(m, z.x)
    finite = np.isfinite(ref).all(axis=1)  # an all-masked row's masked mean: NaN in Keras
    scale = 1.0 + np.abs(ref[finite]).max()
    assert np.abs(out[finite] - ref[finite]).max() <= 0.12 * scale, name
    if m.task.kind != "regression":
        agree = decisions(m.task, out[finite]) == decisions(m.task, ref[finite])
        assert agree.mean() >= 0.85, (name, agree.mean())
    assert set(builtin_ops(stored)) <= registered_ops()


def test_masked_mean_and_masking_are_exact_in_the_integer_graph() -> None:
    """An all-masked row divides by max(count, 1) (integer DIV rejects 0) and Masking's
    mask value need not be representable in the int8 input: padded steps stay masked."""
    z, m = _model("mask_zero_seq_average")
    data = family_int8_tflite(m, np.concatenate([z.x] * 4))
    out = LiteRTModel(data, "reference").predict_outputs(z.x)  # LiteRT's DIV checks for 0
    assert np.isfinite(out).all() and np.isnan(reference.predict(m, z.x[:1])).all()
    assert "DEQUANTIZE" not in builtin_ops(data)  # no float island around the mask rows
    z, m = _model("masking_bidirectional_seq")  # mask value -1, inside the data's range
    data = family_int8_tflite(m, np.concatenate([z.x] * 4))
    out = TflmModel(data, ARENA).predict_outputs(z.x)
    assert np.abs(out - reference.predict(m, z.x)).max() < 0.05


@pytest.mark.parametrize("name", ["stacked_three_tokens", "features_gru_softmax"])
def test_int16x8_runs_in_tflm_and_beats_int8(name: str) -> None:
    z, m = _model(name)
    calibration = np.concatenate([z.x] * 4)
    data = family_int8_tflite(m, calibration, "int16x8")
    ops = builtin_ops(data)
    assert set(ops) <= registered_ops()
    if m.input.kind == "tokens":
        assert "QUANTIZE" in ops  # the int8 table, requantized to int16 after the GATHER
        table = m.layers[0].table
        sizes = [len(b.data) for b in read_model(data).buffers if b.data is not None]
        assert table.size in sizes and 2 * table.size not in sizes  # no dead int16 table
    tflm = TflmModel(data, ARENA)
    t = tflm.raw_output_rows(z.x)
    assert tflm.outputs[0]["dtype"] == np.int16
    litert = LiteRTModel(data, "reference").raw_output_rows(z.x)
    assert np.abs(t.astype(np.int64) - litert.astype(np.int64)).max() <= 2
    ref = reference.predict(m, z.x)
    err16 = np.abs(dequantize(t, tflm.outputs[0]) - ref).max()
    int8 = TflmModel(family_int8_tflite(m, calibration, "int8"), ARENA)
    err8 = np.abs(int8.predict_outputs(z.x) - ref).max()
    assert err16 < err8 / 2, (err16, err8)


@pytest.mark.parametrize("name,word", [
    ("masking_stacked_softmax", "Masking"), ("mask_zero_seq_average", "masked mean"),
    ("seq_global_max", "REDUCE_MAX"),
])
def test_int16x8_says_why_it_cannot(name: str, word: str) -> None:
    _, m = _model(name)
    problem = int16x8_problem(m)
    assert problem is not None and word in problem and "\n" not in problem
    assert int16x8_problem(_model("stacked")[1]) is None


def test_generated_tflm_sources_compile(tmp_path: Path) -> None:
    z, m = _model("bidirectional_seq_stacked")
    data = family_int8_tflite(m, np.concatenate([z.x] * 4))
    arena = write_tflm_sources(data, tmp_path / "tflm", "model_int8.tflite",
                               prefix="sensor_int8", task=m.task)
    assert 0 < arena.minimum <= arena.size
    header = (tmp_path / "tflm" / "model_data.h").read_text()
    assert "g_sensor_int8" in header and "input 0" in header and "Task: binary" in header
    main = tmp_path / "use.cc"
    main.write_text('#include "model_data.h"\nunsigned f() { return g_sensor_int8_len; }\n')
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c",
                    str(tmp_path / "tflm" / "model_data.cc"), "-o", str(tmp_path / "a.o")],
                   check=True)
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I",
                    str(tmp_path / "tflm"), "-c", str(main), "-o", str(tmp_path / "b.o")],
                   check=True)


@pytest.mark.parametrize("name", [
    "tokens_gru_logits", "stacked", "stacked_three_tokens", "mask_zero",
    "masking_stacked_softmax", "seq_global_max",
])
def test_step_model_streams_like_the_unrolled_model(name: str) -> None:
    """One invoke per step with the int8 states fed back gives the unrolled int8 model's
    answers; every state input has its output's quantization (copied byte for byte)."""
    z, m = _model(name)
    calibration = np.concatenate([z.x] * 4)
    data = family_step_tflite(m, calibration, seed=0)
    assert data == family_step_tflite(m, calibration, seed=0)
    assert set(builtin_ops(data)) <= registered_ops()
    step = TflmFamilyStepModel(data, output_names(m), ARENA)
    for k in step.feedback:  # state outputs, paired with inputs 1..n in order
        i = 1 + step.feedback.index(k)
        assert step.inputs[i]["quantization_parameters"]["scales"].tolist() == \
            step.outputs[k]["quantization_parameters"]["scales"].tolist()
    streamed = step.predict_outputs(z.x)
    unrolled = TflmModel(family_int8_tflite(m, calibration), ARENA).predict_outputs(z.x)
    ref = reference.predict(m, z.x)
    scale = 1.0 + np.abs(ref).max()
    assert np.abs(streamed - ref).max() <= 0.12 * scale
    assert np.abs(streamed - unrolled).max() <= 0.12 * scale
    if m.task.kind != "regression":
        same = decisions(m.task, streamed) == decisions(m.task, unrolled)
        assert same.mean() >= 0.85


def _states(m):
    from edge_gru.stages.tflite import _family_states

    return _family_states(m, output_names(m))


def test_step_model_header_states_each_layer(tmp_path: Path) -> None:
    z, m = _model("seq_global_max")
    data = family_step_tflite(m, np.concatenate([z.x] * 4), seed=0)
    arena = write_tflm_sources(data, tmp_path, "model_step_int8.tflite",
                               prefix="model_step_int8", task=m.task, states=_states(m))
    assert arena.size <= 16 * 1024
    header = (tmp_path / "model_data.h").read_text()
    assert "GRU layer 0" in header and "running max over time" in header
    assert "copy the bytes" in header


@pytest.mark.parametrize("name,word", [
    ("bidirectional_concat", "Bidirectional"), ("go_backwards", "go_backwards"),
    ("seq_flatten", "Flatten"), ("seq_global_average", "running mean"),
])
def test_models_that_cannot_stream_say_why(name: str, word: str) -> None:
    problem = step_problem(_model(name)[1])
    assert problem is not None and word in problem and "\n" not in problem


def test_int16x8_step_model_streams_with_int16_states() -> None:
    z, m = _model("stacked_three_tokens")
    calibration = np.concatenate([z.x] * 4)
    data = family_step_tflite(m, calibration, seed=0, precision="int16x8")
    assert set(builtin_ops(data)) <= registered_ops()
    step = TflmFamilyStepModel(data, output_names(m), ARENA)
    assert all(d["dtype"] == np.int16 for d in step.inputs[1:])  # the three layers' states
    ref = reference.predict(m, z.x)
    err16 = np.abs(step.predict_outputs(z.x) - ref).max()
    int8 = TflmFamilyStepModel(family_step_tflite(m, calibration, seed=0), output_names(m),
                               ARENA)
    err8 = np.abs(int8.predict_outputs(z.x) - ref).max()
    assert err16 < err8 / 2, (err16, err8)


def test_arena_of_a_long_pooled_model_is_measured_without_a_crash() -> None:
    """TFLM's REDUCE kernels crash (not fail) in too small an arena: every probe that may
    fail runs in a child process, so a T = 100 pooled model gets its arena measured."""
    import keras

    from edge_gru.codegen.tflm import measure_arena

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((100, 6)), keras.layers.GRU(8, return_sequences=True),
                              keras.layers.GlobalMaxPooling1D(),
                              keras.layers.Dense(4, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(20, 100, 6)).astype(np.float32)
    data = family_int8_tflite(from_keras(model), x)
    arena = measure_arena(data)
    assert 64 * 1024 < arena.minimum < arena.size  # beyond the first probe: it doubled
    out = TflmModel(data, arena.size).predict_outputs(x[:2])
    assert np.allclose(out.sum(axis=1), 1.0, atol=0.02)


@pytest.mark.parametrize("name", ["features_gru_softmax", "masking_bidirectional_seq"])
def test_size_within_parameters_plus_16k_plus_per_step_bytes(name: str) -> None:
    """The issue's bound: 1.10 x parameters + 16 KiB + T x (bytes one more step adds)."""
    from edge_gru.tflite.family_int8 import bytes_per_step

    z, m = _model(name)
    calibration = np.concatenate([z.x] * 4)
    data = family_int8_tflite(m, calibration)
    per_step = bytes_per_step(m, calibration, data)
    assert 0 < per_step < len(data) / m.input.timesteps  # sharing: a step is not a model
    assert len(data) <= 1.10 * m.parameter_count + 16 * 1024 + m.input.timesteps * per_step
