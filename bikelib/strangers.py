"""Other people's bikes, rendered: negatives that need no upload.

A training needs photos of bikes that are not the user's, to be trained to match none of
theirs and to show what a threshold rejects, and a user should not have to find them.
This module owns those strangers: their seeds (`STRANGER_SEEDS`), where the shipped JPEGs
live (`data/strangers`, `stranger_paths`), writing them (`write_strangers`, for
`python -m bikelib.render --strangers`) and reading them for a training (`strangers`),
rendered on the fly where the folder is missing.

No Keras: the renderer and the decode cache are imported only when needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Two disjoint sets of random other bikes (`bikelib.render.random_bike`): "training" ones
# are trained to match none of the known bikes (outlier exposure), "calibration" ones are
# never trained on and show what a threshold rejects. Never the seeds benchmarks test on.
STRANGER_SEEDS = {"training": range(900_000, 900_100), "calibration": range(910_000, 910_040)}
STRANGER_PHOTO_SIZE = (192, 144)
# Shipped as JPEGs (python -m bikelib.render --strangers data/strangers), so a training
# decodes them in a second instead of rendering them for ten.
STRANGERS_DIR = Path(__file__).resolve().parent.parent / "data" / "strangers"


def stranger_paths(kind: str, folder: Path | None = None) -> list[Path]:
    """Where each rendered stranger of `kind` ("training" or "calibration") is kept."""
    folder = STRANGERS_DIR if folder is None else folder
    return [folder / kind / f"stranger-{seed}.jpg" for seed in STRANGER_SEEDS[kind]]


def write_strangers(folder: str | Path) -> list[Path]:
    """Render both sets of strangers as JPEGs under `folder` (the shipped data/strangers)."""
    from . import render

    written = []
    for kind, seeds in STRANGER_SEEDS.items():
        for seed, path in zip(seeds, stranger_paths(kind, Path(folder)), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            photo = render.render_photo(render.random_bike(seed), seed, STRANGER_PHOTO_SIZE)
            render.save_jpeg(photo, path)
            written.append(path)
    return written


def strangers(kind: str, size: int, count: int | None = None, cache=None) -> np.ndarray:
    """The first `count` rendered strangers of `kind`, (n, size, size, 3) uint8.

    Read from the shipped JPEGs through the decode cache; rendered on the fly (0.1 s a
    photo) only where the data folder is missing, as in a bare `pip install`.
    """
    from .images import DecodeCache, ImageReadError, to_array

    seeds = STRANGER_SEEDS[kind][:count]
    if not len(seeds):
        return np.zeros((0, size, size, 3), np.uint8)
    cache = cache or DecodeCache()
    photos = []
    for seed, path in zip(seeds, stranger_paths(kind), strict=False):
        try:
            photos.append(cache.load(path, size))
        except (ImageReadError, OSError):
            from . import render

            photo = render.render_photo(render.random_bike(seed), seed, STRANGER_PHOTO_SIZE)
            photos.append(to_array(photo, size))
    return np.stack(photos)
