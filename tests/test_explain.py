"""Drift localisation: traces against hand-computed divergences, tracers, the report section."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_gru import reference
from edge_gru.explain import section
from edge_gru.explain.localise import compare_layers, layer_json
from edge_gru.explain.run import choose_sample, flipped_inputs, token_words
from edge_gru.explain.tracers_fixed import trace_quantized
from edge_gru.explain.traces import NotTraceable, TraceSource, trace_stage, traced_stages
from edge_gru.fixed_point import model as fm
from edge_gru.fixed_point.scheme import quantize
from edge_gru.frontend import from_keras
from edge_gru.ir import Task
from edge_gru.onnx.export import export_model
from edge_gru.reference import sigmoid
from edge_gru.weights import GruWeights

sys.path.insert(0, str(Path(__file__).parent))
from model_zoo import T, build_zoo  # noqa: E402

VOCAB, EMBED, UNITS, STEPS, FIRST_WORD = 24, 6, 8, 16, 7
GATE_INDEX = {"z": 0, "r": 1, "n": 2}


def _weights(seed: int = 3) -> GruWeights:
    """A small seed-shape model whose pad token (id 0) embeds to zeros."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(0, 0.5, (VOCAB, EMBED)).astype(np.float32)
    emb[0] = 0.0
    return GruWeights(
        embedding=emb,
        kernel=rng.normal(0, 0.4, (EMBED, 3 * UNITS)).astype(np.float32),
        recurrent_kernel=rng.normal(0, 0.3, (UNITS, 3 * UNITS)).astype(np.float32),
        input_bias=rng.normal(0, 0.1, 3 * UNITS).astype(np.float32),
        recurrent_bias=rng.normal(0, 0.1, 3 * UNITS).astype(np.float32),
        dense_kernel=rng.normal(0, 0.5, UNITS).astype(np.float32),
        dense_bias=0.1,
        reset_after=True,
        maxlen=STEPS,
    )


def _ids(n: int = 40, seed: int = 5) -> np.ndarray:
    """Pad (id 0) before step FIRST_WORD, words from it on."""
    ids = np.random.default_rng(seed).integers(3, VOCAB, (n, STEPS)).astype(np.int32)
    ids[:, :FIRST_WORD] = 0
    return ids


def test_fixed_point_trace_is_the_bit_exact_model() -> None:
    q = quantize(_weights())
    ids = _ids()
    found = fm.forward_trace(q, ids)
    assert np.array_equal(found.scores, fm.forward_q15(q, ids))
    assert found.states.shape == (len(ids), STEPS, UNITS)
    # h_T through the dense layer gives the score: the last recorded state is the real one.
    p = fm._prepare(q)
    assert np.array_equal(fm._score(q, p, found.states[:, -1]), found.scores)
    assert set(found.gates) == {"z", "r", "n"}
    assert all(v.shape == (len(ids), STEPS, UNITS) for v in found.gates.values())


@pytest.mark.parametrize("gate", ["z", "r", "n"])
def test_trace_finds_a_corrupted_row(gate: str) -> None:
    """Quantized weights differing from float in one known row (gate ``gate`` of unit 3).

    The input kernel's row only multiplies the embedded token, zero for pad: the stage
    matches float to quantization noise before FIRST_WORD and diverges exactly there, in
    that gate. Its step-FIRST_WORD value is computed by hand from the corrupted weights.
    """
    w = _weights()
    q = quantize(w)
    unit = 3
    row = 3 * unit + GATE_INDEX[gate]  # gate-interleaved C layout
    w_q = q.w_q.copy()
    w_q[row] = -w_q[row]  # the weights of the float kernel's column `col`, negated
    q_bad = replace(q, w_q=w_q)
    ids = _ids()
    trace = replace(trace_quantized(q_bad, ids), stage="fixed_point")
    ir = w.to_ir()
    ref = reference.forward(ir, ids, record_gates=True)
    (found,) = compare_layers(ir, ids, ref, trace)
    # Quantization noise alone stays below 0.2% before FIRST_WORD (r's effect on the state,
    # through n of one unit, is the smallest: 0.5% at FIRST_WORD).
    level = 0.004
    assert float(found.rel_l2[:FIRST_WORD].max()) < 0.002
    assert found.first_above(level) == FIRST_WORD
    assert found.dominant == gate
    assert found.shares[gate] > 0.5
    # Hand computation of the corrupted gate at FIRST_WORD from the float weights.
    col = GATE_INDEX[gate] * UNITS + unit
    kernel = w.kernel.astype(np.float64).copy()
    kernel[:, col] = -kernel[:, col]
    h_prev = ref.traces[0].states[:, FIRST_WORD - 1]
    x = w.embedding.astype(np.float64)[ids[:, FIRST_WORD]]
    pre = x @ kernel[:, col] + w.input_bias[col]
    rk, rb = w.recurrent_kernel.astype(np.float64), w.recurrent_bias.astype(np.float64)
    if gate == "n":
        r = sigmoid(x @ kernel[:, UNITS + unit] + w.input_bias[UNITS + unit]
                    + h_prev @ rk[:, UNITS + unit] + rb[UNITS + unit])
        expected = np.tanh(pre + r * (h_prev @ rk[:, col] + rb[col]))
    else:
        expected = sigmoid(pre + h_prev @ rk[:, col] + rb[col])
    got = trace.layers[0].gates[gate][:, FIRST_WORD, unit]
    assert np.max(np.abs(got - expected)) < 0.01
    assert np.max(np.abs(got - ref.traces[0].gates[gate][:, FIRST_WORD, unit])) > 0.2


