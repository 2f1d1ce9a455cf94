"""Build a Keras model from a recipe's ``[[model.layers]]`` and compile it for its task.

Each layer table names a Keras layer class (``type``) and its constructor arguments, so a
recipe reads like the Keras code it stands for::

    [[model.layers]]
    type = "GRU"
    units = 32
    return_sequences = true

``Bidirectional`` takes its inner layer as a table (``layer = {type = "GRU", units = 16}``).
A ``Dense`` output may say ``units = "outputs"``: the number of classes (or target
columns) found in the data. ``Normalization`` is adapted on the training inputs.
The loss follows the task: binary cross-entropy (``from_logits`` for logits), sparse
categorical cross-entropy, binary cross-entropy per label, mean squared error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EdgeGruError

BUILDABLE = frozenset(
    {
        "Embedding",
        "Normalization",
        "Masking",
        "GRU",
        "Bidirectional",
        "GlobalAveragePooling1D",
        "GlobalMaxPooling1D",
        "Flatten",
        "Dense",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "Activation",
    }
)
LOSSES = {
    "binary": ("binary_crossentropy", "accuracy"),
    "binary_logits": ("binary_crossentropy_logits", "accuracy"),
    "multiclass": ("sparse_categorical_crossentropy", "accuracy"),
    "multilabel": ("binary_crossentropy", "binary_accuracy"),
    "regression": ("mse", "mae"),
}


def _layer(spec: dict[str, Any], outputs: int, where: str) -> Any:
    import keras

    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in BUILDABLE:
        known = ", ".join(sorted(BUILDABLE))
        raise EdgeGruError(f"{where}: type {kind!r} is not a layer a recipe can build ({known})")
    if kind == "Bidirectional":
        inner = spec.pop("layer", None)
        if not isinstance(inner, dict):
            raise EdgeGruError(f'{where}: Bidirectional needs layer = {{type = "GRU", ...}}')
        spec["layer"] = _layer(inner, outputs, f"{where}.layer")
    if spec.get("units") == "outputs":
        spec["units"] = outputs
    try:
        return getattr(keras.layers, kind)(**spec)
    except (TypeError, ValueError) as exc:
        raise EdgeGruError(f"{where}: {kind}({spec}) is not valid: {exc}") from exc


def build_from_layers(
    layers: tuple[dict[str, Any], ...],
    input_shape: tuple[int, ...],
    outputs: int,
    x_train: np.ndarray,
    name: str = "edge_gru_model",
) -> Any:
    """A ``keras.Sequential`` from the layer tables; ``input_shape`` is ``(T,)`` or ``(T, F)``.

    Raises :class:`EdgeGruError` for a layer type or argument Keras does not accept, and
    when the first layer does not fit the data (an ``Embedding`` for token ids, anything
    else for feature frames).
    """
    import keras

    tokens = len(input_shape) == 1
    first = str(layers[0].get("type", "?")) if layers else "?"
    if tokens != (first == "Embedding"):
        held = "token ids (N, T)" if tokens else f"feature frames (N, T, {input_shape[-1]})"
        wants = "an Embedding first" if tokens else "no Embedding (it takes token ids)"
        raise EdgeGruError(f"the data holds {held} but the recipe's first layer is {first}: "
                           f"a model of such data needs {wants}")
    dtype = "int32" if tokens else "float32"
    built = [_layer(spec, outputs, f"[[model.layers]] #{i}") for i, spec in enumerate(layers, 1)]
    model = keras.Sequential([keras.Input(shape=input_shape, dtype=dtype), *built], name=name)
    adapt_normalization(model, x_train)
    return model


def adapt_normalization(model: Any, x_train: np.ndarray) -> None:
    """Adapt every ``Normalization`` layer's mean and variance to ``x_train (N, T, F)``."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.adapt(x_train.astype(np.float32))


def compile_for_task(model: Any, task: str, learning_rate: float) -> None:
    """Adam with the task's loss and a metric Keras reports while training."""
    import keras

    loss_name, metric = LOSSES[task]
    loss: Any = loss_name
    if loss_name == "binary_crossentropy_logits":
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metric = keras.metrics.BinaryAccuracy(threshold=0.0)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=[metric]
    )
