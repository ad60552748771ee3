"""The features a photo is matched by: what a trained model sees in it.

Every match score (`openset.SCORES`, `cohort.Plda`) compares these, so they are made in
one place, the same way at training, calibration and serving. This module owns:

- `Outputs`: what one pass over photos gives every score (features, logits, probabilities);
- `ZOOMS`, `centre`: the views of a photo averaged besides its mirror image;
- `Embedder`: the trained model's penultimate features (layer `features`), L2-normalised,
  averaged over views of the photo (its mirror image: a bike seen from its other side is
  the same bike; `ZOOMS`), optionally whitened (`cohort.Whitening`), plus the
  probabilities; and, with a second backbone (`bikelib.second`), its features too.

Keras is imported lazily: only `Embedder` needs it, and only when one is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .cohort import Whitening, normalise

if TYPE_CHECKING:
    from .second import SecondBackbone

FEATURES_LAYER = "features"  # bikelib.models.FEATURES, named here without importing Keras


@dataclass(frozen=True)
class Outputs:
    """What one pass over photos gives every score: features (normalised), logits, probs."""

    features: np.ndarray  # (n, d), unit length
    logits: np.ndarray  # (n, classes)
    probabilities: np.ndarray  # (n, classes)
    second: np.ndarray | None = None  # (n, d2): the second backbone's, whitened; or None


# The views of a photo whose features are averaged, besides its mirror image: the whole
# photo (1.0), and optionally its centre zoomed in to full size (the share of each side
# kept), so that a seller's tighter or looser framing would count less. Measured (bench/
# zooms.py, bench/RESULTS.md, "Zoomed views"), with the shipped backbone, nearest score:
# `1 .7 .5` lifted the real photos 0.997 -> 1.000 and the 50 rendered photos at new places
# 0.835 -> 0.871, but took the 200 photos of the 4-photo listings down, 0.902 -> 0.877;
# `1 .8` moved all three by under 0.01. No set gained on every protocol by more than the
# noise, for 2-3 times the features' CPU: the whole photo alone stays. A saved model
# records its zooms (`openset.Reference.zooms`), so one made otherwise is served as it was made.
# Whitened, with the 60-epoch backbone (bench/RESULTS.md, "Every backbone, whitened"):
# `1 .8` and `1 .7 .5` gained nowhere at new places (rendered 0.909 -> 0.906 / 0.894).
ZOOMS = (1.0,)


def centre(images: np.ndarray, zoom: float) -> np.ndarray:
    """The centre `zoom` of each photo's sides (the model's own resizing brings it back to
    full size): (n, h, w, 3) -> (n, ~zoom h, ~zoom w, 3)."""
    if zoom >= 1.0:
        return images
    height, width = images.shape[1:3]
    h, w = max(round(height * zoom), 1), max(round(width * zoom), 1)
    top, left = (height - h) // 2, (width - w) // 2
    return images[:, top : top + h, left : left + w]


BATCH = 32  # photos a network runs on at once: memory stays small on a shared server


def run_network(network, images: np.ndarray) -> np.ndarray:
    """`network`'s outputs for `images`, in batches of `BATCH`, through Keras' compiled
    predict function (`predict_on_batch`: traced once per network and process, no
    per-call dataset set-up). Not a direct call: that runs the network layer by layer in
    Python, and measured on 2 cores (2026-12-06) it took Lite0 143 ms for one photo
    against 15 compiled, 12 against 6 a photo in batches of 32 (the bike backbone 28
    against 3 for one photo); the first compiled call traces, 0.1-0.7 s, once."""
    outputs = [
        np.asarray(network.predict_on_batch(images[start : start + BATCH]))
        for start in range(0, len(images), BATCH)
    ]
    if not outputs:
        return np.zeros((0, *network.output.shape[1:]), np.float32)
    return np.concatenate(outputs)


class Embedder:
    """Runs a trained classifier for its features, logits and probabilities at once."""

    def __init__(
        self,
        model,
        *,
        flip: bool = True,
        zooms: Sequence[float] = ZOOMS,
        whitening: Whitening | None = None,
        second: SecondBackbone | None = None,
    ) -> None:
        import keras

        self.flip, self.zooms = flip, tuple(float(z) for z in zooms)
        self.whitening, self.second = whitening, second
        head = model.get_layer("probabilities")
        self._kernel, self._bias = (np.asarray(w) for w in head.get_weights())
        self._model = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)

    def _features(self, images: np.ndarray) -> np.ndarray:
        return run_network(self._model, images)

    def __call__(self, images: np.ndarray) -> Outputs:
        images = np.asarray(images, dtype=np.float32)
        raw = self._features(images)
        logits = raw @ self._kernel + self._bias  # the head, without its softmax
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        total = np.zeros_like(raw)
        for zoom in self.zooms:
            view = centre(images, zoom)
            total += normalise(raw if zoom >= 1.0 else self._features(view))  # once, not twice
            if self.flip:
                total += normalise(self._features(view[:, :, ::-1]))
        features = normalise(total)
        if self.whitening is not None:
            features = self.whitening(features)
        second = None
        if self.second is not None:
            from .second import features as second_features

            second = second_features(self.second, images, flip=self.flip)
        return Outputs(features, logits, probabilities, second)
