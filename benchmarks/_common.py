"""What the benchmarks share: one-line errors (exit 2), input checks, scratch space, peak memory.

A benchmark reads a convert output folder and never writes into it (that folder is what
``scp -r build/`` ships): anything it makes goes to a temporary folder removed at exit.
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_gru.cli_common import EXIT_BAD_INPUT, OneLineParser, fail, quiet_tensorflow  # noqa: E402
from edge_gru.errors import EdgeGruError  # noqa: E402

quiet_tensorflow()  # before any benchmark imports TensorFlow, LiteRT or onnxruntime

CONVERT_HINT = "run python -m edge_gru.convert --out DIR first"


def parser(prog: str, doc: str | None) -> OneLineParser:
    """An argparse parser whose errors are one line and exit 2, like the commands'."""
    return OneLineParser(prog=prog, description=(doc or "").splitlines()[0])


def require_folder(folder: Path, flag: str, files: Iterable[str] = ()) -> Path:
    """``folder`` must be a directory holding ``files``; else one :class:`EdgeGruError` line."""
    if not folder.exists():
        raise EdgeGruError(f"{flag} {folder} does not exist ({CONVERT_HINT})")
    if not folder.is_dir():
        raise EdgeGruError(f"{flag} {folder} is not a directory")
    absent = [name for name in files if not (folder / name).is_file()]
    if absent:
        raise EdgeGruError(f"{flag} {folder} has no {', '.join(absent)} ({CONVERT_HINT})")
    return folder


def bundle_maxlen(folder: Path) -> int | None:
    """The padded review length the convert run used (``metadata.json``), if it says."""
    meta = folder / "metadata.json"
    if not meta.is_file():
        return None
    try:
        value = json.loads(meta.read_text()).get("maxlen")
    except (OSError, ValueError) as exc:
        raise EdgeGruError(f"cannot read {meta}: {exc}") from exc
    return int(value) if isinstance(value, int) else None


def load_seed_model(folder: Path) -> tuple[Any, Any]:
    """``(keras model, GruWeights)`` of ``folder/model.keras``; the benchmarks time the seed shape.

    Imports TensorFlow (about 0.6 GB of the resident memory every benchmark reports).
    """
    from edge_gru.model.training import extract_weights, load_model

    model = load_model(folder / "model.keras")
    maxlen = bundle_maxlen(folder)
    if maxlen is None:  # no metadata.json: the model's own fixed input length, if it has one
        shape = getattr(model, "input_shape", None)
        maxlen = shape[1] if isinstance(shape, tuple) and len(shape) > 1 else None
    try:
        weights = extract_weights(model, maxlen)
    except ValueError as exc:
        raise EdgeGruError(f"{folder / 'model.keras'}: the benchmarks time the "
                           f"Embedding -> GRU -> Dense(1) model only: {exc}") from exc
    return model, weights


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_benchmark(prog: str, body: Callable[[], int]) -> int:
    """Run a benchmark: a user error is one line on stderr and exit 2, never a traceback."""
    try:
        code = body()
    except EdgeGruError as exc:
        return fail(prog, str(exc), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return fail(prog, "interrupted", 130)
    print(f"\npeak resident memory: {peak_rss_mb():,.0f} MB")
    return code
