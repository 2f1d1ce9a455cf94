"""GRU and Bidirectional(GRU) layers as native ONNX ``GRU`` nodes, masks included.

Tensors are time-major here: a sequence is ``(T, N, D)`` float32 (the layout of the ONNX
``GRU`` operator), a mask ``(T, N)`` float32 holding 1 for a step that counts and 0 for a
masked one.

Parameters (ONNX GRU, opset 7+ definition): Keras and ONNX both order the gates
``[z, r, h]``; ``W = kernel^T (3u, D)``, ``R = recurrent_kernel^T (3u, u)``,
``B = [input_bias, recurrent_bias] (6u,)``, one row per direction. ``reset_after=True`` is
``linear_before_reset=1`` (``r * (h U_h + b_rh)``); ``reset_after=False`` is
``linear_before_reset=0`` with Keras' single bias in ``Wb`` and ``Rb = 0``.

Directions: ``go_backwards`` is ONNX ``direction="reverse"``. Both reverse the sequence and
give the same last state, but ONNX returns ``Y`` in *input* order (``Y[t]`` = the state after
processing steps ``T-1 .. t``) while Keras returns the outputs in *processing* order, so a
``go_backwards`` sequence is flipped after the node. ``Bidirectional`` is one
``direction="bidirectional"`` node: ``Y[:, 1]`` is already the backward sequence flipped
back to input order, which is what Keras merges.

Masks (a masked step keeps the state; ``keras/src/backend/tensorflow/rnn.py``): ONNX's
``sequence_lens`` only says "the first L steps count", whereas Keras pads at the *front*
and a ``Masking`` layer may mask any step. The steps that count are therefore moved to the
front first, in their order, by a stable permutation (``TopK`` of ``mask * T + (T-1-t)``:
distinct integer keys, so the order is exact), and ``sequence_lens = L`` (the count,
clamped to >= 1 so no runtime sees a zero length; a row with no step left gets the zero
state by a multiply). The node then runs exactly the steps Keras runs, with the native
kernel. The alternatives were worse: an unrolled cell (graph size grows with T, and no
native kernel), or a ``Scan``/``Loop`` body (tf2onnx's ``Loop`` graph of the seed model is
~20x slower at batch 1, see :mod:`.export`). Outputs are moved back: with ``c_t`` the number
of counted steps up to and including ``t``, the forward output at ``t`` is compact state
``c_t - 1`` (zero before the first counted step),
the reverse output compact state ``c_t - m_t`` (zero after
the last one) -- a masked step repeats the neighbouring state, as Keras does -- and inside
a ``Bidirectional`` that returns sequences masked steps output zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import GRU, Bidirectional
from .builder import GraphBuilder


def onnx_gru_params(layers: list[GRU]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W (dirs, 3u, D)``, ``R (dirs, 3u, u)``, ``B (dirs, 6u)`` float32, one row per layer."""
    w = np.stack([np.asarray(g.kernel, np.float32).T for g in layers])
    r = np.stack([np.asarray(g.recurrent_kernel, np.float32).T for g in layers])
    b = np.stack([np.concatenate([g.input_bias, g.recurrent_bias]).astype(np.float32)
                  for g in layers])
    return np.ascontiguousarray(w), np.ascontiguousarray(r), np.ascontiguousarray(b)


