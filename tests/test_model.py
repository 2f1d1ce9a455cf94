"""Seeded training is reproducible; saved models load (the frontend vets them: test_frontend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_gru.errors import EdgeGruError
from edge_gru.model.training import extract_weights, load_model, train_model
from edge_gru.recipe import ModelConfig


def test_same_seed_same_weights(imdb) -> None:
    config = ModelConfig(epochs=1, train_subset=600, units=8, embed_dim=8, vocab=10000)
    runs = [train_model(config, imdb.x_train, imdb.y_train, verbose=0) for _ in range(2)]
    for a, b in zip(runs[0].get_weights(), runs[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    other = train_model(
        ModelConfig(epochs=1, train_subset=600, units=8, embed_dim=8, seed=43),
        imdb.x_train,
        imdb.y_train,
        verbose=0,
    )
    assert not np.array_equal(runs[0].get_weights()[0], other.get_weights()[0])


def _sequential(*layers):
    import keras

    model = keras.Sequential([keras.Input(shape=(20,), dtype="int32"), *layers])
    model(np.zeros((1, 20), np.int32))
    return model


def test_dropout_is_accepted_and_h5_and_keras_load(tmp_path: Path) -> None:
    import keras

    L = keras.layers
    model = _sequential(
        L.Embedding(50, 4),
        L.Dropout(0.2),
        L.GRU(4, reset_after=False),
        L.Dropout(0.5),
        L.Dense(1, activation="sigmoid"),
    )
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"m{suffix}"
        model.save(path)
        loaded = load_model(path)
        w = extract_weights(loaded, 20)
        assert (w.vocab, w.units, w.reset_after, w.maxlen) == (50, 4, False, 20)


@pytest.mark.parametrize(
    "content,match", [(b"garbage", "not a Keras .keras archive"), (None, "not found")]
)
def test_unreadable_model_files(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "bad.keras"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EdgeGruError, match=match):
        load_model(path)
