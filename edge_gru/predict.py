"""``python -m edge_gru.predict``: a bundle's model on a Pi, without TensorFlow.

Input, one way per call. Text models: ``--ids FILE.npy`` (an ``(N, T)`` int array of
encoded reviews), ``--file FILE`` (one review per line; ``-`` = stdin), text arguments, or
stdin. Feature models: ``--npy FILE.npy`` holding ``(N, T', F)`` or one ``(T', F)``
sequence, or ``--csv FILE [FILE ...]``, each file one sequence with one time step per row
(``F`` columns; a header row is allowed). Sequences are padded / truncated at the front to
the model's ``T`` with the bundle's pad value, as the training data was.
Bytes that are not UTF-8 are replaced, never fatal; blank lines are (empty) reviews so
output line ``i`` always belongs to input ``i``.

Output: one line per input (``probability<TAB>label`` for binary tasks, ``label<TAB>
name=p ...`` for multiclass, ``{labels}<TAB>name=p ...`` for multilabel, the values for
regression; then the review snippet or the input's name), or with ``--json``::

    {"model": "model_int8.onnx", "runtime": "onnxruntime", "task": "binary",
     "threshold": 0.5, "class_names": [...],
     "results": [{"output": [0.97], "probability": 0.97, "label": "positive",
                  "known_tokens": 3}, ...]}

Every result has ``output`` (the ``K`` raw outputs, as Keras' ``predict``) and the task's
fields (:mod:`edge_gru.runtime.results`), plus ``known_tokens`` (text) or ``frames``
(features): how many words / steps reached the model. When none did, the output is only
the model's bias: the result's verdict is ``null``, it gets a ``note``, and a note goes to
stderr. Exit 0 on success, 2 on bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cli_common import EXIT_BAD_INPUT, EXIT_OK, OneLineParser, fail, positive_int
from .errors import EdgeGruError
from .runtime import Predictor
from .runtime.backends import LITERT_KERNELS
from .runtime.features import read_csv, read_npy
from .runtime.results import summary

PROG = "python -m edge_gru.predict"
SNIPPET = 60
NO_WORD = "no known word reached the model: the output is the model's bias, not a verdict"
NO_FRAME = "no frame reached the model: the output is the model's bias, not a verdict"
_VERDICTS = ("label", "labels")


def _parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Predict with an edge_gru bundle's model.")
    p.add_argument("texts", nargs="*", help="reviews to classify (text models; default stdin)")
    p.add_argument("--model", required=True, type=Path,
                   help="a .onnx or .tflite file inside a convert output folder")
    p.add_argument("--file", help="read one review per line from FILE ('-' for stdin)")
    p.add_argument("--ids", type=Path, help="an (N, T) int .npy of already-encoded reviews")
    p.add_argument("--npy", type=Path,
                   help="feature models: an (N, T, F) or (T, F) float .npy of sequences")
    p.add_argument("--csv", type=Path, nargs="+", metavar="FILE",
                   help="feature models: CSV files, each one sequence (a row per time step)")
    p.add_argument("--batch", type=positive_int, default=256, help="inputs per model call")
    p.add_argument("--threads", type=positive_int, default=1, help="inference threads")
    p.add_argument("--kernels", choices=LITERT_KERNELS, default="default",
                   help="LiteRT kernels for .tflite: default (optimised) or reference "
                   "(portable, the same bits on every CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _decode_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines()


def _read_file(name: str) -> list[str]:
    if name == "-":
        return _decode_lines(sys.stdin.buffer.read())
    try:
        return _decode_lines(Path(name).read_bytes())
    except OSError as exc:
        raise EdgeGruError(f"cannot read --file {name}: {exc.strerror or exc}") from exc


def _read_ids(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EdgeGruError(f"cannot read --ids {path}: {str(exc) or type(exc).__name__}") from exc


def _clean(text: str) -> str:
    """Printable on any terminal: lone surrogates from undecodable argv bytes become U+FFFD."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _snippet(text: str) -> str:
    snippet = " ".join(text.split())
    return snippet if len(snippet) <= SNIPPET else snippet[: SNIPPET - 3] + "..."


