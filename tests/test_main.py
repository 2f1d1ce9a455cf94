"""``python -m edge_gru``: the usage of the commands, never a training run; dispatch."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_gru.__main__ import COMMANDS, main, usage

REPO = Path(__file__).resolve().parent.parent


def run_module(args: list[str], cwd: Path, pre: str = "") -> subprocess.CompletedProcess:
    """``python -m edge_gru ARGS`` in ``cwd`` (``pre``: Python run first in the process)."""
    runner = f"{pre}\nimport runpy; runpy.run_module('edge_gru', run_name='__main__')"
    argv = ["-m", "edge_gru"] if not pre else ["-c", runner]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *argv, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"]])
def test_no_arguments_prints_usage_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    done = run_module(args, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == usage() + "\n"
    for module in ("edge_gru.convert", "edge_gru.predict", "edge_gru.deploy",
                   "edge_gru.fixed_point.board"):
        assert f"python -m {module} " in done.stdout
    assert list(tmp_path.iterdir()) == []  # no build/ folder, no training


def test_every_listed_command_has_a_main() -> None:
    assert [c.name for c in COMMANDS] == ["convert", "predict", "deploy", "board"]
    for c in COMMANDS:
        assert callable(importlib.import_module(c.module).main), c.module


def test_unknown_command_is_one_line_exit_2(capsys) -> None:
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'train'" in err


def test_command_dispatches_with_its_arguments(tmp_path: Path) -> None:
    via_package = run_module(["convert", "--list-stages"], tmp_path)
    direct = subprocess.run([sys.executable, "-m", "edge_gru.convert", "--list-stages"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert via_package.returncode == direct.returncode == 0
    assert via_package.stdout == direct.stdout and "reference" in direct.stdout
    bad = run_module(["predict", "--no-such-flag"], tmp_path)
    assert bad.returncode == 2 and "python -m edge_gru.predict: error:" in bad.stderr


def test_missing_dependency_names_the_extra(tmp_path: Path) -> None:
    """A blocked import (numpy here) stands for any dependency a machine lacks."""
    done = run_module(["predict", "--model", "m.onnx", "hi"], tmp_path,
                      pre="import sys; sys.modules['numpy'] = None")
    assert done.returncode == 2
    assert done.stderr == ("python -m edge_gru predict: error: needs numpy, which is not "
                           "installed: pip install 'edge_gru[pi]'\n")
