"""NumPy float reference for the IR: the equations every other stage is checked against.

For one GRU layer with input ``x_t``, ``h_0 = 0`` and Keras' gate order ``[z, r, h]``
(``W`` = kernel, ``U`` = recurrent kernel, ``b_i`` = input bias, ``b_r`` = recurrent bias):

    z_t = sigmoid(x_t W_z + b_iz + h_{t-1} U_z + b_rz)
    r_t = sigmoid(x_t W_r + b_ir + h_{t-1} U_r + b_rr)
    reset_after=True  (Keras 3 default, ONNX linear_before_reset=1):
        n_t = tanh(x_t W_h + b_ih + r_t * (h_{t-1} U_h + b_rh))
    reset_after=False (the original GRU; one bias, b_r = 0):
        n_t = tanh(x_t W_h + b_ih + (r_t * h_{t-1}) U_h)
    h_t = z_t * h_{t-1} + (1 - z_t) * n_t

Keras' mask rules, reproduced here (keras/src/backend/tensorflow/rnn.py,
keras/src/layers/rnn/bidirectional.py): a masked step keeps the state (``h_t = h_{t-1}``)
and outputs the previous output, or zeros inside a ``Bidirectional`` that returns
sequences; ``go_backwards`` runs the reversed sequence and returns its outputs in that
reversed order, while ``Bidirectional`` flips the backward outputs back; a returned
sequence carries the mask on, a last state does not; ``GlobalAveragePooling1D`` averages
the unmasked steps, ``GlobalMaxPooling1D`` and ``Flatten`` ignore the mask.

Computed in float64 so the reference is more exact than any float32 runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ir import (
    GRU,
    Bidirectional,
    Dense,
    Embedding,
    Masking,
    ModelIR,
    Normalization,
    Reduction,
)
from .weights import GruWeights


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "softmax": softmax,
}


@dataclass(frozen=True)
class GruTrace:
    """One GRU direction's run, in processing order (step 0 = the first step it ran).

    ``states (N, T, units)``: ``h_t`` after each step (a masked step repeats the state);
    ``gates``: ``{"z", "r", "n"}`` each ``(N, T, units)`` when recorded, else empty.
    """

    name: str
    states: np.ndarray
    gates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceOutput:
    """``outputs (N, K)`` as Keras' ``predict`` gives them, and every GRU's trace.

    ``traces`` holds one :class:`GruTrace` per GRU direction in layer order (a
    ``Bidirectional`` gives ``NAME/forward`` and ``NAME/backward``). ``states`` and
    ``probabilities`` are the seed-shape views older callers use: the last trace's states
    and the single output column.
    """

    outputs: np.ndarray
    traces: tuple[GruTrace, ...]

    @property
    def states(self) -> np.ndarray:
        return self.traces[-1].states

    @property
    def probabilities(self) -> np.ndarray:
        return self.outputs[:, 0]


def gru_step(
    layer: GRU, x_proj: np.ndarray, h: np.ndarray, gates: dict[str, list] | None = None
) -> np.ndarray:
    """One GRU step from a precomputed input projection ``x W + b_i`` of shape ``(N, 3u)``."""
    u = layer.units
    rk = layer.recurrent_kernel.astype(np.float64)
    rb = layer.recurrent_bias.astype(np.float64)
    xz, xr, xh = x_proj[:, :u], x_proj[:, u : 2 * u], x_proj[:, 2 * u :]
    hz = h @ rk[:, :u] + rb[:u]
    hr = h @ rk[:, u : 2 * u] + rb[u : 2 * u]
    z = sigmoid(xz + hz)
    r = sigmoid(xr + hr)
    if layer.reset_after:
        n = np.tanh(xh + r * (h @ rk[:, 2 * u :] + rb[2 * u :]))
    else:
        n = np.tanh(xh + (r * h) @ rk[:, 2 * u :])
    if gates is not None:
        gates["z"].append(z)
        gates["r"].append(r)
        gates["n"].append(n)
    return z * h + (1.0 - z) * n


def run_gru(
    layer: GRU,
    x: np.ndarray,
    mask: np.ndarray | None,
    zero_output_for_mask: bool = False,
    record_gates: bool = False,
    name: str | None = None,
) -> tuple[np.ndarray, GruTrace]:
    """Run one GRU over ``x (N, T, D)``; returns ``(outputs (N, T, u) or (N, u), trace)``."""
    if layer.go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    x_proj = x @ layer.kernel.astype(np.float64) + layer.input_bias.astype(np.float64)
    n, steps = x.shape[:2]
    h = np.zeros((n, layer.units))
    states = np.empty((n, steps, layer.units))
    outputs = np.empty_like(states) if layer.return_sequences else None
    gates: dict[str, list] | None = {"z": [], "r": [], "n": []} if record_gates else None
    for t in range(steps):
        h_new = gru_step(layer, x_proj[:, t], h, gates)
        if mask is None:
            h = h_new
        else:
            keep = mask[:, t, None]
            h = np.where(keep, h_new, h)
        states[:, t] = h
        if outputs is not None:
            outputs[:, t] = (
                h if (mask is None or not zero_output_for_mask) else h * mask[:, t, None]
            )
    trace = GruTrace(
        name or layer.name,
        states,
        {k: np.stack(v, axis=1) for k, v in gates.items()} if gates else {},
    )
    return (outputs if outputs is not None else h), trace


def _merge(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    if mode == "ave":
        return (a + b) / 2.0
    raise ValueError(f"unknown merge_mode {mode!r}")


def _reduce(layer: Reduction, h: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if layer.op == "mean":
        if mask is None:
            return h.mean(axis=1)
        m = mask[..., None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (h * m).sum(axis=1) / m.sum(axis=1)  # all-masked: NaN, as Keras
    if layer.op == "max":
        return h.max(axis=1)
    if layer.op == "flatten":
        return h.reshape(h.shape[0], -1)
    return h[:, -1]


def _input_layer(
    layer: object, x: np.ndarray, h: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(h, mask)`` after an Embedding, Normalization or Masking layer; None for any other.

    ``x`` is the model input (the ids an Embedding looks up), ``h`` the running value.
    """
    if isinstance(layer, Embedding):
        return layer.table.astype(np.float64)[x], (x != 0) if layer.mask_zero else mask
    if isinstance(layer, Normalization):
        return (h - layer.mean.astype(np.float64)) / layer.scale.astype(np.float64), mask
    if isinstance(layer, Masking):
        keep = np.any(h != layer.mask_value, axis=-1)
        return h * keep[..., None], keep
    return None


