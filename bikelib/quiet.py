"""Import TensorFlow without its start-up chatter on stderr.

Importing TensorFlow prints lines nobody running the app can act on, before any of our
code runs: absl's "All log messages before absl::InitializeLog() is called are written
to STDERR", oneDNN's "custom operations are on" (twice: once for each library that
loads it), the CPU feature notice and, on machines without a GPU, the CUDA plugin's
"could not find cuda drivers" and "unable to register factory" lines. They come from C++
and go straight to file descriptor 2, so Python's logging cannot catch them.

`load_tensorflow()` imports TensorFlow and Keras once, with `TF_CPP_MIN_LOG_LEVEL` 2
(TensorFlow's own info and warning lines off, errors kept) unless the environment says
otherwise, and with fd 2 passed through a filter for the length of the import that
drops exactly those start-up lines and lets everything else through, errors included.
`TF_ENABLE_ONEDNN_OPTS` is left alone: turning oneDNN off would change the numbers.
It also drops TensorFlow's warning that a function "triggered tf.function retracing"
(`RetracingNotice`): each network traces its compiled predict function for its first
batch shapes (one photo, a photo and its mirror, 32), then relaxes the shape and traces
no more (checked: no warning after the first three predictions of a process), but the
warning counts the first traces of every network's function together.

Called before the first TensorFlow import wherever one can happen: bikelib's lazy loader,
`Augmentation.layers`, opening a model zip, the training child process and the command
line. (`ABSL_MIN_LOG_LEVEL`, which the command line sets, does not silence these lines.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

# absl's prefix: severity letter, date, time, thread id, source file and line.
_ABSL = re.compile(rb"^[IWE]\d{4} [\d:.]+\s+\d+ (?P<file>[\w.]+):\d+\] (?P<message>.*)$")
# Source files whose info and warning lines at import are start-up notices only.
_STARTUP_FILES = {
    b"port.cc",  # oneDNN custom operations are on
    b"cpu_feature_guard.cc",  # this binary is optimized to use available CPU instructions
    b"cudart_stub.cc",  # could not find cuda drivers on your machine
    b"cuda_executor.cc",
    b"cuda_dnn.cc",
    b"cuda_fft.cc",
    b"cuda_blas.cc",
    b"computation_placer.cc",
    b"py_utils.cc",  # TF-TRT Warning: could not find TensorRT
}
# Start-up lines that absl marks as errors but are not: the CUDA plugins registering twice.
_NOT_ERRORS = re.compile(rb"Unable to register cu(DNN|FFT|BLAS) factory")
_PLAIN_LINES = (
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(rb"^To enable the following instructions: .* rebuild TensorFlow"),
)

_loaded = False
_lock = threading.Lock()


def is_startup_line(line: bytes) -> bool:
    """Whether one line of stderr (without its newline) is TensorFlow start-up chatter."""
    line = line.rstrip(b"\r")
    if any(pattern.match(line) for pattern in _PLAIN_LINES):
        return True
    found = _ABSL.match(line)
    if not found:
        return False
    if line.startswith(b"E"):
        return bool(_NOT_ERRORS.search(found["message"]))
    return found["file"] in _STARTUP_FILES


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Pass file descriptor 2 through `is_startup_line` while the block runs.

    A pipe takes fd 2's place and a thread copies every other line to the real stderr;
    at the end fd 2 is put back and what is left in the pipe is copied out. Where that
    cannot be set up (no fd 2, say), the block runs unfiltered.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()

    def copy() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_startup_line(line))
            if kept:
                os.write(saved, kept)
        if pending and not is_startup_line(pending):
            os.write(saved, pending)

    reader = threading.Thread(target=copy, name="quiet-stderr", daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer is gone: the reader sees its end
        reader.join()
        os.close(read_end)
        os.close(saved)


class RetracingNotice(logging.Filter):
    """Drops the "triggered tf.function retracing" warning (see above), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def load_tensorflow() -> None:
    """Import TensorFlow and Keras once, without their start-up lines (see above)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with filtered_stderr():
            with contextlib.suppress(ImportError):  # another Keras backend: only Keras
                import tensorflow  # noqa: F401
            import keras  # noqa: F401
        logging.getLogger("tensorflow").addFilter(RetracingNotice())
        _loaded = True
