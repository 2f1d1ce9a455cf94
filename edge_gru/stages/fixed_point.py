"""Fixed-point GRU stages: the bit-exact NumPy model, and the C firmware on a Cortex-M4 in QEMU.

The seed shape (Embedding -> GRU -> Dense(1, sigmoid)) keeps its own scheme and C library;
every other IR model takes the family path (:mod:`edge_gru.fixed_point.family_stage`).

``fixed_point`` quantizes the weights, writes the generated C sources into the output
folder (``fixed_point/edge_gru_weights.{h,c}``, ``fixed_point/edge_gru_testvec.c``:
``make -C firmware WEIGHTS_DIR=<out>/fixed_point`` builds them) and scores with the NumPy
integer model.
``fixed_point_qemu`` builds the firmware, runs it in ``qemu-system-arm`` and scores over the
UART, checking every score against the NumPy model bit for bit, and the host C build too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..codegen.fixed_point import write_sources
from ..fixed_point import family_stage, lut
from ..fixed_point import model as fixed_model
from ..fixed_point.device import ticks_to_instructions
from ..fixed_point.scheme import QuantizedGru, quantize
from ..ir import ModelIR
from ..weights import seed_shape_problem
from .base import BuildContext, Stage, StageRunner

SELF_TEST_REVIEWS = 24
SOURCES_DIR = "fixed_point"  # <out>/fixed_point/: make -C firmware WEIGHTS_DIR=<out>/fixed_point


def _supports(model: ModelIR) -> str | None:
    """Every IR model: the seed shape takes the seed path, the rest the family path."""
    return None


def _supports_qemu(model: ModelIR) -> str | None:
    problem = seed_shape_problem(model)
    if problem is None or family_stage.qemu_supported(model):
        return None
    return f"the fixed-point C in QEMU {problem}"


def is_seed(ctx: BuildContext) -> bool:
    return seed_shape_problem(ctx.ir) is None


def quantized(ctx: BuildContext) -> QuantizedGru:
    return ctx.artifact("fixed_point.quantized", lambda: quantize(ctx.weights))


def sources(ctx: BuildContext) -> Path:
    """Generated C sources in ``<out>/fixed_point/`` (once per run); returns the folder."""

    def build() -> Path:
        q = quantized(ctx)
        write_sources(q, ctx.out_dir / SOURCES_DIR, "the trained Keras model (model.keras)",
                      ctx.data.x_test[:SELF_TEST_REVIEWS])
        return ctx.out_dir / SOURCES_DIR

    return ctx.artifact("fixed_point.sources", build)


def _info(q: QuantizedGru) -> dict[str, Any]:
    errors = lut.max_error(q.pre_frac)
    return {
        "pre_frac": q.pre_frac,
        "emb_exp": q.emb_exp,
        "sigmoid_max_error": round(errors["sigmoid"], 7),
        "tanh_max_error": round(errors["tanh"], 7),
    }


def _build_numpy(ctx: BuildContext) -> StageRunner:
    if not is_seed(ctx):
        return family_stage.build_numpy(ctx)
    q = quantized(ctx)
    folder = sources(ctx)
    return StageRunner(
        predict=lambda ids: fixed_model.predict(q, ids),
        artifact=folder,
        size_bytes=q.weight_bytes,
        batch_size=5000,
        info=_info(q),
    )


def _host_scores(tool: Path, ids: np.ndarray) -> np.ndarray:
    """Scores of the host C build (``edge_gru_host run``) for padded ids."""
    n, t = ids.shape
    records = np.empty((n, t + 1), "<i4")
    records[:, 0] = t
    records[:, 1:] = ids
    proc = subprocess.run([str(tool), "run"], input=records.tobytes(), capture_output=True,
                          timeout=600, check=True)
    return np.frombuffer(proc.stdout, "<i2").astype(np.int64)


def _qemu_preflight() -> None:
    """The firmware sources and the Debian tools the QEMU stage builds and runs with."""
    from ..fixed_point import firmware
    from ..fixed_point.qemu import QEMU

    firmware.firmware_dir()
    firmware.require_tools("make", "gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", QEMU)


def _build_qemu(ctx: BuildContext) -> StageRunner:
    from ..fixed_point import firmware

    _qemu_preflight()
    if not is_seed(ctx):
        return family_stage.build_qemu(ctx)
    q = quantized(ctx)
    folder = sources(ctx)
    built = firmware.start_qemu(folder, family=False)
    ticks: list[np.ndarray] = []
    scores: list[np.ndarray] = []

    def predict(ids: np.ndarray) -> np.ndarray:
        assert built.emulator.device is not None
        result = built.emulator.device.score(ids)
        ticks.append(result.ticks)
        scores.append(result.scores)
        return result.scores.astype(np.float64) / 32768.0

    def extra(ids: np.ndarray, _probs: np.ndarray) -> dict[str, Any]:
        expected = fixed_model.forward_q15(q, ids)
        host = _host_scores(built.host_tool, ids)
        device = np.concatenate(scores)
        instructions = ticks_to_instructions(np.concatenate(ticks))
        per_review = float(np.mean(instructions))
        macs = q.maxlen * 3 * q.units * (q.embed_dim + q.units)
        return {
            "bitexact_mismatches": int(np.sum(device != expected)),
            "host_bitexact_mismatches": int(np.sum(host != expected)),
            "instructions_per_review": round(per_review),
            "instructions_per_mac": round(per_review / macs, 3),
        } | built.budget_metrics()

    info = _info(q) | {"machine": firmware.QEMU_MACHINE, "dsp_path": built.emulator.info.dsp}
    info |= built.image_info()
    return StageRunner(
        predict=predict,
        artifact=folder,
        size_bytes=built.budgets.image_flash_bytes,
        batch_size=250,
        extra_metrics=extra,
        info=info,
        close=built.close,
    )


STAGES = [
    Stage(
        name="fixed_point",
        kind="quantized",
        runtime="numpy-int",
        build=_build_numpy,
        description="int8 weights, int16 state, LUT activations: bit-exact NumPy model of the C",
        supports=_supports,
    ),
    Stage(
        name="fixed_point_qemu",
        kind="quantized",
        runtime="cortex-m4-qemu",
        build=_build_qemu,
        description="the fixed-point C on a Cortex-M4 (QEMU mps2-an386) over its UART",
        default_max_eval=2000,
        supports=_supports_qemu,
        preflight=_qemu_preflight,
    ),
]
