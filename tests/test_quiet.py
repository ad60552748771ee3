"""TensorFlow's start-up lines stay out of stderr; everything else still gets through."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import ROOT

from bikelib import quiet

STARTUP = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796172638.184445    8672 port.cc:153] oneDNN custom operations are on. You "
    b"may see slightly different numerical results due to floating-point round-off errors",
    b"I0000 00:00:1796172638.394537    8672 cpu_feature_guard.cc:227] This TensorFlow binary "
    b"is optimized to use available CPU instructions in performance-critical operations.",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    b"TensorFlow with the appropriate compiler flags.",
    b"I0000 00:00:1733.870128 1 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    b"E0000 00:00:1733.990001 1 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting "
    b"to register factory for plugin cuDNN when one has already been registered",
]
KEPT = [
    b"E0000 00:00:1796172638.1 8672 op_kernel.cc:1857] OP_REQUIRES failed: out of memory",
    b"W0000 00:00:1796172638.1 8672 loader.cc:12] something a person should read",
    b"Traceback (most recent call last):",
    b"ValueError: oneDNN custom operations are on",  # not absl's line: kept
]


def test_startup_lines_are_told_from_the_rest():
    assert all(quiet.is_startup_line(line) for line in STARTUP)
    assert not any(quiet.is_startup_line(line) for line in KEPT)


# What a fresh interpreter prints while the filter is on: C-level writes to fd 2 included.
FILTER_SCRIPT = """
import os, sys
from bikelib import quiet
lines = [bytes.fromhex(h) for h in sys.argv[1:]]
with quiet.filtered_stderr():
    for line in lines:
        os.write(2, line + b"\\n")
    print("python-level line", file=sys.stderr)
os.write(2, b"after the filter\\n")
"""


def test_the_filter_drops_startup_lines_and_passes_the_rest_at_fd_level():
    args = [line.hex() for line in [*STARTUP, *KEPT]]
    out = subprocess.run(
        [sys.executable, "-c", FILTER_SCRIPT, *args],
        cwd=ROOT, capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stderr.splitlines() == [*KEPT, b"python-level line", b"after the filter"]


def test_importing_tensorflow_through_bikelib_prints_no_startup_lines():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    script = (
        "import bikelib; bikelib.make_model; import tensorflow as tf; "
        "print(float(tf.reduce_sum(tf.ones(3))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=300
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert out.stdout.strip() == b"3.0"
    noise = [line for line in out.stderr.splitlines() if line.strip()]
    assert noise == [], b"\n".join(noise).decode()


def test_the_retracing_notice_is_dropped_and_tensorflows_other_warnings_kept():
    # In a fresh interpreter: bikelib's TensorFlow import adds the filter to its logger.
    script = (
        "import bikelib; bikelib.make_model; import logging; "
        "log = logging.getLogger('tensorflow'); "
        "log.warning('5 out of the last 6 calls to <function f> triggered tf.function "
        "retracing. Tracing is expensive'); "
        "log.warning('another warning')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=300, check=True
    )
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [b"WARNING:tensorflow:another warning"], lines
