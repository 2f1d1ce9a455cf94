"""Keras -> IR -> NumPy reference: parity with Keras for every construct of the GRU family,
the task each output implies, and one-line refusals for everything else."""

from __future__ import annotations

import numpy as np
import pytest
from model_zoo import T, build_refused, build_zoo

from edge_gru import ir, reference
from edge_gru.errors import EdgeGruError
from edge_gru.frontend import from_keras

ZOO = build_zoo()
REFUSED = build_refused()


@pytest.fixture(scope="module")
def zoo_models() -> dict:
    return {}


def _zoo(name: str, cache: dict):
    if name not in cache:
        cache[name] = ZOO[name]()
    return cache[name]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_reference_matches_keras(name: str, zoo_models: dict) -> None:
    z = _zoo(name, zoo_models)
    model_ir = from_keras(z.model, timesteps=T)
    keras_out = np.asarray(z.model.predict(z.x, verbose=0), np.float64)
    ours = reference.predict(model_ir, z.x)
    assert ours.shape == keras_out.shape
    # an all-masked row averaged over no step is NaN in Keras too
    np.testing.assert_allclose(ours, keras_out, rtol=0, atol=1e-5, equal_nan=True)
    assert model_ir.task.kind == z.task
    assert model_ir.parameter_count == z.model.count_params()
    # the weights matter: outputs vary across the batch
    assert np.nanmax(np.nanmax(ours, axis=0) - np.nanmin(ours, axis=0)) > 1e-3


@pytest.mark.parametrize(
    "name",
    [
        "stacked",
        "masking_stacked_softmax",
        "go_backwards_seq_masked",
        "stacked_three_tokens",
        "mask_zero_seq_average",
    ],
)
def test_per_step_states_match_keras(name: str, zoo_models: dict) -> None:
    """Each GRU's per-step state equals Keras' returned sequence (masked steps repeat it)."""
    import keras

    z = _zoo(name, zoo_models)
    model_ir = from_keras(z.model, timesteps=T)
    traces = reference.forward(model_ir, z.x, record_gates=True).traces
    grus = [layer for layer in z.model.layers if isinstance(layer, keras.layers.GRU)]
    sequences = [layer for layer in grus if layer.return_sequences]
    assert sequences
    probe = keras.Model(z.model.inputs, [layer.output for layer in sequences])
    got = probe.predict(z.x, verbose=0)
    got = got if isinstance(got, list) else [got]
    by_name = {t.name: t for t in traces}
    for layer, keras_seq in zip(sequences, got):
        trace = by_name[layer.name]
        assert np.abs(trace.states - keras_seq).max() <= 1e-5
        assert set(trace.gates) == {"z", "r", "n"}
        assert trace.gates["z"].shape == trace.states.shape
        assert 0.0 < trace.gates["z"].min() and trace.gates["z"].max() < 1.0


def test_masked_steps_keep_the_state(zoo_models: dict) -> None:
    z = _zoo("mask_zero", zoo_models)
    model_ir = from_keras(z.model)
    trace = reference.forward(model_ir, z.x).traces[0]
    padded = z.x == 0
    # the all-padding row never leaves h_0 = 0; a padded step repeats the step before
    assert np.all(trace.states[0] == 0.0)
    for i, t in zip(*np.nonzero(padded[:, 1:])):
        np.testing.assert_array_equal(trace.states[i, t + 1], trace.states[i, t])


def test_dynamic_length_is_stated_and_fixed_length_is_kept(zoo_models: dict) -> None:
    z = _zoo("dynamic_length_tokens", zoo_models)
    model_ir = from_keras(z.model, timesteps=40)
    assert model_ir.input.timesteps == 40
    assert model_ir.notes == (
        "the model's input length is dynamic; assumed T = 40 (recipe/--maxlen)",
    )
    with pytest.raises(EdgeGruError, match="dynamic"):
        from_keras(z.model)
    fixed = _zoo("mask_zero", zoo_models)
    assert from_keras(fixed.model).input.timesteps == T
    with pytest.raises(EdgeGruError, match=f"contradicts the model's fixed input length {T}"):
        from_keras(fixed.model, timesteps=T + 1)


def test_task_override_and_inference(zoo_models: dict) -> None:
    logits = _zoo("tokens_gru_logits", zoo_models)
    assert from_keras(logits.model).task == ir.Task("binary_logits", 1)
    assert from_keras(logits.model, task="regression").task.kind == "regression"
    with pytest.raises(EdgeGruError, match="unknown task"):
        from_keras(logits.model, task="ranking")
    softmax = _zoo("features_gru_softmax", zoo_models)
    with pytest.raises(EdgeGruError, match="needs a Dense\\(1\\) output"):
        from_keras(softmax.model, task="binary")


def test_masking_value_is_the_pad_value(zoo_models: dict) -> None:
    z = _zoo("masking_bidirectional_last", zoo_models)
    model_ir = from_keras(z.model)
    assert model_ir.input == ir.InputSpec("features", T, 5, pad_value=-1.0)
    assert model_ir.masked


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals_are_one_line_naming_the_problem(name: str) -> None:
    build, word = REFUSED[name]
    with pytest.raises(EdgeGruError) as err:
        from_keras(build(), timesteps=T)
    message = str(err.value)
    assert word in message
    assert message.startswith("unsupported model")
    assert "\n" not in message
