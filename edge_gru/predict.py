"""``python -m edge_gru.predict``: sentiment of raw reviews on a Pi, without TensorFlow.

Input (first that applies): ``--ids FILE.npy`` (an ``(N, maxlen)`` int array of encoded
reviews), ``--file FILE`` (one review per line; ``-`` = stdin), text arguments, or stdin.
Bytes that are not UTF-8 are replaced, never fatal; blank lines are (empty) reviews so
output line ``i`` always belongs to input line ``i``.

Output: one ``probability<TAB>label<TAB>text`` line per review, or with ``--json``::

    {"model": "model_int8.onnx", "runtime": "onnxruntime", "threshold": 0.5,
     "results": [{"probability": 0.97, "label": "positive"}, ...]}

(``results`` in input order; ``label`` is ``positive`` when probability > threshold.)
Exit 0 on success, 2 on bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .cli_common import EXIT_BAD_INPUT, EXIT_OK, OneLineParser, fail, positive_int
from .errors import EdgeGruError
from .runtime import Predictor
from .runtime.backends import LITERT_KERNELS

PROG = "python -m edge_gru.predict"
SNIPPET = 60


def _parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Predict review sentiment with an edge_gru bundle.")
    p.add_argument("texts", nargs="*", help="reviews to classify (default: read stdin)")
    p.add_argument("--model", required=True, type=Path,
                   help="a .onnx or .tflite file inside a convert output folder")
    p.add_argument("--file", help="read one review per line from FILE ('-' for stdin)")
    p.add_argument("--ids", type=Path, help="an (N, maxlen) int .npy of already-encoded reviews")
    p.add_argument("--batch", type=positive_int, default=256, help="reviews per model call")
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


def _inputs(args: argparse.Namespace) -> tuple[list[str] | None, np.ndarray | None]:
    ids_path: Path | None = args.ids
    file: str | None = args.file
    texts: list[str] = args.texts
    given = sum(x is not None and x != [] for x in (ids_path, file, texts))
    if given > 1:
        raise EdgeGruError("give reviews one way: text arguments, --file or --ids")
    if ids_path is not None:
        return None, _read_ids(ids_path)
    if file is not None:
        return _read_file(file), None
    if texts:
        return [_clean(t) for t in texts], None
    if sys.stdin is None or sys.stdin.isatty():
        raise EdgeGruError("no reviews: give text arguments, --file FILE, --ids FILE.npy or stdin")
    return _decode_lines(sys.stdin.buffer.read()), None


def run(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Parse ``argv``, predict, and return the JSON document (also used for text output)."""
    args = _parser().parse_args(argv)
    texts, ids = _inputs(args)
    predictor = Predictor.from_bundle(args.model, threads=args.threads, kernels=args.kernels)
    if ids is not None:
        probs = predictor.predict_ids(ids, batch=args.batch)
    else:
        probs = predictor.predict_texts(texts or [], batch=args.batch)
    results: list[dict[str, object]] = [
        {"probability": float(p), "label": predictor.label(float(p))} for p in probs
    ]
    doc: dict[str, object] = {
        "model": predictor.model_path.name,
        "runtime": predictor.runtime,
        "threshold": predictor.threshold,
        "results": results,
    }
    if args.json:
        print(json.dumps(doc))
    else:
        shown = texts if texts is not None else [""] * len(results)
        for row, text in zip(results, shown, strict=True):
            snippet = " ".join(text.split())
            snippet = snippet if len(snippet) <= SNIPPET else snippet[: SNIPPET - 3] + "..."
            print(f"{row['probability']:.4f}\t{row['label']}\t{snippet}")
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
