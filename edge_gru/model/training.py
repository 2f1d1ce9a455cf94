"""Keras models: build and train the seed model as the notebook does (or a recipe's), or load one.

Training is seeded (``keras.utils.set_random_seed`` + TensorFlow's deterministic ops) so
the same recipe and seed give the same weights on the same machine.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGruError
from ..recipe import ModelConfig
from ..weights import GruWeights, seed_view

SUPPORTED_SUFFIXES = (".keras", ".h5", ".hdf5")


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and force deterministic kernels."""
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(config: ModelConfig) -> Any:
    """``Embedding -> GRU -> Dense(1, sigmoid)``, compiled as in the notebook."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(config.maxlen,), dtype="int32", name="ids"),
            keras.layers.Embedding(config.vocab, config.embed_dim, name="embedding"),
            keras.layers.GRU(config.units, reset_after=config.reset_after, name="gru"),
            keras.layers.Dense(1, activation="sigmoid", name="dense"),
        ],
        name="imdb_gru",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def new_model(
    config: ModelConfig, input_shape: tuple[int, ...], outputs: int, x_train: np.ndarray
) -> Any:
    """A freshly initialised model, seeded: the seed model, or the recipe's layers.

    The seed model comes compiled as in the notebook; a recipe's model is compiled by
    :func:`edge_gru.model.build.compile_for_task` once its task is known.
    """
    set_determinism(config.seed)
    if config.layers is None:
        return build_model(config)
    from .build import build_from_layers

    return build_from_layers(config.layers, input_shape, outputs, x_train)


def fit(
    model: Any, config: ModelConfig, x_train: np.ndarray, y_train: np.ndarray, verbose: int = 1
) -> Any:
    """The notebook's fit call (validation split from the end), on ``train_subset`` if set."""
    if config.train_subset is not None:
        x_train, y_train = x_train[: config.train_subset], y_train[: config.train_subset]
    model.fit(
        x_train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_split=config.validation_split,
        shuffle=True,
        verbose=verbose,
    )
    return model


def train_model(
    config: ModelConfig, x_train: np.ndarray, y_train: np.ndarray, verbose: int = 1
) -> Any:
    """Build and train the seed model (``config.layers`` unset)."""
    model = new_model(config, (config.maxlen,), 1, x_train)
    return fit(model, config, x_train, y_train, verbose)


def load_model(path: str | Path) -> Any:
    """Load a user's ``.keras``/``.h5`` model (the frontend then vets what is in it)."""
    path = Path(path)
    if not path.exists():
        raise EdgeGruError(f"model file not found: {path}")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise EdgeGruError(f"unsupported model file {path.name}: expected .keras or .h5")
    if path.is_dir():
        raise EdgeGruError(f"model file {path} is a folder; expected a .keras or .h5 file")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise EdgeGruError(f"{path.name} is not a Keras .keras archive (not a zip file)")
    keras = _keras()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise EdgeGruError(f"cannot load model {path.name}: {reason}") from exc
    return model


def extract_weights(model: Any, maxlen: int | None = None) -> GruWeights:
    """The seed-shape parameters of a Keras model (frontend + :func:`seed_view`)."""
    from ..frontend import from_keras

    return seed_view(from_keras(model, maxlen))


def keras_predict(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Float Keras outputs ``(N, K)``: the baseline every stage is compared with."""
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), np.float64)
    return out.reshape(len(x), -1)
