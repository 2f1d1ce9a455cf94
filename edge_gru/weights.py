"""The trained classifier's parameters as plain NumPy arrays, independent of Keras.

Every backend (NumPy reference, unrolled TFLite graph, ONNX GRU node, fixed-point C)
starts from this one structure, so none of them needs to know Keras' layout.
Gate order along the ``3 * units`` axis is Keras' ``[z, r, h]`` (update, reset, candidate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GruWeights:
    """``Embedding(vocab, embed_dim) -> GRU(units) -> Dense(1, sigmoid)`` parameters.

    Shapes: ``embedding (vocab, embed_dim)``, ``kernel (embed_dim, 3u)``,
    ``recurrent_kernel (u, 3u)``, ``input_bias (3u,)``, ``recurrent_bias (3u,)``
    (all zeros when the layer has no bias; with ``reset_after=False`` Keras has a
    single bias, stored here as ``input_bias`` with ``recurrent_bias`` zero),
    ``dense_kernel (u,)``, ``dense_bias`` scalar. ``maxlen`` is the padded length
    the model was trained on.
    """

    embedding: np.ndarray
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    input_bias: np.ndarray
    recurrent_bias: np.ndarray
    dense_kernel: np.ndarray
    dense_bias: float
    reset_after: bool
    maxlen: int

    @property
    def vocab(self) -> int:
        return int(self.embedding.shape[0])

    @property
    def embed_dim(self) -> int:
        return int(self.embedding.shape[1])

    @property
    def units(self) -> int:
        return int(self.recurrent_kernel.shape[0])

    @property
    def parameter_count(self) -> int:
        """Parameters as Keras counts them (two bias rows only when ``reset_after``)."""
        u, e = self.units, self.embed_dim
        biases = (6 if self.reset_after else 3) * u
        return self.vocab * e + 3 * u * e + 3 * u * u + biases + u + 1

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates of one GRU step (input and recurrent projections)."""
        return 3 * self.units * (self.embed_dim + self.units)

    def gates(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split a ``(..., 3u)`` array into its z, r, h parts."""
        u = self.units
        return matrix[..., :u], matrix[..., u : 2 * u], matrix[..., 2 * u :]

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            embedding=self.embedding,
            kernel=self.kernel,
            recurrent_kernel=self.recurrent_kernel,
            input_bias=self.input_bias,
            recurrent_bias=self.recurrent_bias,
            dense_kernel=self.dense_kernel,
            dense_bias=np.float32(self.dense_bias),
            reset_after=np.bool_(self.reset_after),
            maxlen=np.int64(self.maxlen),
        )

    @classmethod
    def load(cls, path: str | Path) -> GruWeights:
        with np.load(path) as f:
            return cls(
                embedding=f["embedding"],
                kernel=f["kernel"],
                recurrent_kernel=f["recurrent_kernel"],
                input_bias=f["input_bias"],
                recurrent_bias=f["recurrent_bias"],
                dense_kernel=f["dense_kernel"],
                dense_bias=float(f["dense_bias"]),
                reset_after=bool(f["reset_after"]),
                maxlen=int(f["maxlen"]),
            )
