"""Task-aware drift metrics and the noise-aware gate rule, at small and large n."""

from __future__ import annotations

import numpy as np
import pytest

from edge_gru.drift import gates, metrics
from edge_gru.ir import Task

QUANTIZED = {"accuracy_drop_pp": 0.5, "agreement": 0.99}


def _binary_case(n: int, flips_to_wrong: int, flips_to_right: int = 0) -> dict:
    """Float right on every example but ``flips_to_right``; the stage flips some decisions."""
    labels = np.ones(n, np.int64)
    base = np.full((n, 1), 0.9)
    base[:flips_to_right] = 0.1
    stage = base.copy()
    stage[flips_to_right : flips_to_right + flips_to_wrong] = 0.2  # turned wrong
    stage[:flips_to_right] = 0.8  # turned right
    return metrics.compare_outputs(Task("binary", 1), stage, base, labels)


def test_three_flips_in_500_pass_but_a_real_drop_fails() -> None:
    """The issue's case: identical to float but for 3 of 500 reviews must not fail."""
    small = _binary_case(500, 3)
    assert small["accuracy_drop_pp"] == pytest.approx(0.6)
    assert small["agreement"] == pytest.approx(0.994)
    assert gates.check("s", small, QUANTIZED) == []
    # the same share of flips at n = 25,000 is real: the drop gate fails
    large = _binary_case(25_000, 150)
    assert large["accuracy_drop_pp"] == pytest.approx(0.6)
    breaches = gates.check("s", large, QUANTIZED)
    assert len(breaches) == 1 and breaches[0].startswith("s: accuracy_drop_pp 0.6 > 0.5")


def test_forty_examples_one_flip_passes_five_flips_fail() -> None:
    one = _binary_case(40, 1)
    assert one["agreement"] == pytest.approx(0.975)
    assert gates.check("s", one, QUANTIZED) == []
    five = _binary_case(40, 5)
    breached = {b.split()[1] for b in gates.check("s", five, QUANTIZED)}
    assert breached == {"agreement", "accuracy_drop_pp"}


def test_wilson_and_mcnemar_bounds() -> None:
    # Wilson upper bound of 39/40 at z = 1.96 (hand-computed: 0.99557)
    assert gates.wilson_upper(39, 40) == pytest.approx(0.99557, abs=1e-4)
    assert gates.wilson_upper(40, 40) == 1.0
    # at n = 25,000 the bound is within 0.1 pp of the point value
    assert gates.wilson_upper(24_875, 25_000) - 0.995 < 1e-3
    assert gates.drop_lower_pp(3, 0, 500) == pytest.approx(100 * (3 - 1.96 * 3**0.5) / 500)
    assert gates.drop_lower_pp(0, 0, 100) == 0.0


def test_other_metrics_are_compared_as_measured() -> None:
    row = {"n": 10, "max_abs_diff": 2e-5, "arena_bytes": 100}
    assert gates.check("f", row, {"max_abs_diff": 1e-5}) == ["f: max_abs_diff 2e-05 > 1e-05"]
    assert gates.check("f", row, {"bitexact_mismatches": 0}) == [
        "f: gate on bitexact_mismatches but the stage has no value"
    ]


def test_multiclass_metrics_and_confusion() -> None:
    task = Task("multiclass", 3)
    base = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    stage = base.copy()
    stage[3] = [0.3, 0.6, 0.1]  # float says 0 (right), the stage says 1 (wrong)
    found = metrics.compare_outputs(task, stage, base, np.array([0, 1, 2, 0]))
    assert found["agreement"] == 0.75
    assert found["accuracy_drop_pp"] == pytest.approx(25.0)
    assert found["max_abs_diff"] == pytest.approx(0.3)
    assert found["confusion_vs_float"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_binary_logits_decide_at_zero_and_multilabel_sets() -> None:
    logits = metrics.compare_outputs(
        Task("binary_logits", 1),
        np.array([[0.1], [-0.1]]),
        np.array([[0.2], [0.3]]),
        np.array([1, 1]),
    )
    assert logits["agreement"] == 0.5 and logits["accuracy"] == 0.5
    multi = metrics.compare_outputs(
        Task("multilabel", 2),
        np.array([[0.9, 0.6], [0.1, 0.2]]),
        np.array([[0.9, 0.4], [0.1, 0.2]]),
        np.array([[1, 0], [0, 0]]),
    )
    assert multi["agreement"] == 0.5  # the whole label set must agree
    assert multi["label_agreement"] == 0.75
    assert multi["accuracy"] == 0.5


def test_regression_error_change() -> None:
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    base = (targets + np.array([0.1, -0.1, 0.1, -0.1]))[:, None]
    stage = (targets + np.array([0.2, -0.2, 0.2, -0.2]))[:, None]
    found = metrics.compare_outputs(Task("regression", 1), stage, base, targets)
    assert found["float_rmse"] == pytest.approx(0.1)
    assert found["rmse"] == pytest.approx(0.2)
    assert found["rmse_change_pct"] == pytest.approx(100.0)
    assert found["mae_change"] == pytest.approx(0.1)
    assert "agreement" not in found
    assert gates.check("q", found, {"rmse_change_pct": 2.0}) == ["q: rmse_change_pct 100 > 2"]


def test_precision_advice_names_16x8_only_when_it_helps() -> None:
    """int8 breaching + its 16x8 passing -> deploy 16x8; not run -> how; skipped -> why."""
    from edge_gru.drift.advice import precision_advice
    from edge_gru.drift.harness import StageResult

    def row(name: str, breaches: list[str] | None = None, skipped: str | None = None,
            **extra: int) -> StageResult:
        return StageResult(name=name, kind="quantized", runtime="tflite-micro", description="",
                           breaches=breaches or [], skipped=skipped, size_bytes=1000,
                           extra=dict(extra))

    bad = row("tflite_step_int8_tflm", ["tflite_step_int8_tflm: agreement 0.98 < 0.99"])
    assert precision_advice([row("tflite_int8_tflm"), row("tflite_int16x8_tflm")]) is None
    advice = precision_advice([bad, row("tflite_step_int16x8_tflm", arena_bytes=4096)])
    assert advice is not None and "deploy model_step_int16x8.tflite" in advice
    assert "4,096" in advice and "tflite_step_int8_tflm" in advice
    not_run = precision_advice([bad, row("tflite_int16x8_tflm")])  # the unrolled one ran
    assert not_run is not None and "--stages ...,tflite_step_int16x8_tflm" in not_run
    skipped = precision_advice([bad, row("tflite_step_int16x8_tflm", skipped="no Masking")])
    assert skipped is not None and "cannot help (no Masking)" in skipped
    both = precision_advice([bad, row("tflite_step_int16x8_tflm", ["x: agreement"])])
    assert both is not None and "both breach" in both
    litert = row("tflite_int8_litert", ["tflite_int8_litert: agreement 0.9 < 0.99"])
    two = precision_advice([bad, litert])
    assert two is not None and two.count("breach") == 2 and "\n" not in two
    cannot = precision_advice([bad], lambda stage: "16x8: no int16 REDUCE_MAX")
    assert cannot is not None and "cannot help (16x8: no int16 REDUCE_MAX)" in cannot
    arena = row("tflite_step_int8_tflm", ["tflite_step_int8_tflm: arena_bytes 20000 > 16384"])
    assert precision_advice([arena]) is None  # more activation bits do not shrink an arena
