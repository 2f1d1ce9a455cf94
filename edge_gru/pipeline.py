"""The main job behind ``python -m edge_gru.convert``: data -> model -> stages -> report.

Kept free of argument parsing and printing so tests reach every branch without a
subprocess; the CLI only maps its result and errors to exit codes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .bundle import write_bundle
from .data.imdb import ImdbSplits, load_imdb, resolve_source
from .drift.harness import Baseline, StageResult, evaluate_stage
from .drift.report import write_report
from .errors import EdgeGruError
from .model import training as keras_model
from .model.save import save_deterministic
from .outdir import staged_output
from .recipe import Recipe, load_recipe
from .stages import select_stages
from .stages.base import BuildContext
from .weights import GruWeights

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class ConvertOptions:
    """The CLI's flags; ``None`` means "take it from the recipe"."""

    out: Path = Path("build")
    data: Path | None = None
    model: Path | None = None
    recipe: str | Path | None = None
    epochs: int | None = None
    seed: int | None = None
    max_eval: int | None = None
    stages: tuple[str, ...] | None = None
    quiet: bool = False


@dataclass
class ConvertResult:
    out: Path
    report: dict[str, Any]
    stages: list[StageResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def _say(quiet: bool) -> Callable[[str], None]:
    return (lambda _msg: None) if quiet else (lambda msg: print(msg, flush=True))


def _obtain_model(
    opts: ConvertOptions, recipe: Recipe, source: Any, say: Callable[[str], None]
) -> tuple[Any, GruWeights, Recipe, ImdbSplits]:
    """Load the user's model (its dimensions win over the recipe's) or train the seed model."""
    if opts.model is not None:
        loaded = keras_model.load_model(opts.model)
        weights = keras_model.extract_weights(
            loaded, keras_model.model_maxlen(loaded, recipe.model.maxlen)
        )
        recipe = replace(recipe, model=keras_model.config_from_weights(weights, recipe.model))
        data = load_imdb(source, recipe.model.vocab, recipe.model.maxlen)
        say(f"loaded {opts.model.name}: {loaded.count_params():,} parameters")
        return loaded, weights, recipe, data
    cfg = recipe.model
    data = load_imdb(source, cfg.vocab, cfg.maxlen)
    say(
        f"training Embedding({cfg.vocab},{cfg.embed_dim}) -> GRU({cfg.units}) -> Dense(1) "
        f"for {cfg.epochs} epoch(s), seed {cfg.seed}"
    )
    verbose = 0 if opts.quiet else (1 if sys.stdout.isatty() else 2)  # one line per epoch in logs
    trained = keras_model.train_model(cfg, data.x_train, data.y_train, verbose=verbose)
    return trained, keras_model.extract_weights(trained, cfg.maxlen), recipe, data


def run_convert(opts: ConvertOptions) -> ConvertResult:
    """Run the whole pipeline; raises :class:`EdgeGruError` for bad input."""
    say = _say(opts.quiet)
    recipe = load_recipe(opts.recipe).with_overrides(epochs=opts.epochs, seed=opts.seed)
    if opts.max_eval is not None and opts.max_eval <= 0:
        raise EdgeGruError("--max-eval must be a positive integer")
    stages = select_stages(opts.stages if opts.stages is not None else recipe.stages)
    source = resolve_source(opts.data)
    model, weights, recipe, data = _obtain_model(opts, recipe, source, say)
    max_eval = opts.max_eval or recipe.max_eval
    with staged_output(opts.out) as tmp:
        save_deterministic(model, tmp / MODEL_FILE)
        n = min(max_eval or len(data.x_test), len(data.x_test))
        baseline = Baseline(
            ids=data.x_test[:n],
            labels=data.y_test[:n],
            probabilities=keras_model.keras_predict(model, data.x_test[:n]),
        )
        say(f"float Keras accuracy {baseline.accuracy:.4f} on {n:,} test reviews")
        ctx = BuildContext(
            out_dir=tmp,
            recipe=recipe,
            weights=weights,
            keras_model=model,
            data=data,
            seed=recipe.model.seed,
            quiet=opts.quiet,
        )
        results = []
        for stage in stages:
            say(f"stage {stage.name}: {stage.description}")
            results.append(evaluate_stage(stage, ctx, baseline, recipe, max_eval))
        meta = {
            "recipe": recipe.name,
            "data_source": source.describe(),
            "model": {
                "vocab": weights.vocab,
                "embed_dim": weights.embed_dim,
                "units": weights.units,
                "maxlen": weights.maxlen,
                "reset_after": weights.reset_after,
                "parameters": weights.parameter_count,
                "trained": opts.model is None,
                "epochs": recipe.model.epochs if opts.model is None else None,
                "seed": recipe.model.seed,
            },
            "float_model": MODEL_FILE,
        }
        doc = write_report(tmp, results, baseline, meta)
        write_bundle(ctx, doc)
    return ConvertResult(out=opts.out, report=doc, stages=results)
