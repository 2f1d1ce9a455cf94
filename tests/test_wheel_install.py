"""The README's set-up from a built wheel (not an editable install), in fresh virtual
environments: the converter's main job on a small budget, and a clear line when the
``convert`` extra is missing. Nothing is downloaded: the wheel is built here and the
converter's dependencies come from this machine's site-packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (path,) = dist.glob("edge_gru-*.whl")
    return path


def _venv(folder: Path, system_site_packages: bool, wheel: Path) -> Path:
    venv.EnvBuilder(with_pip=True, system_site_packages=system_site_packages).create(folder)
    python = folder / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--force-reinstall",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return python


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(extra)
    return env


def test_wheel_ships_the_recipes(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in ("seed", "basic_motions", "japanese_vowels", "imdb_stars"):
        assert f"edge_gru/recipes/{recipe}.toml" in names


def test_without_the_convert_extra_one_line_says_what_to_install(
    wheel: Path, tmp_path: Path
) -> None:
    python = _venv(tmp_path / "venv", system_site_packages=False, wheel=wheel)
    proc = subprocess.run(
        [str(python), "-m", "edge_gru.convert", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "python -m edge_gru.convert: error: the converter needs numpy, tensorflow, keras, "
        "onnx, onnxruntime, tqdm, which is not installed: pip install 'edge_gru[convert]'"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_readme_main_job_from_a_wheel(wheel: Path, tmp_path: Path, data_dir: Path) -> None:
    python = _venv(tmp_path / "venv", system_site_packages=True, wheel=wheel)
    env = _clean_env(EDGE_GRU_DATA=str(data_dir), EDGE_GRU_FIRMWARE=str(REPO / "firmware"))
    where = subprocess.run(
        [str(python), "-c", "import edge_gru; print(edge_gru.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel, not this checkout
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "edge_gru.convert",
            "--epochs",
            "1",
            "--max-eval",
            "300",
            "--out",
            "build",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=1800,
    )
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1 epoch may breach a gate
    assert report["recipe"] == "seed" and report["n_test"] == 300
    assert not [s for s in report["stages"] if s.get("skipped")]
    assert proc.stderr.strip() == "" or proc.returncode == 1, proc.stderr[-2000:]
