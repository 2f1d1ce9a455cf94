"""The family integer scheme and its bit-exact NumPy model against the float reference, on
every zoo construct (Python only; the C is in test_firmware_family)."""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_gru import reference
from edge_gru.codegen.fixed_point_family import write_family_sources
from edge_gru.errors import EdgeGruError
from edge_gru.fixed_point import family_model as fm
from edge_gru.fixed_point.family_lut import exp_q15, softmax_max_error, softmax_q15
from edge_gru.fixed_point.family_scheme import FamilyQuant, quantize_family
from edge_gru.frontend import from_keras
from edge_gru.ir import GRU, Bidirectional, ModelIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import T, build_zoo  # noqa: E402

ZOO = build_zoo()
# Max |integer - float| of any output (probabilities, or values for regression / logits)
# and of any GRU state; measured maxima on the zoo are 0.009 and 0.047 (bidirectional).
OUTPUT_BOUND = 0.02
STATE_BOUND = 0.06


@functools.cache
def zoo(name: str) -> tuple[ModelIR, np.ndarray, FamilyQuant]:
    z = ZOO[name]()
    ir = from_keras(z.model, timesteps=T)
    return ir, z.x, quantize_family(ir, z.x)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_integer_model_tracks_float_reference(name: str) -> None:
    ir, x, q = zoo(name)
    ref = reference.forward(ir, x, record_gates=True)
    res = fm.forward(q, fm.to_integer_inputs(q, x), record=True)
    assert res.outputs.shape == ref.outputs.shape and res.outputs.dtype == np.int64
    ok = ~np.isnan(ref.outputs).any(axis=1)  # Keras' mean over no step is NaN
    err = np.abs(res.values - ref.outputs)[ok]
    assert err.max() < OUTPUT_BOUND, err.max()
    if ir.task.kind == "multiclass":
        agree = np.argmax(res.values, 1) == np.argmax(ref.outputs, 1)
        assert agree[ok].mean() >= 0.9
    assert [t.name for t in res.traces] == [t.name for t in ref.traces]
    for it, rt in zip(res.traces, ref.traces):
        assert it.states.shape == rt.states.shape
        assert np.abs(it.states / 32768 - rt.states).max() < STATE_BOUND
        for gate in ("z", "r", "n"):
            assert np.abs(it.gates[gate] / 32768 - rt.gates[gate]).max() < STATE_BOUND
    assert np.array_equal(fm.predict(q, x), res.values)


def test_masked_steps_keep_the_state_and_traces_are_in_processing_order() -> None:
    _, x, q = zoo("go_backwards_seq_masked")
    res = fm.forward(q, fm.to_integer_inputs(q, x), record=True)
    mask = fm.masks(q, fm.to_integer_inputs(q, x))
    assert mask is not None and not mask.all()
    first = res.traces[0]
    order = mask[:, ::-1] if q.recurrent[0].forward.go_backwards else mask
    prev = np.concatenate([np.zeros_like(first.states[:, :1]), first.states[:, :-1]], axis=1)
    assert np.array_equal(first.states[~order], prev[~order])  # masked: state repeats
    assert not np.array_equal(first.states[order], prev[order])
    # record=False gives the same outputs and no traces
    plain = fm.forward(q, fm.to_integer_inputs(q, x))
    assert np.array_equal(plain.outputs, res.outputs) and plain.traces == ()


def test_softmax_table_error_and_rows() -> None:
    assert exp_q15(np.array([0]), 20)[0] == 32768
    assert exp_q15(np.array([16 << 20, 40 << 20]), 20).tolist() == [0, 0]
    assert softmax_max_error(20) < 1.2e-4 and softmax_max_error(14, classes=3) < 1.2e-4
    pre = np.array([[0, 0], [1 << 20, 0], [-(1 << 29), 1 << 29]], np.int64)
    p = softmax_q15(pre, 20)
    assert p[0].tolist() == [16384, 16384]
    assert abs(p[1, 0] / 32768 - 1 / (1 + np.exp(-1))) < 1e-4
    assert p[2].tolist() == [0, 32767]


def test_feature_quantization_and_raw_helper() -> None:
    ir, x, q = zoo("normalization")
    norm = ir.normalization
    assert norm is not None and q.input.k is not None
    assert np.allclose(q.input.offset, norm.mean) and np.allclose(q.input.divisor, norm.scale)
    xi = fm.quantize_features(q, x)
    v = (x - norm.mean) / norm.scale
    assert np.abs(xi * 2.0**-q.input.k - v).max() <= 2.0 ** -q.input.k.min() / 2 + 1e-6
    via_raw = fm.features_from_raw(q, fm.raw_readings(q, x))
    assert np.abs(via_raw.astype(int) - xi).max() <= 1  # one LSB of the frame at most
    assert np.mean(via_raw == xi) > 0.9


