"""Conversion recipes: TOML files (``convert/*.toml``) holding every number a user may change.

A recipe names the model's hyper-parameters, which stages to run, and the drift gates.
Gates are ``metric = bound`` pairs; a metric in :data:`HIGHER_IS_BETTER` must be at
least its bound, every other metric at most its bound.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import EdgeGruError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPE_DIR = Path(__file__).resolve().parent.parent / "convert"
HIGHER_IS_BETTER = frozenset(
    {"agreement", "accuracy", "decision_equal_fraction", "decision_agreement_vs_litert",
     "within_8_lsb_vs_litert"}
)


@dataclass(frozen=True)
class ModelConfig:
    """The notebook's model and training set-up; every knob is a recipe key."""

    vocab: int = 10000
    embed_dim: int = 32
    units: int = 32
    maxlen: int = 100
    reset_after: bool = True
    epochs: int = 5
    batch_size: int = 32
    validation_split: float = 0.2
    learning_rate: float = 0.001
    seed: int = 42
    train_subset: int | None = None  # first N training reviews (tests); None = all

    def validate(self) -> None:
        positive = ("vocab", "embed_dim", "units", "maxlen", "epochs", "batch_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise EdgeGruError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.vocab <= 3:
            raise EdgeGruError("model.vocab must be > 3 (ids 0, 1, 2 are padding, start, OOV)")
        if not 0.0 <= self.validation_split < 1.0:
            raise EdgeGruError("model.validation_split must be in [0, 1)")
        if self.train_subset is not None and self.train_subset <= 0:
            raise EdgeGruError("model.train_subset must be positive")


DEFAULT_GATES: dict[str, dict[str, float]] = {
    "float": {"max_abs_diff": 1e-5},
    "quantized": {"accuracy_drop_pp": 0.5, "agreement": 0.99},
}


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file: model config, stage selection, gates and per-stage options."""

    name: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: tuple[str, ...] | None = None  # None = every default stage
    max_eval: int | None = None  # None = the full test set
    gates: dict[str, dict[str, float]] = field(default_factory=lambda: dict(DEFAULT_GATES))
    stage_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def gates_for(self, stage: str, kind: str) -> dict[str, float]:
        """The stage's gates: its kind's defaults, overridden by ``[stages.NAME.gates]``."""
        merged = dict(self.gates.get(kind, {}))
        merged.update(self.stage_options.get(stage, {}).get("gates", {}))
        return merged

    def options_for(self, stage: str) -> dict[str, Any]:
        return {k: v for k, v in self.stage_options.get(stage, {}).items() if k != "gates"}

    def with_overrides(self, **model_overrides: Any) -> Recipe:
        present = {k: v for k, v in model_overrides.items() if v is not None}
        model = replace(self.model, **present)
        model.validate()
        return replace(self, model=model)


def _model_config(table: dict[str, Any], source: str) -> ModelConfig:
    known = {f.name: f.type for f in fields(ModelConfig)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise EdgeGruError(f"{source}: unknown [model] key(s): {', '.join(unknown)}")
    defaults = ModelConfig()
    for key, value in table.items():
        expected = type(getattr(defaults, key)) if getattr(defaults, key) is not None else int
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise EdgeGruError(
                f"{source}: [model] {key} must be {expected.__name__}, got {value!r}"
            )
        table[key] = value
    config = ModelConfig(**table)
    config.validate()
    return config


def _number_table(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise EdgeGruError(f"{where} must be a table of metric = bound")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgeGruError(f"{where}.{key} must be a number, got {value!r}")
    return {k: float(v) for k, v in table.items()}


def parse_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe's TOML tables; every mistake becomes a one-line error."""
    known = {"name", "model", "run", "gates", "stages"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgeGruError(f"{source}: unknown top-level key(s): {', '.join(unknown)}")
    model = _model_config(dict(data.get("model", {})), source)
    run = data.get("run", {})
    stages = run.get("stages")
    if stages is not None and (
        not isinstance(stages, list) or not all(isinstance(s, str) for s in stages)
    ):
        raise EdgeGruError(f"{source}: [run] stages must be a list of stage names")
    max_eval = run.get("max_eval")
    if max_eval is not None and (not isinstance(max_eval, int) or max_eval <= 0):
        raise EdgeGruError(f"{source}: [run] max_eval must be a positive integer")
    gates = dict(DEFAULT_GATES)
    for kind, table in data.get("gates", {}).items():
        gates[kind] = _number_table(table, f"{source}: [gates.{kind}]")
    stage_options: dict[str, dict[str, Any]] = {}
    for stage, table in data.get("stages", {}).items():
        if not isinstance(table, dict):
            raise EdgeGruError(f"{source}: [stages.{stage}] must be a table")
        options = dict(table)
        if "gates" in options:
            options["gates"] = _number_table(options["gates"], f"{source}: [stages.{stage}.gates]")
        stage_options[stage] = options
    return Recipe(
        name=str(data.get("name", source)),
        model=model,
        stages=tuple(stages) if stages is not None else None,
        max_eval=max_eval,
        gates=gates,
        stage_options=stage_options,
    )


def load_recipe(path: str | Path | None) -> Recipe:
    """Read a recipe file; a bare name like ``seed`` means ``convert/seed.toml``."""
    if path is None:
        path = RECIPE_DIR / "seed.toml"
    path = Path(path)
    if not path.suffix and not path.exists():
        path = RECIPE_DIR / f"{path.name}.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise EdgeGruError(f"recipe not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgeGruError(f"recipe {path} is not valid TOML: {exc}") from exc
    return parse_recipe(data, path.name)
