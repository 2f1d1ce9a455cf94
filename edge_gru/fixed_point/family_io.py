"""Save / load a :class:`FamilyQuant` as one ``.npz`` (``fixed_point/family_model.npz``).

The quantized model depends on calibration data (feature and hidden-layer ranges), so the
board command re-creates the bit-exact NumPy model from this file, not from the float IR.
Keys: ``input/FIELD``, ``rec{i}/forward|backward/FIELD``, ``rec{i}/FIELD``,
``dense{j}/FIELD``; scalars in the JSON ``meta`` entry. Same model -> same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGruError
from .family_scheme import FamilyQuant, QDense, QGru, QInput, QRecurrent

FILE = "family_model.npz"


def _flatten(obj: Any, prefix: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if isinstance(value, np.ndarray):
            arrays[key] = value
        elif dataclasses.is_dataclass(value):
            _flatten(value, key + "/", arrays, meta)
        elif isinstance(value, tuple):
            meta[key] = len(value)
            for i, item in enumerate(value):
                _flatten(item, f"{key}{i}/", arrays, meta)
        else:
            meta[key] = value


def save_quant(q: FamilyQuant, path: Path) -> Path:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    _flatten(q, "", arrays, meta)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    np.savez(path, **arrays)
    return path


def _build(cls: type, prefix: str, data: Any, meta: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if key in data.files:
            kwargs[f.name] = data[key]
        elif key in meta:
            kwargs[f.name] = meta[key]
        elif f.name in ("forward", "backward"):
            kwargs[f.name] = _build(QGru, key + "/", data, meta) if f"{key}/name" in meta else None
        elif f.name == "input":
            kwargs[f.name] = _build(QInput, key + "/", data, meta)
        else:
            kwargs[f.name] = None
    return cls(**kwargs)


def load_quant(path: Path) -> FamilyQuant:
    """Raises :class:`EdgeGruError` when the file is missing or not a saved family model."""
    if not Path(path).is_file():
        raise EdgeGruError(f"{path} not found: run python -m edge_gru.convert --stages "
                           "fixed_point")
    with np.load(path) as data:
        try:
            meta = json.loads(str(data["meta"]))
            q = _build(FamilyQuant, "", data, meta)
            rec = tuple(_build(QRecurrent, f"recurrent{i}/", data, meta)
                        for i in range(meta["recurrent"]))
            head = tuple(_build(QDense, f"head{i}/", data, meta) for i in range(meta["head"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EdgeGruError(f"{path} is not a saved fixed-point family model: {exc}") from exc
    return dataclasses.replace(q, recurrent=rec, head=head)
