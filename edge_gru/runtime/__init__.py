"""The Raspberry Pi runtime: raw text or feature sequences -> outputs, with NumPy + onnxruntime
(or LiteRT).

Never imports TensorFlow or Keras (a test runs it in a subprocess and checks
``sys.modules``), so ``pip install ".[pi]"`` is all a board needs::

    from edge_gru.runtime import Predictor
    p = Predictor.from_bundle("build/model_int8.onnx")
    p.predict_texts(["a wonderful film"])          # -> array([[0.97...]])  (N, K)
    q = Predictor.from_bundle("motions/model_float.onnx")
    q.predict_sequences([frames])                   # frames (T_i, F) -> (1, K)
    q.answers(q.predict_sequences([frames]))        # label, probabilities per class
"""

from .backends import dequantize, open_backend, quantize
from .predictor import NEGATIVE, POSITIVE, Predictor, read_metadata

__all__ = [
    "NEGATIVE", "POSITIVE", "Predictor", "dequantize", "open_backend", "quantize", "read_metadata",
]
