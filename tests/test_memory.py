"""Fewer glibc malloc arenas (bikelib.memory), checked in a fresh interpreter each."""

from __future__ import annotations

import ctypes.util
import os
import sys

import pytest
from helpers import run_fresh

from bikelib import ConfigError
from bikelib.settings import Settings

# Six threads allocate (below glibc's mmap threshold, so from an arena), then glibc's
# malloc_info report is counted: one <heap> element per arena.
PROBE = """
import ctypes, json, os, re, sys, tempfile, threading
from bikelib.memory import limit_malloc_arenas
arenas = int(sys.argv[1])
applied = limit_malloc_arenas(arenas) if arenas else None
def work():
    keep = [bytearray(100_000) for _ in range(50)]
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
path = os.path.join(tempfile.mkdtemp(), "info.xml")
report = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
print(json.dumps({"applied": applied, "heaps": len(re.findall("<heap nr=", open(path).read()))}))
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "musl" in (ctypes.util.find_library("c") or ""),
    reason="malloc arenas are glibc's (Linux)",
)


@glibc
def test_the_cap_holds_where_threads_would_otherwise_take_more_arenas():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    free = run_fresh(PROBE, env, "0")
    capped = run_fresh(PROBE, env, "1")
    assert free["heaps"] > 1  # without the cap these threads do get arenas of their own
    assert capped == {"applied": True, "heaps": 1}


def test_the_cap_comes_from_malloc_arena_max_or_is_two():
    assert Settings.from_env({}).malloc_arenas == 2
    assert Settings.from_env({"MALLOC_ARENA_MAX": "4"}).malloc_arenas == 4
    with pytest.raises(ConfigError, match="MALLOC_ARENA_MAX"):
        Settings.from_env({"MALLOC_ARENA_MAX": "many"})


# A freed 20 MB block raises glibc's mmap threshold to 20 MB, so a 1 MB block then comes
# from an arena (whose pages stay with the process after it is freed); with the
# threshold fixed it is mapped on its own (mallinfo2's hblks counts such blocks).
THRESHOLD_PROBE = """
import ctypes, json, sys
from bikelib.memory import fix_mmap_threshold
fixed = fix_mmap_threshold() if sys.argv[1] == "1" else None
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
big = bytearray(20_000_000)
del big
before = libc.mallinfo2().hblks
block = bytearray(1_000_000)
print(json.dumps({"fixed": fixed, "mapped": libc.mallinfo2().hblks - before}))
"""


@glibc
def test_a_fixed_mmap_threshold_maps_large_blocks_on_their_own():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert run_fresh(THRESHOLD_PROBE, env, "0") == {"fixed": None, "mapped": 0}  # glibc rose
    assert run_fresh(THRESHOLD_PROBE, env, "1") == {"fixed": True, "mapped": 1}
