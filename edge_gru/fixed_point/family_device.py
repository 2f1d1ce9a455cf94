"""Host side of the family UART protocol (``app/serve_family.c``; edge_gru_protocol.h).

Same transport as :class:`~edge_gru.fixed_point.device.Device` (QEMU socket or a board's
serial port); a sequence goes out as ``0xA5 'S' u16 n`` + ``n`` steps (int32 ids or ``F``
int16 frame values) and comes back as ``0x5A 'O'`` with the argmax, ``K`` int32 outputs,
the counter ticks of the run call and the steps it ran.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import EdgeGruError
from .device import SYNC_HOST, Device

FAMILY_INFO_FORMAT = "<IIHHHHBBBBI"  # 24 bytes
PROTOCOL_FAMILY = 2


@dataclass(frozen=True)
class FamilyInfo:
    model_crc32: int
    counter_hz: int
    vocab_or_features: int
    in_dim: int
    outputs: int
    timesteps: int
    tokens: bool
    counter_kind: int
    dsp: bool
    protocol: int
    out_frac: int


@dataclass(frozen=True)
class FamilyScored:
    """``outputs (N, K)`` int64 as the device returned them, argmax, ticks and steps ``(N,)``."""

    outputs: np.ndarray
    argmax: np.ndarray
    ticks: np.ndarray
    steps: np.ndarray


def encode_sequence(steps: np.ndarray, tokens: bool) -> bytes:
    steps = np.asarray(steps)
    if len(steps) > 0xFFFF:
        raise EdgeGruError(f"a sequence may hold at most 65535 steps, got {len(steps)}")
    body = steps.astype("<i4" if tokens else "<i2").tobytes()
    return bytes([SYNC_HOST, ord("S")]) + struct.pack("<H", len(steps)) + body


class FamilyDevice(Device):
    """A family firmware image behind a pyserial URL or port."""

    def info(self, attempts: int = 8) -> FamilyInfo:  # type: ignore[override]
        """Ask the family firmware who it is (see :meth:`Device.handshake`)."""
        self.handshake(attempts)
        f = struct.unpack(FAMILY_INFO_FORMAT, self._read_exact(struct.calcsize(FAMILY_INFO_FORMAT)))
        if f[9] != PROTOCOL_FAMILY:
            raise EdgeGruError(f"{self.url}: not a family model image (protocol {f[9]})")
        return FamilyInfo(f[0], f[1], f[2], f[3], f[4], f[5], bool(f[6]), f[7], bool(f[8]),
                          f[9], f[10])

    def run_sequences(self, streams: list[np.ndarray], tokens: bool, outputs: int) -> FamilyScored:
        """Run integer sequences of any length (the device applies the padding rule)."""
        n = len(streams)
        outs = np.zeros((n, outputs), np.int64)
        meta = np.zeros((3, n), np.int64)
        for start in range(0, n, self.window):
            chunk = streams[start : start + self.window]
            self.port.write(b"".join(encode_sequence(s, tokens) for s in chunk))
            for i in range(len(chunk)):
                self._expect("O")
                best, k = struct.unpack("<HH", self._read_exact(4))
                if k != outputs:
                    raise EdgeGruError(f"{self.url}: device has {k} outputs, expected {outputs}")
                vals = np.frombuffer(self._read_exact(4 * k), "<i4")
                ticks, steps = struct.unpack("<II", self._read_exact(8))
                outs[start + i] = vals
                meta[:, start + i] = (best, ticks, steps)
        return FamilyScored(outs, meta[0], meta[1], meta[2])
