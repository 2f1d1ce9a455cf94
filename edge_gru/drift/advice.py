"""What the report recommends when an int8 TFLite stage breaches its gates: 16x8 or not.

int8 activations quantize the GRU state to 256 levels, which loses too much over long
sequences on some models; 16x8 (int16 activations, int8 weights) is TFLite's established
remedy. Each int8 stage has a 16x8 counterpart (opt-in); the report says in one line, per
breaching int8 stage, whether to deploy its 16x8 model, run it, or look elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from .harness import StageResult

# int8 stage -> (its 16x8 counterpart, the file that counterpart ships)
COUNTERPART: dict[str, tuple[str, str]] = {
    "tflite_int8_litert": ("tflite_int16x8_tflm", "model_int16x8.tflite"),
    "tflite_int8_tflm": ("tflite_int16x8_tflm", "model_int16x8.tflite"),
    "tflite_step_int8_tflm": ("tflite_step_int16x8_tflm", "model_step_int16x8.tflite"),
}


# Breaches that more activation bits can cure (not, e.g., an arena or size bound).
PRECISION_METRICS = ("agreement", "accuracy_drop_pp", "rmse_change_pct", "mae_change",
                     "rmse_change", "mean_abs_diff", "max_abs_diff")


def _precision_breach(r: StageResult) -> bool:
    return any(b.startswith(f"{r.name}: {m} ") for b in r.breaches for m in PRECISION_METRICS)


def _one(name: str, results: dict[str, StageResult],
         can_take: Callable[[str], str | None]) -> str:
    wide, file = COUNTERPART[name]
    r = results.get(wide)
    if r is None:
        why = can_take(wide)
        if why is not None:
            return f"{name} breaches and 16x8 cannot help ({why})"
        return f"{name} breaches: add the opt-in --stages ...,{wide} to try int16 activations"
    if r.skipped:
        return f"{name} breaches and 16x8 cannot help ({r.skipped})"
    if not r.breaches:
        arena = r.extra.get("arena_bytes")
        where = f", TFLM arena {arena:,} bytes" if isinstance(arena, int) else ""
        return (f"{name} breaches and {wide} passes: deploy {file} "
                f"({r.size_bytes or 0:,} bytes{where})")
    return (f"{name} and {wide} both breach: consider the fixed-point C (int16 state) or "
            "ONNX int8 (float GRU)")


def precision_advice(results: list[StageResult],
                     can_take: Callable[[str], str | None] | None = None) -> str | None:
    """One line when an int8 TFLite stage breaches an accuracy gate, else None.

    ``can_take(stage)`` says why a 16x8 stage that did not run could not take the model
    (its ``Stage.supports``), or None.
    """
    by_name = {r.name: r for r in results}
    lines = [_one(r.name, by_name, can_take or (lambda stage: None)) for r in results
             if r.name in COUNTERPART and _precision_breach(r)]
    return "; ".join(lines) + "." if lines else None
