"""Train the seed IMDB GRU, build every stage and print the drift table, from Python.

The same as ``python -m edge_gru.convert --out build/``, for use inside your own scripts:

    EDGE_GRU_DATA=path/to/imdb python examples/convert_seed_model.py build/
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_gru.drift.report import stage_table
from edge_gru.pipeline import ConvertOptions, run_convert


def main(out: str = "build") -> int:
    result = run_convert(ConvertOptions(out=Path(out)))
    print(stage_table(result.stages))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