def recurrent_input(ir: ModelIR, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The first recurrent layer's input ``(N, T, D)`` float64 and mask ``(N, T)`` or None,
    computed as :func:`forward` computes it (the input layers before the first GRU)."""
    x = np.asarray(x)
    h = x if ir.input.kind == "tokens" else x.astype(np.float64)
    mask: np.ndarray | None = None
    for layer in ir.layers:
        applied = _input_layer(layer, x, h, mask)
        if applied is None:
            break
        h, mask = applied
    return h, mask


def forward(
    model: ModelIR | GruWeights, x: np.ndarray, record_gates: bool = False
) -> ReferenceOutput:
    """Run the model on ``x``: ``(N, T)`` int ids or ``(N, T, F)`` float features.

    Raises ``ValueError`` if ``x`` has the wrong rank or feature count.
    """
    ir = model.to_ir() if isinstance(model, GruWeights) else model
    x = np.asarray(x)
    expected_rank = 2 if ir.input.kind == "tokens" else 3
    if x.ndim != expected_rank:
        raise ValueError(f"input must have rank {expected_rank}, got shape {x.shape}")
    if ir.input.kind == "features" and x.shape[-1] != ir.input.features:
        raise ValueError(f"expected {ir.input.features} features, got {x.shape[-1]}")
    h = x if ir.input.kind == "tokens" else x.astype(np.float64)
    mask: np.ndarray | None = None
    traces: list[GruTrace] = []
    for layer in ir.layers:
        applied = _input_layer(layer, x, h, mask)
        if applied is not None:
            h, mask = applied
        elif isinstance(layer, GRU):
            h, trace = run_gru(layer, h, mask, record_gates=record_gates)
            traces.append(trace)
            mask = mask if layer.return_sequences else None
        elif isinstance(layer, Bidirectional):
            seq = layer.return_sequences
            fwd, tf_ = run_gru(layer.forward, h, mask, seq, record_gates, f"{layer.name}/forward")
            bwd, tb = run_gru(layer.backward, h, mask, seq, record_gates, f"{layer.name}/backward")
            if seq:
                bwd = bwd[:, ::-1]
            h = _merge(fwd, bwd, layer.merge_mode)
            traces += [tf_, tb]
            mask = mask if seq else None
        elif isinstance(layer, Reduction):
            h = _reduce(layer, h, mask)
            mask = None
        elif isinstance(layer, Dense):
            h = ACTIVATIONS[layer.activation](
                h @ layer.kernel.astype(np.float64) + layer.bias.astype(np.float64)
            )
    return ReferenceOutput(outputs=h, traces=tuple(traces))


def predict(model: ModelIR | GruWeights, x: np.ndarray) -> np.ndarray:
    """Outputs only, ``(N, K)``: the drift harness' predict interface."""
    return forward(model, x).outputs
