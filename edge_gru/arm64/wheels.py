"""aarch64 wheels for an offline Pi install, fetched on any host with ``pip download``.

The command this runs (tags: every manylinux a bookworm glibc 2.36 accepts)::

    pip download --only-binary=:all: --implementation cp --python-version 3.11 \
        --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 ... \
        --platform manylinux_2_36_aarch64 -d WHEELS numpy==V onnxruntime==V ai-edge-litert==V

Versions are pinned to the ones installed on this host when it has them, so the arm64
check compares the same onnxruntime/LiteRT release on both architectures. Downloads are
cached in ``$EDGE_GRU_CACHE/wheels/<key>`` (key: requirements, Python, tags).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .errors import Arm64Unavailable
from .userland import cache_dir

PYTHON_VERSION = "3.11"  # Debian bookworm / Raspberry Pi OS bookworm
GLIBC_MINOR = 36  # bookworm's glibc 2.36
RUNTIME_PACKAGES = ("numpy", "onnxruntime", "ai-edge-litert")
DOWNLOAD_TIMEOUT_S = 15 * 60


def platform_tags(glibc_minor: int = GLIBC_MINOR) -> list[str]:
    """manylinux tags an aarch64 system with glibc 2.``glibc_minor`` can install."""
    return ["manylinux2014_aarch64"] + [
        f"manylinux_2_{minor}_aarch64" for minor in range(17, glibc_minor + 1)
    ]


def pinned_requirements(packages: tuple[str, ...] = RUNTIME_PACKAGES) -> list[str]:
    """``name==version`` of this host's install, or the bare name when it lacks the package."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def download_command(requirements: list[str], dest: Path) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for tag in platform_tags():
        argv += ["--platform", tag]
    return argv + ["-d", str(dest), *requirements]


def download_wheels(
    requirements: list[str] | None = None, say: Callable[[str], None] = print
) -> list[Path]:
    """The aarch64 wheels for ``requirements`` (default: pinned runtime packages), cached."""
    reqs = sorted(requirements if requirements is not None else pinned_requirements())
    key_text = json.dumps([reqs, PYTHON_VERSION, platform_tags()], separators=(",", ":"))
    key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    base = cache_dir() / "wheels"
    entry = base / key
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (entry / "READY.json").is_file():
            shutil.rmtree(entry, ignore_errors=True)
            tmp = base / f"{key}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            say(f"downloading aarch64 wheels: {' '.join(reqs)}")
            try:
                done = subprocess.run(
                    download_command(reqs, tmp), capture_output=True, text=True,
                    timeout=DOWNLOAD_TIMEOUT_S, check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise Arm64Unavailable(f"pip download took over {DOWNLOAD_TIMEOUT_S} s") from exc
            if done.returncode != 0:
                errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
                last = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
                raise Arm64Unavailable(f"pip download of aarch64 wheels failed: {last}")
            (tmp / "READY.json").write_text(json.dumps({"requirements": reqs}) + "\n")
            tmp.rename(entry)
    return sorted(entry.glob("*.whl"))
