"""A model plus its bundle: raw text or feature sequences -> Keras' outputs, on a small board.

The bundle folder holds the models and ``metadata.json`` (see :mod:`edge_gru.bundle`):
``input`` (tokens or features, ``T``, ``F``, pad and mask values), ``task`` (kind, outputs,
class names) and, for text models, the tokenizer constants with ``word_index.txt.gz``.
Text is encoded by :mod:`edge_gru.data.text` and padded by :mod:`edge_gru.data.padding`,
feature sequences are padded by :mod:`.features` -- the rules that produced the training
data -- so an input given on the Pi reaches the model exactly as in training.
Every ``predict_*`` returns ``(N, K)`` float64, what Keras' ``predict`` returns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.padding import pad_sequences
from ..data.text import INDEX_FROM, OOV_CHAR, TextEncoder
from ..errors import EdgeGruError
from ..ir import TASKS, Task
from . import features as feat
from .backends import Backend, open_backend
from .results import NEGATIVE, POSITIVE, binary_names, interpret

METADATA_FILE = "metadata.json"
SUPPORTED_FORMATS = ("edge_gru-bundle/1",)
__all__ = ["METADATA_FILE", "NEGATIVE", "POSITIVE", "Predictor", "read_metadata"]


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


def _task(meta: dict[str, Any] | None) -> Task:
    """The bundle's task; a bundle from before tasks existed is a binary classifier."""
    info = (meta or {}).get("task")
    if not info:
        return Task("binary", 1)
    if info.get("kind") not in TASKS:
        raise EdgeGruError(f"{METADATA_FILE}: unknown task kind {info.get('kind')!r}")
    return Task(info["kind"], int(info["outputs"]), tuple(info.get("class_names") or ()))


def _input(meta: dict[str, Any] | None, backend: Backend, path: Path) -> dict[str, Any]:
    """``kind``, ``timesteps``, ``features``, ``pad_value``, ``mask_value`` checked against
    the model file itself."""
    info = dict((meta or {}).get("input") or {})
    if meta is not None and not info:  # a text bundle from before feature inputs
        info = {"kind": "tokens", "timesteps": meta.get("maxlen"), "pad_value": 0,
                "mask_value": None}
    kind = info.get("kind") or backend.input_kind
    if kind != backend.input_kind:
        raise EdgeGruError(f"{path.name} takes {backend.input_kind} but {METADATA_FILE} says "
                           f"{kind}")
    steps = backend.maxlen or info.get("timesteps")
    if steps is None:
        raise EdgeGruError(f"{path.name} has no fixed length and no {METADATA_FILE} beside it")
    for declared in (info.get("timesteps"), (meta or {}).get("maxlen")):
        if declared is not None and int(declared) != steps:
            unit = "tokens" if kind == "tokens" else "steps"
            raise EdgeGruError(f"{path.name} takes {steps} {unit} but {METADATA_FILE} says "
                               f"{declared}")
    f = backend.features or info.get("features")
    if kind == "features" and info.get("features") is not None and int(info["features"]) != f:
        raise EdgeGruError(f"{path.name} takes {f} features but {METADATA_FILE} says "
                           f"{info['features']}")
    return {"kind": kind, "timesteps": int(steps), "features": None if f is None else int(f),
            "pad_value": float(info.get("pad_value") or 0.0),
            "mask_value": None if info.get("mask_value") is None else float(info["mask_value"])}


