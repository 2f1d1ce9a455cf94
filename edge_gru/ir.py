"""The model description (IR) every backend reads: a typed chain of GRU-family layers.

The Keras frontend (:mod:`edge_gru.frontend`) builds it; the float reference
(:mod:`edge_gru.reference`), the TFLite and ONNX exporters and the fixed-point generator
read only this. Layers are in inference order::

    input  (tokens: Embedding | features: [Normalization] [Masking])
    core   GRU | Bidirectional(GRU), one or more, every one but the last with
           ``return_sequences=True``
    [Reduction]  over time, when the last recurrent layer returns sequences
    head   Dense, one or more; the last one's activation and width decide the task

Shapes: a batch is ``(N, T)`` int token ids or ``(N, T, F)`` float32 features; the
model output is ``(N, K)`` float, exactly what Keras' ``predict`` returns.
Gate order along a GRU's ``3 * units`` axis is Keras' ``[z, r, h]``.
All arrays are float32 copies of the Keras weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TaskKind = Literal["binary", "binary_logits", "multiclass", "multilabel", "regression"]
TASKS: tuple[str, ...] = ("binary", "binary_logits", "multiclass", "multilabel", "regression")
Activation = Literal["linear", "relu", "tanh", "sigmoid", "softmax"]
MergeMode = Literal["concat", "sum", "mul", "ave"]
ReductionOp = Literal["mean", "max", "flatten", "last"]


@dataclass(frozen=True)
class Embedding:
    """``keras.layers.Embedding``: ``table (vocab, dim)``; ``mask_zero`` masks id 0."""

    name: str
    table: np.ndarray
    mask_zero: bool = False

    @property
    def vocab(self) -> int:
        return int(self.table.shape[0])

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])


@dataclass(frozen=True)
class Normalization:
    """``keras.layers.Normalization`` on the feature axis, adapted mean and variance ``(F,)``.

    ``y = (x - mean) / max(sqrt(variance), epsilon)`` with Keras' ``epsilon = 1e-7``
    (keras/src/layers/preprocessing/normalization.py).
    """

    name: str
    mean: np.ndarray
    variance: np.ndarray

    EPSILON = 1e-7

    @property
    def scale(self) -> np.ndarray:
        """The divisor ``max(sqrt(variance), epsilon)``, float32 ``(F,)``."""
        return np.maximum(np.sqrt(self.variance.astype(np.float32)), np.float32(self.EPSILON))


@dataclass(frozen=True)
class Masking:
    """``keras.layers.Masking``: a step is masked when every feature equals ``mask_value``."""

    name: str
    mask_value: float


@dataclass(frozen=True)
class GRU:
    """``keras.layers.GRU`` (tanh / sigmoid, Keras' defaults).

    ``kernel (input_dim, 3u)``, ``recurrent_kernel (u, 3u)``, ``input_bias (3u,)``,
    ``recurrent_bias (3u,)``. With ``reset_after=False`` Keras has one bias, stored as
    ``input_bias`` with ``recurrent_bias`` zero; without bias both are zero and
    ``use_bias`` is False (it only changes the parameter count).
    """

    name: str
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    input_bias: np.ndarray
    recurrent_bias: np.ndarray
    reset_after: bool = True
    use_bias: bool = True
    return_sequences: bool = False
    go_backwards: bool = False

    @property
    def units(self) -> int:
        return int(self.recurrent_kernel.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def output_dim(self) -> int:
        return self.units

    @property
    def parameter_count(self) -> int:
        u = self.units
        biases = ((6 if self.reset_after else 3) * u) if self.use_bias else 0
        return 3 * u * self.input_dim + 3 * u * u + biases

    @property
    def macs_per_step(self) -> int:
        return 3 * self.units * (self.input_dim + self.units)


@dataclass(frozen=True)
class Bidirectional:
    """``keras.layers.Bidirectional(GRU)``: ``backward`` runs with ``go_backwards=True``.

    With ``return_sequences`` the backward outputs are flipped back to input order before
    the merge, as Keras does.
    """

    name: str
    forward: GRU
    backward: GRU
    merge_mode: MergeMode = "concat"

    @property
    def return_sequences(self) -> bool:
        return self.forward.return_sequences

    @property
    def units(self) -> int:
        return self.forward.units

    @property
    def input_dim(self) -> int:
        return self.forward.input_dim

    @property
    def output_dim(self) -> int:
        return 2 * self.units if self.merge_mode == "concat" else self.units

    @property
    def parameter_count(self) -> int:
        return self.forward.parameter_count + self.backward.parameter_count

    @property
    def macs_per_step(self) -> int:
        return self.forward.macs_per_step + self.backward.macs_per_step


@dataclass(frozen=True)
class Reduction:
    """A temporal reduction of a sequence ``(N, T, D)``.

    ``mean``: ``GlobalAveragePooling1D`` (over unmasked steps when a mask is present);
    ``max``: ``GlobalMaxPooling1D``; ``flatten``: ``Flatten`` to ``(N, T * D)``;
    ``last``: the last step (``Lambda(x[:, -1])``-like, only from the frontend's own use).
    """

    name: str
    op: ReductionOp


@dataclass(frozen=True)
class Dense:
    """``keras.layers.Dense``: ``kernel (in, out)``, ``bias (out,)`` (zeros without bias)."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    activation: Activation = "linear"
    use_bias: bool = True

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])

    @property
    def parameter_count(self) -> int:
        return int(self.kernel.size) + (int(self.bias.size) if self.use_bias else 0)


