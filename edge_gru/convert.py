"""``python -m edge_gru.convert``: train or load the GRU, build every stage, report the drift.

Exit codes: 0 all gates passed; 1 a drift gate was breached (the report is still
written); 2 bad input (missing or corrupt data, unreadable or unsupported model,
bad flag or recipe value), always as one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_common import (
    EXIT_GATE,
    EXIT_OK,
    OneLineParser,
    fail,
    non_negative_int,
    positive_int,
    quiet_tensorflow,
)
from .errors import EdgeGruError

PROG = "python -m edge_gru.convert"


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data",
        type=Path,
        help="your .npz (x_train, y_train, x_test, y_test) or the IMDB folder/file "
        "(default: the recipe's file in $EDGE_GRU_DATA, then IMDB there or in Keras' cache)",
    )
    p.add_argument("--model", type=Path, help="your trained .keras/.h5 model instead of training")
    p.add_argument("--out", type=Path, default=Path("build"), help="output folder (default build/)")
    p.add_argument(
        "--recipe",
        default=None,
        help="recipe TOML file, or the name of a shipped recipe: "
        "seed (default), basic_motions, japanese_vowels, imdb_stars",
    )
    p.add_argument(
        "--maxlen", type=positive_int, help="input length T for a model whose T is dynamic"
    )
    p.add_argument(
        "--task",
        choices=("binary", "binary_logits", "multiclass", "multilabel", "regression"),
        help="what the output means, when the output layer does not say it",
    )
    p.add_argument("--epochs", type=positive_int, help="override the recipe's epochs")
    p.add_argument("--seed", type=int, help="override the recipe's seed")
    p.add_argument("--max-eval", type=positive_int, help="evaluate on the first N test examples")
    p.add_argument("--stages", help="comma-separated stages to run (default: the recipe's)")
    p.add_argument("--list-stages", action="store_true", help="list the stages and exit")
    p.add_argument(
        "--explain",
        metavar="STAGE",
        help="only localise the drift of STAGE in the existing --out folder (no training): "
        "rewrites the report's section 'Where the drift comes from'",
    )
    p.add_argument(
        "--explain-sample",
        type=non_negative_int,
        default=300,
        metavar="N",
        help="test inputs traced per quantized stage for that section, flipped ones "
        "always included (default 300; 0: no section)",
    )
    p.add_argument(
        "--quiet", action="store_true", help="print only errors (the report is still written)"
    )
    return p


def _list_stages() -> int:
    from .stages import all_stages

    for s in all_stages():
        flag = " (opt-in)" if s.opt_in else ""
        print(f"{s.name:28s} {s.kind:9s} {s.runtime:14s} {s.description}{flag}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    """``--explain STAGE``: the localisation of one stage of an existing output folder."""
    from .explain.folder import explain_folder

    if args.explain_sample == 0:
        return fail(PROG, "--explain needs --explain-sample > 0")
    say = (lambda _m: None) if args.quiet else print
    try:
        entry = explain_folder(args.out, args.explain, args.data, args.recipe,
                               args.explain_sample, say)
    except EdgeGruError as exc:
        return fail(PROG, str(exc), exc.exit_code)
    if "not_traced" in entry:
        return fail(PROG, f"stage {args.explain} cannot be traced: {entry['not_traced']}")
    say(f"{args.explain}: traced {entry['sample']} inputs in {entry['seconds']:.1f} s; "
        f"report: {args.out / 'report.md'}")
    return EXIT_OK


CONVERTER_MODULES = ("numpy", "tensorflow", "keras", "onnx", "onnxruntime", "tqdm")


def missing_converter_modules() -> list[str]:
    """The converter's dependencies that are not installed (a Pi venv has only the runtime)."""
    import importlib.util

    return [name for name in CONVERTER_MODULES if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = missing_converter_modules()
    if missing:
        return fail(
            PROG,
            f"the converter needs {', '.join(missing)}, which is not installed: "
            "pip install 'edge_gru[convert]'",
        )
    if args.list_stages:
        return _list_stages()
    quiet_tensorflow(errors_only=args.quiet)
    if args.explain is not None:
        return _explain(args)
    from .drift.report import stage_table
    from .pipeline import ConvertOptions, run_convert

    stages = None
    if args.stages is not None:
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        if not stages:
            return fail(PROG, "--stages names no stage")
    opts = ConvertOptions(
        out=args.out,
        data=args.data,
        model=args.model,
        recipe=args.recipe,
        epochs=args.epochs,
        seed=args.seed,
        max_eval=args.max_eval,
        stages=stages,
        quiet=args.quiet,
        maxlen=args.maxlen,
        task=args.task,
        explain_sample=args.explain_sample,
    )
    try:
        result = run_convert(opts)
    except EdgeGruError as exc:
        return fail(PROG, str(exc), exc.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (edge_gru.outdir.Terminated)
        return fail(
            PROG,
            "interrupted; the output folder was left as it was",
            getattr(exc, "exit_code", 130),
        )
    doc = result.report
    if args.quiet:  # only errors: a breach below, or nothing
        for breach in doc["breaches"]:
            print(f"drift gate breached: {breach}", file=sys.stderr)
        return EXIT_OK if result.passed else EXIT_GATE
    print(stage_table(result.stages, result.task))
    if doc["float_accuracy"] is not None:
        headline = f"float accuracy {doc['float_accuracy']:.4f}"
    else:
        headline = f"float MAE {doc['float_mae']:.4g}, RMSE {doc['float_rmse']:.4g}"
    print(f"{headline}; report: {result.out / 'report.md'}")
    if not result.passed:
        for breach in result.report["breaches"]:
            print(f"drift gate breached: {breach}", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
