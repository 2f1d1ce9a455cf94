"""Saving the float Keras model so the same weights give the same bytes.

Keras writes a ``date_saved`` stamp, zip timestamps and ``shared_object_id`` values (Python
object addresses) into ``.keras`` files; all are normalised here so a rerun with the same
seed produces a byte-identical artifact. Shared ids are renumbered in order of first
appearance, which keeps their meaning (equal ids = one shared object).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _renumber_shared_ids(node: Any, mapping: dict[int, int]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "shared_object_id" and isinstance(value, int):
                value = mapping.setdefault(value, len(mapping) + 1)
            out[key] = _renumber_shared_ids(value, mapping)
        return out
    if isinstance(node, list):
        return [_renumber_shared_ids(item, mapping) for item in node]
    return node


def save_deterministic(model: Any, path: Path) -> None:
    """``model.save(path)`` with timestamps removed from the archive."""
    model.save(path)
    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, payload in sorted(members):
            if name == "metadata.json":
                meta = json.loads(payload)
                meta.pop("date_saved", None)
                payload = json.dumps(meta, sort_keys=True).encode()
            elif name == "config.json":
                config = _renumber_shared_ids(json.loads(payload), {})
                payload = json.dumps(config).encode()
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, payload)
    path.write_bytes(buffer.getvalue())
