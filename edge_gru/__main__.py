"""``python -m edge_gru``: the list of commands; ``python -m edge_gru COMMAND ...`` runs one.

Alone (or with ``-h``/``--help``) it prints the usage below and exits 0: it never starts
work. ``python -m edge_gru convert --out build/`` is the same as
``python -m edge_gru.convert --out build/``; an unknown command is one line on stderr and
exit 2. Commands are imported only when run, so the list shows even where a command's
dependencies (TensorFlow for ``convert``, pyserial for ``board``) are not installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .cli_common import EXIT_BAD_INPUT, EXIT_OK


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # run as ``python -m MODULE``; it has ``main(argv) -> int`` (or raises SystemExit)
    summary: str
    example: str
    extra: str  # the pip extra that brings its dependencies


COMMANDS = (
    Command("convert", "edge_gru.convert",
            "train or load the Keras GRU, build every stage, report the accuracy drift",
            "--out build/ [--model my.keras] [--recipe seed] [--quiet]",
            "convert"),
    Command("predict", "edge_gru.predict",
            "classify reviews with a converted .onnx/.tflite model, without TensorFlow",
            '--model build/model_int8.onnx "A moving film."', "pi"),
    Command("deploy", "edge_gru.deploy",
            "pack a convert output into the folder you copy to a Raspberry Pi",
            "--from build/ --out pi_bundle/ [--offline-wheels]", "convert"),
    Command("board", "edge_gru.fixed_point.board",
            "score reviews on a board (or QEMU) running the fixed-point firmware, over UART",
            '--port /dev/ttyACM0 --bundle build/ "Great film."', "convert"),
)


def usage() -> str:
    """The text ``python -m edge_gru`` prints: each command, what it does, an example."""
    lines = ["usage: python -m edge_gru COMMAND [ARGS...]   (or python -m MODULE [ARGS...])",
             "", "commands:"]
    for c in COMMANDS:
        lines += [f"  {c.name:8s} {c.summary}",
                  f"  {'':8s} python -m {c.module} {c.example}"]
    lines += ["", "Each command's own --help lists all its options, e.g.",
              "  python -m edge_gru.convert --help"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return EXIT_OK
    by_name = {c.name: c for c in COMMANDS}
    command = by_name.get(args[0])
    if command is None:
        names = ", ".join(by_name)
        print(f"python -m edge_gru: error: unknown command {args[0]!r} (choose from {names}); "
              "run python -m edge_gru for the usage", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        code = importlib.import_module(command.module).main(args[1:])
    except ModuleNotFoundError as exc:
        if (exc.name or "edge_gru").split(".")[0] == "edge_gru":
            raise  # our own module missing is a bug, not an install problem
        print(f"python -m edge_gru {command.name}: error: needs {exc.name}, which is not "
              f"installed: pip install 'edge_gru[{command.extra}]'", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
