"""Score review texts on a board (or QEMU) running the fixed-point firmware, over its UART.

    python -m edge_gru.fixed_point.board --port /dev/ttyACM0 --bundle build/ "A moving film."
    python -m edge_gru.fixed_point.board --port socket://127.0.0.1:4321 --bundle build/ < texts
    python -m edge_gru.fixed_point.board --port ... --bundle build/ --npy seqs.npy   (family)
    python -m edge_gru.fixed_point.board --port ... --bundle build/ --csv one_sequence.csv

A family model's image (any model but the seed shape) takes sequences: ``--npy`` holds
``(N, T, F)`` float readings or ``(N, T)`` token ids (one ``(T, F)`` / ``(T,)`` too),
``--csv`` one sequence, a row per step and a column per feature. They are quantized as the
generated header states, sent as frames, and each device output is printed next to the
bit-exact Python model's (``<bundle>/fixed_point/family_model.npz``).

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
    p.add_argument("--npy", type=Path, help="family model: sequences (N, T, F) or (N, T)")
    p.add_argument("--csv", type=Path, help="family model: one sequence, a row per step")
    p.add_argument("texts", nargs="*", help="reviews (default: one per line on stdin)")
    return p


def _cost(kind: int, ticks: int, hz: int) -> str:
    if kind == COUNTER_QEMU_ICOUNT:
        return f"{int(ticks_to_instructions(np.array([ticks]))[0]):,} instructions"
    if kind == COUNTER_CYCLES:
        return f"{ticks:,} cycles = {1000.0 * ticks / hz:.2f} ms"
    return ""


def _sequences(args: argparse.Namespace) -> np.ndarray:
    try:
        if args.npy is not None:
            x = np.load(args.npy, allow_pickle=False)
        else:
            x = np.loadtxt(args.csv, delimiter=",", ndmin=2)[None]
    except (OSError, ValueError) as exc:
        raise EdgeGruError(f"cannot read {args.npy or args.csv}: {exc}") from exc
    return np.asarray(x)


def run_family(args: argparse.Namespace) -> int:
    """Send sequences to a family image; print its outputs next to the Python model's."""
    from . import family_model as fm
    from .family_device import FamilyDevice
    from .family_io import FILE, load_quant

    q = load_quant(args.bundle / "fixed_point" / FILE)
    x = _sequences(args)
    rank = 2 if q.input.kind == "tokens" else 3
    if x.ndim == rank - 1:  # one sequence
        x = x[None]
    if x.ndim != rank or (rank == 3 and x.shape[-1] != q.input.features):
        raise EdgeGruError(f"expected sequences of shape (N, T{', F' if rank == 3 else ''}) "
                           f"for this model, got {x.shape}")
    xi = fm.to_integer_inputs(q, x)
    with FamilyDevice(args.port, baudrate=args.baud) as device:
        info = device.info()
        result = device.run_sequences(list(xi), q.input.kind == "tokens", q.outputs)
    expected = fm.run_streams(q, list(xi))
    scale = 2.0 ** fm.out_frac(q)
    print(f"device: {'tokens' if info.tokens else 'features'} T {info.timesteps}, "
          f"{info.outputs} outputs (Q.{info.out_frac}), DSP path "
          f"{'on' if info.dsp else 'off'}, weights crc {info.model_crc32:08x}")
    for i in range(len(xi)):
        same = np.array_equal(result.outputs[i], expected[i])
        values = " ".join(f"{v / scale:.4f}" for v in result.outputs[i])
        cost = _cost(info.counter_kind, int(result.ticks[i]), info.counter_hz)
        print(f"{i}: [{values}] argmax {int(result.argmax[i])} "
              f"({'= Python' if same else '!= Python!'}; {cost})")
    return 0 if np.array_equal(result.outputs, expected) else 1


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.npy is not None or args.csv is not None:
        return run_family(args)
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
