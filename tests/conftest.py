"""Shared test fixtures: tiny generated datasets, the shared real photos, a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bikelib.settings import settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_BIKES = ROOT.parent / "shared" / "datasets" / "umea-bikes"

# Quiet TensorFlow's C++ start-up logs in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


# Easily told apart by colour, so a few epochs learn them: tests check plumbing, not skill.
CLASS_COLOURS = {"blue-bike": (40, 70, 200), "green-bike": (40, 170, 60), "red-bike": (200, 40, 40)}


def synthetic_photo(colour: tuple[int, int, int], seed: int, size=(96, 72)) -> Image.Image:
    """A noisy picture dominated by one colour, with a random darker block in it."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (h, w, 3)), 0, 255)
    x, y = rng.integers(0, w // 2), rng.integers(0, h // 2)
    pixels[y : y + h // 3, x : x + w // 3] *= 0.4
    return Image.fromarray(pixels.astype(np.uint8))


def write_dataset(root: Path, per_class: int = 6, split: bool = False, fmt: str = "png") -> Path:
    """Folders of synthetic photos: `root/<class>/` or `root/{train,validation}/<class>/`."""
    for class_index, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for i in range(per_class):
            part = ("validation" if i % 3 == 0 else "train") if split else ""
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            synthetic_photo(colour, seed=class_index * 100 + i).save(folder / f"photo{i}.{fmt}")
    return root


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
