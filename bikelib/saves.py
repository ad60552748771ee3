"""Cleaning up after model saves that died midway (a killed process, a full disk).

`artifacts.save_model` writes beside the target and renames into place; what a dead save
leaves there is found by name and removed, or, for a previous model moved aside and not
replaced, put back. Called when a session's models are listed and by the pruner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from pathlib import Path

from .artifacts import read_meta
from .errors import ModelLoadError

log = logging.getLogger(__name__)

# What `save_model` leaves beside a model folder while it writes: .<name>-<pid>-<random>
# (the new model, being written) and .<name>-old-<pid> (the previous one, moved aside).
_STAGING = re.compile(r"^\.(?P<name>.+)-(?P<pid>\d+)-[\w]+$")
_RETIRED = re.compile(r"^\.(?P<name>.+)-old-(?P<pid>\d+)$")
STALE_SAVE_S = 3600.0  # a save this old is over, whoever made it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def sweep_saves(folder: Path, now: float | None = None) -> list[Path]:
    """Clean up after saves that died midway (a killed process, a full disk) in `folder`.

    A half-written new model is removed; a previous model that was moved aside and not
    replaced is put back. Folders of a save still under way (its process alive, and
    less than STALE_SAVE_S old) are left alone. Returns what was removed or restored.
    """
    now = time.time() if now is None else now
    done = []
    with contextlib.suppress(OSError):
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        for entry in entries:
            match = _RETIRED.match(entry.name) or _STAGING.match(entry.name)
            if not (match and entry.is_dir()):
                continue
            fresh = now - entry.stat().st_mtime < STALE_SAVE_S
            if fresh and _alive(int(match["pid"])):
                continue
            target = folder / match["name"]
            if match.re is _RETIRED and not _complete(target):
                shutil.rmtree(target, ignore_errors=True)
                os.replace(entry, target)  # the previous model, back where it was
            else:
                shutil.rmtree(entry, ignore_errors=True)
            done.append(entry)
    if done:
        log.info("cleaned up %d folders of unfinished model saves in %s", len(done), folder)
    return done


def _complete(directory: Path) -> bool:
    try:
        read_meta(directory)
    except ModelLoadError:
        return False
    return True
