"""The fixed-point scheme and its bit-exact NumPy model (Python only; the C is in test_firmware)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_gru import reference
from edge_gru.codegen.common import c_int_array, generated_header
from edge_gru.codegen.fixed_point import group_reorder, write_sources
from edge_gru.errors import EdgeGruError
from edge_gru.fixed_point import lut
from edge_gru.fixed_point import model as fm
from edge_gru.fixed_point.scheme import quantize


def test_lut_errors_symmetry_and_saturation() -> None:
    errors = lut.max_error(19)
    assert errors["tanh"] < 1.5e-4
    assert errors["sigmoid"] < 3.0e-4  # the saturation at |x| = 8 dominates
    pre = np.array([-(9 << 19), -(1 << 19), 0, 1 << 19, 9 << 19], np.int64)
    s = lut.sigmoid_q15(pre, 19)
    t = lut.tanh_q15(pre, 19)
    assert s.tolist() == [32768 - 32757, 32768 - s[3], 16384, s[3], 32757]
    assert t.tolist() == [-32767, -t[3], 0, t[3], 32767]
    assert abs(s[3] / 32768 - 1 / (1 + np.exp(-1))) < 1e-4


@pytest.mark.parametrize("fixture", ["small_model", "small_model_reset_before"])
def test_quantized_model_tracks_float(fixture: str, request: pytest.FixtureRequest) -> None:
    trained = request.getfixturevalue(fixture)
    w = trained.weights
    q = quantize(w)
    assert q.emb_q.dtype == np.int8 and np.abs(q.emb_q.astype(int)).max() <= 127
    assert 1 <= q.emb_mult.min() and q.emb_mult.max() <= 255
    assert 12 <= q.pre_frac <= 24 and q.w_mult.max() < 2**31
    ids = trained.data.x_test[:1000]
    probs = fm.predict(q, ids)
    ref = reference.predict(w, ids)[:, 0]
    assert np.mean((probs > 0.5) == (ref > 0.5)) >= 0.99
    assert np.mean(np.abs(probs - ref)) < 3e-3
    # the embedding is reproduced within half a quantization step of its row
    scale = q.emb_mult.astype(np.float64) * 2.0**-q.emb_exp
    err = np.abs(q.emb_q * scale[:, None] - w.embedding)
    assert np.all(err <= scale[:, None] / 2 + 1e-9)


def test_batching_and_oov_mapping(small_model) -> None:
    q = quantize(small_model.weights)
    ids = small_model.data.x_test[:64]
    whole = fm.forward_q15(q, ids)
    one_by_one = [fm.forward_q15(q, ids[i : i + 1]) for i in range(64)]
    assert np.array_equal(whole, np.concatenate(one_by_one))
    bad = ids.astype(np.int64).copy()
    bad[:, -5:] = [-1, q.vocab, 2**31 - 1, -(2**31), 10**9]
    fixed = bad.copy()
    fixed[:, -5:] = q.oov_id
    assert np.array_equal(fm.forward_q15(q, bad), fm.forward_q15(q, fixed))
    # the stream helper pads and truncates as training did
    stream = [int(t) for t in ids[0] if t != 0]
    assert fm.run_streams_q15(q, [stream])[0] == whole[0]
    assert fm.run_streams_q15(q, [[7] * 30 + list(ids[0])])[0] == whole[0]


def test_quantize_rejects_unusable_weights(small_model) -> None:
    w = small_model.weights
    with pytest.raises(EdgeGruError):
        quantize(replace(w, kernel=w.kernel * 1e9))
    with pytest.raises(EdgeGruError):
        quantize(replace(w, embedding=np.full_like(w.embedding, np.nan)))


def test_group_reorder_and_c_helpers() -> None:
    rows = np.arange(2 * 6).reshape(2, 6)
    assert group_reorder(rows).tolist() == [[0, 2, 1, 3, 4, 5], [6, 8, 7, 9, 10, 11]]
    text = c_int_array("a", "int8_t", [1, -2, 3], per_line=2)
    assert text == "const int8_t a[3] = {\n    1, -2,\n    3\n};\n"
    head = generated_header("What.", "src", "cmd")
    assert head.startswith("/*\n * What.") and "GENERATED FILE" in head and "cmd" in head


def test_codegen_is_byte_identical(small_model, tmp_path: Path) -> None:
    q = quantize(small_model.weights)
    reviews = small_model.data.x_test[:8]
    a = write_sources(q, tmp_path / "a", "model", reviews)
    b = write_sources(quantize(small_model.weights), tmp_path / "b", "model", reviews)
    assert [p.name for p in a] == ["edge_gru_weights.h", "edge_gru_weights.c", "edge_gru_testvec.c"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    header = a[0].read_text()
    assert f"#define EDGE_GRU_VOCAB {q.vocab} " in header
    assert f"#define EDGE_GRU_PRE_FRAC {q.pre_frac} " in header
    assert "/tmp" not in a[1].read_text() and str(tmp_path) not in header
