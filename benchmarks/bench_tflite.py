"""Batch-1 latency of Keras, LiteRT and TFLM (int8/16x8 unrolled, int8 step), in one run.

    python -m edge_gru.convert --out build/           # writes model.keras and the .tflite models
    python benchmarks/bench_tflite.py --dir build/ [--reviews 300]
    python -m edge_gru.convert --recipe basic_motions --out build/bm \
        --stages reference,tflite_int8_tflm,tflite_step_int8_tflm,tflite_int16x8_tflm
    python benchmarks/bench_tflite.py --dir build/bm \
        --data $EDGE_GRU_DATA/timeseries/BasicMotions.npz

Any model of the GRU family (the IMDB seed reads its reviews from the data folder; other
models their test inputs from ``--data FILE.npz``). Every runtime classifies the same real
test inputs one at a time (what a device does;
Keras through ``predict_on_batch``, its compiled graph, the fastest batch-1 call);
the table prints milliseconds per review and the ratio to Keras, then the model sizes
(vs the parameter count) and the TFLM arenas from the generated ``model_data.h`` files.
TFLM here is the ``tflite-micro`` host interpreter: the real kernels, on this CPU.

Reads ``--dir``, writes nothing. Memory: about 1.0 GB resident (TensorFlow + Keras + the
interpreters), whatever ``--reviews``; the run prints its own peak.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import bundle_maxlen, load_seed_model, parser, require_folder, run_benchmark

from edge_gru.data.imdb import load_imdb, resolve_source
from edge_gru.errors import EdgeGruError
from edge_gru.runners.litert import MODES, LiteRTModel
from edge_gru.runners.tflm import TflmFamilyStepModel, TflmModel, TflmStepModel
from edge_gru.weights import seed_shape_problem

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
    p.add_argument("--reviews", type=int, default=300, help="test inputs to time")
    p.add_argument("--data", type=Path, default=None)
    return p


def _family_inputs(d: Path, args: Any) -> tuple[Any, Any, np.ndarray]:
    """``(keras model, ModelIR, test inputs)`` of a convert folder, any model of the family."""
    from edge_gru.data.npz import load_dataset
    from edge_gru.frontend.keras import from_keras
    from edge_gru.model.training import load_model

    keras = load_model(d / "model.keras")
    meta = json.loads((d / "metadata.json").read_text()) if (d / "metadata.json").is_file() else {}
    timesteps = (meta.get("input") or {}).get("timesteps") or bundle_maxlen(d)
    model = from_keras(keras, timesteps=timesteps)
    if seed_shape_problem(model) is None and args.data is None:
        _, w = load_seed_model(d)
        return keras, model, load_imdb(resolve_source(None), w.vocab, w.maxlen).x_test
    if args.data is None:
        raise EdgeGruError("--data FILE.npz is needed: the test inputs of this model "
                           "(the file the convert run read)")
    if seed_shape_problem(model) is None and Path(args.data).is_dir():
        _, w = load_seed_model(d)
        return keras, model, load_imdb(resolve_source(args.data), w.vocab, w.maxlen).x_test
    return keras, model, load_dataset(args.data, model.input, model.task).x_test


def benchmark(args: Any) -> int:
    from edge_gru.tflite.family_step import output_names

    d = require_folder(args.dir, "--dir", ("model.keras", "model_int8.tflite"))
    keras, model, x = _family_inputs(d, args)
    x = x[: args.reviews]
    x = np.asarray(x, np.int32 if model.input.kind == "tokens" else np.float32)
    seed = seed_shape_problem(model) is None
    runs: list[tuple[str, Callable[[np.ndarray], object]]] = [
        ("keras float (predict_on_batch)", keras.predict_on_batch),
    ]
    int8 = (d / "model_int8.tflite").read_bytes()
    for mode in MODES:
        runs.append((f"litert int8 unrolled ({mode})", LiteRTModel(int8, mode).predict_outputs))
    runs.append(("tflm int8 unrolled", TflmModel(int8, None).predict_outputs))
    wide = d / "model_int16x8.tflite"
    if wide.is_file():
        data = wide.read_bytes()
        runs.append(("litert 16x8 unrolled (no_delegates)",
                     LiteRTModel(data, "no_delegates").predict_outputs))
        runs.append(("tflm 16x8 unrolled", TflmModel(data, None).predict_outputs))
    step_path = d / "model_step_int8.tflite"
    if step_path.is_file():
        step = step_path.read_bytes()
        runner = (TflmStepModel(step, None) if seed
                  else TflmFamilyStepModel(step, output_names(model), None))
        runs.append((f"tflm int8 step x{model.input.timesteps}", runner.predict_outputs))
    results = [(name, _per_review(fn, x)) for name, fn in runs]
    base = results[0][1]
    print(f"{len(x)} test inputs, batch 1, T = {model.input.timesteps}: {model.describe()}\n")
    print(f"{'runtime':40s} {'ms/input':>10s} {'speed-up vs keras':>18s}")
    for name, sec in results:
        print(f"{name:40s} {sec * 1e3:10.3f} {base / sec:17.2f}x")
    params = model.parameter_count
    print(f"\nparameters: {params:,}")
    for name in (*MODELS[1:], "model_int16x8.tflite"):
        if (d / name).is_file():
            size = (d / name).stat().st_size
            print(f"{name:26s} {size:>10,} bytes = {size / params:.3f} x parameters")
    for name in ("model_int8", "model_int16x8", "model_step_int8"):
        header = d / "tflm" / name / "model_data.h"
        if header.is_file():
            print(f"TFLM arena {name:16s} {_arena(header):>10s} bytes")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_benchmark(PROG, lambda: benchmark(args))


if __name__ == "__main__":
    raise SystemExit(main())
