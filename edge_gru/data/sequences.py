"""One split's ``x`` as stored in a Keras-layout .npz, read into a typed form and padded.

Accepted forms (the Keras dataset layout and what ``pad_sequences`` takes):

- token ids: int ``(N, T)``, or a 1-D object array of ``N`` int sequences (lists or arrays)
  of any lengths ``T_i``;
- features: real ``(N, T, F)``, or a 1-D object array of ``N`` real ``(T_i, F)`` arrays.

Padding and truncation follow ``keras.utils.pad_sequences`` defaults, ``padding="pre"`` and
``truncating="pre"``: a short sequence gets ``pad_value`` steps in front, a long one keeps
its *last* ``T`` steps (keras/src/utils/sequence_utils.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import EdgeGruError

Kind = Literal["tokens", "features"]


@dataclass(frozen=True)
class Sequences:
    """One split's inputs before they are fitted to a model.

    ``values``: every stored value, int64 ``(sum T_i,)`` for tokens or float32
    ``(sum T_i, F)`` for features, sequence after sequence. ``lengths``: int64 ``(N,)``
    steps per sequence. ``dense``: the stored ``(N, T)`` / ``(N, T, F)`` array (every
    length ``T``), or None for ragged data.
    """

    name: str  # "x_train" or "x_test"
    kind: Kind
    features: int | None
    lengths: np.ndarray
    values: np.ndarray
    dense: np.ndarray | None = None

    @classmethod
    def ragged(
        cls, name: str, kind: Kind, features: int | None, rows: list[np.ndarray]
    ) -> Sequences:
        """From ``N`` rows ``(T_i,)`` int64 or ``(T_i, F)`` float32."""
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        dtype = np.int64 if kind == "tokens" else np.float32
        empty = np.zeros((0,) if kind == "tokens" else (0, features or 0), dtype)
        return cls(name, kind, features, lengths, np.concatenate([empty, *rows], axis=0))

    @property
    def count(self) -> int:
        return int(len(self.lengths))

    @property
    def starts(self) -> np.ndarray:
        """int64 ``(N,)``: where each sequence begins in ``values``."""
        return np.cumsum(self.lengths) - self.lengths

    def rows(self) -> list[np.ndarray]:
        """The ``N`` sequences as views into ``values``."""
        return np.split(self.values, np.cumsum(self.lengths)[:-1])

    def take(self, order: np.ndarray) -> Sequences:
        """The sequences in ``order`` (int ``(N,)``), e.g. Keras' shuffle."""
        lengths = self.lengths[order]
        new_starts = np.cumsum(lengths) - lengths
        shift = np.repeat(self.starts[order] - new_starts, lengths)
        gather = np.arange(int(lengths.sum()), dtype=np.int64) + shift
        return Sequences(self.name, self.kind, self.features, lengths, self.values[gather])

    def locate(self, flat_index: int) -> str:
        """``"x_train[i] step t"`` for an index into the first axis of ``values``."""
        ends = np.cumsum(self.lengths)
        row = int(np.searchsorted(ends, flat_index, side="right"))
        return f"{self.name}[{row}] step {flat_index - int(ends[row] - self.lengths[row])}"

    def fit(self, timesteps: int, pad_value: float) -> np.ndarray:
        """Pad/truncate at the front to ``timesteps``: int32 ``(N, T)`` or float32 ``(N, T, F)``."""
        dtype = np.int32 if self.kind == "tokens" else np.float32
        if self.dense is not None:
            return _fit_dense(self.dense.astype(dtype), timesteps, pad_value)
        tail_shape = () if self.kind == "tokens" else (self.features or 0,)
        out = np.full((self.count, timesteps, *tail_shape), pad_value, dtype=dtype)
        for i, row in enumerate(self.rows()):
            kept = min(len(row), timesteps)
            if kept:
                out[i, timesteps - kept :] = row[len(row) - kept :]
        return out

    def truncated(self, timesteps: int) -> int:
        """How many sequences are longer than ``timesteps`` (they lose their first steps)."""
        return int(np.count_nonzero(self.lengths > timesteps))


