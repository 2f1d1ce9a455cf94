"""Per-review latency (batch 1) of Keras, LiteRT int8 and TFLM int8 (unrolled and step), in one run.

    python -m edge_gru.convert --out build/           # writes model.keras and the .tflite models
    python benchmarks/bench_tflite.py --dir build/ [--reviews 300]

Every runtime classifies the same real test reviews one at a time (what a device does;
Keras through ``predict_on_batch``, its compiled graph, the fastest batch-1 call);
the table prints milliseconds per review and the ratio to Keras, then the model sizes
(vs the parameter count) and the TFLM arenas from the generated ``model_data.h`` files.
TFLM here is the ``tflite-micro`` host interpreter: the real kernels, on this CPU.

Reads ``--dir``, writes nothing. Memory: about 1.0 GB resident (TensorFlow + Keras + the
interpreters), whatever ``--reviews``; the run prints its own peak.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_seed_model, parser, require_folder, run_benchmark

from edge_gru.data.imdb import load_imdb, resolve_source
from edge_gru.runners.litert import MODES, LiteRTModel
from edge_gru.runners.tflm import TflmModel, TflmStepModel

PROG = "benchmarks/bench_tflite.py"
MODELS = ("model.keras", "model_float.tflite", "model_int8.tflite", "model_step_int8.tflite")


def _per_review(fn: Callable[[np.ndarray], object], ids: np.ndarray) -> float:
    fn(ids[:1])  # warm-up (graph tracing, delegate set-up)
    start = time.perf_counter()
    for row in ids:
        fn(row[None, :])
    return (time.perf_counter() - start) / len(ids)


def _arena(path: Path) -> str:
    match = re.search(r"k\w*TensorArenaSize = (\d+);", path.read_text()) if path.is_file() else None
    return f"{int(match.group(1)):,}" if match else "n/a"


def build_parser() -> Any:
    p = parser(PROG, __doc__)
    p.add_argument("--dir", type=Path, required=True, help="an edge_gru.convert --out")
    p.add_argument("--reviews", type=int, default=300)
    p.add_argument("--data", type=Path, default=None)
    return p


def benchmark(args: Any) -> int:
    d = require_folder(args.dir, "--dir", MODELS)
    keras, w = load_seed_model(d)
    ids = load_imdb(resolve_source(args.data), w.vocab, w.maxlen).x_test[: args.reviews]
    int8 = (d / "model_int8.tflite").read_bytes()
    step = (d / "model_step_int8.tflite").read_bytes()

    runs: list[tuple[str, Callable[[np.ndarray], object]]] = [
        ("keras float (predict_on_batch)", keras.predict_on_batch),
    ]
    for mode in MODES:
        runs.append((f"litert int8 unrolled ({mode})", LiteRTModel(int8, mode).predict))
    runs.append(("tflm int8 unrolled", TflmModel(int8, None).predict))
    runs.append((f"tflm int8 step x{w.maxlen}", TflmStepModel(step, None).predict))
    results = [(name, _per_review(fn, ids)) for name, fn in runs]
    base = results[0][1]
    print(f"{len(ids)} test reviews, batch 1, maxlen {w.maxlen}\n")
    print(f"{'runtime':40s} {'ms/review':>10s} {'speed-up vs keras':>18s}")
    for name, sec in results:
        print(f"{name:40s} {sec * 1e3:10.3f} {base / sec:17.2f}x")
    params = w.parameter_count
    print(f"\nparameters: {params:,}")
    for name in MODELS[1:]:
        size = (d / name).stat().st_size
        print(f"{name:26s} {size:>10,} bytes = {size / params:.3f} x parameters")
    for name in ("model_int8", "model_step_int8"):
        print(f"TFLM arena {name:16s} {_arena(d / 'tflm' / name / 'model_data.h'):>10s} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_benchmark(PROG, lambda: benchmark(args))


if __name__ == "__main__":
    raise SystemExit(main())
