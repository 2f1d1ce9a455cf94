"""Let an x86 Linux kernel run arm64 programs: register qemu-user with binfmt_misc.

What this does is what you would type as root::

    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc   # if not mounted yet
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register

The ``F`` flag in Debian's ``qemu-user-static`` entry makes the kernel open the
emulator once at registration, so it also works inside a chroot that does not hold
the emulator. On a real Pi (or any aarch64 host) none of this is needed.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

from .errors import Arm64Unavailable

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
ENTRY = "qemu-aarch64"
CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"), Path("/usr/share/binfmts"))


def native_arm64() -> bool:
    """True on an aarch64 machine, where arm64 programs simply run."""
    return platform.machine().lower() in {"aarch64", "arm64"}


def find_conf() -> Path:
    """The qemu-user-static binfmt rule (``:name:type:offset:magic:mask:interp:flags``)."""
    for folder in CONF_DIRS:
        conf = folder / f"{ENTRY}.conf"
        if conf.is_file():
            return conf
    raise Arm64Unavailable(
        "no qemu-aarch64 binfmt rule in /usr/lib/binfmt.d (apt-get install qemu-user-static)"
    )


def _mount_binfmt_misc() -> None:
    if (BINFMT_DIR / "register").exists():
        return
    try:
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Arm64Unavailable(f"cannot mount binfmt_misc: {exc}") from exc
    if done.returncode != 0 or not (BINFMT_DIR / "register").exists():
        why = (done.stderr.strip().splitlines() or ["not permitted"])[-1]
        raise Arm64Unavailable(f"cannot mount binfmt_misc at {BINFMT_DIR} (need root): {why}")


def _enabled(entry: Path) -> bool:
    try:
        return entry.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        return False


def ensure_binfmt() -> str:
    """Make arm64 ELF binaries runnable here; returns how (``native`` or the interpreter)."""
    if native_arm64():
        return "native"
    _mount_binfmt_misc()
    entry = BINFMT_DIR / ENTRY
    if not entry.exists():
        rule = find_conf().read_text().strip()
        interpreter = Path(rule.split(":")[6]) if rule.count(":") >= 6 else None
        if interpreter is None or not interpreter.exists():
            raise Arm64Unavailable(f"binfmt rule names a missing emulator: {interpreter}")
        try:
            (BINFMT_DIR / "register").write_text(rule + "\n")
        except OSError as exc:
            raise Arm64Unavailable(f"cannot register {ENTRY} with binfmt_misc: {exc}") from exc
    if not _enabled(entry):
        raise Arm64Unavailable(f"binfmt entry {entry} exists but is disabled")
    return _interpreter(entry)


def _interpreter(entry: Path) -> str:
    fields = dict(
        line.split(" ", 1) for line in entry.read_text().splitlines() if " " in line
    )
    return fields.get("interpreter", ENTRY) + ("" if "F" in fields.get("flags:", "") else " (no F)")


def install_interpreter(root: Path, how: str) -> None:
    """An entry registered without the ``F`` flag needs the emulator inside the chroot too."""
    if not how.endswith(" (no F)"):
        return
    interpreter = Path(how.removesuffix(" (no F)"))
    target = root / interpreter.relative_to("/")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(interpreter.resolve(), target)
