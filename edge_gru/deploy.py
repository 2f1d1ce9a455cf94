"""``python -m edge_gru.deploy``: the folder you copy to a Raspberry Pi.

It holds the models (every ``.onnx`` / ``.tflite`` of the convert output),
``metadata.json`` (what an input is, how to pad it, what the outputs mean) and, for text
models, ``word_index.txt.gz`` (how to encode text), a wheel of ``edge_gru``
itself (its ``pi`` extra pulls only numpy + onnxruntime, the ``litert`` extra the LiteRT
interpreter for ``.tflite`` models) and, with
``--offline-wheels``, every aarch64 wheel those need, so a Pi without internet installs
with ``pip install --no-index --find-links wheels``. ``INSTALL.txt`` in the bundle gives
the exact commands; the arm64 CI check runs the same ones (:func:`install_commands`).

Same inputs -> byte-identical bundle (wheel timestamps come from ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .bundle import METADATA_FILE, WORD_INDEX_FILE
from .cli_common import EXIT_BAD_INPUT, EXIT_OK, OneLineParser, fail
from .errors import EdgeGruError

PROG = "edge_gru.deploy"
MODEL_SUFFIXES = (".onnx", ".tflite")
MODEL_FILES = ("model_float.onnx", "model_int8.onnx", "model_int8.tflite")  # the arm64 check's
WHEELS_DIR = "wheels"
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip (wheel) can hold
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bundle:
    path: Path
    files: list[str]
    size_bytes: int
    wheel: str
    offline: bool


def install_commands(venv: str, offline: bool, wheel: str) -> list[str]:
    """The shell commands a Pi user runs inside the bundle folder (also run by the CI check)."""
    pip = f"{venv}/bin/pip"
    install = (
        f'{pip} install --no-index --find-links {WHEELS_DIR} "edge_gru[pi,litert]"'
        if offline
        else f'{pip} install "{WHEELS_DIR}/{wheel}[pi,litert]"'
    )
    return [f"python3 -m venv {venv}", install]


def _predict_example(venv: str, meta: dict) -> list[str]:
    """How to call predict on this bundle's kind of input."""
    model = meta.get("default_model") or "model_float.onnx"
    call = f"{venv}/bin/python -m edge_gru.predict --model {model}"
    if (meta.get("input") or {}).get("kind") == "features":
        f = meta["input"].get("features")
        return [f"Predict (a CSV file per sequence, one time step per row, {f} columns; or an",
                "(N, T, F) .npy; the runtime reads metadata.json next to the model):", "",
                f"  {call} --csv sequence.csv", f"  {call} --npy sequences.npy --json", ""]
    return ["Predict (the runtime reads metadata.json and word_index.txt.gz next to the model):",
            "", f'  {call} "a wonderful film"', ""]


def _install_text(offline: bool, wheel: str, meta: dict) -> str:
    venv = "~/edge_gru-venv"
    online = install_commands(venv, False, wheel)[1]
    lines = [
        "edge_gru deploy bundle for a Raspberry Pi (64-bit Raspberry Pi OS, Python 3.11).",
        "Copy this folder to the Pi, then inside it:",
        "",
        f"  {install_commands(venv, offline, wheel)[0]}",
        f"  {install_commands(venv, True, wheel)[1]}" if offline else f"  {online}",
        "",
    ]
    if offline:
        lines += ["(this bundle holds the aarch64 wheels: no internet needed;",
                  f" with internet you may also run: {online})", ""]
    lines += [
        *_predict_example(venv, meta),
        "Drop ',litert' from the install line if you only run the .onnx models.",
        "",
    ]
    return "\n".join(lines)


