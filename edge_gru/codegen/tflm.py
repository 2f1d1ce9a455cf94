"""TFLite Micro sources for a ``.tflite`` model: the C array, an exact op resolver, the arena.

For a model directory ``DIR`` this writes

* ``model_data.h`` / ``model_data.cc``: ``alignas(16) const unsigned char g_<prefix>[]`` and
  ``g_<prefix>_len`` (the layout of TFLM's examples), plus ``k<Camel>TensorArenaSize`` and,
  in a comment, the I/O tensors' types, shapes and quantization, the task and the step
  model's state layout (:mod:`edge_gru.codegen.tflm_header`);
* ``op_resolver.h``: ``<Camel>OpResolver`` (``tflite::MicroMutableOpResolver<N>``, N = the
  number of builtin ops the flatbuffer uses) and ``Register<Camel>Ops()`` adding exactly
  those ops, read from the model with the ``tflite`` schema package.

Every symbol and include guard carries the per-model prefix (e.g. ``model_int8`` ->
``g_model_int8``, ``ModelInt8OpResolver``), so one firmware can link several models.

The arena is measured, not estimated: :func:`measure_arena` bisects ``arena_size`` in the
``tflite-micro`` interpreter (the real TFLM allocator) for the smallest arena in which
allocation and one invoke succeed, checks that a run at that size gives the same output as
a run with a large arena, and adds :data:`ARENA_MARGIN`. TFLM's ``arena_used_bytes()``
is not used: it reports the arena's head and tail after allocation and misses the
temporary memory-planner and kernel-prepare allocations, so it under-reports what
``AllocateTensors()`` needs (:func:`recorded_arena_bytes` reads that figure from TFLM's
allocation report; the tests check that an arena of that size fails). The host is 64-bit:
TFLM's per-tensor and per-node bookkeeping holds pointers, so a 32-bit MCU needs at most
what the host needs.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ir import Task
from .common import generated_header, write_text_files
from .tflm_header import StateTensor, SymbolNames, header_comment, symbol_names

ARENA_MARGIN = 1024  # bytes added to the measured minimum, then rounded up to 16
REGENERATE = ("python -m edge_gru.convert with the --recipe (or --model/--data) and --stages "
              "of the run that wrote DIR/report.json, --out DIR")
_METHOD_EXCEPTIONS = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D"}


def builtin_ops(model: bytes) -> list[str]:
    """Names of the builtin operators the model's operators use (sorted, unique)."""
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(model, 0)
    used = set()
    for s in range(m.SubgraphsLength()):
        g = m.Subgraphs(s)
        for k in range(g.OperatorsLength()):
            code = m.OperatorCodes(g.Operators(k).OpcodeIndex())
            used.add(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return sorted(used)


def resolver_method(op: str) -> str:
    """``MicroMutableOpResolver`` method for a builtin op name, e.g. SPLIT_V -> AddSplitV."""
    camel = _METHOD_EXCEPTIONS.get(op) or "".join(p.capitalize() for p in op.split("_"))
    return f"Add{camel}"


@contextlib.contextmanager
def _stderr_to(path: str) -> Iterator[None]:
    """TFLM prints failed allocations and its allocation report to fd 2 (C++ side)."""
    saved = os.dup(2)
    try:
        with open(path, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def recorded_arena_bytes(model: bytes, arena: int) -> int:
    """What TFLM's RecordingMicroAllocator reports as used (``arena_used_bytes``)."""
    from ..runners.tflm import TflmModel

    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "alloc.txt")
        with _stderr_to(log):
            m = TflmModel(model, arena)
            m.run(*[np.zeros(d["shape"], d["dtype"]) for d in m.inputs])
            m.interp.print_allocations()
        text = Path(log).read_text()
    match = re.search(r"Arena allocation total (\d+) bytes", text)
    if match is None:
        raise RuntimeError("tflite-micro printed no allocation report")
    return int(match.group(1))


def _run(model: bytes, arena: int) -> list[np.ndarray] | None:
    from ..runners.tflm import TflmModel

    try:
        with _stderr_to(os.devnull):
            m = TflmModel(model, arena)
            values = [np.zeros(d["shape"], d["dtype"]) for d in m.inputs]
            return m.run(*values)
    except (RuntimeError, ValueError):
        return None


def _runs(model: bytes, arena: int) -> bool:
    """Whether TFLM allocates and invokes ``model`` in ``arena`` bytes, probed in a child.

    Some TFLM kernels do not check a failed allocation and crash the process (seen: a
    GRU step model at a 4,096-byte arena; REDUCE_MAX/MEAN's Init at 129,792 bytes for an
    unrolled model that needs more; tflite-micro 0.dev2026),
    so a probe that may fail runs in a forked child; a signal counts as "does not run".
    """
    if not hasattr(os, "fork"):  # pragma: no cover - every platform we run on forks
        return _run(model, arena) is not None
    pid = os.fork()
    if pid == 0:  # child: no Python cleanup, only the exit status
        import faulthandler

        faulthandler.disable()  # an expected crash here is an answer, not a report
        try:
            os._exit(0 if _run(model, arena) is not None else 1)
        except BaseException:  # noqa: BLE001 - any failure means "does not run"
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@dataclass(frozen=True)
class Arena:
    """``minimum`` measured by bisection; ``size`` = minimum + margin (the constant we ship);
    ``recorded``: what TFLM's own allocation recorder reports (too small to run in)."""

    minimum: int
    size: int
    recorded: int


MAX_ARENA = 64 * 1024 * 1024


def measure_arena(model: bytes, upper: int | None = None) -> Arena:
    """Bisect the smallest ``arena_size`` with which TFLM allocates and invokes the model."""
    hi = upper or max(64 * 1024, 4 * len(model))
    # Probed in a child: too small an arena crashes some TFLM kernels (REDUCE ops' Init).
    runs = _runs(model, hi)
    while not runs and upper is None and hi < MAX_ARENA:
        hi *= 2  # a model with many live step tensors (returned sequences) needs more
        runs = _runs(model, hi)
    reference = _run(model, hi) if runs else None
    if reference is None:
        raise RuntimeError(f"TFLM cannot run the model even with a {hi}-byte arena")
    lo = 0  # known failing
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        if mid <= lo:
            break
        if not _runs(model, mid):
            lo = mid
        else:
            hi = mid
    check = _run(model, hi)
    same = check is not None and all(
        np.array_equal(a, b, equal_nan=True) for a, b in zip(check, reference)
    )
    if not same:
        raise RuntimeError("TFLM output at the measured arena differs from a large-arena run")
    size = (hi + ARENA_MARGIN + 15) // 16 * 16
    return Arena(minimum=hi, size=size, recorded=recorded_arena_bytes(model, size))


def model_data_h(model: bytes, arena: Arena, what: str, names: SymbolNames,
                 task: Task | None = None, states: tuple[StateTensor, ...] = ()) -> str:
    """``model_data.h``: declarations, the arena constant and the I/O / task / state comment."""
    guard = names.data_guard
    return (
        generated_header(f"{what}: the .tflite flatbuffer as a C array for TFLite Micro.",
                         what, REGENERATE)
        + f"\n#ifndef {guard}\n#define {guard}\n\n"
        + header_comment(model, task, states) + "\n"
        + f"extern const unsigned char {names.array}[];\n"
        + f"extern const unsigned int {names.length};\n\n"
        + "/* Bytes for the tflite::MicroInterpreter tensor arena: measured minimum "
        + f"{arena.minimum}\n * (bisected in tflite-micro) + {ARENA_MARGIN} margin, "
        + "rounded up to 16. TFLM's arena_used_bytes()\n * reports "
        + f"{arena.recorded}: it misses temporary allocations, do not size by it. */\n"
        + f"constexpr unsigned int {names.arena} = {arena.size};\n\n"
        + f"#endif  // {guard}\n"
    )


def model_data_cc(model: bytes, what: str, names: SymbolNames) -> str:
    """``model_data.cc``: the flatbuffer bytes, 12 per line, 16-byte aligned."""
    data = np.frombuffer(model, np.uint8)
    hexes = [f"0x{b:02x}" for b in data.tolist()]
    rows = [", ".join(hexes[i : i + 12]) for i in range(0, len(hexes), 12)]
    body = ",\n".join(f"    {row}" for row in rows)
    return (
        generated_header(f"{what}: {len(model)} bytes of .tflite flatbuffer.", what, REGENERATE)
        + '\n#include "model_data.h"\n\n'
        + "/* 16-byte aligned: TFLM reads the flatbuffer and its weight buffers in place. */\n"
        + f"alignas(16) const unsigned char {names.array}[] = {{\n{body}\n}};\n"
        + f"const unsigned int {names.length} = {len(model)};\n"
    )


def op_resolver_h(model: bytes, what: str, names: SymbolNames) -> str:
    """``op_resolver.h``: a resolver type sized to, and a function adding, the model's ops."""
    ops = builtin_ops(model)
    adds = "\n".join(f"  if (r.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;"
                     for op in ops)
    guard = names.resolver_guard
    return (
        generated_header(f"{what}: registers exactly the {len(ops)} builtin ops the model uses.",
                         what, REGENERATE)
        + f"\n#ifndef {guard}\n#define {guard}\n\n"
        + '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        + f"using {names.resolver} = tflite::MicroMutableOpResolver<{len(ops)}>;\n\n"
        + "/* Ops: " + ", ".join(ops) + ". */\n"
        + f"inline TfLiteStatus {names.register}({names.resolver}& r) {{\n"
        + f"{adds}\n  return kTfLiteOk;\n}}\n\n#endif  // {guard}\n"
    )


def write_tflm_sources(model: bytes, out_dir: Path, what: str, arena: Arena | None = None, *,
                       prefix: str | None = None, task: Task | None = None,
                       states: tuple[StateTensor, ...] = ()) -> Arena:
    """Write ``model_data.h``, ``model_data.cc`` and ``op_resolver.h`` into ``out_dir``.

    ``prefix`` names the C symbols (:func:`~edge_gru.codegen.tflm_header.symbol_names`;
    default: the folder's name, e.g. ``model_int8``); ``task`` and ``states`` (a step
    model's recurrent tensors) add their description to ``model_data.h``'s comment.
    ``arena`` skips the measurement. Returns the arena written.
    """
    names = symbol_names(prefix if prefix is not None else out_dir.name)
    arena = arena or measure_arena(model)
    files = {
        "model_data.h": model_data_h(model, arena, what, names, task, states),
        "model_data.cc": model_data_cc(model, what, names),
        "op_resolver.h": op_resolver_h(model, what, names),
    }
    write_text_files(out_dir, files)
    return arena
