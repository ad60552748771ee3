"""Shared test fixtures: tiny generated datasets, the shared real photos, a private cache,
settings read anew in every test. Plain helpers (photos, the served app) are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import SHARED_BIKES, write_dataset

from bikelib.settings import settings

# Quiet TensorFlow's C++ start-up logs in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No background load of the shipped model in the AppTests (and the servers) of this
# process: each test says what it loads. test_app_classify.py turns it on to test it.
os.environ.setdefault("BIKE_RECOGNITION_WARM_UP", "0")


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Decoded-array and zip caches in a temp folder, never the user's home."""
    cache = tmp_path_factory.mktemp("bikelib-cache")
    previous = os.environ.get("BIKELIB_CACHE_DIR")
    os.environ["BIKELIB_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("BIKELIB_CACHE_DIR", None)
    else:
        os.environ["BIKELIB_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    """Settings read anew in every test and after every `monkeypatch.setenv`/`delenv`.

    The app reads its environment once per process (`bikelib.settings.settings()`); a
    test changes it, so each change clears that cache and the next read sees it.
    """

    def clearing(method):
        def wrapper(self, *args, **kwargs):
            method(self, *args, **kwargs)
            settings.cache_clear()

        return wrapper

    for name in ("setenv", "delenv"):
        monkeypatch.setattr(pytest.MonkeyPatch, name, clearing(getattr(pytest.MonkeyPatch, name)))
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """3 classes x 6 PNG photos in class folders (no given split)."""
    return write_dataset(tmp_path / "tiny")


@pytest.fixture
def shared_bikes() -> Path:
    """The real 2018 photos; skipped where ../shared/datasets is absent (a fresh clone)."""
    if not SHARED_BIKES.is_dir():
        pytest.skip(f"real photos not available: {SHARED_BIKES} is absent (see DEVELOPERS.md)")
    return SHARED_BIKES


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """For AppTest: a private workspace root, a tiny demo set (3 bikes x 6 photos, given
    split) and no shipped model (tests that want one override this fixture)."""
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(tmp_path / "sessions"))
    demo = write_dataset(tmp_path / "demo", split=True)
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(demo))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(tmp_path / "no-model"))
    return tmp_path
