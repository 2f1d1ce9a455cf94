"""Feature sequences for the Pi runtime: read ``.npy`` / ``.csv``, check, pad like Keras.

NumPy and the standard library only. A sequence is ``(T_i, F)`` float32, one row per time
step. The model takes ``(N, T, F)``: a shorter sequence is padded at the *front* with the
bundle's pad value and a longer one keeps its *last* ``T`` steps, as
``keras.utils.pad_sequences(padding="pre", truncating="pre")`` does and as the training
data was made (:mod:`edge_gru.data.padding` does the same for token ids).
Every fault is an :class:`~edge_gru.errors.EdgeGruError` with a one-line message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EdgeGruError


def _finite(x: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise EdgeGruError(f"{what}: NaN or infinite value at index {where}")


def check_sequence(x: np.ndarray, features: int, what: str) -> np.ndarray:
    """One ``(T_i, F)`` sequence as float32, or a one-line error (rank, F, NaN/inf)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise EdgeGruError(f"{what}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise EdgeGruError(f"{what}: expected (T, {features}) per sequence, got shape {arr.shape}")
    if arr.shape[1] != features:
        raise EdgeGruError(f"{what}: the model takes {features} features per step, got "
                           f"{arr.shape[1]}")
    arr = arr.astype(np.float32)
    _finite(arr, what)
    return arr


def split_batch(x: np.ndarray, features: int, what: str) -> list[np.ndarray]:
    """``(N, T', F)`` or ``(T', F)`` -> a list of ``(T', F)`` float32 sequences."""
    arr = np.asarray(x)
    if arr.ndim == 2:
        return [check_sequence(arr, features, what)]
    if arr.ndim != 3:
        raise EdgeGruError(f"{what}: expected (N, T, {features}) or (T, {features}), "
                           f"got shape {arr.shape}")
    if arr.shape[2] != features:
        raise EdgeGruError(f"{what}: the model takes {features} features per step, got "
                           f"{arr.shape[2]}")
    checked = check_sequence(arr.reshape(-1, features), features, what) if arr.size else arr
    return list(np.asarray(checked, np.float32).reshape(arr.shape))


def pad_features(sequences: Sequence[np.ndarray], timesteps: int, pad_value: float,
                 features: int) -> np.ndarray:
    """Pre-pad / pre-truncate ``(T_i, F)`` sequences to ``(N, timesteps, F)`` float32."""
    out = np.full((len(sequences), timesteps, features), pad_value, np.float32)
    for i, seq in enumerate(sequences):
        tail = np.asarray(seq, np.float32)[-timesteps:] if timesteps > 0 else seq[:0]
        if len(tail):
            out[i, timesteps - len(tail):] = tail
    return out


def read_npy(path: Path, features: int) -> list[np.ndarray]:
    """The sequences of an ``(N, T, F)`` or ``(T, F)`` ``.npy`` (no pickles)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EdgeGruError(f"cannot read --npy {path}: {str(exc) or type(exc).__name__}") from exc
    if not isinstance(arr, np.ndarray):
        raise EdgeGruError(f"--npy {path}: expected one array (.npy), not an .npz archive")
    return split_batch(arr, features, f"--npy {path.name}")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def parse_csv(text: str, features: int, what: str) -> np.ndarray:
    """One sequence from CSV text: one time step per row, ``F`` columns, optional header.

    The first row is a header when any of its cells is not a number. Blank lines are
    skipped; a row with another column count (ragged) or a non-number is an error.
    """
    rows = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    if rows and not all(_is_number(c) for c in rows[0]):
        rows = rows[1:]
    values = np.empty((len(rows), features), np.float32)
    for i, row in enumerate(rows, start=1):
        if len(row) != features:
            raise EdgeGruError(f"{what}: data row {i} has {len(row)} columns; the model takes "
                               f"{features} features per step (one step per row)")
        try:
            values[i - 1] = [float(c) for c in row]
        except ValueError:
            raise EdgeGruError(f"{what}: data row {i} holds a cell that is not a number") from None
    return check_sequence(values, features, what)


def read_csv(path: Path, features: int) -> np.ndarray:
    """One ``(T_i, F)`` sequence from a CSV file (see :func:`parse_csv`)."""
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise EdgeGruError(f"cannot read --csv {path}: {exc.strerror or exc}") from exc
    return parse_csv(text, features, f"--csv {path.name}")


def frames_reaching(x: np.ndarray, given: Sequence[int], mask_value: float | None) -> np.ndarray:
    """Steps of each padded ``(N, T, F)`` row the model reads: ``(N,)`` int.

    With a ``Masking`` layer, steps whose features all equal the mask value are skipped by
    the model and are not counted; otherwise every given step (after truncation) counts.
    """
    steps = x.shape[1]
    counted = np.minimum(np.asarray(given, np.int64), steps)
    if mask_value is None:
        return counted
    return np.any(x != np.float32(mask_value), axis=-1).sum(axis=1).astype(np.int64)
