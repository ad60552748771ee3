"""The "is there a bicycle in this photo?" gate: ImageNet-pretrained EfficientNet-Lite0.

This module owns the way from the pretrained network (`pretrained.py`: the checked
weights file, the Keras EfficientNet-Lite0 and the weight port) to a bicycle probability:

- the conversion: done on first use and kept as a `.keras` file in the decode cache
  folder (written to a temporary file and renamed into place, so another process never
  reads half a file), loaded from there afterwards and once per process;
- the gate: the summed probability of ImageNet's bicycle classes, with the motorbike
  classes beside it, and the pooled 1280-wide features for later open-set experiments.

Keras/TensorFlow are imported inside functions only: pages that merely import bikelib
must not pay for (or hold the memory of) TensorFlow.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BikeLibError
from .images import default_cache_dir
from .pretrained import (
    HEAD_WIDTH,
    IMAGE_SIZE,
    IMAGENET_CLASSES,
    WEIGHTS_FILE,
    efficientnet_lite0,
    load_torch_weights,
    read_pretrained_weights,
)


class GateInputError(BikeLibError, ValueError):
    """The gate was given something other than a batch of 224 x 224 RGB pictures."""


GATE_SIZE = IMAGE_SIZE
"""Side of the square RGB pictures the gate takes (decode photos with `decode(p, GATE_SIZE)`)."""
BICYCLE_CLASSES = (444, 671, 870, 880)
"""ImageNet classes: bicycle-built-for-two, mountain bike, tricycle, unicycle."""
MOTORBIKE_CLASSES = (665, 670)
"""ImageNet classes: moped, motor scooter."""
GATE_THRESHOLD = 0.1
"""Summed bicycle probability above which a photo counts as showing a bicycle."""
BATCH_SIZE = 32

QUICK_SIZE = 160
"""Side at which the gate takes its first, cheaper look (see `BicycleGate.bicycle_probability`)."""

# Bump when the Keras network or the conversion changes, so older cached files are ignored.
_CONVERSION_VERSION = 1

# ---------------------------------------------------------------------------------------
# Conversion on first use, cached on disk
# ---------------------------------------------------------------------------------------


def converted_model_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted `.keras` file is kept: `<decode cache>/pretrained/...`."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = WEIGHTS_FILE.removesuffix(".pth")
    return root / "pretrained" / f"{stem}-v{_CONVERSION_VERSION}.keras"


def _convert(destination: Path):
    """Read and check the weights, build the network, save it atomically, return it."""
    model = efficientnet_lite0(include_top=True)
    load_torch_weights(model, read_pretrained_weights())
    temporary = None
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=destination.parent, prefix=".converting-", suffix=".keras", delete=False
        ) as f:
            temporary = f.name
        model.save(temporary)
        os.replace(temporary, destination)
    except OSError:
        # A read-only or full disk only costs the conversion again next time.
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return model


def load_pretrained_model(cache_dir: str | os.PathLike | None = None):
    """The ImageNet EfficientNet-Lite0 Keras model: from the cached `.keras` file, or
    converted now from the pinned weights (and cached) when there is none or it is damaged.
    """
    import keras

    path = converted_model_path(cache_dir)
    if path.is_file():
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception:  # noqa: BLE001 - a damaged cache entry is converted again
            model = None
        if model is not None and tuple(model.output.shape) == (None, IMAGENET_CLASSES):
            return model
    return _convert(path)


# ---------------------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateScores:
    """What one pass of the network says about a batch of n pictures."""

    probabilities: np.ndarray
    """(n, 1000) ImageNet class probabilities."""
    features: np.ndarray
    """(n, 1280) global-average-pooled features before the classifier."""

    @property
    def bicycle(self) -> np.ndarray:
        """(n,) summed probability of the bicycle classes."""
        return self.probabilities[:, BICYCLE_CLASSES].sum(axis=1)

    @property
    def motorbike(self) -> np.ndarray:
        """(n,) summed probability of the motorbike classes."""
        return self.probabilities[:, MOTORBIKE_CLASSES].sum(axis=1)

    def bicycle_in_top(self, k: int = 5) -> np.ndarray:
        """(n,) whether a bicycle class is among the k most likely classes."""
        top = np.argsort(-self.probabilities, axis=1)[:, :k]
        return np.isin(top, BICYCLE_CLASSES).any(axis=1)

    def passes(self, threshold: float = GATE_THRESHOLD) -> np.ndarray:
        """(n,) whether each picture counts as showing a bicycle."""
        return self.bicycle > threshold


class BicycleGate:
    """Asks an ImageNet classifier whether pictures show a bicycle. Use `load_gate()`."""

    def __init__(self, model) -> None:
        import keras

        # The same weights in a network that takes any size: the quick look runs it at
        # QUICK_SIZE, the full look at GATE_SIZE (one copy of the weights in memory).
        flexible = efficientnet_lite0(include_top=True, size=None)
        flexible.set_weights(model.get_weights())
        self.model = flexible
        self._both = keras.Model(
            flexible.inputs,
            [flexible.output, flexible.get_layer("avg_pool").output],
            name="gate",
        )
        self._lock = threading.Lock()

    def scores(self, images: np.ndarray, size: int = GATE_SIZE) -> GateScores:
        """Probabilities and features of n pictures, (n, 224, 224, 3) RGB 0-255, in batches;
        with `size`, the network looks at them resized to `size` x `size` (antialiased)."""
        images = _checked(images)
        probabilities, features = [], []
        with self._lock:  # one prediction at a time: 2 cores gain nothing from two
            for start in range(0, len(images), BATCH_SIZE):
                batch = images[start : start + BATCH_SIZE].astype(np.float32)
                if size != GATE_SIZE:
                    batch = _resized(batch, size)
                p, f = self._both.predict_on_batch(batch)
                probabilities.append(np.asarray(p))
                features.append(np.asarray(f))
        if not probabilities:
            return GateScores(
                np.zeros((0, IMAGENET_CLASSES), np.float32), np.zeros((0, HEAD_WIDTH), np.float32)
            )
        return GateScores(np.concatenate(probabilities), np.concatenate(features))

    def bicycle_probability(self, images: np.ndarray) -> np.ndarray:
        """(n,) summed probability of ImageNet's bicycle classes for each picture.

        In two looks, because the gate is most of a scan's cost: every picture at
        QUICK_SIZE (half the CPU of 224 px), then only those in which the quick look saw
        no bicycle again at GATE_SIZE. A picture shows a bicycle when either look sees
        one; its probability is that of its last look. Measured in bench/gate_size.py
        ("two looks" column, 2026-12-02): as many real bikes pass as at 224 px alone
        (99%), no picture without a bicycle passes, at two thirds of the CPU on photos of
        bikes (10.5 against 15.6 ms) and 1.4 times it on photos without one (both looks).
        Listing photos are mostly of bikes, so a scan gains.
        """
        images = _checked(images)
        bicycle = self.scores(images, QUICK_SIZE).bicycle
        unsure = np.flatnonzero(bicycle <= GATE_THRESHOLD)
        if len(unsure):
            bicycle[unsure] = self.scores(images[unsure]).bicycle
        return bicycle

    def motorbike_probability(self, images: np.ndarray) -> np.ndarray:
        """(n,) summed probability of ImageNet's moped and motor scooter classes."""
        return self.scores(images).motorbike

    def features(self, images: np.ndarray) -> np.ndarray:
        """(n, 1280) pooled penultimate features, for open-set experiments."""
        return self.scores(images).features

    def is_bicycle(self, images: np.ndarray, threshold: float = GATE_THRESHOLD) -> np.ndarray:
        """(n,) whether each picture's bicycle probability is above the threshold."""
        return self.bicycle_probability(images) > threshold


def _resized(batch: np.ndarray, size: int) -> np.ndarray:
    import keras

    resized = keras.ops.image.resize(batch, (size, size), interpolation="bilinear", antialias=True)
    return keras.ops.convert_to_numpy(resized)


def _checked(images) -> np.ndarray:
    """`images` as an (n, 224, 224, 3) array of pixel numbers, or GateInputError."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[np.newaxis]
    if images.ndim != 4 or images.shape[1:] != (GATE_SIZE, GATE_SIZE, 3):
        raise GateInputError(
            f"the gate takes pictures of {GATE_SIZE} x {GATE_SIZE} x 3 RGB pixels "
            f"(decode them with decode(photo, {GATE_SIZE})), not an array of shape "
            f"{images.shape}"
        )
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise GateInputError(f"the gate takes pixel numbers, not {images.dtype}")
    return images


_gate: BicycleGate | None = None
_gate_lock = threading.Lock()


def load_gate() -> BicycleGate:
    """The process's one gate: converted on first use ever, loaded once per process."""
    global _gate
    with _gate_lock:
        if _gate is None:
            _gate = BicycleGate(load_pretrained_model())
        return _gate
