"""Instructions per review and per MAC of the fixed-point GRU on a Cortex-M4 (QEMU, -icount).

    python -m edge_gru.convert --out build/                 # writes the generated C sources
    python benchmarks/bench_firmware.py --weights-dir build/fixed_point [--reviews 200]

Builds the UART server twice (the DSP path with SMLAD, and PORTABLE=1: the plain C path),
runs the same test reviews through both in qemu-system-arm mps2-an386 with
``-icount shift=7`` (the CMSDK timer then counts executed instructions exactly), checks
both give identical scores, and prints instructions per review / per MAC, their ratio, and
the budgets read from the build (arm-none-eabi-size, -fstack-usage). QEMU counts
instructions, not cycles: a real M4 adds wait states and multi-cycle loads.

A family model's folder (``edge_gru_model.h``: BasicMotions, JapaneseVowels, ...) is measured
the same way on ``--reviews`` full-length random sequences (seeded; every step runs, none is
masked, so the count is the worst case per sequence), checking DSP == portable, and
prints RAM (state + stack), code, weights against int8 parameter bytes.

Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm``; builds in a temporary folder and
writes nothing into ``--weights-dir``. Memory: about 0.45 GB resident in Python (the IMDB
data; QEMU and the compiler are separate processes); the run prints its own peak.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, parser, require_folder, run_benchmark

from edge_gru.data.imdb import load_imdb
from edge_gru.errors import EdgeGruError
from edge_gru.fixed_point import firmware
from edge_gru.fixed_point.device import ticks_to_instructions
from edge_gru.fixed_point.qemu import QemuDevice

PROG = "benchmarks/bench_firmware.py"
WEIGHTS_H = "edge_gru_weights.h"
GOAL_PER_MAC = 2.0


def _dims(weights_dir: Path) -> dict[str, int]:
    text = (weights_dir / WEIGHTS_H).read_text()
    dims = {k: int(v) for k, v in re.findall(r"#define EDGE_GRU_(\w+) (\d+) ", text)}
    absent = [k for k in ("MAXLEN", "UNITS", "EMBED", "VOCAB") if k not in dims]
    if absent:
        raise EdgeGruError(f"{weights_dir / WEIGHTS_H} defines no EDGE_GRU_{absent[0]}")
    return dims


def _measure(build: Path, weights_dir: Path, portable: bool, ids: np.ndarray) -> tuple:
    firmware.make(["all"], weights_dir, build, BOARD="qemu_mps2", PORTABLE="1" if portable else "")
    arm = build / ("qemu_mps2-portable" if portable else "qemu_mps2")
    emulator = QemuDevice(arm / "serve.elf")
    try:
        result = emulator.device.score(ids)
    finally:
        emulator.close()
    return result.scores, ticks_to_instructions(result.ticks), firmware.budgets(arm)


MODEL_H = "edge_gru_model.h"


def _family_inputs(weights_dir: Path, count: int) -> tuple[np.ndarray, dict[str, int]]:
    """Seeded full-length random inputs for a family model and its header's dimensions."""
    text = (weights_dir / MODEL_H).read_text()
    dims = {k: int(v) for k, v in re.findall(r"#define EGF_(\w+) (-?\d+)\n", text)}
    rng = np.random.default_rng(0)
    t = dims["T"]
    if dims["INPUT_TOKENS"]:
        return rng.integers(1, dims["VOCAB"], (count, t)).astype(np.int64), dims
    fracs = [int(v) for v in re.findall(r" k (\d+) raw_frac", text)]
    frames = rng.normal(0.0, 1.0, (count, t, dims["F"])) * 2.0 ** np.array(fracs)
    return np.clip(np.rint(frames), -32768, 32767).astype(np.int16), dims


def _family_macs_and_params(weights_dir: Path) -> tuple[int, int]:
    """MACs per sequence (from the generated GRU arrays) and int8 parameter bytes."""
    text = (weights_dir / MODEL_H).read_text()
    t = int(re.search(r"#define EGF_T (\d+)", text).group(1))  # type: ignore[union-attr]
    macs = sum(int(n) for n in re.findall(r"egf_gru\d+_[wu]\[(\d+)\]", text)) * t
    params = sum(int(n) for n in re.findall(r"(?<!u)int8_t egf_\w+\[(\d+)\]", text))
    return macs, params


