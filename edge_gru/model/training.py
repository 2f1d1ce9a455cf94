"""The seed Keras model: build and train it as the notebook does, or load and vet a user's.

Training is seeded (``keras.utils.set_random_seed`` + TensorFlow's deterministic ops) so
the same recipe and seed give the same weights on the same machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGruError
from ..recipe import ModelConfig
from ..weights import GruWeights

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


def train_model(
    config: ModelConfig, x_train: np.ndarray, y_train: np.ndarray, verbose: int = 1
) -> Any:
    """Train the seed model with the notebook's fit call (validation split from the end)."""
    set_determinism(config.seed)
    model = build_model(config)
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


def load_model(path: str | Path) -> Any:
    """Load a user's ``.keras``/``.h5`` model, refusing anything we cannot convert."""
    path = Path(path)
    if not path.exists():
        raise EdgeGruError(f"model file not found: {path}")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise EdgeGruError(f"unsupported model file {path.name}: expected .keras or .h5")
    keras = _keras()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise EdgeGruError(f"cannot load model {path.name}: {reason}") from exc
    check_supported(model)
    return model


def _layers(model: Any) -> list[Any]:
    keras = _keras()
    if not hasattr(model, "layers"):
        raise EdgeGruError("unsupported model: not a Keras model with layers")
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def check_supported(model: Any) -> None:
    """Accept exactly Embedding -> GRU -> [Dropout...] -> Dense(1, sigmoid); name what is not."""
    keras = _keras()
    layers = [layer for layer in _layers(model) if not isinstance(layer, keras.layers.Dropout)]
    kinds = [type(layer).__name__ for layer in layers]
    expected = ["Embedding", "GRU", "Dense"]
    if kinds != expected:
        raise EdgeGruError(
            f"unsupported model: layers {' -> '.join(kinds) or '(none)'}; "
            "expected Embedding -> GRU -> Dense(1) (Dropout allowed)"
        )
    if not isinstance(layers[0], keras.layers.Embedding) or not isinstance(
        layers[1], keras.layers.GRU
    ):
        raise EdgeGruError("unsupported model: expected Keras Embedding and GRU layers")
    embedding, gru, dense = layers
    if getattr(embedding, "mask_zero", False):
        raise EdgeGruError("unsupported model: Embedding(mask_zero=True); padding must be embedded")
    problems = []
    if gru.activation.__name__ != "tanh":
        problems.append(f"GRU activation {gru.activation.__name__} (need tanh)")
    if gru.recurrent_activation.__name__ != "sigmoid":
        problems.append(
            f"GRU recurrent_activation {gru.recurrent_activation.__name__} (need sigmoid)"
        )
    for flag in ("return_sequences", "return_state", "go_backwards", "stateful"):
        if getattr(gru, flag, False):
            problems.append(f"GRU {flag}=True")
    if dense.units != 1:
        problems.append(f"Dense with {dense.units} units (need 1)")
    if dense.activation.__name__ != "sigmoid":
        problems.append(f"Dense activation {dense.activation.__name__} (need sigmoid)")
    if problems:
        raise EdgeGruError("unsupported model: " + "; ".join(problems))


def model_maxlen(model: Any, default: int) -> int:
    """The padded length from the model's input shape, or ``default`` if it is dynamic."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[1], int):
        return shape[1]
    return default


def extract_weights(model: Any, maxlen: int) -> GruWeights:
    """Pull the parameters out of Keras into the backend-neutral :class:`GruWeights`."""
    check_supported(model)
    keras = _keras()
    embedding, gru, dense = (
        layer for layer in _layers(model) if not isinstance(layer, keras.layers.Dropout)
    )
    (table,) = embedding.get_weights()
    cell = gru.cell if hasattr(gru, "cell") else gru
    params = cell.get_weights()
    units = gru.units
    if cell.use_bias:
        kernel, recurrent_kernel, bias = params
        if gru.reset_after:
            input_bias, recurrent_bias = bias[0], bias[1]
        else:
            input_bias, recurrent_bias = bias, np.zeros(3 * units, np.float32)
    else:
        kernel, recurrent_kernel = params
        input_bias = np.zeros(3 * units, np.float32)
        recurrent_bias = np.zeros(3 * units, np.float32)
    dense_params = dense.get_weights()
    dense_kernel = dense_params[0].reshape(-1)
    dense_bias = float(dense_params[1][0]) if dense.use_bias else 0.0
    return GruWeights(
        embedding=np.asarray(table, np.float32),
        kernel=np.asarray(kernel, np.float32),
        recurrent_kernel=np.asarray(recurrent_kernel, np.float32),
        input_bias=np.asarray(input_bias, np.float32),
        recurrent_bias=np.asarray(recurrent_bias, np.float32),
        dense_kernel=np.asarray(dense_kernel, np.float32),
        dense_bias=dense_bias,
        reset_after=bool(gru.reset_after),
        maxlen=maxlen,
    )


def config_from_weights(w: GruWeights, base: ModelConfig) -> ModelConfig:
    """The recipe's config with the dimensions a loaded model actually has."""
    from dataclasses import replace

    return replace(
        base,
        vocab=w.vocab,
        embed_dim=w.embed_dim,
        units=w.units,
        maxlen=w.maxlen,
        reset_after=w.reset_after,
    )


def keras_predict(model: Any, ids: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Float Keras probabilities ``(N,)``: the baseline every stage is compared with."""
    return np.asarray(model.predict(ids, batch_size=batch_size, verbose=0), np.float64).reshape(-1)
