"""What every edge_gru command shares: one-line errors and exit codes, no tracebacks."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_OK = 0
EXIT_GATE = 1
EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (and exits 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def fail(prog: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def quiet_tensorflow(errors_only: bool = False) -> None:
    """Silence TensorFlow/absl/LiteRT/tf2onnx/onnxruntime chatter; call before importing them.

    Always: their C++ INFO/WARNING logs, their Python warnings and log records below
    ERROR, and the C++ lines no setting reaches (see :mod:`edge_gru.noise`). With
    ``errors_only`` (``--quiet``): every Python warning and every log record below ERROR.
    What is left on stderr is errors: ours (one line) and real failures of those tools.
    """
    from . import noise

    noise.set_library_env()
    noise.silence_python(errors_only)
    noise.filter_native_stderr()


def progress_enabled(quiet: bool) -> bool:
    """Draw progress bars only for a person: not ``--quiet`` and stderr is a terminal.

    Otherwise (a log file, CI, a pipe) a caller prints one line per stage instead: bars
    redrawn with ``\\r`` turn into junk in a log.
    """
    from .noise import stderr_is_terminal

    return not quiet and stderr_is_terminal()