def _one_way(args: argparse.Namespace) -> None:
    given = [name for name, value in (("text arguments", args.texts), ("--file", args.file),
                                      ("--ids", args.ids), ("--npy", args.npy),
                                      ("--csv", args.csv)) if value]
    if len(given) > 1:
        raise EdgeGruError(f"give inputs one way, not {' and '.join(given)}")


def _text_inputs(args: argparse.Namespace, p: Predictor) -> tuple[np.ndarray, list[str]]:
    """Text models: ``(N, T)`` ids and one display name per input."""
    if args.npy is not None or args.csv:
        raise EdgeGruError(f"{p.model_path.name} reads text or token ids (--ids), not "
                           "feature sequences (--npy/--csv)")
    if args.ids is not None:
        ids = p.check_ids(_read_ids(args.ids))
        return ids, [""] * len(ids)
    if args.file is not None:
        texts = _read_file(args.file)
    elif args.texts:
        texts = [_clean(t) for t in args.texts]
    elif sys.stdin is None or sys.stdin.isatty():
        raise EdgeGruError("no reviews: give text arguments, --file FILE, --ids FILE.npy or stdin")
    else:
        texts = _decode_lines(sys.stdin.buffer.read())
    return p.encode(texts), [_snippet(t) for t in texts]


def _feature_inputs(args: argparse.Namespace, p: Predictor) -> tuple[list[np.ndarray], list[str]]:
    """Feature models: the ``(T_i, F)`` sequences and one display name per input."""
    if args.texts or args.file is not None or args.ids is not None:
        raise EdgeGruError(f"{p.model_path.name} reads feature sequences of {p.features} "
                           "values per step: give --npy FILE.npy or --csv FILE")
    f = int(p.features or 0)
    if args.npy is not None:
        seqs = read_npy(args.npy, f)
        return seqs, [f"{args.npy.name}[{i}]" for i in range(len(seqs))]
    if args.csv:
        return [read_csv(path, f) for path in args.csv], [path.name for path in args.csv]
    raise EdgeGruError("no sequences: give --npy FILE.npy or --csv FILE [FILE ...]")


def _mark_empty(answer: dict[str, Any], count: int, key: str, note: str) -> None:
    answer[key] = int(count)
    if count == 0:
        for verdict in _VERDICTS:
            if verdict in answer:
                answer[verdict] = None
        answer["note"] = note


def run(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Parse ``argv``, predict, and return the JSON document (also used for text output)."""
    args = _parser().parse_args(argv)
    _one_way(args)
    predictor = Predictor.from_bundle(args.model, threads=args.threads, kernels=args.kernels)
    if predictor.input_kind == "tokens":
        ids, names = _text_inputs(args, predictor)
        outputs = predictor.predict_ids(ids, batch=args.batch)
        counts, key, note = predictor.known_tokens(ids), "known_tokens", NO_WORD
    else:
        seqs, names = _feature_inputs(args, predictor)
        x = predictor.pad(seqs)
        outputs = predictor.predict_padded(x, batch=args.batch)
        counts, key, note = predictor.frames(x, [len(s) for s in seqs]), "frames", NO_FRAME
    results = predictor.answers(outputs)
    for answer, count in zip(results, counts, strict=True):
        _mark_empty(answer, int(count), key, note)
    empty = int(np.sum(np.asarray(counts) == 0))
    if empty:
        print(f"{PROG}: note: {empty} input(s): {note}", file=sys.stderr)
    doc: dict[str, object] = {
        "model": predictor.model_path.name,
        "runtime": predictor.runtime,
        "task": predictor.task.kind,
        "threshold": predictor.threshold,
        "class_names": list(predictor.task.class_names),
        "results": results,
    }
    if args.json:
        print(json.dumps(doc))
    else:
        for answer, name in zip(results, names, strict=True):
            print(f"{summary(predictor.task, answer)}\t{name}")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
    except EdgeGruError as exc:
        return fail(PROG, str(exc), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
