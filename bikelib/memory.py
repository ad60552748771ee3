"""A long-running server's memory: fewer glibc malloc arenas, freed pages given back.

glibc gives threads that allocate at the same time malloc arenas of their own, up to
eight per core. A Streamlit server runs each visitor's script in its own thread and
TensorFlow adds thread pools of its own, so freed memory ends up scattered over many
arenas, where other threads do not reuse it and the system does not get it back.
Measured with bench/soak.py (4 visitors classifying and scanning for 4 minutes, same
seed, one run each, 2026-12-02, bench/RESULTS.md): the server peaked at 1163 MB with
glibc's default, at 979 MB with MALLOC_ARENA_MAX=2 set before it started (what
scripts/app.sh does), and at 1108 MB with only this module's call.

`limit_malloc_arenas` does from inside the process what MALLOC_ARENA_MAX does at start,
for hosts where the server's environment cannot be set (Streamlit Community Cloud). It
helps less: arenas that the server's own threads made before the app's first page run
stay and are shared out, so set the variable where you can. Where the C library is not
glibc (macOS, musl) it does nothing.

`start_trimmer` runs a daemon thread that calls glibc's `malloc_trim(0)` every
`TRIM_EVERY_S` seconds: memory that visitors' script runs freed (decoded photos,
TensorFlow's tensors, scan results) stays mapped inside the heap until then, counted
against the host's memory limit though nothing uses it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
import time

M_ARENA_MAX = -8  # glibc's malloc.h
TRIM_EVERY_S = 30.0
_applied: int | None = None
_trimmer: threading.Thread | None = None
_trimmer_lock = threading.Lock()
log = logging.getLogger(__name__)


def _libc():
    """glibc, or None where the C library is another (macOS, musl) or cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both or neither: glibc
    except (OSError, AttributeError):
        return None
    return libc


def trim() -> bool:
    """Give freed heap memory back to the system now (glibc's malloc_trim(0)); True when
    some was given back, False when none was or the C library is not glibc."""
    libc = _libc()
    return bool(libc and libc.malloc_trim(0))


def _trim_forever(every_s: float) -> None:
    while True:
        time.sleep(every_s)
        try:
            trim()
        except Exception:  # never let a bad round end the thread
            log.exception("malloc_trim failed; trying again in %g s", every_s)


def start_trimmer(every_s: float = TRIM_EVERY_S) -> threading.Thread | None:
    """Start this process's trimming thread (a daemon, `trim()` every `every_s` seconds)
    unless it runs already; None where the C library is not glibc."""
    global _trimmer
    if _libc() is None:
        return None
    with _trimmer_lock:
        if _trimmer is None or not _trimmer.is_alive():
            _trimmer = threading.Thread(
                target=_trim_forever, args=(every_s,), name="malloc-trimmer", daemon=True
            )
            _trimmer.start()
        return _trimmer


def limit_malloc_arenas(arenas: int | None = None) -> bool:
    """Cap glibc's malloc arenas at `arenas` (default: `settings().malloc_arenas`, which
    is MALLOC_ARENA_MAX or 2). True when the cap is in place; once per process."""
    global _applied
    if arenas is None:
        from .settings import settings

        arenas = settings().malloc_arenas
    if _applied == arenas:
        return True
    libc = _libc()
    if libc is None:  # not glibc: nothing to do
        return False
    if libc.mallopt(M_ARENA_MAX, int(arenas)) != 1:
        return False
    _applied = arenas
    return True
