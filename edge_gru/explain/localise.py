"""Where a stage's drift comes from: its trace against the float64 reference, step by step.

Per GRU direction and processing step ``t`` (``h`` the reference state, ``h~`` the stage's,
both ``(N, u)`` over the ``N`` traced inputs):

* relative L2 error, pooled over inputs: ``e_t = sqrt(sum_n |h~ - h|^2) / sqrt(sum_n |h|^2)``
  (the per-layer metric of ST Edge AI Core's ``validate``, taken over time);
* mean cosine ``mean_n <h~, h> / (|h~| |h|)`` (1 when both are zero);
* the error *injected* at step ``t``: the stage's step against the float step run from the
  stage's own previous state, ``h~_t - f(h~_{t-1}, x_t)``, pooled like ``e_t`` (the first
  recurrent layer, whose input ``x_t`` is known exactly). ``e_t`` well above the injected
  error means the recurrence amplifies earlier errors.

When a stage exposes its gates, the injected error splits exactly into (with ``f`` marking
the float gates computed from ``h~_{t-1}``, ``~`` the stage's, ``a_h = h~_{t-1} U_h + b_rh``)::

    h~_t - f(h~_{t-1}, x_t) = (z~ - z)(h~_{t-1} - n~)            "z"
                            + (1 - z)(1 - n^2)(r~ - r) a_h        "r"   (through n, linearised)
                            + (1 - z)(n~ - n) - [the "r" term]    "n"   (projections, tanh, LUT)
                            + h~_t - (z~ h~_{t-1} + (1 - z~) n~)  "state rounding"

(``reset_after=False`` uses ``((r~ - r) * h~_{t-1}) U_h`` for the ``r`` term.) The dominant
gate is the term with the largest energy ``sum_{n,t} |term|^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ir import GRU, Bidirectional, ModelIR
from ..reference import GruTrace, ReferenceOutput, gru_step, recurrent_input
from .traces import LayerTrace, StageTrace

TERMS = ("z", "r", "n", "state rounding")


def pooled_relative(diff: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``sqrt(sum |diff|^2) / sqrt(sum |ref|^2)`` over axes 0 and 2 of ``(N, S, u)``: ``(S,)``."""
    num = np.sqrt(np.sum(diff**2, axis=(0, 2)))
    den = np.sqrt(np.sum(ref**2, axis=(0, 2)))
    return num / np.maximum(den, 1e-12)


