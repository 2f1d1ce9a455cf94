"""Fixed-length id matrices, padded and truncated like ``keras.utils.pad_sequences``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def pad_sequences(sequences: Iterable[Sequence[int]], maxlen: int, value: int = 0) -> np.ndarray:
    """Pre-pad and pre-truncate to ``maxlen`` (Keras' defaults), returning int32 ``(N, maxlen)``.

    Pre-truncation keeps the *last* ``maxlen`` tokens, so a GRU reading left to right
    ends on the end of the review.
    """
    rows = list(sequences)
    out = np.full((len(rows), maxlen), value, dtype=np.int32)
    if maxlen <= 0:
        return out
    for i, seq in enumerate(rows):
        tail = list(seq)[-maxlen:]
        if tail:
            out[i, maxlen - len(tail) :] = tail
    return out
