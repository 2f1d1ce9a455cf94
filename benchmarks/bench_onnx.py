"""Per-review latency of every way to run the classifier on a CPU, one thread, in one run.

    python benchmarks/bench_onnx.py --bundle build/            # a convert output folder
    python benchmarks/bench_onnx.py --bundle build/ --methods  # + every ONNX int8 option
    python benchmarks/bench_onnx.py --bundle build/ --methods --reviews 5000  # a quicker one

Runtimes: Keras (the model called in a ``tf.function``), the naive tf2onnx graph
(``tf2onnx.convert.from_function`` on the Keras call: a generic ``Loop``), our float ONNX
(native ``GRU`` node), our ONNX int8, and LiteRT int8 (``model_int8.tflite`` from the
bundle or ``--tflite``; if absent or it fails a one-call probe, an unrolled int8 model is
converted here with TFLiteConverter, for this benchmark only). Batch 1 and batch 256;
each figure is the best of several interleaved rounds (the machine may be shared), in
microseconds per review, and the table gives each runtime's ratio to ONNX int8.

Reads the bundle, writes nothing into it: the LiteRT probe, the Loop graph, a baseline
or missing model all go to a temporary folder. Memory: about 1.1 GB resident
(TensorFlow and every runtime loaded at once), 1.2 GB with ``--methods``, whose scoring
runs 1,000 reviews per call so the peak does not grow with ``--reviews`` (1,193 MB at
1,000 reviews, 1,198 MB at 5,000 on a 2-core x86 machine); the run prints its own peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from _common import REPO, load_seed_model, parser, require_folder, run_benchmark  # noqa: E402

from edge_gru.data.imdb import load_imdb  # noqa: E402
from edge_gru.errors import EdgeGruError  # noqa: E402
from edge_gru.onnx.export import export_float, export_tf2onnx_loop  # noqa: E402
from edge_gru.onnx.quantize import DEFAULT_METHOD, METHODS, quantize_int8  # noqa: E402
from edge_gru.runtime.backends import open_backend  # noqa: E402
from edge_gru.weights import GruWeights  # noqa: E402

PROG = "benchmarks/bench_onnx.py"
Runner = Callable[[np.ndarray], Any]
BATCHES = (1, 256)
CHUNK = 1000  # reviews per call when scoring a whole test set: bounds the runtimes' buffers


def tf_single_thread() -> Any:
    """TensorFlow on one thread; once TF has run an op the setting is fixed (kept as is)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # "cannot be modified after initialization"
        pass
    return tf


def keras_runner(model: Any, maxlen: int) -> Runner:
    tf = tf_single_thread()
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda ids: call(tf.constant(ids)).numpy()


def unrolled_int8_tflite(w: GruWeights, calibration: np.ndarray, path: Path) -> Path:
    """A batch-1 explicit unroll converted to full-integer int8 (the baseline LiteRT model)."""
    tf = tf_single_thread()
    u = w.units
    c = {k: tf.constant(v) for k, v in {"E": w.embedding, "K": w.kernel, "U": w.recurrent_kernel,
                                        "bi": w.input_bias, "br": w.recurrent_bias,
                                        "d": w.dense_kernel.reshape(-1, 1)}.items()}

    @tf.function(input_signature=[tf.TensorSpec([1, w.maxlen], tf.int32, name="ids")])
    def classify(ids: Any) -> Any:
        xp = tf.matmul(tf.gather(c["E"], ids), c["K"]) + c["bi"]
        h = tf.zeros([1, u])
        for t in range(w.maxlen):
            x = xp[:, t]
            hp = tf.matmul(h, c["U"]) + c["br"]
            z = tf.sigmoid(x[:, :u] + hp[:, :u])
            r = tf.sigmoid(x[:, u : 2 * u] + hp[:, u : 2 * u])
            if w.reset_after:
                n = tf.tanh(x[:, 2 * u :] + r * hp[:, 2 * u :])
            else:
                n = tf.tanh(x[:, 2 * u :] + tf.matmul(r * h, c["U"][:, 2 * u :]))
            h = z * h + (1 - z) * n
        return tf.sigmoid(tf.matmul(h, c["d"]) + w.dense_bias)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([classify.get_concrete_function()],
                                                           classify)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([row[None]] for row in calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())
    return path