def per_input_relative(diff: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``|diff_t| / rms_t |ref_t|`` per input and step, ``(N, S)``.

    Normalised by the input's RMS state norm over its steps rather than step by step, so
    the small states of the first steps do not read as large errors.
    """
    scale = np.sqrt(np.mean(np.sum(ref**2, axis=2), axis=1, keepdims=True))
    return np.linalg.norm(diff, axis=2) / np.maximum(scale, 1e-12)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over inputs of the cosine of ``a`` and ``b`` ``(N, S, u)`` per step: ``(S,)``."""
    na, nb = np.linalg.norm(a, axis=2), np.linalg.norm(b, axis=2)
    dot = np.sum(a * b, axis=2)
    both_zero = (na == 0) & (nb == 0)
    cos = np.where(both_zero, 1.0, dot / np.maximum(na * nb, 1e-300))
    return cos.mean(axis=0)


@dataclass
class LayerFindings:
    """One GRU direction's comparison; arrays are indexed like ``steps``."""

    name: str
    steps: np.ndarray  # (S,) processing steps traced
    rel_l2: np.ndarray  # (S,)
    cosine: np.ndarray  # (S,)
    per_input: np.ndarray  # (N, S) relative error per input
    injected: np.ndarray | None = None  # (S,) pooled injected error, when computable
    gate_rel_l2: dict[str, np.ndarray] = field(default_factory=dict)  # accumulated, (S,)
    shares: dict[str, float] = field(default_factory=dict)  # energy share of each term
    backward: bool = False  # processing step t reads input position T-1-t

    def first_above(self, level: float) -> int | None:
        """The first processing step whose pooled error is at least ``level``, or None."""
        hit = np.flatnonzero(self.rel_l2 >= level)
        return int(self.steps[hit[0]]) if len(hit) else None

    @property
    def dominant(self) -> str | None:
        return max(self.shares, key=lambda k: self.shares[k]) if self.shares else None

    def position(self, step: int, timesteps: int) -> int:
        """The input position processed at ``step``."""
        return timesteps - 1 - step if self.backward else step


def _first_layers(ir: ModelIR) -> dict[str, GRU]:
    """The GRU(s) of the first recurrent layer by reference trace name."""
    for layer in ir.layers:
        if isinstance(layer, GRU):
            return {layer.name: layer}
        if isinstance(layer, Bidirectional):
            return {f"{layer.name}/forward": layer.forward,
                    f"{layer.name}/backward": layer.backward}
    return {}


def _local(
    layer: GRU, x: np.ndarray, mask: np.ndarray | None, mine: LayerTrace, ref: GruTrace
) -> tuple[np.ndarray, dict[str, float]]:
    """Pooled injected error per step and the energy shares of :data:`TERMS`."""
    if layer.go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    proj = x @ layer.kernel.astype(np.float64) + layer.input_bias.astype(np.float64)
    n, steps, u = mine.states.shape
    energy = dict.fromkeys(TERMS, 0.0)
    injected = np.empty((n, steps, u))
    rk = layer.recurrent_kernel.astype(np.float64)[:, 2 * u :]
    rb = layer.recurrent_bias.astype(np.float64)[2 * u :]
    h_prev = np.zeros((n, u))
    for t in range(steps):
        rec: dict[str, list] = {"z": [], "r": [], "n": []}
        h_loc = gru_step(layer, proj[:, t], h_prev, rec)
        keep = np.ones(n, bool) if mask is None else mask[:, t]
        h_loc = np.where(keep[:, None], h_loc, h_prev)
        h_now = mine.states[:, t]
        injected[:, t] = h_now - h_loc
        if mine.gates:
            z, r, nn = rec["z"][0], rec["r"][0], rec["n"][0]
            zq, rq, nq = (mine.gates[k][:, t] for k in ("z", "r", "n"))
            a_h = h_prev @ rk + rb if layer.reset_after else ((rq - r) * h_prev) @ rk
            c_r = (1 - z) * (1 - nn**2) * ((rq - r) * a_h if layer.reset_after else a_h)
            terms = {
                "z": (zq - z) * (h_prev - nq),
                "r": c_r,
                "n": (1 - z) * (nq - nn) - c_r,
                "state rounding": h_now - (zq * h_prev + (1 - zq) * nq),
            }
            for k, v in terms.items():
                energy[k] += float(np.sum((v * keep[:, None]) ** 2))
        h_prev = h_now
    total = sum(energy.values())
    shares = {k: v / total for k, v in energy.items()} if mine.gates and total > 0 else {}
    return pooled_relative(injected, ref.states), shares


def compare_layers(ir: ModelIR, x: np.ndarray, ref: ReferenceOutput,
                   trace: StageTrace) -> list[LayerFindings]:
    """Compare every traced direction with the reference on the same inputs ``x``."""
    refs = {t.name: t for t in ref.traces}
    first = _first_layers(ir)
    inputs: tuple[np.ndarray, np.ndarray | None] | None = None
    found = []
    for mine in trace.layers:
        if mine.name not in refs:
            raise ValueError(f"{trace.stage}: trace {mine.name!r} has no reference trace")
        r = refs[mine.name]
        ref_states = r.states[:, mine.steps]
        diff = mine.states - ref_states
        item = LayerFindings(
            name=mine.name,
            steps=np.asarray(mine.steps),
            rel_l2=pooled_relative(diff, ref_states),
            cosine=mean_cosine(mine.states, ref_states),
            per_input=per_input_relative(diff, ref_states),
            gate_rel_l2={k: pooled_relative(v - r.gates[k][:, mine.steps],
                                            r.gates[k][:, mine.steps])
                         for k, v in mine.gates.items() if k in r.gates},
            backward=(first[mine.name].go_backwards if mine.name in first else
                      mine.name.endswith("/backward")),
        )
        full = len(mine.steps) == r.states.shape[1]
        if mine.name in first and full:
            if inputs is None:
                inputs = recurrent_input(ir, x)
            item.injected, item.shares = _local(first[mine.name], *inputs, mine, r)
        found.append(item)
    return found


def rounded(values: np.ndarray, digits: int = 4) -> list[float]:
    """JSON-friendly floats with ``digits`` significant digits."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, np.float64)]


def layer_json(item: LayerFindings, level: float) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "layer": item.name,
        "steps": [int(s) for s in item.steps],
        "first_step_above_level": item.first_above(level),
        "final_rel_l2": float(f"{item.rel_l2[-1]:.4g}"),
        "peak_step": int(item.steps[int(np.argmax(item.rel_l2))]),
        "peak_rel_l2": float(f"{item.rel_l2.max():.4g}"),
        "final_cosine": float(f"{item.cosine[-1]:.6g}"),
        "rel_l2": rounded(item.rel_l2),
        "cosine": rounded(item.cosine, 6),
    }
    if item.injected is not None:
        doc["injected_rel_l2"] = rounded(item.injected)
        # > 1: the recurrence carries and amplifies earlier steps' errors
        doc["amplification"] = float(f"{item.rel_l2.mean() / max(item.injected.mean(), 1e-12):.3g}")
    if item.gate_rel_l2:
        doc["gate_rel_l2_final"] = {k: float(f"{v[-1]:.4g}") for k, v in item.gate_rel_l2.items()}
        doc["gate_rel_l2_mean"] = {k: float(f"{v.mean():.4g}") for k, v in item.gate_rel_l2.items()}
    if item.shares:
        doc["injected_error_shares"] = {k: round(v, 4) for k, v in item.shares.items()}
        doc["dominant"] = item.dominant
    return doc
