"""Instructions per review and per MAC of the fixed-point GRU on a Cortex-M4 (QEMU, -icount).

    python -m edge_gru.convert --out build/                 # writes the generated C sources
    python benchmarks/bench_firmware.py --weights-dir build/fixed_point [--reviews 200]

Builds the UART server twice (the DSP path with SMLAD, and PORTABLE=1: the plain C path),
runs the same test reviews through both in qemu-system-arm mps2-an386 with
``-icount shift=7`` (the CMSDK timer then counts executed instructions exactly), checks
both give identical scores, and prints instructions per review / per MAC, their ratio, and
the budgets read from the build (arm-none-eabi-size, -fstack-usage). QEMU counts
instructions, not cycles: a real M4 adds wait states and multi-cycle loads.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_gru.data.imdb import load_imdb  # noqa: E402
from edge_gru.fixed_point import firmware  # noqa: E402
from edge_gru.fixed_point.device import ticks_to_instructions  # noqa: E402
from edge_gru.fixed_point.qemu import QemuDevice  # noqa: E402

GOAL_PER_MAC = 2.0


def _dims(weights_dir: Path) -> dict[str, int]:
    text = (weights_dir / "edge_gru_weights.h").read_text()
    return {k: int(v) for k, v in re.findall(r"#define EDGE_GRU_(\w+) (\d+) ", text)}


def _measure(build: Path, weights_dir: Path, portable: bool, ids: np.ndarray) -> tuple:
    firmware.make(["all"], weights_dir, build, BOARD="qemu_mps2", PORTABLE="1" if portable else "")
    arm = build / ("qemu_mps2-portable" if portable else "qemu_mps2")
    emulator = QemuDevice(arm / "serve.elf")
    try:
        result = emulator.device.score(ids)
    finally:
        emulator.close()
    return result.scores, ticks_to_instructions(result.ticks), firmware.budgets(arm)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=REPO / "build" / "fixed_point")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--reviews", type=int, default=200)
    args = parser.parse_args()
    dims = _dims(args.weights_dir)
    macs = dims["MAXLEN"] * 3 * dims["UNITS"] * (dims["EMBED"] + dims["UNITS"])
    data = load_imdb(args.data or REPO.parent / "shared" / "data", dims["VOCAB"], dims["MAXLEN"])
    ids = data.x_test[: args.reviews]
    with tempfile.TemporaryDirectory(prefix="bench_fw_") as tmp:
        dsp_scores, dsp, budgets = _measure(Path(tmp), args.weights_dir, False, ids)
        c_scores, plain, _ = _measure(Path(tmp), args.weights_dir, True, ids)
    if not np.array_equal(dsp_scores, c_scores):
        print("DSP and portable paths disagree", file=sys.stderr)
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


if __name__ == "__main__":
    raise SystemExit(main())
