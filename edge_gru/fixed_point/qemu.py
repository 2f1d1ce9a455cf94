"""Run a Cortex-M4 image in ``qemu-system-arm -M mps2-an386`` with its UART on a local socket.

QEMU listens on 127.0.0.1 only; ``-icount shift=7`` makes the CMSDK timer count executed
instructions, so the firmware reports deterministic instruction counts.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from ..errors import EdgeGruError
from .device import Device

QEMU = "qemu-system-arm"
MACHINE_ARGS = ["-M", "mps2-an386", "-nographic", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native",
                "-icount", "shift=7,align=off,sleep=off"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QemuDevice:
    """A QEMU process serving ``elf`` and a :class:`Device` connected to its UART."""

    def __init__(self, elf: Path, timeout: float = 30.0, client: type[Device] = Device,
                 machine: str = "mps2-an386") -> None:
        """``machine``: ``mps2-an386`` (CMSDK UART0) or ``netduinoplus2`` (STM32F405 USART1,
        an image built with ``BOARD=netduinoplus2``); ``client`` speaks the image's protocol."""
        self.port = free_port()
        serial = f"tcp:127.0.0.1:{self.port},server=on,wait=off,nodelay=on"
        args = [machine if a == "mps2-an386" else a for a in MACHINE_ARGS]
        self.proc = subprocess.Popen(
            [QEMU, *args, "-serial", serial, "-kernel", str(elf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.device: Device | None = None
        self.client = client
        try:
            self.device = self._connect(timeout)
            self.info = self.device.info()
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> Device:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise EdgeGruError(f"qemu exited with {self.proc.returncode}: {out.strip()}")
            try:
                return self.client(f"socket://127.0.0.1:{self.port}", timeout=timeout)
            except EdgeGruError:  # not listening yet
                time.sleep(0.05)
        raise EdgeGruError(f"qemu did not open 127.0.0.1:{self.port} within {timeout:.0f} s")

    def close(self) -> None:
        """Close the UART and stop QEMU (always; idempotent)."""
        if self.device is not None:
            self.device.close()
            self.device = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
