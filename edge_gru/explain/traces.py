"""What a stage's trace is, and the registry of tracers: stage name -> functions that trace it.

A *tracer* re-runs one stage's artifact (read from the output folder) on a few inputs and
returns every hidden state it can read, dequantized with each tensor's own scale and zero
point, in the float reference's layout (:class:`edge_gru.reference.GruTrace`: one trace per
GRU direction, in layer order, step 0 = the first step that direction ran).

Adding a tracer (e.g. for a family int8 TFLite model)::

    from edge_gru.explain.traces import NotTraceable, register

    @register("tflite_int8_litert")
    def trace_family_int8(source: TraceSource, x: np.ndarray) -> StageTrace:
        if <not my kind of model>:
            raise NotTraceable("...")   # the next tracer registered for the stage is tried
        ...

Several tracers may serve one stage: they are tried in registration order (modules in
:data:`_MODULES` first, then later registrations) and the first that does not raise
:class:`NotTraceable` wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from ..ir import ModelIR


class NotTraceable(Exception):
    """This tracer cannot trace this stage's model; the message says why in one line."""


@dataclass(frozen=True)
class TraceSource:
    """What a tracer may read: the model, the output folder and the stage's recipe options.

    ``folder`` holds the stage artifacts as the run wrote them (``model_step_int8.tflite``,
    ``model_int8.onnx``, ...): during the main job the staging folder, with ``--explain``
    the finished output folder.
    """

    ir: ModelIR
    folder: Path
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def artifact(self, name: str) -> Path:
        """``folder / name``; raises :class:`NotTraceable` when the run did not write it."""
        path = self.folder / name
        if not path.is_file():
            raise NotTraceable(f"{name} is not in {self.folder}")
        return path


@dataclass(frozen=True)
class LayerTrace:
    """One GRU direction as a stage ran it.

    ``name`` matches the reference trace's (``gru``, ``bi/forward``, ...). ``states``:
    ``(N, S, u)`` float64 dequantized hidden states at the processing steps ``steps``
    (``(S,)`` int, ascending; all ``T`` steps for a step-by-step trace, only the last one
    when a runtime exposes no more). ``gates``: ``{"z", "r", "n"}`` each ``(N, S, u)``
    float64, when the stage exposes them, else empty.
    """

    name: str
    states: np.ndarray
    steps: np.ndarray
    gates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class StageTrace:
    """A stage's trace on ``N`` inputs: its ``outputs (N, K)`` and every readable state.

    ``how``: one line saying what ran (runtime, artifact); ``limits``: one line saying what
    the runtime does not expose, or None. ``variants``: optional copies of the IR with one
    tensor group holding the stage's dequantized weights (:mod:`.ablation`), by group name.
    """

    stage: str
    outputs: np.ndarray
    layers: tuple[LayerTrace, ...]
    how: str
    limits: str | None = None
    variants: dict[str, ModelIR] = field(default_factory=dict)


Tracer = Callable[[TraceSource, np.ndarray], StageTrace]

_TRACERS: dict[str, list[Tracer]] = {}
_MODULES = ("fixed", "tflite", "tflite_family", "onnx")  # edge_gru.explain.tracers_<name>
_loaded = False


def register(stage: str) -> Callable[[Tracer], Tracer]:
    """Decorator: add ``tracer`` for ``stage`` (tried after those registered before it)."""

    def add(tracer: Tracer) -> Tracer:
        _load()  # the built-in tracers come first, whoever registers first
        _TRACERS.setdefault(stage, []).append(tracer)
        return tracer

    return add


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in _MODULES:
            import_module(f"{__package__}.tracers_{name}")


def traced_stages() -> list[str]:
    """Names of the stages some tracer is registered for."""
    _load()
    return sorted(_TRACERS)


def trace_stage(stage: str, source: TraceSource, x: np.ndarray) -> StageTrace:
    """Trace ``stage`` on ``x`` (``(N, T)`` ids or ``(N, T, F)`` features).

    Raises :class:`NotTraceable` (the reasons of every tracer tried, joined) when none can.
    """
    _load()
    reasons: list[str] = []
    for tracer in _TRACERS.get(stage, []):
        try:
            return tracer(source, x)
        except NotTraceable as exc:
            reasons.append(str(exc))
    if not reasons:
        raise NotTraceable(f"no tracer for stage {stage}")
    raise NotTraceable("; ".join(reasons))
