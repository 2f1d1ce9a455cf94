"""Build the C library and its images with the firmware Makefile, and read their budgets.

Builds go to a caller-chosen folder (``BUILD=``) and take the generated weights from
``WEIGHTS_DIR=``, so nothing generated lands in the source tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..stages.base import StageUnavailable

FIRMWARE_ENV = "EDGE_GRU_FIRMWARE"


def firmware_dir() -> Path:
    """The ``firmware/`` folder of this checkout (or ``$EDGE_GRU_FIRMWARE``)."""
    env = os.environ.get(FIRMWARE_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "firmware"
    if not (path / "Makefile").is_file():
        raise StageUnavailable(f"firmware sources not found at {path} (set ${FIRMWARE_ENV})")
    return path


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise StageUnavailable(
            f"{', '.join(missing)} not installed (apt-get install gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi qemu-system-arm)"
        )


def make(targets: list[str], weights_dir: Path, build_dir: Path, **variables: str) -> str:
    """Run ``make -C firmware`` with absolute WEIGHTS_DIR/BUILD; a failure raises with its log."""
    cmd = ["make", "-s", "-C", str(firmware_dir()), f"WEIGHTS_DIR={weights_dir.resolve()}",
           f"BUILD={build_dir.resolve()}"]
    cmd += [f"{k}={v}" for k, v in variables.items()] + targets
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@dataclass(frozen=True)
class Budgets:
    """Bytes of one Cortex-M4 build, from arm-none-eabi-size and -fstack-usage."""

    code_bytes: int  # library: text + rodata of edge_gru.o (no weights)
    weights_bytes: int  # edge_gru_weights.o (weights + activation tables)
    state_bytes: int  # sizeof(edge_gru_state)
    stack_bytes: int  # deepest library function frame (edge_gru_run -> edge_gru_step)
    image_flash_bytes: int  # serve.elf text + data

    @property
    def ram_bytes(self) -> int:
        return self.state_bytes + self.stack_bytes


def _size(path: Path) -> tuple[int, int, int]:
    out = subprocess.run(["arm-none-eabi-size", "-B", str(path)], capture_output=True,
                         text=True, check=True).stdout.splitlines()[1].split()
    return int(out[0]), int(out[1]), int(out[2])


def _symbol_size(elf: Path, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[1], 16)
    raise RuntimeError(f"{name} not found in {elf}")


def _stack(su_file: Path, entry: str = "edge_gru_run") -> int:
    """Frame of ``entry`` plus the deepest function it calls (static frames only)."""
    frames = {}
    for line in su_file.read_text().splitlines():
        m = re.match(r".*:(\w+)\s+(\d+)\s+(\w+)", line)
        if m:
            frames[m.group(1)] = int(m.group(2))
    callees = [v for k, v in frames.items() if k not in (entry,)]
    return frames.get(entry, 0) + max(callees, default=0)


def _family_entry(arm_dir: Path) -> str:
    text = (arm_dir / "edge_gru_family.su").read_text()
    return "edge_gru_family_run_tokens" if "run_tokens" in text else "edge_gru_family_run_features"


def budgets(arm_dir: Path, family: bool = False) -> Budgets:
    """Budgets of a ``make`` Cortex-M4 build folder (``BUILD/qemu_mps2`` etc.); ``family``:
    the family library (edge_gru_family.o, edge_gru_model.o; stack below its run call)."""
    lib, model = ("edge_gru_family", "edge_gru_model") if family else ("edge_gru",
                                                                       "edge_gru_weights")
    lib_text, lib_data, lib_bss = _size(arm_dir / f"{lib}.o")
    w_text, w_data, _ = _size(arm_dir / f"{model}.o")
    img_text, img_data, _ = _size(arm_dir / "serve.elf")
    return Budgets(
        code_bytes=lib_text + lib_data + lib_bss,
        weights_bytes=w_text + w_data,
        state_bytes=_symbol_size(arm_dir / "serve.elf", "state"),
        stack_bytes=_stack(arm_dir / f"{lib}.su", _family_entry(arm_dir) if family else
                           "edge_gru_run"),
        image_flash_bytes=img_text + img_data,
    )


QEMU_MACHINE = "qemu-system-arm -M mps2-an386 (Cortex-M4), -icount shift=7"


@dataclass
class QemuBuild:
    """An image built from generated C, serving in QEMU, with its host twin beside it.

    ``close()`` stops QEMU and removes the temporary build folder.
    """

    build_dir: Path
    budgets: Budgets
    emulator: Any  # fixed_point.qemu.QemuDevice
    host_tool: Path  # the host build of the same library (its ``run`` reads stdin records)

    def budget_metrics(self) -> dict[str, int]:
        """RAM, code and weights bytes: the ``fixed_point_qemu`` stage's budget columns."""
        b = self.budgets
        return {"ram_bytes": b.ram_bytes, "code_bytes": b.code_bytes,
                "weights_bytes": b.weights_bytes}

    def image_info(self) -> dict[str, int]:
        b = self.budgets
        return {"state_bytes": b.state_bytes, "stack_bytes": b.stack_bytes,
                "image_flash_bytes": b.image_flash_bytes}

    def close(self) -> None:
        self.emulator.close()
        shutil.rmtree(self.build_dir, ignore_errors=True)


def start_qemu(weights_dir: Path, family: bool) -> QemuBuild:
    """Build the mps2-an386 image and the host tool of ``weights_dir``'s generated C (the
    seed library, or the family library when ``family``) in a temporary folder, and start
    the image in QEMU. A failure removes the folder and raises (``RuntimeError`` with the
    make log, or the emulator's error)."""
    from .device import Device
    from .family_device import FamilyDevice
    from .qemu import QemuDevice

    host = "edge_gru_family_host" if family else "edge_gru_host"
    build_dir = Path(tempfile.mkdtemp(prefix="edge_gru_fw_"))
    try:
        make(["all"], weights_dir, build_dir, BOARD="qemu_mps2")
        make([str(build_dir / "host" / host)], weights_dir, build_dir)
        found = budgets(build_dir / "qemu_mps2", family=family)
        emulator = QemuDevice(build_dir / "qemu_mps2" / "serve.elf",
                              client=FamilyDevice if family else Device)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return QemuBuild(build_dir, found, emulator, build_dir / "host" / host)
