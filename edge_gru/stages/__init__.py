"""The stage registry: every runtime the drift harness evaluates, in report order.

Each module below exposes ``STAGES: list[Stage]``. To add a runtime, write a module
with its stages and add it to ``_MODULES``.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import EdgeGruError
from .base import Stage

_MODULES = (
    "float_reference",
    "tflite",
    "onnx",
    "fixed_point",
    "arm64",
)


def all_stages() -> list[Stage]:
    """Every registered stage, opt-in ones included, in report order."""
    stages: list[Stage] = []
    for name in _MODULES:
        stages.extend(import_module(f"{__name__}.{name}").STAGES)
    return stages


def select_stages(names: tuple[str, ...] | list[str] | None) -> list[Stage]:
    """The stages to run: the named ones (in registry order), or all but the opt-in ones."""
    registry = all_stages()
    if names is None:
        return [s for s in registry if not s.opt_in]
    known = {s.name for s in registry}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EdgeGruError(
            f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    wanted = set(names)
    return [s for s in registry if s.name in wanted]
