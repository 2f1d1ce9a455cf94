"""Instructions per review and per MAC of the fixed-point GRU on a Cortex-M4 (QEMU, -icount).

    python -m edge_gru.convert --out build/                 # writes the generated C sources
    python benchmarks/bench_firmware.py --weights-dir build/fixed_point [--reviews 200]

Builds the UART server twice (the DSP path with SMLAD, and PORTABLE=1: the plain C path),
runs the same test reviews through both in qemu-system-arm mps2-an386 with
``-icount shift=7`` (the CMSDK timer then counts executed instructions exactly), checks
both give identical scores, and prints instructions per review / per MAC, their ratio, and
the budgets read from the build (arm-none-eabi-size, -fstack-usage). QEMU counts
instructions, not cycles: a real M4 adds wait states and multi-cycle loads.

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


def build_parser() -> Any:
    p = parser(PROG, __doc__)
    p.add_argument("--weights-dir", type=Path, default=REPO / "build" / "fixed_point",
                   help="the fixed_point/ folder of a convert output (default build/fixed_point)")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--reviews", type=int, default=200)
    return p


def benchmark(args: Any) -> int:
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
