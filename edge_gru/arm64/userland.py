"""A Debian bookworm arm64 root file system, the same OS as 64-bit Raspberry Pi OS.

Built once with::

    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-pip,python3-numpy bookworm ROOT MIRROR

(about 2.5 minutes under qemu-user) and kept in ``$EDGE_GRU_CACHE`` (default
``~/.cache/edge_gru``) under a name derived from its inputs (suite, arch, variant,
packages), so changing any of them builds a fresh one and reruns cost nothing.
/proc and /sys are deliberately not mounted into it: qemu-user segfaults when they are.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import Arm64Unavailable

CACHE_ENV = "EDGE_GRU_CACHE"
MIRROR_ENV = "EDGE_GRU_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python3-numpy")
READY = "READY.json"
DEBOOTSTRAP_TIMEOUT_S = 20 * 60


@dataclass(frozen=True)
class UserlandSpec:
    """Everything the root file system is built from; its hash names the cache entry."""

    suite: str = "bookworm"
    arch: str = "arm64"
    variant: str = "minbase"
    packages: tuple[str, ...] = PACKAGES

    @property
    def key(self) -> str:
        text = json.dumps(
            [self.suite, self.arch, self.variant, sorted(self.packages)], separators=(",", ":")
        )
        return f"{self.suite}-{self.arch}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edge_gru")


def _sources_uris() -> list[str]:
    """Debian mirror URIs from /etc/apt/sources.list(.d), deb822 and one-line styles."""
    files = [Path("/etc/apt/sources.list")]
    folder = Path("/etc/apt/sources.list.d")
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in {".list", ".sources"})
    uris: list[str] = []
    for file in files:
        try:
            lines = file.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if file.suffix == ".sources" and words[:1] == ["URIs:"]:
                uris += words[1:]
            elif words[:1] == ["deb"]:
                uris += [w for w in words[1:] if "://" in w][:1]
    return uris


def debian_mirror() -> str:
    """``$EDGE_GRU_DEBIAN_MIRROR``, else the machine's own Debian mirror, else deb.debian.org."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV].rstrip("/")
    for uri in _sources_uris():
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def check_mirror(mirror: str, suite: str, timeout: float = 20.0) -> None:
    """Fail in one line, quickly, when the Debian packages cannot be reached."""
    url = f"{mirror}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            reply.read(64)
    except OSError as exc:
        raise Arm64Unavailable(f"cannot reach the Debian mirror {url}: {exc}") from exc


def _debootstrap(spec: UserlandSpec, root: Path, mirror: str) -> None:
    if shutil.which("debootstrap") is None:
        raise Arm64Unavailable("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise Arm64Unavailable("building the arm64 userland needs root (debootstrap, chroot)")
    check_mirror(mirror, spec.suite)
    argv = [
        "debootstrap", f"--arch={spec.arch}", f"--variant={spec.variant}",
        f"--include={','.join(spec.packages)}", spec.suite, str(root), mirror,
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise Arm64Unavailable(f"debootstrap took over {DEBOOTSTRAP_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        log = root / "debootstrap" / "debootstrap.log"
        tail = (log.read_text(errors="replace") if log.exists() else done.stderr + done.stdout)
        last = [line for line in tail.splitlines() if line.strip()][-1:] or ["no output"]
        raise Arm64Unavailable(f"debootstrap failed ({done.returncode}): {last[0]}")


def ensure_userland(
    spec: UserlandSpec = UserlandSpec(), say: Callable[[str], None] = print
) -> Path:
    """The cached root file system for ``spec``, building it first if needed.

    A lock file serialises concurrent builders; a READY marker written last means a
    half-built tree (killed run) is never used.
    """
    base = cache_dir() / "arm64"
    entry = base / spec.key
    root = entry / "root"
    if (entry / READY).is_file():
        return root
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f"{spec.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / READY).is_file():
            return root
        if entry.exists():
            shutil.rmtree(entry)
        mirror = debian_mirror()
        say(f"building the {spec.suite} {spec.arch} userland from {mirror} (cached afterwards)")
        started = time.monotonic()
        entry.mkdir(parents=True)
        try:
            _debootstrap(spec, root, mirror)
        except BaseException:
            shutil.rmtree(entry, ignore_errors=True)
            raise
        for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()  # debootstrap's downloads: not needed to run, half the size
        ready = {
            "spec": [spec.suite, spec.arch, spec.variant, list(spec.packages)],
            "mirror": mirror,
            "seconds": round(time.monotonic() - started, 1),
        }
        (entry / READY).write_text(json.dumps(ready, indent=2) + "\n")
    return root


def userland_info(root: Path) -> dict:
    """What the cache entry was built from and how long it took."""
    try:
        return json.loads((root.parent / READY).read_text())
    except (OSError, ValueError):
        return {}
