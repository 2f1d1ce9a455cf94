"""What the report recommends when an int8 TFLite stage breaches its gates: 16x8 or not.

int8 activations quantize the GRU state to 256 levels, which loses too much over long
sequences on some models; 16x8 (int16 activations, int8 weights) is TFLite's established
remedy. Each int8 stage has a 16x8 counterpart (opt-in); the report says in one line, per
breaching int8 stage, whether to deploy its 16x8 model, run it, or look elsewhere.
"""

from __future__ import annotations

from .harness import StageResult

# int8 stage -> (its 16x8 counterpart, the file that counterpart ships)
COUNTERPART: dict[str, tuple[str, str]] = {
    "tflite_int8_litert": ("tflite_int16x8_tflm", "model_int16x8.tflite"),
    "tflite_int8_tflm": ("tflite_int16x8_tflm", "model_int16x8.tflite"),
    "tflite_step_int8_tflm": ("tflite_step_int16x8_tflm", "model_step_int16x8.tflite"),
}


def _one(name: str, results: dict[str, StageResult]) -> str:
    wide, file = COUNTERPART[name]
    r = results.get(wide)
    if r is None:
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


def precision_advice(results: list[StageResult]) -> str | None:
    """One line when an int8 TFLite stage breaches its gates, else None."""
    by_name = {r.name: r for r in results}
    lines = [_one(r.name, by_name) for r in results if r.name in COUNTERPART and r.breaches]
    return "; ".join(lines) + "." if lines else None
