"""Score review texts on a board (or QEMU) running the fixed-point firmware, over its UART.

    python -m edge_gru.fixed_point.board --port /dev/ttyACM0 --bundle build/ "A moving film."
    python -m edge_gru.fixed_point.board --port socket://127.0.0.1:4321 --bundle build/ < texts
    python -m edge_gru.fixed_point.board --port ... --bundle build/ --npy seqs.npy   (family)
    python -m edge_gru.fixed_point.board --port ... --bundle build/ --csv one_sequence.csv

A family model's image (any model but the seed shape) takes sequences: ``--npy`` holds
``(N, T', F)`` float readings or ``(N, T')`` token ids (one ``(T', F)`` / ``(T',)`` too; a
rectangular array: pad variable-length sequences yourself, with the model's padding value),
``--csv`` one sequence, a row per step and a comma-separated column per feature (a first row
that is not numbers is taken as a header). Readings are raw, before the model's
``Normalization``. A sequence shorter than the model's T is padded by the device as training
padded, a longer one keeps its last T steps. The readings are quantized as the generated
header states, sent as frames, and each device output is printed next to the bit-exact
Python model's (``<bundle>/fixed_point/family_model.npz``) when the device runs the bundle's
weights (same CRC).

Texts are encoded on the host with the bundle's word index (``word_index.txt.gz``) and
sent as token ids; the device pads them as training did and answers with its Q0.15 score
and the time it took. When the bundle holds ``gru_weights.npz``, each score is also checked
against the bit-exact Python model of the same weights.
"""

from __future__ import annotations

import argparse
import json
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
    source = p.add_mutually_exclusive_group()
    source.add_argument("--npy", type=Path, help="family model: sequences (N, T, F) or (N, T)")
    source.add_argument("--csv", type=Path, help="family model: one sequence, a row per step")
    p.add_argument("texts", nargs="*", help="reviews (default: one per line on stdin)")
    return p


def _cost(kind: int, ticks: int, hz: int) -> str:
    if kind == COUNTER_QEMU_ICOUNT:
        return f"{int(ticks_to_instructions(np.array([ticks]))[0]):,} instructions"
    if kind == COUNTER_CYCLES:
        return f"{ticks:,} cycles = {1000.0 * ticks / hz:.2f} ms"
    return ""


def _csv_rows(path: Path) -> np.ndarray:
    """One sequence ``(1, steps, columns)`` from a CSV; a non-numeric first row is a header."""
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeGruError(f"cannot read {path}: {exc}") from exc
    rows = [[c.strip() for c in ln.split(",")] for ln in lines]
    if rows:
        try:
            [float(c) for c in rows[0]]
        except ValueError:
            rows = rows[1:]  # a header row
    if not rows:
        raise EdgeGruError(f"{path} holds no rows of readings")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise EdgeGruError(f"{path}: rows of {sorted(widths)} columns; every row needs the same")
    try:
        return np.array([[float(c) for c in r] for r in rows], np.float64)[None]
    except ValueError as exc:
        raise EdgeGruError(f"{path}: {exc} (numbers only, comma-separated)") from exc


def _sequences(args: argparse.Namespace) -> np.ndarray:
    if args.csv is not None:
        return _csv_rows(args.csv)
    try:
        return np.asarray(np.load(args.npy, allow_pickle=False))
    except (OSError, ValueError) as exc:
        hint = " (object arrays are refused: pad sequences into one array)" \
            if "allow_pickle" in str(exc) else ""
        raise EdgeGruError(f"cannot read {args.npy}: {exc}{hint}") from exc