def test_uncorrupted_fixed_point_stays_below_the_level() -> None:
    w = _weights()
    ids = _ids()
    ir = w.to_ir()
    (found,) = compare_layers(ir, ids, reference.forward(ir, ids, record_gates=True),
                              trace_quantized(quantize(w), ids))
    assert found.first_above(0.05) is None
    assert float(found.rel_l2.max()) < 0.02
    assert abs(sum(found.shares.values()) - 1.0) < 1e-9
    doc = layer_json(found, 0.05)
    assert doc["first_step_above_level"] is None and len(doc["rel_l2"]) == STEPS


@pytest.mark.parametrize("name", ["bidirectional_seq_stacked", "go_backwards",
                                  "go_backwards_seq_masked", "masking_bidirectional_seq"])
def test_onnx_float_trace_matches_reference_in_processing_order(name: str, tmp_path) -> None:
    """Float ONNX states equal the reference's at every step: directions mapped right."""
    z = build_zoo()[name]()
    ir = from_keras(z.model, timesteps=T)
    export_model(ir, tmp_path / "model_float.onnx")
    trace = trace_stage("onnx_float", TraceSource(ir, tmp_path), z.x)
    ref = reference.forward(ir, z.x, record_gates=True)
    found = compare_layers(ir, z.x, ref, trace)
    assert [f.name for f in found] == [t.name for t in ref.traces]
    for f in found:
        assert len(f.steps) == T
        assert float(f.rel_l2.max()) < 1e-5
    assert np.array_equal(np.isnan(trace.outputs), np.isnan(ref.outputs))  # all-masked rows
    assert np.nanmax(np.abs(trace.outputs - ref.outputs)) < 1e-5
    # A reversed sequence would be far off: the mapping is what makes the error small.
    backward = (trace.layers[0] if name.startswith("go_backwards")
                else next(t for t in trace.layers if t.name.endswith("/backward")))
    ref_states = {t.name: t.states for t in ref.traces}[backward.name]
    assert np.max(np.abs(backward.states[:, ::-1] - ref_states)) > 1e-2


def test_missing_artifact_and_unknown_stage_are_not_traceable(tmp_path) -> None:
    ir = _weights().to_ir()
    with pytest.raises(NotTraceable, match="model_step_int8.tflite is not in"):
        trace_stage("tflite_step_int8_tflm", TraceSource(ir, tmp_path), _ids())
    with pytest.raises(NotTraceable, match="no tracer"):
        trace_stage("no_such_stage", TraceSource(ir, tmp_path), _ids())
    assert {"fixed_point", "tflite_step_int8_tflm", "onnx_int8"} <= set(traced_stages())


def test_sample_holds_every_flipped_input_and_is_seeded() -> None:
    task = Task("binary", 1)
    float_out = np.array([[0.2], [0.6], [0.7], [0.4], [0.55]])
    stage_out = np.array([[0.3], [0.4], [0.8], [0.6], [0.55]])
    flipped = flipped_inputs(task, stage_out, float_out)
    assert flipped.tolist() == [1, 3]
    a = choose_sample(1000, np.array([999, 5]), 10, seed=1)
    assert len(a) == 10 and {5, 999} <= set(a.tolist())
    assert np.array_equal(a, choose_sample(1000, np.array([999, 5]), 10, seed=1))
    assert len(choose_sample(50, np.arange(20), 10, seed=1)) == 20  # flipped never dropped


def test_token_words_follow_keras_imdb_offsets() -> None:
    word = token_words({"the": 1, "movie": 2}, vocab=10)
    assert [word(i) for i in (0, 1, 2, 4, 5, 11)] == ["<pad>", "<start>", "<oov>", "the",
                                                      "movie", "<oov>"]


