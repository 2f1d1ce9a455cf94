"""Run a command inside the arm64 root file system, with a clean environment and a timeout.

Equivalent to ``chroot ROOT /usr/bin/env -i PATH=... HOME=/root LANG=C.UTF-8 CMD``.
``QEMU_CPU`` (read by qemu-user, default ``cortex-a72``: the Raspberry Pi 4 core, plain
ARMv8-A) keeps the emulated CPU Pi-like; qemu's default ``max`` CPU advertises SVE and
similar extensions no Pi has, which also makes onnxruntime ~20x slower under emulation.
On a native arm64 host the variable is simply ignored.
Work files go to a private folder under ``ROOT/tmp`` that is removed afterwards, so the
cached root file system stays as debootstrap left it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import Arm64Unavailable

QEMU_CPU_ENV = "EDGE_GRU_QEMU_CPU"
DEFAULT_QEMU_CPU = "cortex-a72"
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_NO_COMPILE": "1",  # no .pyc compile pass: ~40% of an emulated install, same packages
}


def qemu_cpu() -> str:
    return os.environ.get(QEMU_CPU_ENV) or DEFAULT_QEMU_CPU


def run(
    root: Path, argv: Sequence[str], timeout: float, what: str, stdin: str | None = None
) -> str:
    """Run ``argv`` (paths as seen inside ``root``) and return its stdout.

    A failure raises :class:`Arm64Unavailable` naming ``what`` and the command's last
    error line, never a traceback from deep inside the emulator.
    """
    if shutil.which("chroot") is None:
        raise Arm64Unavailable("chroot is not installed (coreutils)")
    try:
        done = subprocess.run(
            ["chroot", str(root), *argv], input=stdin, capture_output=True, text=True,
            timeout=timeout, env={**CLEAN_ENV, "QEMU_CPU": qemu_cpu()}, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Arm64Unavailable(f"{what} took over {timeout:.0f} s under arm64 emulation") from exc
    except OSError as exc:
        raise Arm64Unavailable(f"{what}: cannot run chroot: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + "\n" + done.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        raise Arm64Unavailable(f"{what} failed in the arm64 chroot ({done.returncode}): {last}")
    return done.stdout


STALE_AFTER_S = 6 * 3600


class Workdir:
    """A private folder inside the root file system: ``host`` path and ``inside`` path.

    Folders left by killed runs (older than six hours) are swept when a new one is made.
    """

    def __init__(self, root: Path, prefix: str = "edge_gru-") -> None:
        self.root = root
        for old in (root / "tmp").glob(f"{prefix}*"):
            if time.time() - old.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
        self.host = Path(tempfile.mkdtemp(prefix=prefix, dir=root / "tmp"))
        self.inside = "/" + str(self.host.relative_to(root))

    def path(self, *parts: str) -> str:
        """A path as the arm64 programs see it."""
        return "/".join([self.inside, *parts])

    def remove(self) -> None:
        shutil.rmtree(self.host, ignore_errors=True)
