"""Float TFLite for the whole GRU family: every zoo model, in LiteRT and in TFLite Micro.

Each model is converted once per session (batch-1 graph, :func:`family_float_tflite`) and
compared with Keras' own ``predict`` on the zoo's batch (16 examples, T = 12, pre-padded,
one all-padding row in token batches). ``MAX_DIFF`` is the float32 parity bound; an
all-masked row's masked mean is 0 / 0 = NaN in Keras, and must be NaN here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from model_zoo import F, T, build_zoo

from edge_gru.codegen.tflm import builtin_ops
from edge_gru.frontend.keras import from_keras
from edge_gru.ir import ModelIR
from edge_gru.runners.litert import LiteRTModel
from edge_gru.runners.tflm import TflmModel, registered_ops
from edge_gru.tflite.family import TFLM_FLOAT_OPS, family_float_tflite, predict_graph

MAX_DIFF = 1e-5
ZOO = build_zoo()
TFLM_ARENA = 1 << 20


@dataclass(frozen=True)
class Converted:
    ir: ModelIR
    x: np.ndarray
    keras: np.ndarray  # (N, K) float64, Keras' predict
    tflite: bytes


def _keras_outputs(model: Any, x: np.ndarray) -> np.ndarray:
    out = model.predict(x, batch_size=len(x), verbose=0)
    return np.asarray(out, np.float64).reshape(len(x), -1)


def _convert(model: Any, x: np.ndarray) -> Converted:
    ir = from_keras(model, timesteps=T)
    return Converted(ir, x, _keras_outputs(model, x), family_float_tflite(ir))


@cache
def converted(name: str) -> Converted:
    z = ZOO[name]()
    return _convert(z.model, z.x)


def max_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Max abs difference; NaN must sit exactly where Keras has NaN (else +inf)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    if not np.array_equal(nan, np.isnan(got)):
        return float("inf")
    return float(np.abs(got[~nan] - want[~nan]).max())


@pytest.mark.parametrize("name", sorted(ZOO))
def test_litert_matches_keras(name: str) -> None:
    c = converted(name)
    got = LiteRTModel(c.tflite, "no_delegates").predict_outputs(c.x)
    assert max_diff(got, c.keras) <= MAX_DIFF


@pytest.mark.parametrize("name", sorted(ZOO))
def test_tflm_matches_keras(name: str) -> None:
    c = converted(name)
    got = TflmModel(c.tflite, TFLM_ARENA).predict_outputs(c.x)
    assert max_diff(got, c.keras) <= MAX_DIFF


def test_ops_are_registered_by_tflm() -> None:
    """Across the zoo, only the declared op set is used, and TFLM registers all of it."""
    used = set().union(*(builtin_ops(converted(name).tflite) for name in ZOO))
    assert used <= TFLM_FLOAT_OPS, used - TFLM_FLOAT_OPS
    assert TFLM_FLOAT_OPS <= registered_ops(), TFLM_FLOAT_OPS - registered_ops()
    assert not used & {"SHAPE", "FILL", "SELECT_V2", "WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
    # the step math is there: one FULLY_CONNECTED per projection, gates as LOGISTIC/TANH
    assert {"FULLY_CONNECTED", "SPLIT", "LOGISTIC", "TANH", "GATHER", "PACK"} <= used


@pytest.mark.parametrize("name", ["masking_bidirectional_seq", "stacked_three_tokens"])
def test_conversion_is_deterministic(name: str) -> None:
    assert family_float_tflite(converted(name).ir) == converted(name).tflite


def test_tap_sees_every_step_state_by_name() -> None:
    """The hook a quantized build wraps: ``g{k}_s{t}_h`` for every direction and step."""
    import re

    from edge_gru.tflite.family import family_function

    seen: list[str] = []

    def tap(x: Any, name: str) -> Any:
        seen.append(name)
        return x

    ir = converted("masking_bidirectional_seq").ir  # Bidirectional (2 directions) + GRU
    family_function(ir, 1, tap).get_concrete_function()
    states = {n for n in seen if re.fullmatch(r"g\d+_s\d+_h", n)}
    assert states == {f"g{k}_s{t}_h" for k in range(3) for t in range(T)}
    assert {f"g{k}_s{t}_keep" for k in range(3) for t in range(T)} <= set(seen)
    assert len(seen) == len(set(seen))  # each name once


# -- constructs the zoo does not combine -------------------------------------------------
def _extra_models() -> dict[str, tuple[Any, np.ndarray]]:
    """Normalization in the graph (next to Masking, both orders), masked bidirectional
    sequences flattened, reset_before inside Bidirectional, go_backwards under mask_zero."""
    import keras
    from keras import layers as L
    from model_zoo import _randomise

    rng = np.random.default_rng(5)
    keras.utils.set_random_seed(5)
    mean, var = 2.0, 9.0
    feats = rng.normal(mean, 3.0, size=(16, T, F)).astype(np.float32)
    padded = feats.copy()
    for i, n in enumerate(rng.integers(0, T, size=16)):
        padded[i, :n] = mean  # normalizes to exactly 0, the Masking value after it
    zeros = feats.copy()
    for i, n in enumerate(rng.integers(0, T, size=16)):
        zeros[i, :n] = 0.0
    ids = rng.integers(1, 50, size=(16, T)).astype(np.int32)
    for i, n in enumerate(rng.integers(0, T + 1, size=16)):
        ids[i, :n] = 0

    def seq(name: str, *layers: Any, tokens: bool = False) -> Any:
        inp = keras.Input((T,), dtype="int32") if tokens else keras.Input((T, F))
        model = keras.Sequential([inp, *layers], name=name)
        norm = [w for layer in layers if isinstance(layer, L.Normalization)
                for w in layer.get_weights()]
        weights = _randomise(model, 5).get_weights()
        if norm:  # keep the Normalization's mean/variance/count, randomise the rest
            model.set_weights(norm + weights[len(norm):])
        return model

    def norm() -> Any:
        return L.Normalization(mean=mean, variance=var)

    return {
        "norm_then_masking": (seq("norm_then_masking", norm(), L.Masking(0.0),
                                  L.GRU(6, return_sequences=True), L.GlobalAveragePooling1D(),
                                  L.Dense(3, activation="softmax")), padded),
        "masking_then_norm": (seq("masking_then_norm", L.Masking(0.0), norm(), L.GRU(6),
                                  L.Dense(2)), zeros),
        "masked_bidi_concat_flatten": (seq(
            "masked_bidi_concat_flatten", L.Masking(0.0),
            L.Bidirectional(L.GRU(4, return_sequences=True, reset_after=False)),
            L.Flatten(), L.Dense(3, activation="sigmoid")), zeros),
        "mask_zero_backwards_max": (seq(
            "mask_zero_backwards_max", L.Embedding(50, 6, mask_zero=True),
            L.GRU(5, return_sequences=True, go_backwards=True), L.GlobalMaxPooling1D(),
            L.Dense(8, activation="tanh"), L.Dense(1), tokens=True), ids),
    }


@cache
def extra() -> dict[str, Converted]:
    return {name: _convert(model, x) for name, (model, x) in _extra_models().items()}


@pytest.mark.parametrize("name", ["norm_then_masking", "masking_then_norm",
                                  "masked_bidi_concat_flatten", "mask_zero_backwards_max"])
def test_more_constructs_in_litert_tflm_and_batched_graph(name: str) -> None:
    c = extra()[name]
    assert max_diff(LiteRTModel(c.tflite, "xnnpack").predict_outputs(c.x), c.keras) <= MAX_DIFF
    assert max_diff(TflmModel(c.tflite, TFLM_ARENA).predict_outputs(c.x), c.keras) <= MAX_DIFF
    # batch 5 over 16 rows: the (T * B) step-major projection and the padded last batch
    assert max_diff(predict_graph(c.ir, c.x, batch=5), c.keras) <= MAX_DIFF
    assert not np.allclose(c.keras, c.keras[:1])  # the rows differ: masks/padding matter


# -- the stage ----------------------------------------------------------------------------
def _context(tmp_path: Any, ir: ModelIR) -> Any:
    from edge_gru.recipe import parse_recipe
    from edge_gru.stages.base import BuildContext

    return BuildContext(out_dir=tmp_path, recipe=parse_recipe({}), ir=ir, keras_model=None,
                        data=None, seed=0)


def _stage(name: str) -> Any:
    from edge_gru.stages.tflite import STAGES

    return next(s for s in STAGES if s.name == name)


def test_stage_takes_a_family_model(tmp_path: Any) -> None:
    """``tflite_float`` on a 9-class masked stack: (N, 9) outputs as Keras'; the int8 stages
    take it too, the 16x8 ones decline in one line (Masking)."""
    c = converted("masking_stacked_softmax")
    runner = _stage("tflite_float").build(_context(tmp_path, c.ir))
    got = runner.predict(c.x)
    assert got.shape == (16, 9)
    assert max_diff(got, c.keras) <= MAX_DIFF
    assert (tmp_path / "model_float.tflite").read_bytes() == c.tflite
    for name in ("tflite_int8_litert", "tflite_int8_tflm", "tflite_step_int8_tflm"):
        assert _stage(name).supports(c.ir) is None
    for name in ("tflite_int16x8_tflm", "tflite_step_int16x8_tflm"):
        reason = _stage(name).supports(c.ir)
        assert reason is not None and reason.startswith("16x8: ") and "Masking" in reason
        assert "\n" not in reason


def test_stage_keeps_the_seed_path(tmp_path: Any) -> None:
    """A seed-shaped model still gets the seed unroll's bytes; the int8 stages accept it."""
    from edge_gru.tflite.export import float_tflite
    from edge_gru.weights import seed_view

    c = converted("dynamic_length_tokens")  # Embedding -> GRU -> Dense(1, sigmoid), T = 12
    runner = _stage("tflite_float").build(_context(tmp_path, c.ir))
    data = (tmp_path / "model_float.tflite").read_bytes()
    assert data == float_tflite(seed_view(c.ir))
    assert data != c.tflite  # the family graph is another graph
    got = runner.predict(c.x)
    assert got.shape == (16, 1)
    assert max_diff(got, c.keras) <= MAX_DIFF
    assert all(_stage(n).supports(c.ir) is None
               for n in ("tflite_int8_litert", "tflite_int8_tflm", "tflite_step_int8_tflm"))
