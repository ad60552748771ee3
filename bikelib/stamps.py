"""Cheap reruns: what every page run asks again, answered from a cache while nothing changed.

Streamlit reruns a page on every click, so two things a page asks each time must not cost
a walk of the disk or a parse of every file:

- `source_stamp(source)`: a signature of a dataset's files (names, sizes, modification
  times). Walking a large server folder and stat-ing every photo on each rerun is slow,
  so a stamp is reused while the tree's directories keep their modification times (a
  photo added, removed or renamed changes its folder's) and for at most `TTL_S` seconds;
  after that, or after `invalidate`, the folder is walked again, which also catches a
  photo rewritten in place under the same name.
- `parsed_json(path)`: a model.json parsed once per version of the file (path, inode,
  size, modification time), in a bounded cache (`JSON_ENTRIES`), so listing models on
  three pages does not parse each of them on every rerun.

Process-wide, thread-safe. Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TTL_S = 10.0  # a stamp is reused at most this long, however quiet its folders are
SETTLE_S = 2.0  # a folder changed this recently may change again within its mtime's tick
STAMP_ENTRIES = 256
JSON_ENTRIES = 512
clock = time.monotonic  # tests move it by hand

_lock = threading.Lock()


@dataclass(frozen=True)
class _Stamp:
    stamp: str
    folders: tuple[tuple[str, int], ...]  # every folder of the tree and its st_mtime_ns
    checked: float  # clock() when the tree was walked
    settled: bool  # no folder had changed within SETTLE_S of the walk


_stamps: OrderedDict[str, _Stamp] = OrderedDict()
_json: OrderedDict[tuple, Any] = OrderedDict()


def walk_stamp(source: str | os.PathLike) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The stamp of `source` by a full walk (every file stat-ed), and its folders' mtimes."""
    source = Path(source)
    digest = hashlib.sha256(str(source).encode())
    folders: list[tuple[str, int]] = []
    try:
        if source.is_file():
            stat = source.stat()
            digest.update(f"{source}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        else:
            folders.append((str(source), source.stat().st_mtime_ns))
            for folder, subfolders, files in sorted(os.walk(source, onerror=_raise)):
                for name in sorted(subfolders):
                    path = os.path.join(folder, name)
                    stat = os.stat(path)
                    folders.append((path, stat.st_mtime_ns))
                    digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    stat = os.stat(path)
                    digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    except OSError:
        digest.update(b"unreadable")
        folders = []  # never trusted: walked again next time
    return digest.hexdigest()[:16], tuple(folders)


def _raise(error: OSError) -> None:
    raise error


def _folders_unchanged(folders: tuple[tuple[str, int], ...]) -> bool:
    try:
        return bool(folders) and all(os.stat(path).st_mtime_ns == ns for path, ns in folders)
    except OSError:
        return False  # a folder went away


def source_stamp(source: str | os.PathLike, now: float | None = None) -> str:
    """A cheap signature of a dataset source's files, to key caches of the opened dataset.

    Changes when a photo is added, removed or renamed (at once: its folder's mtime moves)
    and when one is rewritten in place (within `TTL_S` seconds, or at once after
    `invalidate`). In between, a rerun costs one stat per folder, not one per photo.
    """
    key = str(Path(source))
    now = clock() if now is None else now
    with _lock:
        cached = _stamps.get(key)
    if (
        cached is not None
        and cached.settled
        and now - cached.checked < TTL_S
        and _folders_unchanged(cached.folders)
    ):
        return cached.stamp
    stamp, folders = walk_stamp(source)
    wall = time.time_ns()
    settled = all(wall - ns > SETTLE_S * 1e9 for _, ns in folders)
    with _lock:
        _stamps[key] = _Stamp(stamp, folders, now, settled)
        _stamps.move_to_end(key)
        while len(_stamps) > STAMP_ENTRIES:
            _stamps.popitem(last=False)
    return stamp


def invalidate(source: str | os.PathLike | None = None) -> None:
    """Forget the stamp of `source` (every stamp when None): the next one walks again."""
    with _lock:
        if source is None:
            _stamps.clear()
        else:
            _stamps.pop(str(Path(source)), None)


def parsed_json(path: str | os.PathLike) -> Any:
    """`json.loads` of the file, parsed once per version of it (OSError, ValueError as
    `json` raises them). A top-level dict comes back as a fresh shallow copy; treat what
    is inside as read-only, it is shared."""
    path = Path(path)
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _json:
            _json.move_to_end(key)
            value = _json[key]
            return dict(value) if isinstance(value, dict) else value
    value = json.loads(path.read_text())
    with _lock:
        _json[key] = value
        while len(_json) > JSON_ENTRIES:
            _json.popitem(last=False)
    return dict(value) if isinstance(value, dict) else value
