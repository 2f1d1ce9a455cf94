"""``--quiet`` leaves only errors on stderr; progress bars only on a terminal.

Each case runs in a fresh interpreter: the silencing must happen before TensorFlow is
imported, and it re-points the process's file descriptor 2.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A tiny full-int8 TFLite conversion run in LiteRT: the converter's UserWarning, the MLIR
# quantizer's "fully_quantize: ..." line (C++), LiteRT's "INFO: Created ... XNNPACK ...".
TFLITE_INT8 = """
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

@tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
def f(x):
    return tf.nn.relu(tf.matmul(x, tf.ones([4, 2])))

c = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
c.optimizations = [tf.lite.Optimize.DEFAULT]
c.representative_dataset = lambda: ([np.ones((1, 4), np.float32)] for _ in range(3))
c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
c.inference_input_type = tf.int8
c.inference_output_type = tf.int8
it = Interpreter(model_content=c.convert())
it.allocate_tensors()
it.invoke()
print("converted")
"""


def run_python(code: str, stderr: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                          stderr=stderr, timeout=300)


@pytest.mark.slow
def test_tensorflow_litert_noise_is_gone_but_would_be_there() -> None:
    loud = run_python(TFLITE_INT8)
    quiet = run_python("from edge_gru.cli_common import quiet_tensorflow\n"
                       "quiet_tensorflow(errors_only=True)\n" + TFLITE_INT8)
    assert loud.returncode == quiet.returncode == 0
    assert loud.stdout == quiet.stdout == b"converted\n"
    noise = loud.stderr.decode()
    for line in ("fully_quantize: 0", "INFO: Created TensorFlow Lite XNNPACK", "UserWarning"):
        assert line in noise  # what the filter has to remove, seen unfiltered
    assert quiet.stderr == b""


def test_errors_pass_through_in_order_and_noise_does_not() -> None:
    code = r"""
import os, subprocess, sys
from edge_gru.cli_common import quiet_tensorflow
quiet_tensorflow(errors_only=True)
import warnings, logging
warnings.warn("a warning")                      # Python warning: silenced by --quiet
logging.getLogger("tensorflow").warning("tf")   # library log below ERROR: silenced
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n")
os.write(2, b"ERROR: a real native error\n")
os.write(2, b"x" * 200000 + b"\n")               # more than a pipe holds: no deadlock
subprocess.run(["sh", "-c", "echo child error >&2"], check=True)
print("ours", file=sys.stderr)
os.write(2, b"INFO: dropped even without a newline at exit")
raise SystemExit(3)
"""
    done = run_python(code)
    assert done.returncode == 3
    # One pipe for Python, C++ and children: the order is kept.
    assert done.stderr.split(b"\n") == [b"ERROR: a real native error", b"x" * 200000,
                                        b"child error", b"ours", b""]


def test_lines_split_across_writes_are_judged_whole() -> None:
    code = ("import os, time\n"
            "from edge_gru.cli_common import quiet_tensorflow\n"
            "quiet_tensorflow(errors_only=True)\n"
            "pieces = b'INF', b'O: split noise\\nIN', b'DEX kept\\nful', b'ly_quantize: 0\\n'\n"
            "for piece in pieces:\n"
            "    os.write(2, piece)\n"
            "    time.sleep(0.05)\n")
    done = run_python(code)
    assert done.stderr == b"INDEX kept\n"


def test_progress_bar_line_reaches_the_terminal_before_its_newline() -> None:
    code = ("import os, sys\n"
            "from edge_gru.cli_common import quiet_tensorflow\n"
            "quiet_tensorflow()\n"
            "sys.stderr.write('\\r 50%|#####     |')\n"
            "sys.stderr.flush()\n"
            "sys.stdin.readline()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([child.stderr], [], [], 30)
        seen = os.read(child.stderr.fileno(), 1000) if ready else b""
    finally:
        child.communicate(b"\n", timeout=30)
    assert seen == b"\r 50%|#####     |"


def test_output_written_before_a_crash_still_comes_out() -> None:
    code = ("import os, signal\n"
            "from edge_gru.cli_common import quiet_tensorflow\n"
            "quiet_tensorflow(errors_only=True)\n"
            "os.write(2, b'INFO: noise\\nlast words\\n')\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = run_python(code)
    assert done.returncode == -9 and done.stderr == b"last words\n"


def test_traceback_still_reaches_stderr() -> None:
    done = run_python("from edge_gru.cli_common import quiet_tensorflow\n"
                      "quiet_tensorflow(errors_only=True)\n"
                      "raise RuntimeError('boom')\n")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1] == "RuntimeError: boom"


def test_without_errors_only_warnings_of_our_own_code_still_show() -> None:
    done = run_python("from edge_gru.cli_common import quiet_tensorflow\n"
                      "quiet_tensorflow()\n"
                      "import warnings\nwarnings.warn('ours')\n")
    assert done.returncode == 0 and b"UserWarning: ours" in done.stderr


def test_progress_only_on_a_terminal() -> None:
    code = ("from edge_gru.cli_common import progress_enabled, quiet_tensorflow\n"
            "quiet_tensorflow()\n"
            "print(progress_enabled(False), progress_enabled(True))")
    piped = run_python(code)
    assert piped.stdout == b"False False\n"
    leader, follower = pty.openpty()
    try:
        on_tty = run_python(code, stderr=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert on_tty.stdout == b"True False\n"