def _source_tree(dest: Path) -> Path:
    """Copy just what the wheel needs, so building never writes into the checkout."""
    if not (REPO / "pyproject.toml").is_file():
        raise EdgeGruError(f"cannot build the edge_gru wheel: no pyproject.toml in {REPO}")
    src = dest / "src"
    shutil.copytree(REPO / "edge_gru", src / "edge_gru",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    return src


def build_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps .`` of this checkout, reproducibly, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge_gru-wheel-") as tmp:
        src = _source_tree(Path(tmp))
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PYTHONHASHSEED": "0"}
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--disable-pip-version-check", "-q", "-w", str(Path(tmp) / "out"), str(src)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise EdgeGruError("pip wheel took over 600 s") from exc
        wheels = sorted((Path(tmp) / "out").glob("edge_gru-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel produced"])[-1]
            raise EdgeGruError(f"building the edge_gru wheel failed: {last}")
        target = dest / wheels[0].name
        shutil.copyfile(wheels[0], target)
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_source(src: Path) -> tuple[list[Path], dict]:
    """The models and support files to copy, and the metadata; one-line error if incomplete.

    A text bundle whose metadata names a tokenizer needs its word index; a feature bundle
    has none.
    """
    from .runtime.predictor import read_metadata

    if not src.is_dir():
        raise EdgeGruError(f"--from {src} is not a folder (run python -m edge_gru.convert first)")
    if not (src / METADATA_FILE).is_file():
        raise EdgeGruError(f"{src} has no {METADATA_FILE}: not a convert output folder")
    meta = read_metadata(src) or {}
    files = [src / METADATA_FILE]
    if meta.get("tokenizer"):
        index = src / meta["tokenizer"].get("word_index", WORD_INDEX_FILE)
        if not index.is_file():
            raise EdgeGruError(f"{src} has no {index.name}: not a convert output folder")
        files.append(index)
    models = sorted(p for p in src.iterdir() if p.suffix in MODEL_SUFFIXES and p.is_file())
    if not models:
        raise EdgeGruError(f"{src} holds no .onnx or .tflite model")
    return [*models, *files], meta


def make_bundle(
    src: Path, out: Path, offline_wheels: bool = False, say: Callable[[str], None] = print
) -> Bundle:
    """Write the deploy bundle for the convert output ``src`` into ``out`` (replaced whole)."""
    from .outdir import check_output, staged_output

    files, meta = _check_source(Path(src))
    check_output(Path(out), (Path(src),))
    with staged_output(Path(out)) as tmp:
        for file in files:
            shutil.copyfile(file, tmp / file.name)
        wheel = build_wheel(tmp / WHEELS_DIR)
        if offline_wheels:
            from .arm64.errors import Arm64Unavailable
            from .arm64.wheels import download_wheels

            try:
                for whl in download_wheels(say=say):
                    shutil.copyfile(whl, tmp / WHEELS_DIR / whl.name)
            except Arm64Unavailable as exc:
                raise EdgeGruError(str(exc)) from exc
        (tmp / "INSTALL.txt").write_text(_install_text(offline_wheels, wheel.name, meta))
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        sums = "".join(f"{_sha256(tmp / f)}  {f}\n" for f in files)
        (tmp / "SHA256SUMS").write_text(sums)
        files.append("SHA256SUMS")
        size = sum((tmp / f).stat().st_size for f in files)
    return Bundle(Path(out), files, size, wheel.name, offline_wheels)


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="src", type=Path, default=Path("build"),
                   help="convert output folder (default build/)")
    p.add_argument("--out", type=Path, default=Path("pi_bundle"),
                   help="bundle folder to write (default pi_bundle/)")
    p.add_argument("--offline-wheels", action="store_true",
                   help="add the aarch64 wheels (numpy, onnxruntime, ai-edge-litert) for an "
                        "offline Pi install")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        bundle = make_bundle(args.src, args.out, args.offline_wheels)
    except EdgeGruError as exc:
        return fail(PROG, str(exc), EXIT_BAD_INPUT)
    print(f"wrote {bundle.path}/ ({len(bundle.files)} files, {bundle.size_bytes / 1e6:.1f} MB); "
          f"see {bundle.path}/INSTALL.txt")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