@dataclass
class Predictor:
    """A loaded model and what it needs to read its inputs; ``predict_*`` give ``(N, K)``."""

    backend: Backend
    model_path: Path
    maxlen: int  # T: token ids or feature steps per input
    vocab: int | None
    threshold: float
    metadata: dict[str, Any] | None
    task: Task
    input_kind: str = "tokens"
    features: int | None = None
    pad_value: float = 0.0
    mask_value: float | None = None
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
        meta_steps = None
        if meta is not None:
            meta_steps = (meta.get("input") or {}).get("timesteps", meta.get("maxlen"))
        backend = open_backend(path, threads, None if meta_steps is None else int(meta_steps),
                               kernels)
        spec = _input(meta, backend, path)
        if spec["kind"] == "features" and spec["features"] is None:
            raise EdgeGruError(f"{path.name}: the feature count is unknown")
        vocab = (meta or {}).get("vocab")
        return cls(
            backend=backend,
            model_path=path,
            maxlen=spec["timesteps"],
            vocab=int(vocab) if vocab is not None else None,
            threshold=float(meta.get("threshold", 0.5)) if meta else 0.5,
            metadata=meta,
            task=_task(meta),
            input_kind=spec["kind"],
            features=spec["features"],
            pad_value=spec["pad_value"],
            mask_value=spec["mask_value"],
        )

    @property
    def runtime(self) -> str:
        return self.backend.runtime

    # -- text models ----------------------------------------------------------------
    def _require(self, kind: str) -> None:
        if self.input_kind != kind:
            takes = "text or token ids" if self.input_kind == "tokens" else (
                f"feature sequences of {self.features} values per step (--npy or --csv)")
            raise EdgeGruError(f"{self.model_path.name} takes {takes}, not {kind}")

    @property
    def encoder(self) -> TextEncoder:
        """Loaded on first text, so ``--ids`` works with a model copied without its bundle."""
        self._require("tokens")
        if self._encoder is None:
            tokenizer = (self.metadata or {}).get("tokenizer")
            if self.metadata is None or self.vocab is None or not tokenizer:
                raise EdgeGruError(
                    f"no {METADATA_FILE} with a tokenizer beside {self.model_path.name}: copy "
                    "the whole convert output folder to read text"
                )
            index_path = self.model_path.parent / tokenizer.get("word_index", "word_index.txt.gz")
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
        self._require("tokens")
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

    def known_tokens(self, ids: np.ndarray) -> np.ndarray:
        """``(N,)`` count of vocabulary words among the ids the model reads.

        With a tokenizer, ids below ``index_from`` (padding, start, out-of-vocabulary) are
        not words; without one, every non-padding id counts.
        """
        arr = np.asarray(ids)
        tokenizer = (self.metadata or {}).get("tokenizer")
        first_word = int(tokenizer.get("index_from", INDEX_FROM)) if tokenizer else 1
        return (arr >= first_word).sum(axis=1).astype(np.int64)

    def _run(self, x: np.ndarray, batch: int) -> np.ndarray:
        if batch <= 0:
            raise EdgeGruError("batch must be positive")
        if len(x) == 0:
            return np.empty((0, self.task.outputs))
        return np.concatenate([self.backend.run(x[i : i + batch])
                               for i in range(0, len(x), batch)])

    def predict_ids(self, ids: Any, batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for padded ids, run ``batch`` inputs at a time."""
        return self._run(self.check_ids(ids), batch)

    def predict_texts(self, texts: Sequence[str], batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for raw reviews (any length, any words, may be empty)."""
        out = [self.predict_ids(self.encode(texts[i : i + batch]), batch)
               for i in range(0, len(texts), batch)]
        return np.concatenate(out) if out else np.empty((0, self.task.outputs))

    # -- feature models -------------------------------------------------------------
    def pad(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """``(T_i, F)`` sequences -> ``(N, T, F)`` float32, pre-padded with the pad value."""
        self._require("features")
        f = int(self.features or 0)
        checked = [feat.check_sequence(s, f, f"sequence {i}") for i, s in enumerate(sequences)]
        return feat.pad_features(checked, self.maxlen, self.pad_value, f)

    def frames(self, x: np.ndarray, given: Sequence[int]) -> np.ndarray:
        """``(N,)`` steps of the padded ``x`` the model reads (see :mod:`.features`)."""
        return feat.frames_reaching(x, given, self.mask_value)

    def predict_padded(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for an already padded ``(N, T, F)`` batch (from :meth:`pad`)."""
        self._require("features")
        arr = np.asarray(x, np.float32)
        if arr.ndim != 3 or arr.shape[1:] != (self.maxlen, self.features):
            raise EdgeGruError(f"features must have shape (N, {self.maxlen}, {self.features}), "
                               f"got {arr.shape}")
        return self._run(arr, batch)

    def predict_sequences(self, sequences: Sequence[np.ndarray], batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for ``(T_i, F)`` sequences of any length."""
        return self._run(self.pad(sequences), batch)

    def predict_features(self, x: Any, batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for ``(N, T', F)`` or one ``(T', F)`` array (padded to T)."""
        self._require("features")
        return self.predict_sequences(feat.split_batch(x, int(self.features or 0), "input"),
                                      batch)

    def predict(self, x: Any, batch: int = 256) -> np.ndarray:
        """Outputs ``(N, K)`` for ids ``(N, T)`` or features ``(N, T', F)`` by the model's kind."""
        if self.input_kind == "tokens":
            return self.predict_ids(x, batch)
        return self.predict_features(x, batch)

    # -- answers ----------------------------------------------------------------------
    def answers(self, outputs: np.ndarray) -> list[dict[str, Any]]:
        """One answer per output row: ``output`` plus the task's fields (:mod:`.results`)."""
        if len(outputs) == 0:
            return []
        rows = np.asarray(outputs).reshape(len(outputs), -1)
        task = self.task
        if rows.shape[1] != task.outputs:  # a model copied without its metadata.json
            task = Task("regression", rows.shape[1])
        return [interpret(task, row, self.threshold) for row in rows]

    def label(self, probability: float) -> str:
        """Binary tasks: the label of a probability (``positive`` when above the threshold)."""
        negative, positive = binary_names(self.task)
        return positive if probability > self.threshold else negative
