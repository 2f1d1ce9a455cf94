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

import numpy as np

from . import ir as model_ir
from .bundle import write_bundle
from .data.dataset import Dataset
from .data.imdb import DataSource, load_imdb, resolve_source
from .drift.harness import Baseline, StageResult, evaluate_stage, in_ci
from .drift.report import write_report
from .errors import EdgeGruError
from .frontend import from_keras
from .model import training as keras_model
from .model.save import save_deterministic
from .outdir import check_output, staged_output
from .recipe import Recipe, load_recipe
from .stages import select_stages
from .stages.base import BuildContext, Stage, StageUnavailable
from .weights import seed_shape_problem, seed_view

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
    maxlen: int | None = None  # the input length T for a model whose T is dynamic
    task: str | None = None  # override the task the output layer implies
    # Inputs traced per quantized stage for "Where the drift comes from" (0: no section).
    explain_sample: int = 300


@dataclass
class ConvertResult:
    out: Path
    report: dict[str, Any]
    stages: list[StageResult] = field(default_factory=list)
    task: model_ir.Task | None = None

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def _say(quiet: bool) -> Callable[[str], None]:
    return (lambda _msg: None) if quiet else (lambda msg: print(msg, flush=True))


def _is_imdb_source(data: Path | None) -> bool:
    """IMDB as today: no --data, a folder, or the Stanford tarball; an .npz is read by npz."""
    return data is None or data.is_dir() or data.name.endswith((".tar.gz", ".tgz"))


def _data_path(opts: ConvertOptions, recipe: Recipe) -> Path | None:
    if opts.data is not None:
        if not opts.data.exists():
            raise EdgeGruError(f"data path does not exist: {opts.data}")
        return opts.data
    if recipe.data_file is not None:
        from .data.imdb import default_data_dir

        base = default_data_dir()
        if base is None:
            raise EdgeGruError(
                f"recipe {recipe.name} reads {recipe.data_file} from the data folder: "
                "set $EDGE_GRU_DATA or pass --data FILE"
            )
        return base / recipe.data_file
    return None


def _imdb_dataset(source: DataSource, vocab: int, maxlen: int) -> Dataset:
    splits = load_imdb(source, vocab, maxlen)
    return Dataset(
        x_train=splits.x_train,
        y_train=splits.y_train,
        x_test=splits.x_test,
        y_test=splits.y_test,
        source=source.describe(),
        class_names=("negative", "positive"),
        word_index=source.word_index,
    )


def _load_data(
    path: Path | None, spec: model_ir.InputSpec, task: model_ir.Task, recipe: Recipe
) -> Dataset:
    """The data fitted to the model's input spec and task (checked before any training)."""
    if _is_imdb_source(path):
        if spec.kind != "tokens" or task.kind not in ("binary", "binary_logits"):
            raise EdgeGruError(
                f"the IMDB data set is binary text; this model takes {spec.kind} for a "
                f"{task.kind} task: pass --data FILE.npz"
            )
        return _imdb_dataset(resolve_source(path), int(spec.vocab or 0), spec.timesteps)
    from .data.npz import load_dataset

    assert path is not None
    return load_dataset(path, spec, task, layout=recipe.data_layout)


def _load_user_model(
    opts: ConvertOptions, recipe: Recipe, path: Path | None, say: Callable[[str], None]
) -> tuple[Any, model_ir.ModelIR, Dataset]:
    assert opts.model is not None
    loaded = keras_model.load_model(opts.model)
    ir = from_keras(
        loaded, opts.maxlen, task=opts.task or recipe.model.task,
        default_timesteps=recipe.model.maxlen,
    )
    for note in ir.notes:
        say(f"note: {note}")
    data = _load_data(path, ir.input, ir.task, recipe)
    for note in data.notes:
        say(f"note: {note}")
    if data.class_names and not ir.task.class_names:
        ir = replace(ir, task=replace(ir.task, class_names=data.class_names))
    say(
        f"loaded {opts.model.name}: {ir.describe()}, {ir.task.kind}, "
        f"{ir.parameter_count:,} parameters"
    )
    return loaded, ir, data


