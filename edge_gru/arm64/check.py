"""Install a deploy bundle in the arm64 userland as a Pi user would, then predict there.

:func:`prepare` copies the bundle into a private folder of the cached root file system,
runs the bundle's own offline install commands (:func:`edge_gru.deploy.install_commands`)
and records the versions pip installed; :class:`Arm64Env` then runs
``python -m edge_gru.predict --json`` in the chroot on encoded ids or raw text (text
models), on a ``.npy`` batch or on CSV files (feature models).
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..deploy import install_commands
from .binfmt import ensure_binfmt, install_interpreter
from .chroot import Workdir, qemu_cpu, run
from .errors import Arm64Unavailable
from .userland import ensure_userland, userland_info

INSTALL_TIMEOUT_S = 15 * 60
PREDICT_TIMEOUT_S = 15 * 60
VERSIONS_SCRIPT = """
import json, platform, sys
from importlib import metadata
names = ("edge_gru", "numpy", "onnxruntime", "ai-edge-litert")
found = {}
for name in names:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
found["python"] = platform.python_version()
found["machine"] = platform.machine()
found["debian"] = open("/etc/debian_version").read().strip()
print(json.dumps(found))
"""


def parse_predictions(stdout: str, expected: int, what: str) -> np.ndarray:
    """The ``(N, K)`` outputs of ``edge_gru.predict --json`` (``output`` of each result),
    checked for count; a ``null`` (non-finite) output reads as NaN."""
    try:
        doc = json.loads(stdout)
        rows = [[np.nan if v is None else float(v) for v in r["output"]] for r in doc["results"]]
        outputs = np.asarray(rows, np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise Arm64Unavailable(f"{what}: unreadable predict --json output ({exc})") from exc
    if len(outputs) != expected or (expected and outputs.ndim != 2):
        raise Arm64Unavailable(f"{what}: {len(outputs)} results, expected {expected}")
    return outputs.reshape(expected, -1)


@dataclass
class Arm64Env:
    """The bundle installed in a venv inside the arm64 root file system."""

    root: Path
    work: Workdir
    bundle: str  # bundle folder as seen inside the chroot
    venv: str
    versions: dict[str, str | None] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)  # set-up cost in CI, not Pi speed
    userland: dict = field(default_factory=dict)

    def predict_argv(self, model: str, *args: str) -> list[str]:
        return [f"{self.venv}/bin/python", "-m", "edge_gru.predict",
                "--model", f"{self.bundle}/{model}", "--json", *args]

    def _predict(self, model: str, args: Sequence[str], n: int, what: str) -> np.ndarray:
        out = run(self.root, self.predict_argv(model, *args), PREDICT_TIMEOUT_S, what)
        return parse_predictions(out, n, what)

    def predict_ids(self, model: str, ids: np.ndarray, *options: str) -> np.ndarray:
        """Run predict on encoded reviews, (N, maxlen) int32, passed as a .npy file -> (N, K).

        ``options`` are extra predict flags, e.g. ``--kernels reference``.
        """
        name = f"ids-{model}.npy"
        np.save(self.work.host / name, np.ascontiguousarray(ids, np.int32))
        return self._predict(model, ["--ids", self.work.path(name), *options], len(ids),
                             f"{model} predict --ids {' '.join(options)}".strip())

    def predict_features(self, model: str, x: np.ndarray) -> np.ndarray:
        """Run predict on padded feature sequences ``(N, T, F)`` float32, as a .npy file."""
        name = f"features-{model}.npy"
        np.save(self.work.host / name, np.ascontiguousarray(x, np.float32))
        return self._predict(model, ["--npy", self.work.path(name)], len(x),
                             f"{model} predict --npy")

    def predict_csv(self, model: str, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Run predict on ``(T_i, F)`` sequences written as CSV files (a header, a row per
        step, float32 values printed to round-trip exactly)."""
        folder = self.work.host / f"csv-{model}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        names = []
        for i, seq in enumerate(sequences):
            names.append(f"{i:05d}.csv")
            header = ",".join(f"f{j}" for j in range(np.shape(seq)[1]))
            np.savetxt(folder / names[-1], np.asarray(seq, np.float32), delimiter=",",
                       fmt="%.9g", header=header, comments="")
        paths = [self.work.path(f"csv-{model}/{n}") for n in names]
        return self._predict(model, ["--csv", *paths], len(paths), f"{model} predict --csv")

    def predict_texts(self, model: str, texts: Sequence[str]) -> np.ndarray:
        """Run predict on raw reviews, one per line in a UTF-8 file (newlines -> spaces)."""
        name = f"reviews-{model}.txt"
        (self.work.host / name).write_text(
            "".join(" ".join(t.splitlines()) + "\n" for t in texts), encoding="utf-8"
        )
        return self._predict(model, ["--file", self.work.path(name)], len(texts),
                             f"{model} predict --file")

    def close(self) -> None:
        self.work.remove()


def prepare(bundle: Path, say: Callable[[str], None] = print) -> Arm64Env:
    """binfmt -> cached userland -> copy bundle -> offline install -> record versions."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    how = ensure_binfmt()
    root = ensure_userland(say=say)
    install_interpreter(root, how)
    timings["userland"] = round(time.monotonic() - started, 1)
    work = Workdir(root)
    try:
        shutil.copytree(bundle, work.host / "bundle")
        env = Arm64Env(root, work, work.path("bundle"), work.path("venv"))
        env.userland = {**userland_info(root), "binfmt": how,
                        "qemu_cpu": None if how == "native" else qemu_cpu()}
        wheel = next((p.name for p in (bundle / "wheels").glob("edge_gru-*.whl")), None)
        if wheel is None:
            raise Arm64Unavailable(f"{bundle} holds no edge_gru wheel")
        script = " && ".join([f"cd {shlex.quote(env.bundle)}",
                              *install_commands(env.venv, True, wheel)])
        say("installing the bundle offline in the arm64 userland (pip under emulation)")
        started = time.monotonic()
        run(root, ["/bin/sh", "-c", script], INSTALL_TIMEOUT_S, "offline pip install")
        timings["install"] = round(time.monotonic() - started, 1)
        out = run(root, [f"{env.venv}/bin/python", "-c", VERSIONS_SCRIPT], 300, "version query")
        env.versions = json.loads(out)
        env.timings_s.update(timings)
        return env
    except BaseException:
        work.remove()
        raise