def _fit_dense(x: np.ndarray, timesteps: int, pad_value: float) -> np.ndarray:
    stored = x.shape[1]
    if stored >= timesteps:
        return np.ascontiguousarray(x[:, stored - timesteps :])
    pad = np.full((x.shape[0], timesteps - stored, *x.shape[2:]), pad_value, dtype=x.dtype)
    return np.concatenate([pad, x], axis=1)


def _is_int(dtype: np.dtype) -> bool:
    return dtype.kind in "iu"


def _is_real(dtype: np.dtype) -> bool:
    return dtype.kind in "iuf"


def read_sequences(name: str, x: np.ndarray) -> Sequences:
    """Classify and convert one stored ``x``; a form this module cannot read is an EdgeGruError."""
    if x.dtype == object:
        return _read_ragged(name, x)
    if x.ndim == 2 and _is_int(x.dtype):
        values = x.astype(np.int64, copy=False)
        return Sequences(
            name, "tokens", None, np.full(len(x), x.shape[1], np.int64), values.reshape(-1),
            dense=values,
        )
    if x.ndim == 3 and _is_real(x.dtype):
        values = x.astype(np.float32, copy=False)
        return Sequences(
            name, "features", int(x.shape[2]), np.full(len(x), x.shape[1], np.int64),
            values.reshape(-1, x.shape[2]), dense=values,
        )
    if x.ndim == 2 and x.dtype.kind == "f":
        raise EdgeGruError(
            f"{name} is a {x.dtype} {x.shape} array: token ids must be integers "
            f"(save x.astype('int32')), features must be (N, T, F)"
        )
    raise EdgeGruError(
        f"{name} is a {x.dtype} array of shape {x.shape}: expected int token ids (N, T), "
        f"real features (N, T, F), or an object array of sequences"
    )


def _read_ragged(name: str, x: np.ndarray) -> Sequences:
    if x.ndim != 1:
        raise EdgeGruError(f"{name} is an object array of shape {x.shape}: expected 1-D (N,)")
    rows: list[np.ndarray] = []
    for i, item in enumerate(x):
        try:
            row = np.asarray(item)
        except ValueError as exc:  # ragged nested lists
            raise EdgeGruError(f"{name}[{i}] is not a rectangular array ({exc})") from exc
        rows.append(row)
    ndims = {row.ndim for row in rows}
    if ndims == {1}:
        return _ragged_tokens(name, rows)
    if ndims == {2}:
        return _ragged_features(name, rows)
    first_odd = next(i for i, row in enumerate(rows) if row.ndim != rows[0].ndim or row.ndim > 2)
    raise EdgeGruError(
        f"{name} mixes sequences of different ranks ({name}[{first_odd}] has shape "
        f"{rows[first_odd].shape}): expected all (T_i,) token ids or all (T_i, F) features"
    )


def _ragged_tokens(name: str, rows: list[np.ndarray]) -> Sequences:
    out: list[np.ndarray] = []
    for i, row in enumerate(rows):
        if row.size and not _is_int(row.dtype):
            raise EdgeGruError(f"{name}[{i}] holds {row.dtype} values: token ids must be integers")
        out.append(row.astype(np.int64, copy=False))
    return Sequences.ragged(name, "tokens", None, out)


def _ragged_features(name: str, rows: list[np.ndarray]) -> Sequences:
    features = int(rows[0].shape[1])
    out: list[np.ndarray] = []
    for i, row in enumerate(rows):
        if row.shape[1] != features:
            raise EdgeGruError(
                f"{name}[{i}] has {row.shape[1]} features per step, {name}[0] has {features}"
            )
        if row.size and not _is_real(row.dtype):
            raise EdgeGruError(f"{name}[{i}] holds {row.dtype} values: features must be real")
        out.append(row.astype(np.float32, copy=False))
    return Sequences.ragged(name, "features", features, out)
