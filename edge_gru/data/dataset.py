"""The data a conversion trains and measures on, whatever file it came from.

``x_*``: ``(N, T)`` int32 token ids as the model sees them (padding id 0), or
``(N, T, F)`` float32 features (padding = the ``Masking`` value, else 0), padded and
truncated at the front like ``pad_sequences(padding="pre", truncating="pre")``.
``y_*``: int64 class indices ``(N,)`` (binary 0/1 or multi-class), float32 multi-hot
``(N, K)`` (multi-label), or float32 targets ``(N,)`` / ``(N, K)`` (regression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train and test splits ready for the model, plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # one line for the report, e.g. "npz:BasicMotions.npz"
    class_names: tuple[str, ...] = ()
    word_index: object | None = None  # a path to the Keras word index, for text models
    # What fitting the file to the model changed, one line each (e.g. truncated sequences).
    notes: tuple[str, ...] = ()

    @property
    def timesteps(self) -> int:
        return int(self.x_test.shape[1])

    @property
    def features(self) -> int | None:
        """F for feature inputs ``(N, T, F)``, None for token ids ``(N, T)``."""
        return int(self.x_test.shape[2]) if self.x_test.ndim == 3 else None