@dataclass
class Mask:
    """A ``(T, N)`` float mask and, built on first use, what the GRU nodes need from it."""

    values: str
    steps: int
    _cache: dict[str, str] = field(default_factory=dict)

    def _get(self, g: GraphBuilder, key: str) -> str:
        if key not in self._cache:
            self._cache[key] = getattr(self, f"_build_{key}")(g)
        return self._cache[key]

    def count(self, g: GraphBuilder) -> str:
        """``L (N,)`` float32: the steps that count per sequence."""
        return self._get(g, "count")

    def _build_count(self, g: GraphBuilder) -> str:
        return g.op("ReduceSum", [self.values, g.i64(0)], "mask_count", keepdims=0)

    def seq_lens(self, g: GraphBuilder) -> str:
        """``max(L, 1) (N,)`` int32 for the ``sequence_lens`` input."""
        return self._get(g, "seq_lens")

    def _build_seq_lens(self, g: GraphBuilder) -> str:
        at_least_one = g.op("Max", [self.count(g), g.f32(1.0)], "seq_lens_f")
        return g.op("Cast", [at_least_one], "seq_lens", to=6)  # INT32

    def any_step(self, g: GraphBuilder) -> str:
        """``(N, 1)`` float32: 1 when at least one step counts (else the state stays zero)."""
        return self._get(g, "any_step")

    def _build_any_step(self, g: GraphBuilder) -> str:
        some = g.op("Min", [self.count(g), g.f32(1.0)], "mask_any")
        return g.op("Unsqueeze", [some, g.i64(1)], "mask_any_n1")

    def order(self, g: GraphBuilder) -> str:
        """``(T, N)`` int64: source step of each compact position (counted steps first)."""
        return self._get(g, "order")

    def _build_order(self, g: GraphBuilder) -> str:
        t = self.steps
        later_first = g.const("step_rank", np.arange(t - 1, -1, -1, dtype=np.float32)[:, None])
        keys = g.op("Add", [g.op("Mul", [self.values, g.f32(float(t))], "mask_key"),
                            later_first], "compact_key")
        _, order = g.op("TopK", [keys, g.i64(t)], "compact", outputs=2,
                        axis=0, largest=1, sorted=1)
        return order

    def counted_before(self, g: GraphBuilder, inclusive: bool) -> str:
        """``c_t`` (``inclusive``) or ``c_t - m_t`` as ``(T, N, 1)`` int64 gather indices."""
        return self._get(g, "cum_incl" if inclusive else "cum_excl")

    def _cum(self, g: GraphBuilder, exclusive: int) -> str:
        cum = g.op("CumSum", [self.values, g.const("axis0", np.asarray(0, np.int64))],
                   "mask_cumsum", exclusive=exclusive)
        index = g.op("Cast", [cum], "mask_cum_i64", to=7)  # INT64
        return g.op("Unsqueeze", [index, g.i64(2)], "mask_cum_idx")

    def _build_cum_incl(self, g: GraphBuilder) -> str:
        return self._cum(g, 0)

    def _build_cum_excl(self, g: GraphBuilder) -> str:
        return self._cum(g, 1)

    def compact_valid(self, g: GraphBuilder) -> str:
        """``(T, N, 1)`` float32: 1 at compact positions ``j < L``."""
        return self._get(g, "compact_valid")

    def _build_compact_valid(self, g: GraphBuilder) -> str:
        positions = g.const("step_index", np.arange(self.steps, dtype=np.float32)[:, None])
        valid = g.op("Less", [positions, self.count(g)], "compact_valid_b")
        return g.op("Unsqueeze", [g.op("Cast", [valid], "compact_valid_f", to=1), g.i64(2)],
                    "compact_valid")

    def column(self, g: GraphBuilder) -> str:
        """The mask as ``(T, N, 1)`` for broadcasting over features."""
        return self._get(g, "column")

    def _build_column(self, g: GraphBuilder) -> str:
        return g.op("Unsqueeze", [self.values, g.i64(2)], "mask_column")


def _gather_steps(g: GraphBuilder, x: str, index: str, width: int, prefix: str) -> str:
    """``x[index[t, n], n, :]`` over the time axis; ``index`` is ``(T, N, 1)`` int64."""
    full = g.op("Expand", [index, g.i64(1, 1, width)], f"{prefix}_idx")
    return g.op("GatherElements", [x, full], prefix, axis=0)


def _flip_time(g: GraphBuilder, x: str, steps: int) -> str:
    return g.op("Slice", [x, g.i64(steps - 1), g.i64(-steps - 1), g.i64(0), g.i64(-1)], "flip")


def _compact(g: GraphBuilder, x: str, width: int, mask: Mask) -> str:
    order = g.op("Unsqueeze", [mask.order(g), g.i64(2)], "compact_order")
    return _gather_steps(g, x, order, width, "compact_x")


def _gru_node(g: GraphBuilder, x: str, width: int, layers: list[GRU], direction: str,
              mask: Mask | None, prefix: str) -> tuple[str, str]:
    """One ONNX GRU node over ``x (T, N, width)``: ``(Y (T, dirs, N, u), Y_h (dirs, N, u))``."""
    w, r, b = onnx_gru_params(layers)
    inputs = [x, g.const(f"{prefix}_W", w), g.const(f"{prefix}_R", r), g.const(f"{prefix}_B", b)]
    if mask is not None:
        inputs[0] = _compact(g, x, width, mask)
        inputs.append(mask.seq_lens(g))
    y, y_h = g.op("GRU", inputs, prefix, outputs=2, hidden_size=layers[0].units,
                  direction=direction, linear_before_reset=int(layers[0].reset_after))
    return y, y_h


def _expand_sequence(g: GraphBuilder, y: str, units: int, mask: Mask, reverse: bool,
                     zero_masked: bool) -> str:
    """Compact outputs ``(T, N, u)`` back to input positions (see the module docstring)."""
    valid = g.op("Mul", [y, mask.compact_valid(g)], "y_valid")
    pads = [0, 0, 0, 1, 0, 0] if reverse else [1, 0, 0, 0, 0, 0]  # zero state after / before
    padded = g.op("Pad", [valid, g.i64(*pads)], "y_padded")
    out = _gather_steps(g, padded, mask.counted_before(g, inclusive=not reverse), units, "y_seq")
    return g.op("Mul", [out, mask.column(g)], "y_zeroed") if zero_masked else out


