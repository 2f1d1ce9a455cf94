"""Conversion recipes: TOML files holding every number a user may change.

A recipe names the model (the seed's hyper-parameters, or ``[[model.layers]]`` tables
for any model of the GRU family, see :mod:`edge_gru.model.build`), the data layout, which
stages to run, and the drift gates. Gates are ``metric = bound`` pairs judged by the
rule of :mod:`edge_gru.drift.gates`. The recipes edge_gru ships live in the package
(``edge_gru/recipes/``, found by name: ``--recipe basic_motions``); ``convert/`` in the
repository holds the same files for users to copy.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .drift.gates import HIGHER_IS_BETTER
from .errors import EdgeGruError
from .ir import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
DATA_LAYOUTS = ("auto", "keras_imdb", "ids")
__all__ = ["HIGHER_IS_BETTER", "ModelConfig", "Recipe", "load_recipe", "parse_recipe"]


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
    train_subset: int | None = None  # first N training examples (tests); None = all
    # The family: Keras layer tables (edge_gru.model.build); None = the seed model above.
    layers: tuple[dict[str, Any], ...] | None = None
    task: str | None = None  # override the task the output layer implies

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
        if self.task is not None and self.task not in TASKS:
            raise EdgeGruError(f"model.task must be one of {', '.join(TASKS)}, got {self.task!r}")


DEFAULT_GATES: dict[str, dict[str, float]] = {
    "float": {"max_abs_diff": 1e-5},
    "quantized": {"accuracy_drop_pp": 0.5, "agreement": 0.99},
    # A regression model has no decisions: its quantized stages are gated on the error.
    "quantized_regression": {"rmse_change_pct": 2.0},
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
    data_layout: str = "auto"  # how --data's npz holds x (edge_gru.data.npz)
    data_file: str | None = None  # default --data, relative to $EDGE_GRU_DATA

    def gates_for(self, stage: str, kind: str, task: str = "binary") -> dict[str, float]:
        """The stage's gates: its kind's defaults, overridden by ``[stages.NAME.gates]``.

        Quantized stages of a regression model use ``[gates.quantized_regression]``.
        """
        if kind == "quantized" and task == "regression":
            kind = "quantized_regression"
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
    layers = table.pop("layers", None)
    if layers is not None:
        if (
            not isinstance(layers, list)
            or not layers
            or not all(isinstance(x, dict) and "type" in x for x in layers)
        ):
            raise EdgeGruError(f"{source}: [[model.layers]] must be tables with a type each")
        table["layers"] = tuple(layers)
    task = table.pop("task", None)
    if task is not None:
        table["task"] = str(task)
    for key, value in table.items():
        if key in ("layers", "task"):
            continue
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
    known = {"name", "model", "run", "gates", "stages", "data"}
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
    data_table = data.get("data", {})
    if not isinstance(data_table, dict) or set(data_table) - {"layout", "file"}:
        raise EdgeGruError(f"{source}: [data] takes layout and file only")
    layout = data_table.get("layout", "auto")
    if layout not in DATA_LAYOUTS:
        raise EdgeGruError(f"{source}: [data] layout must be one of {', '.join(DATA_LAYOUTS)}")
    data_file = data_table.get("file")
    if data_file is not None and not isinstance(data_file, str):
        raise EdgeGruError(f"{source}: [data] file must be a path inside the data folder")
    return Recipe(
        data_layout=layout,
        data_file=data_file,
        name=str(data.get("name", source)),
        model=model,
        stages=tuple(stages) if stages is not None else None,
        max_eval=max_eval,
        gates=gates,
        stage_options=stage_options,
    )


def shipped_recipes() -> list[str]:
    """The names of the recipes inside the package (``--recipe NAME``)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def load_recipe(path: str | Path | None) -> Recipe:
    """Read a recipe file; a bare name like ``seed`` means the package's ``recipes/seed.toml``."""
    if path is None:
        path = RECIPE_DIR / "seed.toml"
    path = Path(path)
    if not path.suffix and not path.exists():
        path = RECIPE_DIR / f"{path.name}.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        names = ", ".join(shipped_recipes())
        raise EdgeGruError(f"recipe not found: {path} (shipped recipes: {names})") from exc
    except IsADirectoryError as exc:
        raise EdgeGruError(f"recipe {path} is a folder, not a TOML file") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgeGruError(f"recipe {path} is not valid TOML: {exc}") from exc
    return parse_recipe(data, path.name)
