"""Host side of the firmware's UART protocol (``firmware/include/edge_gru_protocol.h``).

One client for QEMU (``socket://127.0.0.1:PORT``) and a board (``/dev/ttyACM0``, ``COM3``):
pyserial opens both. Over a socket the emulated UART applies back-pressure, so several
reviews may be in flight; a real UART has a one-byte receive register that overruns while
the board computes, so there the client waits for each reply before sending the next.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EdgeGruError

SYNC_HOST = 0xA5
SYNC_DEVICE = 0x5A
INFO_FORMAT = "<IIHHHHBBBBI"  # 24 bytes, see edge_gru_protocol.h
RESULT_FORMAT = "<hHII"  # score, reserved, counter ticks, steps
COUNTER_QEMU_ICOUNT = 1
COUNTER_CYCLES = 2


@dataclass(frozen=True)
class DeviceInfo:
    """What the firmware reports about itself and its weights."""

    model_crc32: int
    counter_hz: int
    vocab: int
    embed_dim: int
    units: int
    maxlen: int
    reset_after: bool
    counter_kind: int
    dsp: bool
    protocol: int


@dataclass(frozen=True)
class Scored:
    """Q0.15 scores, raw counter ticks and steps per review, as the device returned them."""

    scores: np.ndarray
    ticks: np.ndarray
    steps: np.ndarray


def ticks_to_instructions(ticks: np.ndarray) -> np.ndarray:
    """QEMU timer0 ticks at 25 MHz under ``-icount shift=7`` -> executed instructions."""
    return (np.asarray(ticks, np.int64) * 5 + 8) >> 4


def encode_review(tokens: np.ndarray) -> bytes:
    """``'r'`` with 16-bit ids when they all fit (half the UART bytes), else ``'R'``."""
    tokens = np.asarray(tokens, np.int64)
    if len(tokens) > 0xFFFF:
        raise EdgeGruError(f"a review may hold at most 65535 tokens, got {len(tokens)}")
    if tokens.size and (tokens.min() < -(2**31) or tokens.max() >= 2**31):
        raise EdgeGruError("token ids must fit int32")
    head = struct.pack("<H", len(tokens))
    if not tokens.size or (tokens.min() >= 0 and tokens.max() <= 0xFFFF):
        return bytes([SYNC_HOST, ord("r")]) + head + tokens.astype("<u2").tobytes()
    return bytes([SYNC_HOST, ord("R")]) + head + tokens.astype("<i4").tobytes()


def strip_padding(row: np.ndarray, pad_id: int = 0) -> np.ndarray:
    """Drop leading pad ids: the device pads back to maxlen with the same id (fewer bytes)."""
    nonpad = np.flatnonzero(np.asarray(row) != pad_id)
    return row[nonpad[0] :] if nonpad.size else row[:0]


class Device:
    """A firmware image speaking the protocol, reached through a pyserial URL or port."""

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 10.0,
                 window: int | None = None) -> None:
        import serial

        try:
            self.port: Any = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise EdgeGruError(f"cannot open {url}: {exc}") from exc
        self.url = url
        self.window = window if window is not None else (64 if url.startswith("socket://") else 1)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_exact(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise EdgeGruError(f"{self.url}: device sent {len(data)} of {n} bytes, then timed out")
        return data

    def _expect(self, command: str) -> None:
        """Skip bytes up to the reply header ``0x5A command`` (a board may print first)."""
        deadline = time.monotonic() + (self.port.timeout or 10.0)
        prev = -1
        while time.monotonic() < deadline:
            b = self.port.read(1)
            if not b:
                break
            if prev == SYNC_DEVICE and b[0] == ord(command):
                return
            prev = b[0]
        raise EdgeGruError(f"{self.url}: no '{command}' reply from the device")

    def handshake(self, attempts: int = 8, wait: float = 2.0) -> None:
        """Send ``A5 'I'`` until the ``5A 'I'`` reply header arrives (the info bytes follow).

        Retries cover a device still booting or mid-command, and a UART that drops what
        arrives before it is enabled (QEMU's STM32 USART does): each attempt waits at most
        ``wait`` seconds, not the port's whole timeout.
        """
        timeout = self.port.timeout
        try:
            for attempt in range(attempts):
                self.port.timeout = min(wait, timeout or wait)
                self.port.reset_input_buffer()
                self.port.write(bytes([SYNC_HOST, ord("I")]))
                try:
                    self._expect("I")
                    return
                except EdgeGruError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(0.6)  # longer than the firmware's command timeout
        finally:
            self.port.timeout = timeout

    def info(self, attempts: int = 8) -> DeviceInfo:
        """Ask the firmware who it is (see :meth:`handshake`)."""
        self.handshake(attempts)
        fields = struct.unpack(INFO_FORMAT, self._read_exact(struct.calcsize(INFO_FORMAT)))
        return DeviceInfo(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
                          bool(fields[6]), fields[7], bool(fields[8]), fields[9])

    def score_streams(self, streams: list[np.ndarray]) -> Scored:
        """Score token streams of any length (the device applies the training padding rule)."""
        n = len(streams)
        out = np.zeros((3, n), np.int64)
        size = struct.calcsize(RESULT_FORMAT)
        for start in range(0, n, self.window):
            chunk = streams[start : start + self.window]
            self.port.write(b"".join(encode_review(s) for s in chunk))
            for i in range(len(chunk)):
                self._expect("R")
                reply = self._read_exact(size)
                score, _reserved, ticks, steps = struct.unpack(RESULT_FORMAT, reply)
                out[:, start + i] = (score, ticks, steps)
        return Scored(scores=out[0], ticks=out[1], steps=out[2])

    def score(self, ids: np.ndarray) -> Scored:
        """Score padded ``ids (N, maxlen)`` (sent without their leading padding)."""
        return self.score_streams([strip_padding(row) for row in np.asarray(ids)])
