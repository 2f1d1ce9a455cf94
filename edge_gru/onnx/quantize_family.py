"""ONNX int8 for every IR model: the method per model shape, and the file it writes.

The seed shape keeps :func:`edge_gru.onnx.quantize.quantize_int8` (same bytes as before the
IR existed). Other models (see :mod:`edge_gru.onnx.quantize` for the measurements):

* token models (an ``Embedding``): ``embedding_weights`` -- onnxruntime's ``quantize_static``
  (QOperator, int8, asymmetric) on the embedding ``Gather`` node only, exactly the seed's
  choice, then the GRU ``W``/``R`` and Dense kernels stored int8 by
  :mod:`edge_gru.onnx.quantize_weights`;
* feature models: ``weights`` -- the weight-only int8 storage alone (onnxruntime's tools
  cannot quantize the GRU node, which holds almost every parameter).

Other methods a recipe may ask for: ``embedding`` (Gather only), ``dynamic``
(``quantize_dynamic`` over everything it knows: batch-dependent, for comparison only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgeGruError
from ..ir import Embedding, ModelIR
from .export import model_bytes
from .quantize import quiet_quantizer

FAMILY_METHODS = ("auto", "embedding_weights", "weights", "embedding", "dynamic")


def choose_method(model: ModelIR) -> str:
    """The default method for ``model``: ``embedding_weights`` (tokens) or ``weights``."""
    return "embedding_weights" if model.input.kind == "tokens" else "weights"


def _embedding_node(onnx_model: object) -> str | None:
    """Name of the ``Gather`` node reading the ``embedding`` table, or None."""
    for node in onnx_model.graph.node:  # type: ignore[attr-defined]
        if node.op_type == "Gather" and node.input[0] == "embedding":
            return str(node.name)
    return None


def _calibration_rows(model: ModelIR, calibration: np.ndarray | None) -> np.ndarray:
    """Calibration ids without all-padding rows (a masked mean over no step is NaN, which
    breaks the calibrator's min/max). The Gather's int8 table, scale and zero point come
    from the table alone (measured: any calibration subset gives the same bytes); the
    calibrator only needs finite tensors to run."""
    if calibration is None or not len(calibration):
        raise EdgeGruError("int8 ONNX quantization of the embedding needs calibration inputs")
    ids = np.asarray(calibration, np.int32)
    pad = int(model.input.pad_value or 0)
    keep = ids[np.any(ids != pad, axis=1)]
    if not len(keep):
        raise EdgeGruError("int8 ONNX calibration inputs are all padding")
    return keep


def _ort_quantize(method: str, src: Path, dst: Path, model: ModelIR,
                  calibration: np.ndarray | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from .quantize import IdsReader

    if method == "dynamic":
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        return
    import onnx

    node = _embedding_node(onnx.load(src))
    if node is None:
        raise EdgeGruError(f"int8 ONNX method {method!r} needs an Embedding; use 'weights'")
    reader = IdsReader(_calibration_rows(model, calibration))
    quantize_static(
        src, dst, reader, quant_format=QuantFormat.QOperator, nodes_to_quantize=[node],
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        extra_options={"WeightSymmetric": False},
    )


def quantize_family(
    model: ModelIR,
    float_path: str | Path,
    out_path: str | Path,
    method: str = "auto",
    calibration: np.ndarray | None = None,
) -> tuple[Path, str]:
    """Write ``out_path`` (int8 ONNX of a non-seed ``model``) -> (path, method used).

    ``float_path`` is ``model_float.onnx`` from :func:`edge_gru.onnx.export.export_model`;
    ``calibration`` is ``(n, T)`` int32 training ids (token models only). Deterministic bytes.
    """
    import onnx

    from .quantize_weights import quantize_weights

    if method not in FAMILY_METHODS:
        raise EdgeGruError(f"unknown ONNX quantization {method!r}; choose "
                           f"{', '.join(FAMILY_METHODS)}")
    if method == "auto":
        method = choose_method(model)
    if method != "weights" and not any(isinstance(x, Embedding) for x in model.layers) \
            and method != "dynamic":
        raise EdgeGruError(f"int8 ONNX method {method!r} needs an Embedding; use 'weights'")
    out_path = Path(out_path)
    if method == "weights":
        q = onnx.load(float_path)
    else:
        q = _run_ort(method, Path(float_path), model, calibration)
        del q.graph.value_info[:]  # shape-inference notes onnxruntime adds: ~30 B per tensor
    if method in {"weights", "embedding_weights"}:
        q, _ = quantize_weights(q)
    onnx.checker.check_model(q, full_check=True)
    out_path.write_bytes(model_bytes(q))
    return out_path, method


def _run_ort(method: str, src: Path, model: ModelIR, calibration: np.ndarray | None) -> object:
    import onnx

    with quiet_quantizer() as tmp:
        dst = tmp / "model_int8.onnx"
        _ort_quantize(method, src, dst, model, calibration)
        return onnx.load(dst)
