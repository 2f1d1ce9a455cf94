"""A sensor GRU end to end: your Keras code, your .npz, the converter, the Pi runtime.

Trains a small bidirectional GRU on the BasicMotions smart-watch recordings (6 IMU
channels x 100 steps, 4 activities) the way you would in your own project, saves it,
converts it with its float stages checked against Keras, and classifies one recording
with the TensorFlow-free runtime, as a Raspberry Pi would:

    EDGE_GRU_DATA=path/to/shared/data python examples/sensor_end_to_end.py

(``python -m edge_gru.convert --recipe basic_motions`` does the training from a recipe.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

STAGES = "reference,tflite_float,onnx_float"


def train(data: Path, model_path: Path) -> None:
    import keras

    arrays = np.load(data)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((100, 6)),
        keras.layers.Normalization(),
        keras.layers.Bidirectional(keras.layers.GRU(16)),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(4, activation="softmax"),
    ])
    model.layers[0].adapt(arrays["x_train"])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(arrays["x_train"], arrays["y_train"], epochs=30, batch_size=8, verbose=0)
    model.save(model_path)


def main() -> int:
    from edge_gru.convert import main as convert_main

    data = Path(os.environ.get("EDGE_GRU_DATA", "../shared/data")) / "timeseries/BasicMotions.npz"
    work = Path("build_sensor")
    work.mkdir(exist_ok=True)
    model_path = work / "motion_gru.keras"
    if not model_path.exists():
        train(data, model_path)
    out = work / "bundle"
    code = convert_main(["--model", str(model_path), "--data", str(data), "--out", str(out),
                         "--stages", STAGES])
    if code != 0:
        return code
    # The Pi side: numpy + onnxruntime only, one recording of shape (T, F).
    from edge_gru.runtime import Predictor

    recording = np.load(data)["x_test"][0]  # (T, F): 100 steps of 6 IMU channels
    predictor = Predictor.from_bundle(out / "model_float.onnx")
    (answer,) = predictor.answers(predictor.predict_features(recording))
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
