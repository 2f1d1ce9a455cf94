"""Classify reviews on a Raspberry Pi (or any box) with only numpy + onnxruntime installed.

    pip install ".[pi]"
    python examples/predict_text.py build/model_int8.onnx "a wonderful film" "dull and far too long"

The model file must sit in a ``python -m edge_gru.convert`` output folder (it reads
``metadata.json`` and ``word_index.txt.gz`` beside it); a ``.tflite`` model works the same
way with ``pip install ".[pi,litert]"``.
"""

from __future__ import annotations

import sys

from edge_gru.errors import EdgeGruError
from edge_gru.runtime import Predictor


def main(model: str, *reviews: str) -> int:
    try:
        predictor = Predictor.from_bundle(model)
        probabilities = predictor.predict_texts(list(reviews) or ["a wonderful film"])
    except EdgeGruError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for review, p in zip(reviews or ("a wonderful film",), probabilities[:, 0], strict=True):
        print(f"{p:.3f}  {predictor.label(p):8s}  {review}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: python examples/predict_text.py MODEL [REVIEW ...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