def _train(
    opts: ConvertOptions, recipe: Recipe, path: Path | None, say: Callable[[str], None]
) -> tuple[Any, model_ir.ModelIR, Dataset]:
    cfg = recipe.model
    verbose = 0 if opts.quiet else (1 if sys.stdout.isatty() else 2)  # one line per epoch in logs
    if cfg.layers is None:  # the seed model, on IMDB
        spec = model_ir.InputSpec("tokens", cfg.maxlen, vocab=cfg.vocab)
        data = _load_data(path, spec, model_ir.Task("binary", 1), recipe)
        say(
            f"training Embedding({cfg.vocab},{cfg.embed_dim}) -> GRU({cfg.units}) -> Dense(1) "
            f"for {cfg.epochs} epoch(s), seed {cfg.seed}"
        )
        trained = keras_model.train_model(cfg, data.x_train, data.y_train, verbose=verbose)
        return trained, from_keras(trained, task=cfg.task), data
    if path is None or _is_imdb_source(path):
        raise EdgeGruError(
            f"recipe {recipe.name} builds its own model: pass --data FILE.npz "
            "(x_train, y_train, x_test, y_test)"
        )
    from .data.npz import inspect_npz
    from .model.build import adapt_normalization, compile_for_task

    summary = inspect_npz(path, layout=recipe.data_layout)
    shape = (cfg.maxlen,) if summary.kind == "tokens" else (cfg.maxlen, int(summary.features or 0))
    regression = cfg.task == "regression" or summary.label_kind == "float_targets"
    outputs = int((summary.y_width if regression else summary.num_classes) or 1)
    model = keras_model.new_model(cfg, shape, outputs, np.zeros((1, *shape), np.float32))
    ir = from_keras(model, task=cfg.task, class_names=tuple(summary.class_names or ()))
    data = _load_data(path, ir.input, ir.task, recipe)
    for note in data.notes:
        say(f"note: {note}")
    adapt_normalization(model, data.x_train)  # built on placeholder zeros, now the real data
    compile_for_task(model, ir.task.kind, cfg.learning_rate)
    say(f"training {ir.describe()} ({ir.task.kind}) for {cfg.epochs} epoch(s), seed {cfg.seed}")
    trained = keras_model.fit(model, cfg, data.x_train, data.y_train, verbose=verbose)
    return trained, from_keras(trained, task=cfg.task, class_names=data.class_names), data


def _recipe_path(recipe: str | Path | None) -> Path | None:
    """The recipe file a user named by path (a shipped recipe's name lives in the package)."""
    if recipe is None:
        return None
    path = Path(recipe)
    return path if path.suffix or path.exists() else None


def _preflight(stages: list[Stage], named: bool, say: Callable[[str], None]) -> None:
    """Tools a selected stage needs, checked before any training.

    A stage named in ``--stages`` (or any stage in CI) that cannot run is an input error;
    a default stage is announced as skipped now, with the reason.
    """
    for stage in stages:
        if stage.preflight is None:
            continue
        try:
            stage.preflight()
        except StageUnavailable as exc:
            if named or in_ci():
                raise EdgeGruError(f"stage {stage.name} cannot run here: {exc}") from exc
            say(f"note: stage {stage.name} will be skipped: {exc}")


