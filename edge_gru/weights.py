"""The seed shape's parameters: the view of the IR that the seed-only backends read.

``Embedding -> GRU -> Dense(1, sigmoid)`` (no mask, last state) is what the int8 TFLite,
int8 ONNX and fixed-point backends implement today. :func:`seed_view` gives them this
flat structure from a :class:`~edge_gru.ir.ModelIR` of that shape, or says in one line
why a model is not of it; :meth:`GruWeights.to_ir` goes back.
Gate order along the ``3 * units`` axis is Keras' ``[z, r, h]`` (update, reset, candidate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ir


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

    def to_ir(self) -> ir.ModelIR:
        """The equivalent IR (used by code that still holds a ``GruWeights``)."""
        return ir.ModelIR(
            name="imdb_gru",
            input=ir.InputSpec("tokens", self.maxlen, vocab=self.vocab),
            layers=(
                ir.Embedding("embedding", self.embedding),
                ir.GRU(
                    "gru",
                    self.kernel,
                    self.recurrent_kernel,
                    self.input_bias,
                    self.recurrent_bias,
                    reset_after=self.reset_after,
                ),
                ir.Dense(
                    "dense",
                    self.dense_kernel.reshape(-1, 1),
                    np.asarray([self.dense_bias], np.float32),
                    "sigmoid",
                ),
            ),
            task=ir.Task("binary", 1),
        )


def seed_shape_problem(model: ir.ModelIR) -> str | None:
    """Why ``model`` is not ``Embedding -> GRU -> Dense(1, sigmoid)``, or None if it is."""
    kinds = [type(layer).__name__ for layer in model.layers]
    if kinds != ["Embedding", "GRU", "Dense"]:
        return f"implements Embedding -> GRU -> Dense(1, sigmoid) only, not {model.describe()}"
    emb, gru, dense = model.layers
    assert isinstance(emb, ir.Embedding) and isinstance(gru, ir.GRU) and isinstance(dense, ir.Dense)
    if emb.mask_zero:
        return "does not implement Embedding(mask_zero=True) yet"
    if gru.go_backwards or gru.return_sequences:
        return "does not implement go_backwards or return_sequences yet"
    if dense.units != 1 or dense.activation != "sigmoid":
        return (
            "implements a Dense(1, sigmoid) output only, "
            f"not Dense({dense.units}, {dense.activation})"
        )
    return None


def seed_view(model: ir.ModelIR) -> GruWeights:
    """The seed-shape parameters of ``model``; ``ValueError`` if it is not of that shape."""
    problem = seed_shape_problem(model)
    if problem is not None:
        raise ValueError(problem)
    emb, gru, dense = model.layers
    return GruWeights(
        embedding=np.asarray(emb.table, np.float32),
        kernel=np.asarray(gru.kernel, np.float32),
        recurrent_kernel=np.asarray(gru.recurrent_kernel, np.float32),
        input_bias=np.asarray(gru.input_bias, np.float32),
        recurrent_bias=np.asarray(gru.recurrent_bias, np.float32),
        dense_kernel=np.asarray(dense.kernel, np.float32).reshape(-1),
        dense_bias=float(dense.bias[0]),
        reset_after=gru.reset_after,
        maxlen=model.input.timesteps,
    )
