"""The session heartbeat: who is still there, on a fake clock (no real minutes pass)."""

from __future__ import annotations

import threading

import pytest
from helpers import fake_clock

from bikelib import presence


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test starts with no session seen (the registry is process-wide)."""
    monkeypatch.setattr(presence, "_seen", {})
    monkeypatch.setattr(presence, "_attending", {})
    monkeypatch.setattr(presence, "_forgotten_at", 0.0)


@pytest.fixture
def clock(monkeypatch):
    """presence's clock, moved by hand: `clock.now += 301`."""
    return fake_clock(monkeypatch, presence)


def test_a_session_is_gone_after_abandon_minutes_without_a_beat(clock):
    presence.beat("tab")
    assert presence.last_seen("tab") == 1000.0
    clock.now += 299
    assert not presence.is_gone("tab")
    clock.now += 2  # 301 s: past the default 5 minutes
    assert presence.is_gone("tab")
    presence.beat("tab")  # the tab beats again (a laptop woke up): present
    assert not presence.is_gone("tab") and presence.last_seen("tab") == 1301.0
    assert presence.is_gone("tab", now=1301.0 + 301) and not presence.is_gone("tab", now=1302.0)


def test_the_abandon_time_is_a_setting(clock, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_ABANDON_MINUTES", "0.5")
    presence.beat("tab")
    clock.now += 29
    assert not presence.is_gone("tab")
    clock.now += 2
    assert presence.is_gone("tab")


def test_a_session_never_seen_is_not_gone(clock):
    assert presence.last_seen("never") is None
    assert not presence.is_gone("never", now=clock.now + 10**6)


def test_a_page_run_in_progress_counts_as_present_and_its_end_is_a_beat(clock):
    presence.beat("busy")
    with presence.attending("busy"):
        clock.now += 3600  # a page run of an hour (a long scan, say)
        assert not presence.is_gone("busy")
        with presence.attending("busy"):  # two runs at once (two tabs of one session)
            pass
        assert not presence.is_gone("busy")  # the other run still counts
    assert presence.last_seen("busy") == clock.now  # the run's end is a beat
    clock.now += 301
    assert presence.is_gone("busy")


def test_attending_lets_errors_through_and_still_ends(clock):
    with pytest.raises(RuntimeError), presence.attending("broken"):
        raise RuntimeError("st.stop, st.rerun and bugs pass through")
    clock.now += 301
    assert presence.is_gone("broken")


def test_a_beat_never_moves_back_in_time_and_old_sessions_are_forgotten(clock):
    presence.beat("tab", now=2000.0)
    presence.beat("tab", now=1500.0)  # a late beat from another thread
    assert presence.last_seen("tab") == 2000.0
    clock.now = 2000.0 + presence.FORGET_AFTER_S + 120
    presence.beat("other")  # a later beat sweeps sessions unseen for a day
    assert presence.last_seen("tab") is None and presence.last_seen("other") == clock.now


def test_beats_from_many_threads_are_safe():
    ids = [f"session-{i}" for i in range(8)]

    def hammer(session_id: str) -> None:
        for _ in range(500):
            presence.beat(session_id)
            with presence.attending(session_id):
                presence.is_gone(session_id)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in ids for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(presence.last_seen(i) is not None and not presence.is_gone(i) for i in ids)
    assert not presence._attending  # every run's count went back to nothing
    presence.forget(ids[0])
    assert presence.last_seen(ids[0]) is None
