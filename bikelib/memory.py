"""A long-running server's memory: fewer glibc malloc arenas, large blocks given back.

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
rarely takes there: glibc fixes its arena limit for good once more than eight arenas
exist, and Streamlit's own threads have made about ten before the app's first page run
(counted 2026-12-02: 10 arenas at the first run, 16 after three visits). So set the
variable where you can; where you cannot, `fix_mmap_threshold` is what helps: 8-visitor
soaks without the variable peaked at 1279-1292 MB for the server without it and 1111 MB
with it (bench/RESULTS.md). Where the C library is not glibc (macOS, musl) both do
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's starting value, kept from rising
_applied: int | None = None


def _libc():
    """glibc, or None where the C library is another (macOS, musl) or cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc has it, other C libraries may not
    except (OSError, AttributeError):
        return None
    return libc


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


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Keep glibc's mmap threshold at `threshold` bytes; True when set.

    glibc serves blocks above the threshold with mmap of their own, unmapped when freed.
    But each time such a block is freed it raises the threshold to that block's size (up
    to 32 MB), so the next batches of photos and tensors come from the arenas and their
    pages stay with the process after they are freed. Setting the threshold switches that
    rise off. Unlike the arena cap it works at any time (see the module's docstring).
    """
    libc = _libc()
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1)