def probe_tflite(path: Path, ids: np.ndarray, scratch: Path) -> str | None:
    """Run one review through the model in a subprocess; a crash must not end the benchmark.

    The review goes through ``scratch`` (a temporary folder), never beside the model.
    """
    probe = scratch / "probe_ids.npy"
    np.save(probe, ids[:1])
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[3]);"
            "from edge_gru.runtime.backends import open_backend;"
            "print(open_backend(__import__('pathlib').Path(sys.argv[1])).run(np.load(sys.argv[2])))")
    argv = [sys.executable, "-c", code, str(path), str(probe), str(REPO)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return None if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()[-200:]}"


def best_latency(runners: dict[str, Runner], ids: np.ndarray, rounds: int, budget: float
                 ) -> dict[str, dict[int, float]]:
    """Best-of-``rounds`` mean microseconds per review, runtimes interleaved in every round."""
    results: dict[str, dict[int, float]] = {name: {} for name in runners}
    for batch in BATCHES:
        x = ids[:batch]
        for run in runners.values():
            run(x)  # warm-up: graph building, allocation
        for _ in range(rounds):
            for name, run in runners.items():
                calls, start = 0, time.perf_counter()
                while True:
                    run(x)
                    calls += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= budget:
                        break
                per_review = elapsed / calls / len(x) * 1e6
                results[name][batch] = min(results[name].get(batch, np.inf), per_review)
    return results