Recurrent = GRU | Bidirectional
Layer = Embedding | Normalization | Masking | GRU | Bidirectional | Reduction | Dense


@dataclass(frozen=True)
class InputSpec:
    """What one example is: ``(T,)`` token ids below ``vocab``, or ``(T, F)`` float32 features.

    ``pad_value`` is what pads a shorter sequence at the front (``pad_sequences``' default
    ``padding="pre"``): 0 for tokens, the ``Masking`` value (or 0) for features.
    """

    kind: Literal["tokens", "features"]
    timesteps: int
    features: int | None = None  # F, for feature inputs
    vocab: int | None = None  # for token inputs
    pad_value: float = 0.0

    @property
    def shape(self) -> tuple[int, ...]:
        if self.kind == "tokens":
            return (self.timesteps,)
        return (self.timesteps, int(self.features or 0))


@dataclass(frozen=True)
class Task:
    """What the output means. ``classes`` is K (1 for binary and binary logits).

    binary: ``p = out``, decision ``p > 0.5``; binary_logits: ``p = sigmoid(out)``,
    decision ``out > 0``; multiclass: softmax probabilities, decision ``argmax``;
    multilabel: per-label sigmoid, decision ``p > 0.5`` per label; regression: values.
    """

    kind: TaskKind
    outputs: int
    class_names: tuple[str, ...] = ()

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"


@dataclass(frozen=True)
class ModelIR:
    """The whole model: input spec, layers in order, task, and the Keras model's name."""

    name: str
    input: InputSpec
    layers: tuple[Layer, ...]
    task: Task
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "assumed T = 100"

    # -- views backends use -------------------------------------------------------
    def of_type(self, kind: type) -> list:
        return [layer for layer in self.layers if isinstance(layer, kind)]

    @property
    def embedding(self) -> Embedding | None:
        found = self.of_type(Embedding)
        return found[0] if found else None

    @property
    def normalization(self) -> Normalization | None:
        found = self.of_type(Normalization)
        return found[0] if found else None

    @property
    def masking(self) -> Masking | None:
        found = self.of_type(Masking)
        return found[0] if found else None

    @property
    def recurrent(self) -> list[Recurrent]:
        return [layer for layer in self.layers if isinstance(layer, (GRU, Bidirectional))]

    @property
    def reduction(self) -> Reduction | None:
        found = self.of_type(Reduction)
        return found[0] if found else None

    @property
    def head(self) -> list[Dense]:
        return self.of_type(Dense)

    @property
    def masked(self) -> bool:
        """True when steps can be masked (``mask_zero`` or a ``Masking`` layer)."""
        emb = self.embedding
        return self.masking is not None or bool(emb is not None and emb.mask_zero)

    @property
    def parameter_count(self) -> int:
        total = 0
        for layer in self.layers:
            if isinstance(layer, Embedding):
                total += int(layer.table.size)
            elif isinstance(layer, Normalization):
                total += 2 * int(layer.mean.size) + 1  # Keras counts mean, variance, count
            elif isinstance(layer, (GRU, Bidirectional, Dense)):
                total += layer.parameter_count
        return total

    @property
    def macs_per_step(self) -> int:
        return sum(layer.macs_per_step for layer in self.recurrent)

    def describe(self) -> str:
        """One line, e.g. ``Embedding(10000,32) -> GRU(32) -> Dense(1,sigmoid)``."""
        parts = []
        for layer in self.layers:
            if isinstance(layer, Embedding):
                parts.append(
                    f"Embedding({layer.vocab},{layer.dim}{',mask_zero' if layer.mask_zero else ''})"
                )
            elif isinstance(layer, Normalization):
                parts.append("Normalization")
            elif isinstance(layer, Masking):
                parts.append(f"Masking({layer.mask_value:g})")
            elif isinstance(layer, GRU):
                flags = ",seq" if layer.return_sequences else ""
                flags += ",backwards" if layer.go_backwards else ""
                parts.append(f"GRU({layer.units}{flags})")
            elif isinstance(layer, Bidirectional):
                seq = ",seq" if layer.return_sequences else ""
                parts.append(f"Bidirectional(GRU({layer.units}{seq}),{layer.merge_mode})")
            elif isinstance(layer, Reduction):
                parts.append(
                    {
                        "mean": "GlobalAveragePooling1D",
                        "max": "GlobalMaxPooling1D",
                        "flatten": "Flatten",
                        "last": "Last",
                    }[layer.op]
                )
            elif isinstance(layer, Dense):
                parts.append(f"Dense({layer.units},{layer.activation})")
        source = f"Input{self.input.shape}" if self.input.kind == "features" else ""
        return " -> ".join(([source] if source else []) + parts)
