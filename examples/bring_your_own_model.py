"""Check your own Keras GRU classifier against every edge_gru stage.

A text classifier trained on
ids encoded like ``keras.datasets.imdb`` (start 1, OOV 2, index_from 3). Here we train a
small one with reset_after=False to show the flow, save it, and hand it to the converter:

    EDGE_GRU_DATA=path/to/imdb python examples/bring_your_own_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras

from edge_gru.convert import main as convert_main
from edge_gru.data.imdb import load_imdb

VOCAB, MAXLEN = 5000, 80


def train_my_model(path: Path) -> None:
    data = load_imdb(num_words=VOCAB, maxlen=MAXLEN)
    model = keras.Sequential(
        [
            keras.Input(shape=(MAXLEN,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 16),
            keras.layers.Dropout(0.2),
            keras.layers.GRU(24, reset_after=False),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=2, batch_size=64, validation_split=0.2)
    model.save(path)


if __name__ == "__main__":
    model_path = Path("my_gru.keras")
    if not model_path.exists():
        train_my_model(model_path)
    sys.exit(convert_main(["--model", str(model_path), "--out", "build_my_gru"]))