def test_section_renders_table_plot_and_worst_inputs(tmp_path) -> None:
    w = _weights()
    ids = _ids()
    ir = w.to_ir()
    trace = trace_quantized(quantize(w), ids)
    (found,) = compare_layers(ir, ids, reference.forward(ir, ids, record_gates=True), trace)
    doc = {
        "level": 0.05, "sample": 40, "seed": 0, "timesteps": STEPS, "seconds": 0.5,
        "stages": {
            "fixed_point": {
                "how": trace.how, "sample": 40, "flipped_in_sample": 1, "flipped_inputs": [3],
                "output_abs_diff_mean": 1e-3, "output_abs_diff_max": 2e-3, "seconds": 0.1,
                "layers": [layer_json(found, 0.05)],
                "worst_inputs": [{"test_index": 3, "float": [0.49], "stage": [0.51],
                                  "flipped": True, "final_rel_l2": 0.01,
                                  "largest_jump_step": 7, "tokens": "a [b] c"}],
            },
            "tflite_int8_litert": {"not_traced": "why"},
        },
    }
    assert section.plot(doc, tmp_path / section.PLOT_NAME)
    assert (tmp_path / section.PLOT_NAME).stat().st_size > 1000
    lines = section.markdown(doc, True)
    assert lines[0] == section.HEADING
    row = next(line for line in lines if line.startswith("| fixed_point | gru |"))
    assert "| 40 (1) | never |" in row
    assert f"{100 * found.rel_l2[-1]:.2f}%" in row
    text = "\n".join(lines)
    assert "#3: float 0.49 → 0.51 (flipped)" in text and "“a [b] c”" in text
    assert "**tflite_int8_litert** not traced: why" in text


def test_registered_tracer_localises_a_stacked_model_row() -> None:
    """A stage whose 2nd GRU has one recurrent-kernel column (z, unit 2) changed.

    By hand: the Bidirectional layer is untouched (error exactly 0); the 2nd GRU starts from
    ``h_0 = 0`` so its recurrent kernel plays no part at step 0 (error exactly 0) and
    changes only ``z`` at step 1 (``r`` and ``n`` still see the same ``h_1`` and input).
    Also checks the registry: a tracer refusing with NotTraceable hands over to the next.
    """
    from edge_gru.explain.traces import register

    z = build_zoo()["bidirectional_seq_stacked"]()
    ir = from_keras(z.model, timesteps=T)
    second = ir.layers[1]
    rk = np.array(second.recurrent_kernel, copy=True)
    rk[:, 2] += 1.5
    bad = replace(ir, layers=(ir.layers[0], replace(second, recurrent_kernel=rk), *ir.layers[2:]))

    @register("explain_test_stage")
    def refuse(source: TraceSource, x: np.ndarray):
        raise NotTraceable("not mine")

    @register("explain_test_stage")
    def corrupted(source: TraceSource, x: np.ndarray):
        from edge_gru.explain.traces import LayerTrace, StageTrace

        out = reference.forward(bad, x, record_gates=True)
        layers = tuple(LayerTrace(t.name, t.states, np.arange(T), t.gates) for t in out.traces)
        return StageTrace("explain_test_stage", out.outputs, layers, "float64, one column off")

    trace = trace_stage("explain_test_stage", TraceSource(ir, Path(".")), z.x)
    found = compare_layers(ir, z.x, reference.forward(ir, z.x, record_gates=True), trace)
    by_name = {f.name: f for f in found}
    gru = by_name[second.name]
    for f in found:
        if f is not gru:
            assert float(f.rel_l2.max()) == 0.0
    assert gru.rel_l2[0] == 0.0 and gru.first_above(1e-9) == 1
    assert gru.gate_rel_l2["z"][1] > 1e-3
    assert gru.gate_rel_l2["r"][1] == 0.0 and gru.gate_rel_l2["n"][1] == 0.0


def test_fixed_point_weight_variants_explain_its_error() -> None:
    """The float reference with the C's dequantized weights is 10x closer to the C than
    float is (the formulas of fixed_point_variants are right); a corrupted kernel row makes
    the kernel the dominant tensor."""
    from edge_gru.explain.ablation import ALL, ablate, dominant_tensor, fixed_point_variants
    from edge_gru.explain.localise import pooled_relative

    w = _weights()
    ir, ids = w.to_ir(), _ids()
    q = quantize(w)
    ref = reference.forward(ir, ids)
    states = trace_quantized(q, ids).layers[0].states
    base = ref.traces[0].states
    dequantized = reference.forward(fixed_point_variants(ir, q)[ALL], ids).traces[0].states
    vs_float = pooled_relative(states - base, base).mean()
    assert pooled_relative(states - dequantized, base).mean() < 0.1 * vs_float
    found = ablate(fixed_point_variants(ir, q), ids, ref)
    assert found["dense"]["mean_rel_l2"] == 0.0 and found["dense"]["output_abs_diff_mean"] > 0
    assert abs(found[ALL]["mean_rel_l2"] - vs_float) < 0.2 * vs_float
    w_q = q.w_q.copy()
    w_q[10] = -w_q[10]
    bad = ablate(fixed_point_variants(ir, replace(q, w_q=w_q)), ids, ref)
    assert dominant_tensor(bad) == "kernel"
    assert bad["kernel"]["mean_rel_l2"] > 3 * found["kernel"]["mean_rel_l2"]
