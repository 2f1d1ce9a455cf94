"""GRU models people deploy, rebuilt from public bug reports and tutorials, with random weights.

Each entry builds a Keras model (seeded, untrained, biases randomised so that every weight
matters) and a matching input batch, pre-padded the way ``pad_sequences`` pads: token ids
with 0, features with the ``Masking`` value. Used by the frontend/reference parity tests
and by every backend's tests, so a construct is tested the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

T = 12
F = 5
VOCAB = 50
PAD = 0.0


@dataclass(frozen=True)
class ZooModel:
    name: str
    model: Any
    x: np.ndarray  # a batch: (N, T) int32 ids or (N, T, F) float32 features
    task: str  # the task the frontend must infer


def _tokens(rng: np.random.Generator, n: int = 16, t: int = T, pad: bool = True) -> np.ndarray:
    ids = rng.integers(1, VOCAB, size=(n, t)).astype(np.int32)
    if pad:  # variable lengths, pre-padded with 0; one all-padding row
        for i, length in enumerate(rng.integers(0, t + 1, size=n)):
            ids[i, : t - length] = 0
        ids[0] = 0
    return ids


def _features(
    rng: np.random.Generator, n: int = 16, t: int = T, pad: bool = True, value: float = PAD
) -> np.ndarray:
    x = rng.normal(0.5, 2.0, size=(n, t, F)).astype(np.float32)
    if pad:
        for i, length in enumerate(rng.integers(1, t + 1, size=n)):
            x[i, : t - length] = value
    return x


def _randomise(model: Any, seed: int) -> Any:
    """Give biases and embeddings non-trivial values (Keras initialises biases to 0)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _seq(layers: list[Any], inputs: Any, name: str) -> Any:
    import keras

    return keras.Sequential([inputs, *layers], name=name)


