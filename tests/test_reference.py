"""The NumPy float reference matches Keras: outputs and every per-step hidden state."""

from __future__ import annotations

import numpy as np
import pytest

from edge_gru import reference
from edge_gru.model.training import build_model, extract_weights, keras_predict, set_determinism
from edge_gru.recipe import ModelConfig


def _keras_states(model, ids: np.ndarray) -> np.ndarray:
    """Per-step states from a return_sequences twin of the model's GRU layer."""
    import keras

    gru = model.get_layer("gru")
    twin = keras.layers.GRU(gru.units, reset_after=gru.reset_after, return_sequences=True)
    emb = model.get_layer("embedding")(ids)
    twin.build(emb.shape)
    twin.set_weights(gru.get_weights())
    return np.asarray(twin(emb))


@pytest.mark.parametrize("reset_after", [True, False])
def test_parity_on_random_weights(imdb, reset_after: bool) -> None:
    """Untrained weights scaled up so the gates leave their linear region."""
    set_determinism(7)
    config = ModelConfig(vocab=10000, units=32, reset_after=reset_after)
    model = build_model(config)
    rng = np.random.default_rng(3)
    model.set_weights(
        [w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()]
    )
    w = extract_weights(model, config.maxlen)
    ids = imdb.x_test[:300]
    out = reference.forward(w, ids)
    assert np.abs(out.probabilities - keras_predict(model, ids)[:, 0]).max() <= 1e-5
    assert np.abs(out.states - _keras_states(model, ids)).max() <= 1e-5
    assert 0.05 < out.probabilities.std()  # not a degenerate all-equal output


@pytest.mark.parametrize("fixture", ["small_model", "small_model_reset_before"])
def test_parity_on_trained_weights(request, fixture: str) -> None:
    trained = request.getfixturevalue(fixture)
    ids = trained.data.x_test[:1000]
    out = reference.forward(trained.weights, ids)
    assert trained.weights.reset_after == (fixture == "small_model")
    assert np.abs(out.probabilities - keras_predict(trained.keras, ids)[:, 0]).max() <= 1e-5
    assert np.abs(out.states[:50] - _keras_states(trained.keras, ids[:50])).max() <= 1e-5
    # the trained model is better than chance on real reviews
    accuracy = np.mean((out.probabilities > 0.5) == trained.data.y_test[:1000])
    assert accuracy > 0.6


def test_parameter_count_matches_keras(small_model, small_model_reset_before) -> None:
    for trained in (small_model, small_model_reset_before):
        assert trained.weights.parameter_count == trained.keras.count_params()
    assert small_model.weights.parameter_count == 326369
    assert small_model.weights.macs_per_step * 100 == 614400
