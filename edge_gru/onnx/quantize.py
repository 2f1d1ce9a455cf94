"""ONNX int8 with onnxruntime's own quantization tools: an int8 embedding in front of a float GRU.

onnxruntime does not quantize the ``GRU`` operator (ort#9796), so every option keeps the
recurrence in float; they differ in how the embedding (98% of the parameters) and the
dense layer are stored and where the dequantization happens. Measured on the 5-epoch seed
model, full 25,000-review test set (float Keras accuracy 0.8310):

===================  =========  ========  =========  =======  ==================================
method               bytes      accuracy  agreement  MAE      graph at run time
===================  =========  ========  =========  =======  ==================================
float                1,306,080  0.8310    1.0000     4e-8     Gather(float table) -> GRU
embedding (chosen)     346,445  0.8311    0.9988     1.56e-3  Gather(int8 table) -> DQ -> GRU
embedding_dynamic      346,543  0.8311    0.9988     1.56e-3  same, but the table is *uint8*
dynamic                347,033  0.8312    0.9988     1.58e-3  + int8 MatMul of the 32x1 dense
static_qdq             348,073  0.8309    0.9985     2.34e-3  DQ(whole table) -> Gather -> Q/DQ
===================  =========  ========  =========  =======  ==================================

Chosen: ``embedding`` -- ``quantize_static`` in the QOperator format, Gather only, int8 with
an asymmetric per-tensor scale (``WeightSymmetric=False``: the trained table spans
-1.21..0.69, so a symmetric scale would be 27% coarser and triple the drift), calibrated by
a ``CalibrationDataReader`` over seeded training reviews. The Gather reads int8 rows and
only the ``T x N`` looked-up rows are dequantized, so it is as fast as float at batch 1,
3.8x smaller, and drifts least. ``quantize_dynamic`` builds the same graph but stores the
table as uint8 (dynamic mode treats a Gather table as an activation, uint8 only).
``static_qdq`` puts ``DequantizeLinear`` before the Gather, which onnxruntime's CPU
provider does not fuse: every call dequantizes all 320,000 entries (~2-3x slower at batch
1), and it also quantizes the GRU input and dense input, adding drift without saving bytes.
Quantizing the 32-weight dense layer (``dynamic``) saves 96 bytes for four extra operators,
and its dense input is quantized with a scale computed over the whole batch, so a review's
probability would depend on which other reviews share its batch.
``benchmarks/bench_onnx.py --methods`` re-measures sizes, drift and latency of every option.

**The rest of the family** (:mod:`.quantize_family`; this module keeps the seed's bytes).
Besides ``Gather`` (an embedding), onnxruntime's tools can only quantize the ``Gemm`` of
the Dense layers; the family graph has no separate input projection (the GRU node
multiplies by ``W`` itself). A feature model without an Embedding keeps ~95% of its
parameters in the GRU node (96-97% in the recipes below), so those tools change nothing
that matters there. Measured on
the trained recipe models, full test sets (float Keras accuracy BasicMotions 0.9750 on 40,
JapaneseVowels 0.9649 on 370; "batch" = max change of an example's output between a
batch-1 run and the whole-test-set run; accuracy equal to float in every row):

=====================  ===============  ===============  =========  =========  ===========
BasicMotions (3,985    bytes            agreement        MAE        max diff   batch
params) / JapVowels    BM / JV          BM / JV          BM / JV    BM / JV    BM / JV
(11,049 params)
=====================  ===============  ===============  =========  =========  ===========
float                  16,694 / 47,684  1.0000 / 1.0000  2e-8/1e-8  2e-7/5e-7  0 / 0
weights (chosen)        7,026 / 18,936  1.0000 / 1.0000  1.9e-4/    5.0e-3/    1e-7 / 3e-6
                                                         1.1e-4     3.2e-2
static_gemm            17,167 / 48,783  1.0000 / 1.0000  3.2e-4/    7.8e-3/    0 / 0
                                                         5.9e-5     1.1e-2
static_gemm + weights   7,708 / 20,699  1.0000 / 1.0000  3.3e-4/    7.8e-3/    0 / 0
                                                         1.3e-4     2.8e-2
dynamic                17,335 / 48,960  1.0000 / 1.0000  2.1e-3/    4.9e-2/    3e-2 / 4e-3
                                                         9.3e-5     1.6e-2
=====================  ===============  ===============  =========  =========  ===========

* ``static_gemm`` (``quantize_static``, QOperator ``QGemm`` on the Dense layers, activations
  calibrated on seeded training inputs) makes the file *larger*: the heads are 132 and 297
  weights, and the QGemm adds scales, zero points and Quantize/Dequantize nodes.
* ``dynamic`` (``quantize_dynamic``) is larger too and quantizes each activation with a
  scale computed over the batch, so an example's output moves by up to 0.03 with its
  batch-mates (0.2 on the zoo's bidirectional models): not reproducible per example.
* ``weights`` (chosen for feature models, :mod:`.quantize_weights`): the GRU ``W``/``R`` and
  big Dense kernels stored int8 with a per-row symmetric scale, ``DequantizeLinear`` in
  front of the float node -- 2.4-2.5x smaller, activations float, so no batch dependence
  beyond float rounding. onnxruntime does not constant-fold the ``DequantizeLinear``
  (it runs per call): batch-1 latency 173 -> 207 us (BM), 189 -> 232 us (JV), 1 thread.
* Token models outside the seed shape: ``embedding_weights`` -- the seed's Gather-only
  ``quantize_static`` (restricted by ``nodes_to_quantize`` to the embedding's ``Gather``:
  the family graph also uses ``Gather`` for the last step and bidirectional halves, which
  must stay float) followed by ``weights`` on the GRU and Dense matrices. On the zoo
  (random weights, T = 12) the chosen methods stay within 8.0e-3 of Keras
  (``tests/test_onnx_int8_family.py``); ``dynamic`` drifted up to 0.24 there.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import EdgeGruError
from .export import INPUT_NAME, model_bytes

METHODS = ("embedding", "embedding_dynamic", "dynamic", "static_qdq")
DEFAULT_METHOD = "embedding"


class IdsReader:
    """``CalibrationDataReader`` over seeded training reviews (never the test set)."""

    def __init__(self, ids: np.ndarray, batch: int = 100) -> None:
        self._ids = np.asarray(ids, np.int32)
        self._batch = batch
        self._it = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self._ids), self._batch):
            yield {INPUT_NAME: self._ids[start : start + self._batch]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._batches()


def _quantize(method: str, src: Path, dst: Path, calibration: np.ndarray | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    needs_calibration = method in {"embedding", "static_qdq"}
    if needs_calibration and (calibration is None or not len(calibration)):
        raise EdgeGruError(f"{method} quantization needs calibration reviews")
    if method == "embedding":
        quantize_static(  # IdsReader is a CalibrationDataReader by its get_next method
            src, dst, IdsReader(calibration), quant_format=QuantFormat.QOperator,
            op_types_to_quantize=["Gather"], activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8, extra_options={"WeightSymmetric": False},
        )
    elif method == "embedding_dynamic":
        quantize_dynamic(src, dst, op_types_to_quantize=["Gather"], weight_type=QuantType.QInt8)
    elif method == "dynamic":
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
    elif method == "static_qdq":
        quantize_static(
            src, dst, IdsReader(calibration), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        )
    else:
        raise EdgeGruError(f"unknown ONNX quantization {method!r}; choose {', '.join(METHODS)}")


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[Path]:
    """A scratch folder for onnxruntime's quantizer, with its log chatter held at ERROR.

    ``quantize_*`` logs pre-processing hints on the root logger; the level is restored after.
    """
    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="edge_gru_q_") as tmp:
            yield Path(tmp)
    finally:
        logging.getLogger().setLevel(previous)


def quantize_int8(
    float_path: str | Path,
    out_path: str | Path,
    method: str = DEFAULT_METHOD,
    calibration: np.ndarray | None = None,
) -> Path:
    """Quantize ``model_float.onnx`` into ``out_path`` with ``method`` (see module docstring).

    The result is re-serialised deterministically and checked with ``onnx.checker``.
    """
    import onnx

    if method not in METHODS:
        raise EdgeGruError(f"unknown ONNX quantization {method!r}; choose {', '.join(METHODS)}")
    out_path = Path(out_path)
    with quiet_quantizer() as tmp:
        dst = tmp / "model_int8.onnx"
        _quantize(method, Path(float_path), dst, calibration)
        model = onnx.load(dst)
    onnx.checker.check_model(model, full_check=True)
    out_path.write_bytes(model_bytes(model))
    return out_path
