"""arm64 stages: the deploy bundle installed offline in Debian bookworm arm64, predicting there.

Opt-in (``--stages onnx_float_arm64,onnx_int8_arm64,tflite_int8_arm64``). The three share
one bundle and one install per run. Each runs ``python -m edge_gru.predict`` in the chroot
on the first test inputs (encoded ids via ``--ids``, or padded features via ``--npy``, like
the x86 stages) and on inputs given the way a user gives them ("raw": Stanford test review
texts for an IMDB text model, one CSV file per test sequence for a feature model), and
compares with the same model run by the same runtime on x86 (``*_vs_x86`` metrics, gated
in the recipe). A model file the x86 stage cannot build (e.g. int8 for a non-seed shape)
is skipped with that stage's reason. Emulated run times say nothing about a Pi's speed:
only the CI set-up cost (``info.ci_setup_seconds``) is recorded, never a latency.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..arm64.binfmt import ensure_binfmt
from ..arm64.check import Arm64Env, prepare
from ..arm64.compare import INT8_LOGISTIC_SCALE, vs_x86
from ..arm64.errors import Arm64Unavailable
from ..arm64.userland import ensure_userland
from ..bundle import write_bundle
from ..data.imdb import TARBALL_NAME, DataSource, iter_stanford_reviews
from ..deploy import MODEL_FILES, make_bundle
from ..errors import EdgeGruError
from ..ir import ModelIR
from .arm64_models import build_model_file, file_supports
from .base import BuildContext, Stage, StageRunner, StageUnavailable

RAW_REVIEWS = 1000
RAW_SEQUENCES = 200
DEFAULT_MAX_EVAL = 2000


def _say(ctx: BuildContext) -> Any:
    return (lambda _m: None) if ctx.quiet else (lambda m: print(f"  arm64: {m}", flush=True))


def _bundle_source(ctx: BuildContext) -> Path:
    """A convert-style folder with every model the arm64 stages test, plus metadata."""
    folder = Path(tempfile.mkdtemp(prefix="edge_gru-arm64-src-"))
    atexit.register(shutil.rmtree, folder, True)
    for name in MODEL_FILES:
        if file_supports(name, ctx.ir) is None:
            shutil.copyfile(build_model_file(ctx, name), folder / name)
    write_bundle(replace(ctx, out_dir=folder), {"float_accuracy": None, "stages": []})
    return folder


def _environment(ctx: BuildContext) -> tuple[Path, Arm64Env]:
    """Userland first (fail fast), then bundle with offline wheels -> installed there."""
    try:
        ensure_binfmt()
        ensure_userland(say=_say(ctx))
    except Arm64Unavailable as exc:
        raise StageUnavailable(str(exc)) from exc
    source = ctx.artifact("arm64_bundle_source", lambda: _bundle_source(ctx))
    bundle = source.parent / f"{source.name}-bundle"
    atexit.register(shutil.rmtree, bundle, True)
    try:
        make_bundle(source, bundle, offline_wheels=True, say=_say(ctx))
        env = prepare(bundle, say=_say(ctx))
    except (Arm64Unavailable, EdgeGruError) as exc:
        raise StageUnavailable(str(exc)) from exc
    atexit.register(env.close)
    return source, env


def _shared_environment(ctx: BuildContext) -> tuple[Path, Arm64Env]:
    """One set-up per run; a failure is remembered too, so three stages do not retry it."""

    def attempt() -> tuple[Path, Arm64Env] | StageUnavailable:
        try:
            return _environment(ctx)
        except StageUnavailable as exc:
            return exc

    got = ctx.artifact("arm64_env", attempt)
    if isinstance(got, StageUnavailable):
        raise StageUnavailable(str(got))
    return got


def _stanford_source(ctx: BuildContext) -> DataSource | None:
    """The raw Stanford reviews beside the IMDB word index, or None for other text data."""
    word_index = getattr(ctx.data, "word_index", None)
    if word_index is None:
        return None
    tarball = Path(word_index).parent / TARBALL_NAME
    if not tarball.is_file():
        raise StageUnavailable(f"no raw Stanford reviews ({TARBALL_NAME}) beside {word_index}")
    return DataSource("aclimdb_tar", tarball, Path(word_index))


def _raw_reviews(ctx: BuildContext, count: int) -> tuple[list[str], np.ndarray]:
    """``count`` test reviews spread evenly over the split (half negative, half positive)."""
    source = _stanford_source(ctx)
    if source is None:
        return [], np.zeros(0)
    reviews = list(iter_stanford_reviews(source, "test"))
    if not reviews:
        raise StageUnavailable("the Stanford data holds no test reviews")
    picks = np.linspace(0, len(reviews) - 1, min(count, len(reviews))).round().astype(int)
    texts = [" ".join(reviews[i].text.splitlines()) for i in picks]  # one review per line
    return texts, np.asarray([reviews[i].label for i in picks])


def _raw_sequences(ctx: BuildContext, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``count`` test sequences as a user would give them: the front padding
    (rows all equal to the pad value) removed, so the runtime pads them again."""
    pad = np.float32(ctx.ir.input.pad_value)
    x, y = ctx.data.x_test[:count], ctx.data.y_test[:count]
    seqs = []
    for row in np.asarray(x, np.float32):
        real = np.flatnonzero(np.any(row != pad, axis=-1))
        seqs.append(row[real[0]:] if len(real) else row[:0])
    return seqs, np.asarray(y)


