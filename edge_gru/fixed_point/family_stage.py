"""The family path of the ``fixed_point`` / ``fixed_point_qemu`` stages (non-seed IR models).

``build_numpy``: quantize the IR (:func:`quantize_family`, calibrated on training inputs),
write the generated C (and ``family_model.npz``, the quantized model the board command
reads) into ``<out>/fixed_point/`` and score with the bit-exact NumPy model.
``build_qemu``: the family firmware on the emulated Cortex-M4, checked bit for bit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import ModelIR
from ..stages.base import BuildContext, StageRunner
from . import family_model as fm
from .family_io import FILE as QUANT_FILE
from .family_io import save_quant
from .family_lut import softmax_max_error
from .family_scheme import FamilyQuant, quantize_family
from .lut import max_error

CALIBRATION = 500
SELF_TEST_EXAMPLES = 24
SOURCES_DIR = "fixed_point"


def quantized(ctx: BuildContext) -> FamilyQuant:
    return ctx.artifact("fixed_point.family_quantized",
                        lambda: quantize_family(ctx.ir, ctx.calibration_inputs(CALIBRATION)))


def sources(ctx: BuildContext) -> Any:
    """Generated family C in ``<out>/fixed_point/`` (once per run); returns the folder."""
    from ..codegen.fixed_point_family import write_family_sources

    def build() -> Any:
        q = quantized(ctx)
        folder = ctx.out_dir / SOURCES_DIR
        examples = fm.to_integer_inputs(q, ctx.data.x_test[:SELF_TEST_EXAMPLES])
        write_family_sources(q, folder, "the trained Keras model (model.keras)", examples)
        save_quant(q, folder / QUANT_FILE)  # the board command's bit-exact model
        return folder

    return ctx.artifact("fixed_point.family_sources", build)


def info(q: FamilyQuant) -> dict[str, Any]:
    fracs = [g.pre_frac for r in q.recurrent for g in (r.forward, r.backward) if g is not None]
    errors = max_error(min(fracs))
    out: dict[str, Any] = {
        "path": "family",
        "gru_pre_frac": fracs,
        "dense_pre_frac": [d.pre_frac for d in q.head],
        "input_exp": q.input.exp,
        "sigmoid_max_error": round(errors["sigmoid"], 7),
        "tanh_max_error": round(errors["tanh"], 7),
        "output_frac": fm.out_frac(q),
    }
    if q.head[-1].activation == "softmax":
        out["softmax_max_error"] = round(softmax_max_error(q.head[-1].pre_frac,
                                                           classes=q.outputs), 7)
    return out


def build_numpy(ctx: BuildContext) -> StageRunner:
    q = quantized(ctx)
    folder = sources(ctx)
    return StageRunner(
        predict=lambda x: fm.predict(q, x),
        artifact=folder,
        size_bytes=q.weight_bytes,
        batch_size=2000,
        info=info(q),
    )


def qemu_supported(model: ModelIR) -> bool:
    """Whether the family firmware runs ``model`` in QEMU: every IR model does."""
    return True


def _host_outputs(tool: Path, q: FamilyQuant, xi: np.ndarray) -> np.ndarray:
    """Outputs of the host C build (``edge_gru_family_host run``) for integer inputs."""
    dtype = "<i4" if q.input.kind == "tokens" else "<i2"
    records = b"".join(np.array([len(s)], "<u4").tobytes() + np.asarray(s).astype(dtype).tobytes()
                       for s in xi)
    proc = subprocess.run([str(tool), "run"], input=records, capture_output=True, timeout=600,
                          check=True)
    return np.frombuffer(proc.stdout, "<i4").reshape(len(xi), q.outputs).astype(np.int64)


def macs_per_sequence(q: FamilyQuant) -> int:
    dirs = [g for r in q.recurrent for g in (r.forward, r.backward) if g is not None]
    return q.input.timesteps * sum(3 * g.units * (g.input_dim + g.units) for g in dirs)


def build_qemu(ctx: BuildContext) -> StageRunner:
    from . import firmware
    from .device import ticks_to_instructions
    from .family_device import FamilyDevice

    q = quantized(ctx)
    folder = sources(ctx)
    built = firmware.start_qemu(folder, family=True)
    tokens = q.input.kind == "tokens"
    outs: list[np.ndarray] = []
    ticks: list[np.ndarray] = []

    def predict(x: np.ndarray) -> np.ndarray:
        assert isinstance(built.emulator.device, FamilyDevice)
        xi = fm.to_integer_inputs(q, x)
        result = built.emulator.device.run_sequences(list(xi), tokens, q.outputs)
        outs.append(result.outputs)
        ticks.append(result.ticks)
        return result.outputs.astype(np.float64) / 2.0 ** fm.out_frac(q)

    def extra(x: np.ndarray, _out: np.ndarray) -> dict[str, Any]:
        xi = fm.to_integer_inputs(q, x)
        expected = fm.forward(q, xi).outputs
        host = _host_outputs(built.host_tool, q, xi)
        device = np.concatenate(outs)
        instructions = ticks_to_instructions(np.concatenate(ticks))
        mask = fm.masks(q, xi)  # masked steps run no GRU: count the MACs of the others
        run_steps = q.input.timesteps * len(xi) if mask is None else int(mask.sum())
        macs = macs_per_sequence(q) // q.input.timesteps * max(run_steps, 1)
        return {
            "bitexact_mismatches": int(np.sum(np.any(device != expected, axis=1))),
            "host_bitexact_mismatches": int(np.sum(np.any(host != expected, axis=1))),
            "instructions_per_sequence": round(float(np.mean(instructions))),
            "instructions_per_mac": round(float(np.sum(instructions)) / macs, 3),
        } | built.budget_metrics()

    return StageRunner(
        predict=predict,
        artifact=folder,
        size_bytes=built.budgets.image_flash_bytes,
        batch_size=100,
        extra_metrics=extra,
        info=info(q) | {"machine": firmware.QEMU_MACHINE} | built.image_info(),
        close=built.close,
    )


def integer_inputs(q: FamilyQuant, x: np.ndarray) -> np.ndarray:
    return fm.to_integer_inputs(q, x)
