"""Score review texts on a board (or QEMU) running the fixed-point firmware, over its UART.

    python -m edge_gru.fixed_point.board --port /dev/ttyACM0 --bundle build/ "A moving film."
    python -m edge_gru.fixed_point.board --port socket://127.0.0.1:4321 --bundle build/ < texts

Texts are encoded on the host with the bundle's word index (``word_index.txt.gz``) and
sent as token ids; the device pads them as training did and answers with its Q0.15 score
and the time it took. When the bundle holds ``gru_weights.npz``, each score is also checked
against the bit-exact Python model of the same weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..cli_common import OneLineParser
from ..data.text import TextEncoder
from ..errors import EdgeGruError
from ..weights import GruWeights
from .device import COUNTER_CYCLES, COUNTER_QEMU_ICOUNT, Device, ticks_to_instructions


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m edge_gru.fixed_point.board",
                      description=__doc__.split("\n")[0])
    p.add_argument("--port", required=True, help="serial port or pyserial URL (socket://...)")
    p.add_argument("--bundle", type=Path, default=Path("build"), help="convert output folder")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("texts", nargs="*", help="reviews (default: one per line on stdin)")
    return p


def _cost(kind: int, ticks: int, hz: int) -> str:
    if kind == COUNTER_QEMU_ICOUNT:
        return f"{int(ticks_to_instructions(np.array([ticks]))[0]):,} instructions"
    if kind == COUNTER_CYCLES:
        return f"{ticks:,} cycles = {1000.0 * ticks / hz:.2f} ms"
    return ""


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    texts = args.texts or [line.strip() for line in sys.stdin if line.strip()]
    index = args.bundle / "word_index.txt.gz"
    if not index.is_file():
        raise EdgeGruError(f"{index} not found: run python -m edge_gru.convert --out {args.bundle}")
    with Device(args.port, baudrate=args.baud) as device:
        info = device.info()
        encoder = TextEncoder.from_file(index, info.vocab)
        streams = [np.array(encoder.encode(t), np.int64) for t in texts]
        result = device.score_streams(streams)
    expected = None
    weights_file = args.bundle / "gru_weights.npz"
    if weights_file.is_file():
        from ..codegen.fixed_point import model_crc32
        from .model import run_streams_q15
        from .scheme import quantize

        q = quantize(GruWeights.load(weights_file))
        if model_crc32(q) != info.model_crc32:
            print(f"note: the device runs other weights (crc {info.model_crc32:08x})")
        else:
            expected = run_streams_q15(q, streams)
    print(f"device: vocab {info.vocab}, units {info.units}, maxlen {info.maxlen}, "
          f"DSP path {'on' if info.dsp else 'off'}, weights crc {info.model_crc32:08x}")
    for i, text in enumerate(texts):
        p = int(result.scores[i])
        label = "positive" if p > 16384 else "negative"
        check = "" if expected is None else (" = Python" if expected[i] == p else " != Python!")
        cost = _cost(info.counter_kind, int(result.ticks[i]), info.counter_hz)
        print(f"{p / 32768:.4f} {label:8s} ({p}/32768{check}; {cost}) {text[:60]}")
    return 1 if expected is not None and not np.array_equal(expected, result.scores) else 0


def main(argv: list[str] | None = None) -> None:
    try:
        code = run(argv)
    except EdgeGruError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    raise SystemExit(code)


if __name__ == "__main__":
    main()
