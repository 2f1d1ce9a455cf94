"""Keep third-party chatter (TensorFlow, absl, LiteRT, tf2onnx, onnxruntime) off stderr.

Three layers, all set up before those libraries are imported:

* environment: ``TF_CPP_MIN_LOG_LEVEL=3`` turns off the absl/TSL C++ INFO and WARNING
  lines of TensorFlow and LiteRT (both read it when their shared objects load);
* Python: warnings and ``logging`` records of those packages (all of them with
  ``errors_only``: every warning, every logger below ERROR);
* native lines no setting reaches: TFLite's minimal logger (``INFO: Created TensorFlow
  Lite XNNPACK delegate for CPU.``) and the MLIR quantizer's ``fully_quantize: 0, ...``
  are written straight to file descriptor 2 from C++. :func:`filter_native_stderr` points
  fd 2 at a pipe read by a small filter process that drops exactly those lines and
  passes every other byte through (errors from C++, compilers, QEMU, tracebacks ...).
  A process rather than a thread: what was written before a crash still comes out.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import warnings

# Starts of lines that only ever carry information, written by C++ past every log setting:
# TFLite's minimal logger at INFO level, the MLIR quantizer's summary of its options.
NATIVE_NOISE = ("INFO: ", "fully_quantize: ")
THIRD_PARTY = ("tensorflow", "tf_keras", "keras", "absl", "tf2onnx", "onnxruntime", "onnx",
               "ai_edge_litert", "tflite_micro", "h5py", "matplotlib", "jax")
_state: dict[str, object] = {}


def set_library_env() -> None:
    """C++ log levels of TensorFlow and LiteRT; an explicit user setting wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def silence_python(errors_only: bool) -> None:
    """Third-party warnings and log records below ERROR off; with ``errors_only``, all warnings."""
    pattern = "|".join(THIRD_PARTY)
    if errors_only:
        warnings.simplefilter("ignore")
    else:
        warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    if errors_only:  # onnxruntime.quantization logs its pre-processing hint at the root
        logging.getLogger().setLevel(logging.ERROR)


# The filter process: stdin (the pipe behind fd 2) to stdout (the real stderr). A line
# that starts with one of argv[1:] is dropped; every other byte is passed on as soon as
# its line cannot be noise any more (so a progress bar redrawn with \r stays live).
# It ignores SIGINT/SIGTERM/SIGHUP and ends at EOF, i.e. when every process holding
# fd 2 has closed it or died: what the main process wrote before a crash still comes
# out, and a Ctrl-C cannot make its writes fail. It never stops reading before EOF: a
# full pipe would block every writer of stderr.
FILTER = r"""
import os, signal, sys
for name in ("SIGINT", "SIGTERM", "SIGHUP"):
    if hasattr(signal, name):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
prefixes = [p.encode() for p in sys.argv[1:]]
writable = True
def put(data):
    global writable
    while data and writable:
        try:
            data = data[os.write(1, data):]
        except OSError:
            writable = False
def decide(line, ended):
    body = line[:-1] if ended else line
    if any(body.startswith(p) for p in prefixes):
        return "drop"
    if not ended and any(p.startswith(body) for p in prefixes):
        return "wait"
    return "pass"
line, mode = b"", "wait"
while True:
    try:
        chunk = os.read(0, 65536)
    except InterruptedError:
        continue
    except OSError:
        break
    if not chunk:
        break
    out, i = [], 0
    while i < len(chunk):
        nl = chunk.find(b"\n", i)
        end = len(chunk) if nl < 0 else nl + 1
        part, i = chunk[i:end], end
        ended = part.endswith(b"\n")
        if mode == "pass":
            out.append(part)
        elif mode == "wait":
            line += part
            mode = decide(line, ended)
            if mode == "pass":
                out.append(line)
        if ended:
            line, mode = b"", "wait"
    put(b"".join(out))
if line and mode == "wait" and decide(line, True) == "pass":
    put(line)
"""


def _restore(real_fd: int, filter_process: subprocess.Popen) -> None:
    """At exit: fd 2 back to the real stderr (the pipe's last writer here), let the filter drain."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os.dup2(real_fd, 2)
    try:
        filter_process.wait(timeout=2.0)  # a child still holding the pipe must not hold us up
    except subprocess.TimeoutExpired:
        pass


def filter_native_stderr() -> bool:
    """Route fd 2 through a noise filter process for the rest of this process; True if active.

    Everything written to stderr (Python's and C++'s, and by child processes) goes through
    one pipe, so its order is kept. Not installed (False) when ``sys.stderr`` is not the
    process's own (a test runner capturing output) or the filter cannot start. Idempotent.
    """
    if "filter" in _state:
        return True
    if sys.stderr is None or sys.stderr is not sys.__stderr__:
        return False
    try:
        sys.stderr.flush()
        real_fd = os.dup(2)
        read_fd, write_fd = os.pipe()
    except (OSError, ValueError):
        return False
    try:
        process = subprocess.Popen(
            [sys.executable, "-S", "-c", FILTER, *NATIVE_NOISE],
            stdin=read_fd, stdout=real_fd, stderr=real_fd, close_fds=True,
        )
    except OSError:
        for fd in (real_fd, read_fd, write_fd):
            os.close(fd)
        return False
    os.close(read_fd)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _state["filter"] = process
    _state["real_fd"] = real_fd
    atexit.register(_restore, real_fd, process)
    return True


def stderr_is_terminal() -> bool:
    """Whether the real stderr (behind the filter, if any) is a terminal a person watches."""
    real_fd = _state.get("real_fd")
    try:
        if isinstance(real_fd, int):
            return os.isatty(real_fd)
        return sys.stderr.isatty()
    except (AttributeError, OSError, ValueError):  # closed, or an object without isatty
        return False
