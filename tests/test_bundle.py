"""The deploy bundle: contents, reproducibility, a TensorFlow-free wheel, offline wheels.

The offline install itself runs in the arm64 userland (tests/test_arm64.py); here the
aarch64 wheel set is checked by pip's own resolver for an aarch64 Python 3.11 target,
and the edge_gru wheel is installed on this host and predicts from the bundle folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edge_gru.deploy import WHEELS_DIR, install_commands, make_bundle
from edge_gru.errors import EdgeGruError

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runtime import make_bundle as make_text_bundle  # noqa: E402


@pytest.fixture(scope="module")
def convert_out(small_model, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A convert-style output folder (float + int8 ONNX, metadata, word index) of the small
    trained model, shared with test_runtime / test_predict."""
    return make_text_bundle(small_model, data_dir, tmp_path_factory).out


def _requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode()
    prefix = "Requires-Dist:"
    return [ln[len(prefix):].strip() for ln in text.splitlines() if ln.startswith(prefix)]


def test_bundle_is_complete_and_reproducible(convert_out: Path, tmp_path: Path) -> None:
    a = make_bundle(convert_out, tmp_path / "a", say=lambda _m: None)
    b = make_bundle(convert_out, tmp_path / "b", say=lambda _m: None)
    for name in ("model_float.onnx", "model_int8.onnx", "metadata.json", "word_index.txt.gz",
                 "INSTALL.txt", "SHA256SUMS", f"{WHEELS_DIR}/{a.wheel}"):
        assert name in a.files
    assert a.files == b.files
    assert (a.path / "SHA256SUMS").read_bytes() == (b.path / "SHA256SUMS").read_bytes()
    install = (a.path / "INSTALL.txt").read_text()
    assert all(cmd in install for cmd in install_commands("~/edge_gru-venv", False, a.wheel))
    assert not any(f.endswith("aarch64.whl") for f in a.files)


def test_wheel_pulls_no_tensorflow_on_the_pi(convert_out: Path, tmp_path: Path) -> None:
    """Core: numpy only; ``pi``: onnxruntime; ``litert``: ai-edge-litert. TF only in ``convert``."""
    bundle = make_bundle(convert_out, tmp_path / "b", say=lambda _m: None)
    reqs = _requires(bundle.path / WHEELS_DIR / bundle.wheel)
    core = [r for r in reqs if "extra ==" not in r]
    pi = [r for r in reqs if 'extra == "pi"' in r]
    assert [r.split(">")[0] for r in core] == ["numpy"]
    assert [r.split(">")[0] for r in pi] == ["onnxruntime"]
    assert not any("tensorflow" in r or "keras" in r for r in core + pi)


def test_bundle_wheel_predicts_from_the_bundle(convert_out: Path, tmp_path: Path) -> None:
    """Install the bundle's wheel alone (no deps, outside the checkout) and predict with it."""
    bundle = make_bundle(convert_out, tmp_path / "b", say=lambda _m: None)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(target), str(bundle.path / WHEELS_DIR / bundle.wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", "import edge_gru, sys; print(edge_gru.__file__); "
         "from edge_gru.predict import main; sys.exit(main(sys.argv[1:]))",
         "--model", str(bundle.path / "model_int8.onnx"), "--json", "a wonderful film"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    location, doc = done.stdout.split("\n", 1)
    assert location.startswith(str(target))
    assert '"probability"' in doc


def test_offline_wheels_resolve_for_aarch64(convert_out: Path, tmp_path: Path) -> None:
    """pip, told it installs for aarch64 CPython 3.11, resolves edge_gru[pi,litert] offline."""
    from edge_gru.arm64.wheels import PYTHON_VERSION, platform_tags

    bundle = make_bundle(convert_out, tmp_path / "b", offline_wheels=True, say=lambda _m: None)
    wheels = bundle.path / WHEELS_DIR
    names = {p.name.split("-")[0].lower() for p in wheels.glob("*.whl")}
    assert {"numpy", "onnxruntime", "ai_edge_litert", "edge_gru"} <= names
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
            "--no-index", "--find-links", str(wheels), "--only-binary=:all:",
            "--python-version", PYTHON_VERSION, "--implementation", "cp",
            "--target", str(tmp_path / "t"), "edge_gru[pi,litert]"]
    for tag in platform_tags():
        argv += ["--platform", tag]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    assert bundle.offline and bundle.size_bytes > 20_000_000


def test_bad_source_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EdgeGruError, match="not a folder"):
        make_bundle(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "half").mkdir()
    with pytest.raises(EdgeGruError, match="no metadata.json"):
        make_bundle(tmp_path / "half", tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "edge_gru.deploy", "--from", str(tmp_path / "x")],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "error" in done.stderr
    assert not (tmp_path / "out").exists()