def test_padding_rule_and_streams() -> None:
    for name in ("masking_stacked_softmax", "mask_zero"):
        _, x, q = zoo(name)
        xi = fm.to_integer_inputs(q, x)
        whole = fm.forward(q, xi).outputs
        pad = fm.pad_value_frame(q)
        mask = fm.masks(q, xi)
        assert mask is not None
        streams = [row[np.argmax(m):] if m.any() else row[:0] for row, m in zip(xi, mask)]
        assert np.array_equal(fm.run_streams(q, streams), whole)
        longer = [np.concatenate([row[:5], row]) for row in xi]
        assert np.array_equal(fm.run_streams(q, longer), whole)
        assert pad.shape == ((q.input.features,) if q.input.kind == "features" else (1,))


def test_quantize_rejects_unusable_weights() -> None:
    ir, x, _ = zoo("stacked")
    gru = ir.layers[0]
    bad = replace(gru, kernel=np.full_like(gru.kernel, np.nan))
    with pytest.raises(EdgeGruError):
        quantize_family(replace(ir, layers=(bad, *ir.layers[1:])), x)
    huge = replace(gru, kernel=gru.kernel * 1e9)
    with pytest.raises(EdgeGruError):
        quantize_family(replace(ir, layers=(huge, *ir.layers[1:])), x)


def test_family_codegen_is_byte_identical(tmp_path: Path) -> None:
    ir, x, q = zoo("masking_bidirectional_seq")
    xi = fm.to_integer_inputs(q, x)
    a = write_family_sources(q, tmp_path / "a", "model", xi[:4])
    b = write_family_sources(quantize_family(ir, x), tmp_path / "b", "model", xi[:4])
    assert [p.name for p in a] == ["edge_gru_model.h", "edge_gru_model.c",
                                   "edge_gru_family_testvec.c"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    header = a[0].read_text()
    assert f"#define EGF_T {T}" in header and "#define EGF_STREAMABLE 0" in header
    assert "#define EGF_OUT_FRAC 15" in header and "divisor" in header
    assert str(tmp_path) not in header


@pytest.mark.parametrize("name, even", [("bidirectional_seq_stacked", 0),
                                        ("seq_global_max", 1)])
def test_header_direction_constants_match_the_model(name: str, even: int,
                                                    tmp_path: Path) -> None:
    """The constants the C library compiles one GRU step per direction with."""
    ir, x, q = zoo(name)
    header, source = (p.read_text() for p in write_family_sources(q, tmp_path, "model"))
    defines = {k: int(v) for k, v in re.findall(r"#define (EGF_\w+) (-?\d+)\n", header)}
    grus = [layer for layer in ir.layers if isinstance(layer, (GRU, Bidirectional))]
    dirs = [g for r in q.recurrent for g in (r.forward, r.backward) if g is not None]
    assert defines["EGF_NUM_DIRS"] == len(dirs) == sum(
        2 if isinstance(layer, Bidirectional) else 1 for layer in grus)
    for k, g in enumerate(dirs):
        got = [defines[f"EGF_DIR{k}_{f}"] for f in ("D", "U", "F", "RA")]
        assert got == [g.input_dim, g.units, g.pre_frac, int(g.reset_after)]
    assert [defines[f"EGF_DIR{k}_U"] for k in range(len(dirs))] == [
        layer.units for layer in grus for _ in range(2 if isinstance(layer, Bidirectional) else 1)]
    assert defines["EGF_EVEN_DIMS"] == even and defines["EGF_ALIGNED_KERNELS"] == 1
    aligned = re.findall(r"const int8_t (egf_gru\d+_[wu])\[\d+\] EGF_WORD_ALIGNED = \{", source)
    assert len(aligned) == 2 * len(dirs)


def test_seed_shape_gives_the_seed_schemes_bits() -> None:
    """On Embedding -> GRU -> Dense(1, sigmoid) the family path equals the seed path."""
    from edge_gru.fixed_point import model as seed_model
    from edge_gru.fixed_point.scheme import quantize
    from edge_gru.weights import GruWeights

    rng = np.random.default_rng(7)
    v, e, u = 300, 6, 5
    for reset_after in (True, False):
        w = GruWeights(
            embedding=rng.normal(0, 0.6, (v, e)), kernel=rng.normal(0, 0.6, (e, 3 * u)),
            recurrent_kernel=rng.normal(0, 0.6, (u, 3 * u)), input_bias=rng.normal(0, 0.2, 3 * u),
            recurrent_bias=rng.normal(0, 0.2, 3 * u) if reset_after else np.zeros(3 * u),
            dense_kernel=rng.normal(0, 1.0, u), dense_bias=0.1, reset_after=reset_after,
            maxlen=40)
        ids = rng.integers(-3, v + 3, (500, 40))
        seed = seed_model.forward_q15(quantize(w), ids)
        family = fm.forward(quantize_family(w.to_ir(), ids[:4]), ids).outputs[:, 0]
        assert np.array_equal(seed, family)
