"""int8 unrolled and step models: LiteRT (every mode) vs TFLM, reproducibility, size bounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge_gru.runners.litert import MODES, LiteRTModel
from edge_gru.runners.tflm import TflmModel, TflmStepModel

REVIEWS = 200


@dataclass(frozen=True)
class Built:
    raw: bytes
    int8: bytes
    step: bytes
    parameters: int


def _calibration(trained, n: int) -> np.ndarray:  # noqa: ANN001
    rng = np.random.default_rng(trained.config.seed)
    x = trained.data.x_train
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def _build(trained) -> Built:  # noqa: ANN001
    from edge_gru.tflite.export import UNROLLED_CALIBRATION, raw_int8_tflite, step_int8_tflite
    from edge_gru.tflite.rewrite import share_steps

    raw = raw_int8_tflite(trained.weights, _calibration(trained, UNROLLED_CALIBRATION))
    step = step_int8_tflite(trained.weights, _calibration(trained, 500), trained.config.seed)
    return Built(raw, share_steps(raw), step, trained.weights.parameter_count)


@pytest.fixture(scope="module")
def seed_dims(small_model) -> Built:  # noqa: ANN001
    return _build(small_model)


@pytest.fixture(scope="module")
def reset_before_dims(small_model_reset_before) -> Built:  # noqa: ANN001
    return _build(small_model_reset_before)


@pytest.fixture(scope="module")
def tflm_outputs(seed_dims: Built, small_model) -> np.ndarray:  # noqa: ANN001
    return TflmModel(seed_dims.int8, 600_000).raw_outputs(small_model.data.x_test[:REVIEWS])


@pytest.mark.parametrize("mode", MODES)
def test_litert_vs_tflm_within_8_lsb(mode: str, seed_dims: Built, tflm_outputs: np.ndarray,
                                     small_model) -> None:  # noqa: ANN001
    """Same int8 model, 200 real reviews: decisions agree >= 99.5%, 98% within 8 LSB.

    The runtimes round FULLY_CONNECTED differently (tensorflow#66358) and 100 recurrent
    steps amplify a 1-LSB difference on a few reviews, so the bound is on the 99th
    percentile (98% of reviews) plus a hard ceiling; the stage reports the full histogram.
    """
    litert = LiteRTModel(seed_dims.int8, mode).raw_outputs(small_model.data.x_test[:REVIEWS])
    diff = np.abs(litert.astype(np.int64) - tflm_outputs.astype(np.int64))
    assert np.mean(diff <= 8) >= 0.98, np.bincount(diff)
    assert diff.max() <= 32, np.bincount(diff)
    assert np.mean((litert > 0) == (tflm_outputs > 0)) >= 0.995


def test_tflm_is_bit_reproducible(seed_dims: Built, tflm_outputs: np.ndarray, small_model) -> None:  # noqa: ANN001
    again = TflmModel(seed_dims.int8, 600_000).raw_outputs(small_model.data.x_test[:REVIEWS])
    np.testing.assert_array_equal(again, tflm_outputs)


TRAINED = {"seed_dims": "small_model", "reset_before_dims": "small_model_reset_before"}


@pytest.mark.parametrize("runtime", [*MODES, "tflm"])
@pytest.mark.parametrize("dims", sorted(TRAINED))
def test_shared_steps_compute_the_converters_numbers(runtime: str, dims: str,
                                                     request: pytest.FixtureRequest) -> None:
    """Steps sharing tensors and operators give the converter's outputs bit for bit.

    The converter's model has its own tensors for every step; the stored model lets the
    steps write into shared ones. Checked on every LiteRT mode (XNNPACK among them, which
    fails on tensors written by several delegate partitions) and TFLM, for both
    ``reset_after`` variants, on 200 real reviews.
    """
    built: Built = request.getfixturevalue(dims)
    ids = request.getfixturevalue(TRAINED[dims]).data.x_test[:REVIEWS]

    def outputs(model: bytes) -> np.ndarray:
        if runtime == "tflm":
            return TflmModel(model, 2_000_000).raw_outputs(ids)
        return LiteRTModel(model, runtime).raw_outputs(ids)

    np.testing.assert_array_equal(outputs(built.int8), outputs(built.raw))


def test_int8_size_issue_bound(seed_dims: Built) -> None:
    """<= 1.10 x parameters + 16 KiB, and well under half the converter's own file."""
    assert len(seed_dims.int8) <= 1.10 * seed_dims.parameters + 16 * 1024
    assert len(seed_dims.int8) <= 0.5 * len(seed_dims.raw)


def test_step_model_size_and_arena(seed_dims: Built) -> None:
    from edge_gru.codegen.tflm import measure_arena

    assert len(seed_dims.step) <= seed_dims.parameters + 16 * 1024
    assert measure_arena(seed_dims.step).size <= 16 * 1024


def test_step_model_state_round_trips_and_matches_unrolled(seed_dims: Built, small_model) -> None:  # noqa: ANN001
    """State in and out share one quantization; 100 invokes agree with the unrolled model."""
    step = TflmStepModel(seed_dims.step, 16 * 1024)
    s_in, s_out = step.inputs[step.state_in], step.outputs[step.state_out]
    assert s_in["dtype"] == s_out["dtype"] == np.int8
    q_in, q_out = s_in["quantization_parameters"], s_out["quantization_parameters"]
    assert q_in["scales"][0] == q_out["scales"][0]
    assert q_in["zero_points"][0] == q_out["zero_points"][0]
    ids = small_model.data.x_test[:100]
    from edge_gru.model.training import keras_predict

    keras = keras_predict(small_model.keras, ids)
    probs = step.predict_outputs(ids)
    assert np.mean((probs > 0.5) == (keras > 0.5)) >= 0.98
    assert np.mean(np.abs(probs - keras)) < 0.02

