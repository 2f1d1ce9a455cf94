"""Raw review text -> probability on a small Linux board, from a ``convert`` output bundle.

The bundle folder holds the models, ``metadata.json`` (maxlen, vocab, tokenizer, threshold)
and ``word_index.txt.gz``. Text is encoded by :mod:`edge_gru.data.text` and padded by
:mod:`edge_gru.data.padding` -- the same code that produced the training ids -- so a review
typed on the Pi gets exactly the ids the model saw in training.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.padding import pad_sequences
from ..data.text import OOV_CHAR, TextEncoder
from ..errors import EdgeGruError
from .backends import Backend, open_backend

METADATA_FILE = "metadata.json"
SUPPORTED_FORMATS = ("edge_gru-bundle/1",)
POSITIVE, NEGATIVE = "positive", "negative"


def read_metadata(folder: Path) -> dict[str, Any] | None:
    """The bundle's ``metadata.json``, or ``None`` when the model was copied alone."""
    path = folder / METADATA_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgeGruError(f"cannot read {path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") not in SUPPORTED_FORMATS:
        raise EdgeGruError(f"{path} is not an edge_gru bundle (format {SUPPORTED_FORMATS[0]})")
    return meta


@dataclass
class Predictor:
    """A loaded model plus what it needs to read text; ``predict_*`` return ``(N,)`` floats."""

    backend: Backend
    model_path: Path
    maxlen: int
    vocab: int | None
    threshold: float
    metadata: dict[str, Any] | None
    _encoder: TextEncoder | None = None

    @classmethod
    def from_bundle(
        cls, model_path: str | Path, threads: int = 1, kernels: str = "default"
    ) -> Predictor:
        """Open ``model_path`` and the ``metadata.json`` / word index beside it."""
        path = Path(model_path)
        if path.is_dir():
            raise EdgeGruError(f"--model {path} is a folder; name a .onnx or .tflite file in it")
        meta = read_metadata(path.parent) if path.parent.is_dir() else None
        meta_maxlen = int(meta["maxlen"]) if meta else None
        backend = open_backend(path, threads, meta_maxlen, kernels)
        maxlen = backend.maxlen or meta_maxlen
        if maxlen is None:
            raise EdgeGruError(f"{path.name} has no fixed maxlen and no {METADATA_FILE} beside it")
        if meta_maxlen is not None and meta_maxlen != maxlen:
            raise EdgeGruError(
                f"{path.name} takes {maxlen} tokens but {METADATA_FILE} says {meta_maxlen}"
            )
        return cls(
            backend=backend,
            model_path=path,
            maxlen=maxlen,
            vocab=int(meta["vocab"]) if meta else None,
            threshold=float(meta.get("threshold", 0.5)) if meta else 0.5,
            metadata=meta,
        )

    @property
    def runtime(self) -> str:
        return self.backend.runtime

    @property
    def encoder(self) -> TextEncoder:
        """Loaded on first text, so ``--ids`` works with a model copied without its bundle."""
        if self._encoder is None:
            if self.metadata is None or self.vocab is None:
                raise EdgeGruError(
                    f"no {METADATA_FILE} beside {self.model_path.name}: copy the whole "
                    "convert output folder to read text"
                )
            name = self.metadata.get("tokenizer", {}).get("word_index", "word_index.txt.gz")
            index_path = self.model_path.parent / name
            try:
                self._encoder = TextEncoder.from_file(index_path, self.vocab)
            except (OSError, ValueError, EOFError) as exc:
                raise EdgeGruError(f"cannot read word index {index_path}: {exc}") from exc
        return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Raw reviews -> ``(N, maxlen)`` int32 ids, as the training data was made."""
        encoder = self.encoder
        return pad_sequences((encoder.encode(t) for t in texts), self.maxlen)

    def check_ids(self, ids: Any) -> np.ndarray:
        """Validate an already-encoded ``(N, maxlen)`` matrix; one-line error if it is not."""
        arr = np.asarray(ids)
        if arr.ndim != 2 or arr.shape[1] != self.maxlen:
            raise EdgeGruError(f"ids must have shape (N, {self.maxlen}), got {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise EdgeGruError(f"ids must be integers, got {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise EdgeGruError("ids must not be negative")
        if self.vocab is not None and arr.size and arr.max() >= self.vocab:
            # Keras' load_data maps ids past num_words to the OOV id; do the same.
            arr = np.where(arr >= self.vocab, OOV_CHAR, arr)
        return arr.astype(np.int32, copy=False)

    def predict_ids(self, ids: Any, batch: int = 256) -> np.ndarray:
        """Probabilities ``(N,)`` for padded ids, run ``batch`` reviews at a time."""
        arr = self.check_ids(ids)
        if batch <= 0:
            raise EdgeGruError("batch must be positive")
        if len(arr) == 0:
            return np.empty(0)
        return np.concatenate(
            [self.backend.run(arr[i : i + batch]) for i in range(0, len(arr), batch)]
        )

    def predict_texts(self, texts: Sequence[str], batch: int = 256) -> np.ndarray:
        """Probabilities ``(N,)`` for raw reviews (any length, any words, may be empty)."""
        out = [self.predict_ids(self.encode(texts[i : i + batch]), batch)
               for i in range(0, len(texts), batch)]
        return np.concatenate(out) if out else np.empty(0)

    def label(self, probability: float) -> str:
        return POSITIVE if probability > self.threshold else NEGATIVE
