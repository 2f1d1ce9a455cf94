"""arm64 stages: the deploy bundle installed offline in Debian bookworm arm64, predicting there.

Opt-in (``--stages onnx_float_arm64,onnx_int8_arm64,tflite_int8_arm64``). The three share
one bundle and one install per run. Each runs ``python -m edge_gru.predict`` in the chroot
on the first test reviews (encoded, like the x86 stages) and on raw Stanford test reviews,
and compares with the same model run by the same runtime on x86 (``*_vs_x86`` metrics,
gated in the recipe). Emulated run times say nothing about a Pi's speed: only the CI
set-up cost (``info.ci_setup_seconds``) is recorded, never a latency.
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
from .arm64_models import build_model_file
from .base import BuildContext, Stage, StageRunner, StageUnavailable

RAW_REVIEWS = 1000
DEFAULT_MAX_EVAL = 2000


def _say(ctx: BuildContext) -> Any:
    return (lambda _m: None) if ctx.quiet else (lambda m: print(f"  arm64: {m}", flush=True))


def _bundle_source(ctx: BuildContext) -> Path:
    """A convert-style folder with every model the arm64 stages test, plus metadata."""
    folder = Path(tempfile.mkdtemp(prefix="edge_gru-arm64-src-"))
    atexit.register(shutil.rmtree, folder, True)
    for name in MODEL_FILES:
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


def _stanford_source(ctx: BuildContext) -> DataSource:
    source = ctx.data.source
    if source.kind != "npz":
        return source
    tarball = source.path.parent / TARBALL_NAME
    if not tarball.is_file():
        raise StageUnavailable(f"no raw Stanford reviews ({TARBALL_NAME}) beside {source.path}")
    return DataSource("aclimdb_tar", tarball, source.word_index)


def _raw_reviews(ctx: BuildContext, count: int) -> tuple[list[str], np.ndarray]:
    """``count`` test reviews spread evenly over the split (half negative, half positive)."""
    reviews = list(iter_stanford_reviews(_stanford_source(ctx), "test"))
    if not reviews:
        raise StageUnavailable("the Stanford data holds no test reviews")
    picks = np.linspace(0, len(reviews) - 1, min(count, len(reviews))).round().astype(int)
    texts = [" ".join(reviews[i].text.splitlines()) for i in picks]  # one review per line
    return texts, np.asarray([reviews[i].label for i in picks])


def _build(ctx: BuildContext, stage: str, model: str, quantized_output: bool) -> StageRunner:
    from ..runtime import Predictor

    source, env = _shared_environment(ctx)
    count = int(ctx.options(stage).get("raw_reviews", RAW_REVIEWS))
    texts, labels = ctx.artifact(f"arm64_raw_{count}", lambda: _raw_reviews(ctx, count))
    host = Predictor.from_bundle(source / model)

    def predict(ids: np.ndarray) -> np.ndarray:
        try:
            return env.predict_ids(model, ids)
        except Arm64Unavailable as exc:
            raise RuntimeError(f"{stage}: {exc}") from exc

    def extra(ids: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
        try:
            arm_raw = env.predict_texts(model, texts)
        except Arm64Unavailable as exc:
            raise RuntimeError(f"{stage}: {exc}") from exc
        lsb = _output_scale(host) if quantized_output else None
        x86_ids, x86_raw = host.predict_ids(ids), host.predict_texts(texts)
        report = vs_x86(probs, x86_ids, arm_raw, x86_raw, labels, lsb)
        if lsb is not None:
            report.update(_reference_kernels_vs_x86(env, source / model, ids, lsb))
        return report

    info = {
        "arm64_packages": dict(env.versions),
        "userland": env.userland,
        "ci_setup_seconds": dict(env.timings_s),  # userland (cache) + emulated pip; not Pi speed
        "x86_runtime": host.runtime,
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
    lsbs = np.rint(np.abs(arm - x86) / lsb).astype(np.int64)
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
        description=f"{model} in Debian bookworm arm64 (qemu-user), offline bundle install, vs x86",
        default_max_eval=DEFAULT_MAX_EVAL,
        opt_in=True,
    )


STAGES = [
    _stage("onnx_float_arm64", "float", "onnxruntime-arm64", "model_float.onnx", False),
    _stage("onnx_int8_arm64", "quantized", "onnxruntime-arm64", "model_int8.onnx", False),
    _stage("tflite_int8_arm64", "quantized", "litert-arm64", "model_int8.tflite", True),
]
