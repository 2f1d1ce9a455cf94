"""The explicit unroll equals Keras (both reset_after variants), in TF and as float .tflite."""

from __future__ import annotations

import numpy as np
import pytest

from edge_gru.model.training import keras_predict
from edge_gru.tflite.unroll import predict_unrolled


@pytest.mark.parametrize("fixture", ["small_model", "small_model_reset_before"])
def test_unrolled_graph_matches_keras(fixture: str, request: pytest.FixtureRequest) -> None:
    """Max abs diff <= 1e-5 on 500 real test reviews, batched graph."""
    trained = request.getfixturevalue(fixture)
    ids = trained.data.x_test[:500]
    unrolled = predict_unrolled(trained.weights, ids, batch=250)
    diff = np.abs(unrolled - keras_predict(trained.keras, ids)[:, 0])
    assert diff.max() <= 1e-5


@pytest.mark.parametrize("fixture", ["small_model", "small_model_reset_before"])
def test_float_tflite_matches_keras(fixture: str, request: pytest.FixtureRequest) -> None:
    """The batch-1 graph converted to float .tflite, run by LiteRT, on 100 reviews."""
    from edge_gru.runners.litert import LiteRTModel
    from edge_gru.tflite.export import float_tflite

    trained = request.getfixturevalue(fixture)
    ids = trained.data.x_test[:100]
    model = LiteRTModel(float_tflite(trained.weights), "no_delegates")
    diff = np.abs(model.predict_outputs(ids) - keras_predict(trained.keras, ids))
    assert diff.max() <= 1e-5


def test_unrolled_graph_uses_only_tflm_ops(small_model_reset_before) -> None:  # noqa: ANN001
    """No SHAPE/FILL/SELECT_V2/WHILE: only ops TFLM ships kernels for."""
    import tflite

    from edge_gru.tflite.export import float_tflite

    m = tflite.Model.GetRootAsModel(float_tflite(small_model_reset_before.weights), 0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = [m.OperatorCodes(i) for i in range(m.OperatorCodesLength())]
    used = {names[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())] for c in codes}
    allowed = {"GATHER", "RESHAPE", "SLICE", "FULLY_CONNECTED", "SPLIT", "SPLIT_V", "ADD", "SUB",
               "MUL", "LOGISTIC", "TANH"}
    assert used <= allowed, used - allowed