def build_zoo() -> dict[str, Callable[[], ZooModel]]:
    """Name -> builder. Builders import Keras lazily and are deterministic."""
    import keras
    from keras import layers as L

    def gru(units: int = 8, **kw: Any) -> Any:
        return L.GRU(units, **kw)

    def tok(t: int | None = T) -> Any:
        return keras.Input((t,), dtype="int32")

    def feat(t: int | None = T) -> Any:
        return keras.Input((t, F))

    def entry(
        name: str,
        layers: Callable[[], list[Any]],
        task: str,
        tokens: bool,
        pad: bool = True,
        inputs: Any = None,
        seed: int = 0,
        pad_value: float = PAD,
    ) -> Callable[[], ZooModel]:
        def build() -> ZooModel:
            keras.utils.set_random_seed(seed)
            rng = np.random.default_rng(seed)
            inp = inputs() if inputs else (tok() if tokens else feat())
            model = _randomise(_seq(layers(), inp, name), seed)
            x = _tokens(rng, pad=pad) if tokens else _features(rng, pad=pad, value=pad_value)
            return ZooModel(name, model, x, task)

        return build

    zoo: dict[str, Callable[[], ZooModel]] = {}

    def add(
        name: str, factory: Callable[[], list[Any]], task: str, tokens: bool, **kw: Any
    ) -> None:
        zoo[name] = entry(name, factory, task, tokens, **kw)  # type: ignore[arg-type]

    # tensorflow#55267 / #34813: accelerometer or audio features -> GRU -> softmax
    add(
        "features_gru_softmax",
        lambda: [gru(), L.Dense(10, activation="softmax")],
        "multiclass",
        False,
        pad=False,
    )
    add(
        "tokens_gru_softmax2",
        lambda: [L.Embedding(VOCAB, 6), gru(), L.Dense(2, activation="softmax")],
        "multiclass",
        True,
    )
    add(
        "tokens_gru_logits",
        lambda: [L.Embedding(VOCAB, 6), gru(), L.Dense(1)],
        "binary_logits",
        True,
    )
    add(
        "hidden_dense_relu",
        lambda: [gru(), L.Dense(16, activation="relu"), L.Dense(1, activation="sigmoid")],
        "binary",
        False,
        pad=False,
    )
    add(
        "hidden_dense_tanh_dropout",
        lambda: [
            gru(),
            L.Dropout(0.3),
            L.Dense(6, activation="tanh"),
            L.Dense(3, activation="softmax"),
        ],
        "multiclass",
        False,
        pad=False,
    )
    add(
        "stacked",
        lambda: [gru(8, return_sequences=True), gru(6), L.Dense(4, activation="softmax")],
        "multiclass",
        False,
        pad=False,
    )
    add(
        "stacked_three_tokens",
        lambda: [
            L.Embedding(VOCAB, 6),
            gru(6, return_sequences=True),
            gru(5, return_sequences=True, reset_after=False),
            gru(4),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        True,
    )
    add(
        "seq_flatten",
        lambda: [gru(return_sequences=True), L.Flatten(), L.Dense(3, activation="softmax")],
        "multiclass",
        False,
        pad=False,
    )
    add(
        "seq_global_average",
        lambda: [
            gru(return_sequences=True),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        False,
        pad=False,
    )
    add(
        "seq_global_max",
        lambda: [
            L.Embedding(VOCAB, 6),
            gru(return_sequences=True),
            L.GlobalMaxPooling1D(),
            L.Dense(2),
        ],
        "regression",
        True,
    )
    for mode in ("concat", "sum", "mul", "ave"):
        add(
            f"bidirectional_{mode}",
            lambda mode=mode: [
                L.Bidirectional(gru(), merge_mode=mode),
                L.Dense(3, activation="softmax"),
            ],
            "multiclass",
            False,
            pad=False,
        )
    add(
        "bidirectional_seq_stacked",
        lambda: [
            L.Bidirectional(gru(6, return_sequences=True)),
            gru(5),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        False,
        pad=False,
    )
    add(
        "mask_zero",
        lambda: [L.Embedding(VOCAB, 6, mask_zero=True), gru(), L.Dense(1, activation="sigmoid")],
        "binary",
        True,
    )
    add(
        "mask_zero_seq_average",
        lambda: [
            L.Embedding(VOCAB, 6, mask_zero=True),
            gru(return_sequences=True),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        True,
    )
    add(
        "masking_stacked_softmax",
        lambda: [
            L.Masking(PAD),
            gru(8, return_sequences=True),
            gru(8),
            L.Dense(9, activation="softmax"),
        ],
        "multiclass",
        False,
    )
    add(
        "masking_bidirectional_seq",
        lambda: [
            L.Masking(PAD),
            L.Bidirectional(gru(5, return_sequences=True), merge_mode="ave"),
            gru(4),
            L.Dense(2, activation="softmax"),
        ],
        "multiclass",
        False,
    )
    add(
        "masking_bidirectional_last",
        lambda: [L.Masking(-1.0), L.Bidirectional(gru(5)), L.Dense(1, activation="sigmoid")],
        "binary",
        False,
        pad_value=-1.0,
    )
    add(
        "go_backwards",
        lambda: [gru(go_backwards=True), L.Dense(1, activation="sigmoid")],
        "binary",
        False,
        pad=False,
    )
    add(
        "go_backwards_seq_masked",
        lambda: [
            L.Masking(PAD),
            gru(6, go_backwards=True, return_sequences=True),
            gru(4),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        False,
    )
    add(
        "reset_before_no_bias",
        lambda: [
            L.Embedding(VOCAB, 6),
            gru(reset_after=False, use_bias=False),
            L.Dense(1, activation="sigmoid"),
        ],
        "binary",
        True,
    )
    add(
        "multilabel",
        lambda: [gru(), L.Dense(4, activation="sigmoid")],
        "multilabel",
        False,
        pad=False,
    )
    add("regression", lambda: [gru(), L.Dense(3)], "regression", False, pad=False)
    add(
        "activation_layer",
        lambda: [gru(), L.Dense(5), L.Activation("softmax")],
        "multiclass",
        False,
        pad=False,
    )
    add(
        "dynamic_length_tokens",
        lambda: [L.Embedding(VOCAB, 6), gru(), L.Dense(1, activation="sigmoid")],
        "binary",
        True,
        inputs=lambda: tok(None),
    )

    def normalization() -> ZooModel:
        keras.utils.set_random_seed(1)
        rng = np.random.default_rng(1)
        norm = L.Normalization()
        norm.adapt(rng.normal(3.0, 5.0, size=(64, T, F)).astype(np.float32))
        model = keras.Sequential(
            [feat(), norm, gru(), L.Dense(4, activation="softmax")], name="normalization"
        )
        weights = model.get_weights()
        randomised = _randomise(
            keras.Sequential([feat(), gru(), L.Dense(4, activation="softmax")]), 1
        ).get_weights()
        model.set_weights(weights[:3] + randomised)
        return ZooModel("normalization", model, _features(rng, pad=False) * 5 + 3, "multiclass")

    def functional() -> ZooModel:
        keras.utils.set_random_seed(2)
        inp = keras.Input((T,), dtype="int32", name="ids")
        x = L.Embedding(VOCAB, 6)(inp)
        x = L.GRU(8, return_sequences=True)(x)
        x = L.GRU(8)(x)
        out = L.Dense(1, activation="sigmoid")(x)
        model = _randomise(keras.Model(inp, out, name="functional"), 2)
        return ZooModel("functional", model, _tokens(np.random.default_rng(2)), "binary")

    zoo["normalization"] = normalization
    zoo["functional"] = functional
    return zoo


def build_refused() -> dict[str, tuple[Callable[[], Any], str]]:
    """Models the frontend must refuse: name -> (builder, a word the one-line error holds)."""
    import keras
    from keras import layers as L

    def seq(*layers: Any, inp: Any = None) -> Any:
        return keras.Sequential([inp if inp is not None else keras.Input((T, F)), *layers])

    def initial_state() -> Any:
        ids = keras.Input((T,), dtype="int32", name="ids")
        h0 = keras.Input((8,), name="h0")
        x = L.Embedding(VOCAB, 6)(ids)
        x = L.GRU(8)(x, initial_state=h0)
        return keras.Model([ids, h0], L.Dense(1, activation="sigmoid")(x))

    def two_outputs() -> Any:
        inp = keras.Input((T, F))
        h = L.GRU(8)(inp)
        return keras.Model(inp, [L.Dense(1)(h), L.Dense(2)(h)])

    return {
        "lstm": (lambda: seq(L.LSTM(8), L.Dense(1)), "LSTM"),
        "conv1d": (lambda: seq(L.Conv1D(4, 3), L.GRU(8), L.Dense(1)), "Conv1D"),
        "initial_state": (initial_state, "inputs"),
        "two_outputs": (two_outputs, "outputs"),
        "return_state": (lambda: _return_state(), "return_state"),
        "stateful": (
            lambda: keras.Sequential(
                [keras.Input((T, F), batch_size=4), L.GRU(8, stateful=True), L.Dense(1)]
            ),
            "stateful",
        ),
        "sequence_output": (
            lambda: seq(L.GRU(8, return_sequences=True), L.Dense(1)),
            "reduce over time",
        ),
        "relu_gru": (lambda: seq(L.GRU(8, activation="relu"), L.Dense(1)), "activation relu"),
        "no_dense_head": (lambda: seq(L.GRU(8)), "Dense"),
        "bidirectional_no_merge": (lambda: _bidi_none(), "merge_mode"),
    }


def _return_state() -> Any:
    import keras
    from keras import layers as L

    inp = keras.Input((T, F))
    out, state = L.GRU(8, return_state=True)(inp)
    return keras.Model(inp, L.Dense(1)(out))


def _bidi_none() -> Any:
    import keras
    from keras import layers as L

    inp = keras.Input((T, F))
    a, b = L.Bidirectional(L.GRU(8), merge_mode=None)(inp)
    return keras.Model(inp, L.Dense(1)(L.Concatenate()([a, b])))