def _check_shape(x: np.ndarray, tokens: bool, features: int | None, source: str) -> np.ndarray:
    """``(N, T', F)`` readings or ``(N, T')`` ids (one sequence without N accepted)."""
    rank = 2 if tokens else 3
    if x.ndim == rank - 1:  # one sequence
        x = x[None]
    if x.ndim != rank:
        want = "(N, T) token ids" if tokens else f"(N, T, {features}) readings"
        raise EdgeGruError(f"{source}: expected {want}, got an array of shape {x.shape}")
    if not tokens and x.shape[-1] != features:
        raise EdgeGruError(f"{source}: this model reads {features} features per step, "
                           f"got {x.shape[-1]}")
    if not np.issubdtype(x.dtype, np.number):
        raise EdgeGruError(f"{source}: numbers expected, got dtype {x.dtype}")
    bad = ~np.isfinite(x.astype(np.float64))
    if bad.any():
        n, t = (int(v) for v in np.argwhere(bad)[0][:2])
        raise EdgeGruError(f"{source}: NaN or inf at sequence {n}, step {t} (the firmware "
                           "takes numbers; drop or fill missing readings first)")
    if tokens and (x != np.rint(x)).any():
        raise EdgeGruError(f"{source}: token ids must be integers")
    return x


def _class_names(bundle: Path) -> list[str] | None:
    try:
        names = json.loads((bundle / "metadata.json").read_text())["task"]["class_names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return list(names) if isinstance(names, list) else None


def run_family(args: argparse.Namespace) -> int:
    """Send sequences to a family image; print its outputs next to the Python model's."""
    from ..codegen.fixed_point_family import model_crc32
    from . import family_model as fm
    from .family_device import FamilyDevice
    from .family_io import FILE, load_quant

    q = load_quant(args.bundle / "fixed_point" / FILE)
    tokens = q.input.kind == "tokens"
    x = _check_shape(_sequences(args), tokens, q.input.features, str(args.npy or args.csv))
    if not tokens:
        v = (x.astype(np.float64) - q.input.offset) / q.input.divisor * 2.0**q.input.k
        saturated = int((np.abs(np.rint(v)) > 32767).sum())
        if saturated:
            print(f"note: {saturated} readings lie outside the input format's range and "
                  "were saturated (as the device does)")
    xi = fm.to_integer_inputs(q, x)
    with FamilyDevice(args.port, baudrate=args.baud) as device:
        info = device.info()
        result = device.run_sequences(list(xi), tokens, q.outputs)
    expected: np.ndarray | None = fm.run_streams(q, list(xi))
    if model_crc32(q) != info.model_crc32:
        print(f"note: the device runs other weights (crc {info.model_crc32:08x}, the bundle's "
              f"{model_crc32(q):08x}): outputs are not compared with the Python model")
        expected = None
    scale = 2.0 ** fm.out_frac(q)
    names = _class_names(args.bundle)
    print(f"device: {'tokens' if info.tokens else 'features'} T {info.timesteps}, "
          f"{info.outputs} outputs (Q.{info.out_frac}), DSP path "
          f"{'on' if info.dsp else 'off'}, weights crc {info.model_crc32:08x}")
    for i in range(len(xi)):
        values = " ".join(f"{v / scale:.4f}" for v in result.outputs[i])
        best = int(result.argmax[i])
        label = f" {names[best]}" if names and best < len(names) else ""
        cost = _cost(info.counter_kind, int(result.ticks[i]), info.counter_hz)
        check = "" if expected is None else (
            "= Python; " if np.array_equal(result.outputs[i], expected[i]) else "!= Python!; ")
        print(f"{i}: [{values}] argmax {best}{label} ({check}{cost})")
    return 0 if expected is None or np.array_equal(result.outputs, expected) else 1


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.npy is not None or args.csv is not None:
        return run_family(args)
    texts = args.texts or [line.strip() for line in sys.stdin if line.strip()]
    index = args.bundle / "word_index.txt.gz"
    if not index.is_file():
        if (args.bundle / "fixed_point" / "family_model.npz").is_file():
            raise EdgeGruError(f"{args.bundle} holds a family model: send its sequences with "
                               "--npy FILE or --csv FILE (texts are for the seed model)")
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
