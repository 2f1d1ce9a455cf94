"""The README's main job on the real data, and byte-identical artifacts across reruns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_gru.stages import all_stages

REPO = Path(__file__).resolve().parent.parent
ARTIFACT_EXCLUDE = {"report.json", "report.md"}  # hold wall-clock timings


def _convert(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_gru.convert", "--quiet", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=timeout,
    )


@pytest.mark.slow
def test_main_job_seed_recipe_full_data(tmp_path: Path, data_dir: Path) -> None:
    """The README main job: 5 epochs, every default stage, all 25,000 test reviews."""
    out = tmp_path / "build"
    started = time.perf_counter()
    proc = _convert("--out", str(out))
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "report.json").read_text())
    assert doc["float_accuracy"] >= 0.81
    assert doc["n_test"] == 25000
    expected = [s.name for s in all_stages() if not s.opt_in]
    assert [s["name"] for s in doc["stages"]] == expected
    assert all(s["passed"] for s in doc["stages"])
    print(f"\nmain job: {elapsed:.0f} s, float accuracy {doc['float_accuracy']:.4f}")
    print(proc.stdout[-4000:])


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ARTIFACT_EXCLUDE
    }


def test_same_inputs_and_seed_give_byte_identical_artifacts(tmp_path: Path, data_dir: Path) -> None:
    recipe = str(REPO / "tests" / "recipes" / "tiny.toml")
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        proc = _convert("--recipe", recipe, "--out", str(out))
        assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = (_files(o) for o in outs)
    assert sorted(first) == sorted(second)
    assert len(first) >= 5
    different = [name for name in first if first[name] != second[name]]
    assert not different, f"artifacts differ between identical runs: {different}"