class _Inputs:
    """Runs the main and raw inputs on arm64 (in the chroot) and on x86 (this host)."""

    def __init__(self, ctx: BuildContext, env: Arm64Env, stage: str, model: str,
                 host: Any) -> None:
        self.env, self.model, self.host = env, model, host
        self.features = ctx.ir.input.kind == "features"
        opts = ctx.options(stage)
        if self.features:
            count = int(opts.get("raw_sequences", RAW_SEQUENCES))
            self.raw, self.labels = ctx.artifact(f"arm64_seqs_{count}",
                                                 lambda: _raw_sequences(ctx, count))
        else:
            count = int(opts.get("raw_reviews", RAW_REVIEWS))
            self.raw, self.labels = ctx.artifact(f"arm64_raw_{count}",
                                                 lambda: _raw_reviews(ctx, count))

    def arm_main(self, x: np.ndarray) -> np.ndarray:
        if self.features:
            return self.env.predict_features(self.model, x)
        return self.env.predict_ids(self.model, x)

    def x86_main(self, x: np.ndarray) -> np.ndarray:
        return self.host.predict_padded(x) if self.features else self.host.predict_ids(x)

    def arm_raw(self) -> np.ndarray:
        if not len(self.raw):
            return np.zeros((0, 1))
        if self.features:
            return self.env.predict_csv(self.model, self.raw)
        return self.env.predict_texts(self.model, self.raw)

    def x86_raw(self) -> np.ndarray:
        if not len(self.raw):
            return np.zeros((0, 1))
        if self.features:
            return self.host.predict_sequences(self.raw)
        return self.host.predict_texts(self.raw)


def _build(ctx: BuildContext, stage: str, model: str, quantized_output: bool) -> StageRunner:
    from ..runtime import Predictor

    source, env = _shared_environment(ctx)
    host = Predictor.from_bundle(source / model)
    inputs = _Inputs(ctx, env, stage, model, host)
    task = ctx.ir.task

    def predict(x: np.ndarray) -> np.ndarray:
        try:
            return inputs.arm_main(x)
        except Arm64Unavailable as exc:
            raise RuntimeError(f"{stage}: {exc}") from exc

    def extra(x: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        try:
            arm_raw = inputs.arm_raw()
        except Arm64Unavailable as exc:
            raise RuntimeError(f"{stage}: {exc}") from exc
        lsb = _output_scale(host) if quantized_output else None
        labels = inputs.labels if task.is_classification else None
        if not inputs.features and task.kind not in ("binary", "binary_logits"):
            labels = None  # Stanford texts are labelled positive/negative only
        report = vs_x86(outputs, inputs.x86_main(x), arm_raw, inputs.x86_raw(), labels, lsb,
                        task)
        if lsb is not None and not inputs.features:
            report.update(_reference_kernels_vs_x86(env, source / model, x, lsb))
        return report

    info = {
        "arm64_packages": dict(env.versions),
        "userland": env.userland,
        "ci_setup_seconds": dict(env.timings_s),  # userland (cache) + emulated pip; not Pi speed
        "x86_runtime": host.runtime,
        "raw_inputs": "csv files" if inputs.features else "Stanford review texts",
    }
    path = source / model
    return StageRunner(predict=predict, artifact=path, size_bytes=path.stat().st_size,
                       batch_size=1 << 30, extra_metrics=extra, info=info)


def _reference_kernels_vs_x86(env: Arm64Env, path: Path, ids: np.ndarray, lsb: float) -> dict:
    """LiteRT's optimised int8 kernels differ by CPU; its reference kernels must not.

    Runs the encoded reviews again with ``--kernels reference`` on both CPUs: any
    difference here would be a real portability bug, not a kernel choice.
    """
    from ..runtime import Predictor

    try:
        arm = env.predict_ids(path.name, ids, "--kernels", "reference")
    except Arm64Unavailable as exc:
        raise RuntimeError(f"{path.name} with reference kernels: {exc}") from exc
    x86 = Predictor.from_bundle(path, kernels="reference").predict_ids(ids)
    lsbs = np.rint(np.abs(arm - x86) / lsb).astype(np.int64).reshape(-1)
    return {"reference_kernels_n": int(len(ids)),
            "max_lsb_diff_vs_x86_reference_kernels": int(lsbs.max()) if len(lsbs) else 0}


def _output_scale(host: Any) -> float:
    """The LiteRT output tensor's scale (one LSB of probability); 1/256 when it is float."""
    output = getattr(host.backend, "output", None) or getattr(host.backend, "prob", None)
    scale = float((output or {}).get("quantization", (0.0, 0))[0])
    return scale if scale > 0 else INT8_LOGISTIC_SCALE


def _stage(name: str, kind: str, runtime: str, model: str, quantized_output: bool) -> Stage:
    return Stage(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        runtime=runtime,
        build=lambda ctx: _build(ctx, name, model, quantized_output),
        description=f"{model} in Debian bookworm arm64 (qemu-user), offline bundle install, "
                    "vs x86",
        default_max_eval=DEFAULT_MAX_EVAL,
        opt_in=True,
        supports=lambda ir: _supports(model, ir),
    )


def _supports(model: str, ir: ModelIR) -> str | None:
    reason = file_supports(model, ir)
    return None if reason is None else f"{model}: {reason}"


STAGES = [
    _stage("onnx_float_arm64", "float", "onnxruntime-arm64", "model_float.onnx", False),
    _stage("onnx_int8_arm64", "quantized", "onnxruntime-arm64", "model_int8.onnx", False),
    _stage("tflite_int8_arm64", "quantized", "litert-arm64", "model_int8.tflite", True),
]
