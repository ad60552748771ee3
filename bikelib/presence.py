"""Which browser sessions are still there: a heartbeat per session id, process-wide.

A closed or reloaded tab must not keep its training (a queued one holds a place, a
running one the only slot of a small shared server). The app beats for its session
every 30 s (`Settings.heartbeat_seconds`) while the tab is open (a fragment in
streamlit_app.py) and counts a page run in progress as present (`attending`); a
session with no beat for `Settings.abandon_minutes` is gone, and `bikelib.jobs` drops
or stops its training.

Times are `time.monotonic()` seconds (`clock`; tests pass `now` instead). A session id
never seen is not gone: a job started outside the app (CLI, tests) has no tab to lose.
Plain Python, thread-safe; no Streamlit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from .settings import settings

clock = time.monotonic
FORGET_AFTER_S = 24 * 3600.0  # sessions unseen this long are dropped from the registry

_lock = threading.Lock()
_seen: dict[str, float] = {}  # session id -> clock() of its last beat
_attending: dict[str, int] = {}  # session id -> page runs in progress
_forgotten_at = 0.0


def beat(session_id: str, now: float | None = None) -> None:
    """The session is there now (its tab's heartbeat, or a page run)."""
    global _forgotten_at
    now = clock() if now is None else now
    with _lock:
        _seen[session_id] = max(now, _seen.get(session_id, now))
        if now - _forgotten_at > 60:  # a long-running server: drop sessions long gone
            _forgotten_at = now
            for old in [s for s, t in _seen.items() if now - t > FORGET_AFTER_S]:
                if not _attending.get(old):
                    del _seen[old]


def last_seen(session_id: str) -> float | None:
    """The `clock()` time of the session's last beat; None when it never beat."""
    with _lock:
        return _seen.get(session_id)


def is_gone(session_id: str, now: float | None = None) -> bool:
    """True when the session has not beaten for `Settings.abandon_minutes` and no page
    of it is running; False for a session never seen."""
    now = clock() if now is None else now
    with _lock:
        if _attending.get(session_id):
            return False
        seen = _seen.get(session_id)
    return seen is not None and now - seen > settings().abandon_minutes * 60


@contextlib.contextmanager
def attending(session_id: str) -> Iterator[None]:
    """Around a page run: the session counts as present until the run ends, and the
    run's start and end are beats (a long page run is never taken for a closed tab)."""
    beat(session_id)
    with _lock:
        _attending[session_id] = _attending.get(session_id, 0) + 1
    try:
        yield
    finally:
        with _lock:
            left = _attending.get(session_id, 1) - 1
            if left > 0:
                _attending[session_id] = left
            else:
                _attending.pop(session_id, None)
        beat(session_id)


def forget(session_id: str) -> None:
    """Drop a session from the registry (tests; a session removed for good)."""
    with _lock:
        _seen.pop(session_id, None)
        _attending.pop(session_id, None)