def family_benchmark(args: Any, weights_dir: Path) -> int:
    from edge_gru.fixed_point.family_device import FamilyDevice

    xi, dims = _family_inputs(weights_dir, args.reviews)
    macs, params = _family_macs_and_params(weights_dir)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench_fw_") as tmp:
        for portable in (False, True):
            build = Path(tmp)
            firmware.make(["all"], weights_dir, build, BOARD="qemu_mps2",
                          PORTABLE="1" if portable else "")
            arm = build / ("qemu_mps2-portable" if portable else "qemu_mps2")
            emulator = QemuDevice(arm / "serve.elf", client=FamilyDevice)
            try:
                assert isinstance(emulator.device, FamilyDevice)
                result = emulator.device.run_sequences(list(xi), not dims["F"], dims["OUTPUTS"])
            finally:
                emulator.close()
            runs[portable] = (result.outputs, ticks_to_instructions(result.ticks),
                              firmware.budgets(arm, family=True))
    if not np.array_equal(runs[False][0], runs[True][0]):
        print(f"{PROG}: error: the DSP and portable paths disagree", file=sys.stderr)
        return 1
    budgets = runs[False][2]
    print(f"{len(xi)} random full-length sequences x {dims['T']} steps, {macs:,} MACs each\n")
    print("| path | instructions / sequence | per step | instructions / MAC | vs goal 2.0 |")
    print("|---|---:|---:|---:|---:|")
    for name, portable in (("DSP (SMLAD)", False), ("portable C (PORTABLE=1)", True)):
        inst = runs[portable][1].mean()
        print(f"| {name} | {inst:,.0f} | {inst / dims['T']:,.0f} | {inst / macs:.3f} | "
              f"{inst / macs / GOAL_PER_MAC:.2f}x |")
    print(f"\nbudgets: RAM {budgets.ram_bytes} B (state {budgets.state_bytes} + stack "
          f"{budgets.stack_bytes}); code {budgets.code_bytes} B; weights "
          f"{budgets.weights_bytes:,} B for {params:,} int8 parameters (+ multipliers, biases, "
          f"4,112 B of tables); serve image flash {budgets.image_flash_bytes:,} B")
    return 0


def build_parser() -> Any:
    p = parser(PROG, __doc__)
    p.add_argument("--weights-dir", type=Path, default=REPO / "build" / "fixed_point",
                   help="the fixed_point/ folder of a convert output (default build/fixed_point)")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--reviews", type=int, default=200)
    return p


def benchmark(args: Any) -> int:
    if (Path(args.weights_dir) / MODEL_H).is_file():
        return family_benchmark(args, Path(args.weights_dir))
    inner = Path(args.weights_dir) / "fixed_point"
    if not (Path(args.weights_dir) / WEIGHTS_H).is_file() and inner.is_dir():
        raise EdgeGruError(f"--weights-dir {args.weights_dir} is a convert output folder: "
                           f"give its generated C, --weights-dir {inner}")
    weights_dir = require_folder(args.weights_dir, "--weights-dir", [WEIGHTS_H])
    dims = _dims(weights_dir)
    macs = dims["MAXLEN"] * 3 * dims["UNITS"] * (dims["EMBED"] + dims["UNITS"])
    data = load_imdb(args.data, dims["VOCAB"], dims["MAXLEN"])
    ids = data.x_test[: args.reviews]
    with tempfile.TemporaryDirectory(prefix="bench_fw_") as tmp:
        dsp_scores, dsp, budgets = _measure(Path(tmp), weights_dir, False, ids)
        c_scores, plain, _ = _measure(Path(tmp), weights_dir, True, ids)
    if not np.array_equal(dsp_scores, c_scores):
        print(f"{PROG}: error: the DSP and portable paths disagree", file=sys.stderr)
        return 1
    print(f"{len(ids)} test reviews x {dims['MAXLEN']} steps, {macs:,} MACs per review\n")
    print("| path | instructions / review | instructions / MAC | vs goal 2.0 |")
    print("|---|---:|---:|---:|")
    for name, inst in (("DSP (SMLAD, __ARM_FEATURE_DSP)", dsp), ("portable C (PORTABLE=1)", plain)):
        per_mac = inst.mean() / macs
        print(f"| {name} | {inst.mean():,.0f} | {per_mac:.3f} | {per_mac / GOAL_PER_MAC:.2f}x |")
    print(f"\nportable / DSP: {plain.mean() / dsp.mean():.2f}x instructions; scores identical")
    print(f"\nbudgets: RAM {budgets.ram_bytes} B (state {budgets.state_bytes} + stack "
          f"{budgets.stack_bytes}) <= 1024; code {budgets.code_bytes} B <= 8192; weights "
          f"{budgets.weights_bytes:,} B; serve image flash {budgets.image_flash_bytes:,} B")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_benchmark(PROG, lambda: benchmark(args))


if __name__ == "__main__":
    raise SystemExit(main())