def gru_layer(g: GraphBuilder, x: str, width: int, layer: GRU, mask: Mask | None,
              steps: int, zero_masked: bool = False) -> str:
    """One Keras GRU: ``(N, u)`` last state, or ``(T, N, u)`` in Keras' output order."""
    direction = "reverse" if layer.go_backwards else "forward"
    y, y_h = _gru_node(g, x, width, [layer], direction, mask, "gru")
    if not layer.return_sequences:
        last = g.op("Squeeze", [y_h, g.i64(0)], "gru_last")
        return last if mask is None else g.op("Mul", [last, mask.any_step(g)], "gru_last_m")
    seq = g.op("Squeeze", [y, g.i64(1)], "gru_seq")
    if mask is not None:
        seq = _expand_sequence(g, seq, layer.units, mask, layer.go_backwards, zero_masked)
    return _flip_time(g, seq, steps) if layer.go_backwards else seq


def _merge(g: GraphBuilder, a: str, b: str, mode: str) -> str:
    """Keras' merge modes (keras/src/layers/rnn/bidirectional.py)."""
    if mode == "concat":
        return g.op("Concat", [a, b], "merge_concat", axis=-1)
    if mode == "sum":
        return g.op("Add", [a, b], "merge_sum")
    if mode == "mul":
        return g.op("Mul", [a, b], "merge_mul")
    if mode == "ave":
        return g.op("Div", [g.op("Add", [a, b], "merge_add"), g.f32(2.0)], "merge_ave")
    raise ValueError(f"unknown merge_mode {mode!r}")


def _native_bidirectional(layer: Bidirectional) -> bool:
    """One ``bidirectional`` node expresses the layer exactly (Keras' usual construction)."""
    fwd, bwd = layer.forward, layer.backward
    return (not fwd.go_backwards and bwd.go_backwards and fwd.reset_after == bwd.reset_after
            and fwd.units == bwd.units)


def bidirectional_layer(g: GraphBuilder, x: str, width: int, layer: Bidirectional,
                        mask: Mask | None, steps: int) -> str:
    """``Bidirectional(GRU)``: merged ``(N, D)`` last states or ``(T, N, D)`` sequences."""
    seq = layer.return_sequences
    if not _native_bidirectional(layer):  # e.g. a go_backwards GRU wrapped: two nodes
        a = gru_layer(g, x, width, layer.forward, mask, steps, zero_masked=seq)
        b = gru_layer(g, x, width, layer.backward, mask, steps, zero_masked=seq)
        return _merge(g, a, _flip_time(g, b, steps) if seq else b, layer.merge_mode)
    y, y_h = _gru_node(g, x, width, [layer.forward, layer.backward], "bidirectional", mask,
                       "bigru")
    if not seq:
        fwd = g.op("Gather", [y_h, g.const("idx0", np.asarray(0, np.int64))], "bigru_fwd", axis=0)
        bwd = g.op("Gather", [y_h, g.const("idx1", np.asarray(1, np.int64))], "bigru_bwd", axis=0)
        if mask is not None:
            fwd = g.op("Mul", [fwd, mask.any_step(g)], "bigru_fwd_m")
            bwd = g.op("Mul", [bwd, mask.any_step(g)], "bigru_bwd_m")
        return _merge(g, fwd, bwd, layer.merge_mode)
    if mask is not None:
        # Compact position c_t - 1 holds both directions' state at an unmasked step t;
        # masked steps output zeros in a Bidirectional, whatever is gathered there.
        at = g.op("Sub", [mask.counted_before(g, inclusive=True), g.i64(1)], "bigru_at")
        at = g.op("Max", [at, g.const("zero_i64", np.zeros(1, np.int64))], "bigru_at0")
        index = g.op("Unsqueeze", [at, g.i64(1)], "bigru_at4")  # (T, 1, N, 1)
        full = g.op("Expand", [index, g.i64(1, 2, 1, layer.units)], "bigru_idx")
        y = g.op("GatherElements", [y, full], "bigru_seq", axis=0)
        y = g.op("Mul", [y, g.op("Unsqueeze", [mask.column(g), g.i64(1)], "mask_col4")],
                 "bigru_zeroed")
    fwd, bwd = g.op("Split", [y, g.i64(1, 1)], "bigru_dirs", outputs=2, axis=1)
    fwd = g.op("Squeeze", [fwd, g.i64(1)], "bigru_fwd_seq")
    bwd = g.op("Squeeze", [bwd, g.i64(1)], "bigru_bwd_seq")
    return _merge(g, fwd, bwd, layer.merge_mode)
