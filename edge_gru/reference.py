"""NumPy float GRU forward pass: the equations every other stage is checked against.

For input token ids ``t_1..t_T`` (pre-padded with id 0, which is embedded like any
other token since the seed model does not mask), ``x_t = E[t_t]``, ``h_0 = 0``, and
with Keras' gate order ``[z, r, h]``, ``W`` = kernel, ``U`` = recurrent kernel,
``b_i`` = input bias, ``b_r`` = recurrent bias:

    z_t = sigmoid(x_t W_z + b_iz + h_{t-1} U_z + b_rz)
    r_t = sigmoid(x_t W_r + b_ir + h_{t-1} U_r + b_rr)
    reset_after=True  (Keras 3 default, ONNX linear_before_reset=1):
        n_t = tanh(x_t W_h + b_ih + r_t * (h_{t-1} U_h + b_rh))
    reset_after=False (the original GRU; one bias, b_r = 0):
        n_t = tanh(x_t W_h + b_ih + (r_t * h_{t-1}) U_h)
    h_t = z_t * h_{t-1} + (1 - z_t) * n_t
    p   = sigmoid(h_T . w_dense + b_dense)

Computed in float64 so the reference is more exact than any float32 runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .weights import GruWeights


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


@dataclass(frozen=True)
class ReferenceOutput:
    """Per-timestep hidden states ``(N, T, units)`` and output probabilities ``(N,)``."""

    states: np.ndarray
    probabilities: np.ndarray


def gru_step(w: GruWeights, x_proj: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One GRU step from a precomputed input projection ``x W + b_i`` of shape ``(N, 3u)``."""
    xz, xr, xh = w.gates(x_proj)
    rk = w.recurrent_kernel.astype(np.float64)
    rb = w.recurrent_bias.astype(np.float64)
    u = w.units
    hz = h @ rk[:, :u] + rb[:u]
    hr = h @ rk[:, u : 2 * u] + rb[u : 2 * u]
    z = sigmoid(xz + hz)
    r = sigmoid(xr + hr)
    if w.reset_after:
        n = np.tanh(xh + r * (h @ rk[:, 2 * u :] + rb[2 * u :]))
    else:
        n = np.tanh(xh + (r * h) @ rk[:, 2 * u :])
    return z * h + (1.0 - z) * n


def forward(w: GruWeights, ids: np.ndarray) -> ReferenceOutput:
    """Run the classifier on ``ids (N, T)`` int, returning states and probabilities."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be (N, T), got shape {ids.shape}")
    emb = w.embedding.astype(np.float64)
    # Keras' Embedding clips nothing; out-of-range ids are a caller error here.
    x_proj = emb[ids] @ w.kernel.astype(np.float64) + w.input_bias.astype(np.float64)
    n, steps = ids.shape
    h = np.zeros((n, w.units))
    states = np.empty((n, steps, w.units))
    for t in range(steps):
        h = gru_step(w, x_proj[:, t], h)
        states[:, t] = h
    logits = h @ w.dense_kernel.astype(np.float64) + float(w.dense_bias)
    return ReferenceOutput(states=states, probabilities=sigmoid(logits))


def predict(w: GruWeights, ids: np.ndarray) -> np.ndarray:
    """Probabilities only, ``(N,)``: the drift harness' predict interface."""
    return forward(w, ids).probabilities
