"""One int8 range per GRU step role, from the float reference on calibration reviews.

The converter calibrates every tensor of every unrolled step separately, so step 7's
gate input gets another scale than step 8's: each step then needs its own quantization
tables and its own re-quantized bias copy in the ``.tflite``. Giving each role (e.g. "the
``[z, r]`` gate input") one range over all steps and all calibration reviews makes the
steps' descriptions identical, which :mod:`edge_gru.tflite.rewrite` stores once; the
ranges enter the graph as ``fake_quant`` ops (see :func:`edge_gru.tflite.unroll.unrolled_function`),
which the converter turns into the tensors' quantization.
"""

from __future__ import annotations

import numpy as np

from .. import reference
from ..weights import GruWeights
from .unroll import split_params

Ranges = dict[str, tuple[float, float]]


def role_ranges(w: GruWeights, calibration_ids: np.ndarray) -> Ranges:
    """``{role: (min, max)}`` of steps ``1..T-1`` (the state ``h``: all steps), min <= 0 <= max."""
    ids = np.asarray(calibration_ids)
    p = {k: v.astype(np.float64) for k, v in split_params(w).items()}
    u = w.units
    states = reference.forward(w, ids).states
    x = p["embedding"][ids]
    xzr = (x @ p["w_zr"] + p["b_zr"])[:, 1:]
    xh = (x @ p["w_h"] + p["b_h"])[:, 1:]
    h = states[:, :-1]
    azr = h @ p["u_zr"]
    gzr = xzr + azr
    zr = reference.sigmoid(gzr)
    z, r = zr[..., :u], zr[..., u:]
    roles = {"azr": azr, "gzr": gzr}
    if w.reset_after:
        hh = h @ p["u_h"] + p["rb_h"]
        roles.update(hh=hh, rhh=r * hh)
    else:
        rh = r * h
        roles.update(rh=rh, rhh=rh @ p["u_h"])
    roles["gh"] = xh + roles["rhh"]
    n = np.tanh(roles["gh"])
    roles.update(d=h - n, zd=z * (h - n), h=states)
    return {k: (min(float(v.min()), 0.0), max(float(v.max()), 0.0)) for k, v in roles.items()}