def print_table(lat: dict[str, dict[int, float]], sizes: dict[str, int | None], ref: str) -> None:
    print(f"\nper-review latency, 1 thread (ratio = runtime / {ref}; < 1 is faster)")
    print(f"| runtime | bytes | batch 1 (us) | ratio | batch {BATCHES[1]} (us) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in lat.items():
        size = f"{sizes[name]:,}" if sizes.get(name) else "-"
        cells = [f"{row[b]:.1f} | {row[b] / lat[ref][b]:.2f}" for b in BATCHES]
        print(f"| {name} | {size} | {' | '.join(cells)} |")


def score(predict: Runner, ids: np.ndarray) -> np.ndarray:
    """``(N,)`` float64 probabilities, :data:`CHUNK` reviews per call (bounded memory)."""
    out = [np.asarray(predict(ids[i : i + CHUNK]), np.float64).reshape(-1)
           for i in range(0, len(ids), CHUNK)]
    probs = np.concatenate(out) if out else np.empty(0)
    if probs.shape != (len(ids),):
        raise RuntimeError(f"expected {len(ids)} probabilities, got shape {probs.shape}")
    return probs


def compare_methods(w: GruWeights, float_path: Path, ids: np.ndarray, labels: np.ndarray,
                    keras_probs: np.ndarray, calibration: np.ndarray, tmp: Path, rounds: int,
                    budget: float) -> None:
    """Size, drift (``ids``: every test review by default) and latency of each ONNX option.

    Every array is ``(N,)``: comparing ``(N,)`` with ``(N, 1)`` would broadcast to
    ``(N, N)``, 5 GB of float64 for the 25,000 test reviews (the old 7.8 GB peak).
    """
    paths = {"float": float_path}
    for method in METHODS:
        paths[method] = quantize_int8(float_path, tmp / f"{method}.onnx", method, calibration)
    backends = {name: open_backend(p, threads=1) for name, p in paths.items()}
    lat = best_latency({k: b.run for k, b in backends.items()}, ids, rounds, budget)
    print(f"\nONNX quantization options, {len(ids):,} test reviews vs float Keras")
    print("| method | bytes | accuracy | agreement | MAE | max abs diff | batch 1 (us) | "
          f"batch {BATCHES[1]} (us) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, backend in backends.items():
        p = score(backend.run, ids)
        acc = np.mean((p > 0.5) == (labels > 0.5))
        agree = np.mean((p > 0.5) == (keras_probs > 0.5))
        diff = np.abs(p - keras_probs)
        print(f"| {name} | {paths[name].stat().st_size:,} | {acc:.4f} | {agree:.4f} | "
              f"{diff.mean():.2e} | {diff.max():.2e} | {lat[name][1]:.1f} | "
              f"{lat[name][BATCHES[1]]:.1f} |")


def build_parser() -> Any:
    ap = parser(PROG, __doc__)
    ap.add_argument("--bundle", type=Path, required=True, help="convert output (has model.keras)")
    ap.add_argument("--data", type=Path, default=None, help="IMDB data (default $EDGE_GRU_DATA)")
    ap.add_argument("--tflite", type=Path, default=None, help="LiteRT int8 model to time")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.25, help="seconds per measurement")
    ap.add_argument("--methods", action="store_true", help="also compare ONNX int8 options")
    ap.add_argument("--reviews", type=int, default=None,
                    help="--methods: score the first N test reviews (default: all 25,000)")
    ap.add_argument("--json-out", type=Path, default=None)
    return ap


def benchmark(args: Any) -> int:
    from edge_gru.model.training import keras_predict

    bundle = require_folder(args.bundle, "--bundle", ["model.keras"])
    if args.tflite is not None and not args.tflite.is_file():
        raise EdgeGruError(f"--tflite {args.tflite} is not a file")
    tf_single_thread()
    model, w = load_seed_model(bundle)
    data = load_imdb(args.data, w.vocab, w.maxlen)
    rng = np.random.default_rng(42)
    calibration = data.x_train[np.sort(rng.choice(len(data.x_train), 500, replace=False))]
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp_name:
        tmp = Path(tmp_name)
        float_path = bundle / "model_float.onnx"
        if not float_path.is_file():
            float_path = export_float(w, tmp / "model_float.onnx")
        int8_path = bundle / "model_int8.onnx"
        if not int8_path.is_file():
            int8_path = quantize_int8(float_path, tmp / "model_int8.onnx", DEFAULT_METHOD,
                                      calibration)
        tflite = args.tflite or bundle / "model_int8.tflite"
        problem = probe_tflite(tflite, data.x_test, tmp) if tflite.is_file() else "not found"
        if problem is not None:
            print(f"{tflite.name}: {problem}; converting an unrolled int8 baseline here instead")
            tflite = unrolled_int8_tflite(w, calibration[:200], tmp / "baseline_int8.tflite")
        loop = export_tf2onnx_loop(model, w.maxlen, tmp / "tf2onnx_loop.onnx")
        paths = {"keras": bundle / "model.keras", "tf2onnx Loop": loop,
                 "ONNX float (GRU node)": float_path, "ONNX int8": int8_path,
                 "LiteRT int8": tflite}
        runners: dict[str, Runner] = {"keras": keras_runner(model, w.maxlen)}
        for name in list(paths)[1:]:
            runners[name] = open_backend(paths[name], threads=1).run
        lat = best_latency(runners, data.x_test, args.rounds, args.budget)
        sizes = {name: p.stat().st_size for name, p in paths.items()}
        print_table(lat, sizes, "ONNX int8")
        b1 = {k: v[1] for k, v in lat.items()}
        print(f"\nbatch 1: ONNX int8 is {b1['tf2onnx Loop'] / b1['ONNX int8']:.1f}x faster than "
              f"the Loop graph and {b1['LiteRT int8'] / b1['ONNX int8']:.2f}x LiteRT int8's speed")
        if args.json_out:
            args.json_out.write_text(json.dumps({"latency_us": lat, "bytes": sizes}, indent=2))
        if args.methods:
            n = len(data.x_test) if args.reviews is None else min(args.reviews, len(data.x_test))
            ids, labels = data.x_test[:n], np.asarray(data.y_test[:n], np.float64).reshape(-1)
            keras_probs = score(lambda x: keras_predict(model, x), ids)
            compare_methods(w, float_path, ids, labels, keras_probs, calibration, tmp,
                            args.rounds, args.budget)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_benchmark(PROG, lambda: benchmark(args))


if __name__ == "__main__":
    sys.exit(main())