def _model_meta(ir: model_ir.ModelIR, trained: bool, recipe: Recipe) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "description": ir.describe(),
        "task": ir.task.kind,
        "outputs": ir.task.outputs,
        "class_names": list(ir.task.class_names),
        "input": {
            "kind": ir.input.kind,
            "timesteps": ir.input.timesteps,
            "features": ir.input.features,
            "vocab": ir.input.vocab,
            "pad_value": ir.input.pad_value,
        },
        "maxlen": ir.input.timesteps,
        "parameters": ir.parameter_count,
        "trained": trained,
        "epochs": recipe.model.epochs if trained else None,
        "seed": recipe.model.seed,
        "notes": list(ir.notes),
    }
    if seed_shape_problem(ir) is None:
        w = seed_view(ir)
        meta.update(vocab=w.vocab, embed_dim=w.embed_dim, units=w.units, reset_after=w.reset_after)
    return meta


def run_convert(opts: ConvertOptions) -> ConvertResult:
    """Run the whole pipeline; raises :class:`EdgeGruError` for bad input.

    Every check a user's input can fail (recipe, flags, stages, output folder, model,
    data) runs before training or building any stage.
    """
    say = _say(opts.quiet)
    recipe = load_recipe(opts.recipe).with_overrides(
        epochs=opts.epochs, seed=opts.seed, maxlen=opts.maxlen
    )
    if opts.max_eval is not None and opts.max_eval <= 0:
        raise EdgeGruError("--max-eval must be a positive integer")
    stages = select_stages(opts.stages if opts.stages is not None else recipe.stages)
    _preflight(stages, named=opts.stages is not None, say=say)
    check_output(opts.out, (opts.model, opts.data, _recipe_path(opts.recipe)))
    path = _data_path(opts, recipe)
    if opts.model is not None:
        model, ir, data = _load_user_model(opts, recipe, path, say)
    else:
        model, ir, data = _train(opts, recipe, path, say)
    max_eval = opts.max_eval or recipe.max_eval
    with staged_output(opts.out) as tmp:
        save_deterministic(model, tmp / MODEL_FILE)
        n = min(max_eval or len(data.x_test), len(data.x_test))
        baseline = Baseline(
            x=data.x_test[:n],
            labels=data.y_test[:n],
            outputs=keras_model.keras_predict(model, data.x_test[:n]),
            task=ir.task,
        )
        if baseline.accuracy is not None:
            say(f"float Keras accuracy {baseline.accuracy:.4f} on {n:,} test examples")
        else:
            mae, rmse = baseline.errors() or (0.0, 0.0)
            say(f"float Keras MAE {mae:.4g}, RMSE {rmse:.4g} on {n:,} test examples")
        ctx = BuildContext(
            out_dir=tmp,
            recipe=recipe,
            ir=ir,
            keras_model=model,
            data=data,
            seed=recipe.model.seed,
            quiet=opts.quiet,
        )
        results = []
        for stage in stages:
            say(f"stage {stage.name}: {stage.description}")
            result = evaluate_stage(stage, ctx, baseline, recipe, max_eval)
            if result.skipped:
                say(f"  skipped: {result.skipped}")
            results.append(result)
        localisation = None
        if opts.explain_sample > 0:
            from .explain.run import localise_results

            say(f"localising the drift of the quantized stages on {opts.explain_sample} inputs")
            localisation = localise_results(ctx, results, baseline, opts.explain_sample)
            if localisation is not None:
                say(f"  took {localisation['seconds']:.1f} s")
        meta = {
            "recipe": recipe.name,
            "data_source": data.source,
            "model": _model_meta(ir, opts.model is None, recipe),
            "float_model": MODEL_FILE,
        }
        doc = write_report(tmp, results, baseline, meta, localisation,
                           can_take=lambda stage: _stage_problem(stage, ir))
        if doc.get("advice"):
            say(f"advice: {doc['advice']}")
        write_bundle(ctx, doc)
    return ConvertResult(out=opts.out, report=doc, stages=results, task=ir.task)


def _stage_problem(name: str, model: model_ir.ModelIR) -> str | None:
    """Why the registered stage ``name`` cannot take ``model`` (one line), or None."""
    from .stages import all_stages

    stage = next((s for s in all_stages() if s.name == name), None)
    if stage is None or stage.supports is None:
        return None
    return stage.supports(model)
