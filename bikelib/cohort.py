"""What a cohort of other bikes teaches the match score, in the backbone's features.

A frozen backbone's features of one bike move with the place, the light and the framing.
Speaker and face verification, which meet the same problem with their embeddings, learn
how one identity's samples vary, and how identities differ, from a cohort of other
identities; here the cohort is rendered bikes the backbone never trained on
(`backbone.COHORT_BIKES`). This module owns the two models fitted on it:

- `Whitening` (within-class covariance normalisation, WCCN): a linear map of the features
  that scales down how photos of one bike differ; fitted once, with the backbone;
- `Cohort` and `Plda`: what the cohort says of bikes in the whitened features, and the
  probabilistic LDA each training fits from it and the owner's photos (`fit_plda`), whose
  log-likelihood ratio is half of the app's match score (`openset.CHOSEN_SCORE`).

Plain numpy: no Keras, nothing per photo but a matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .embedding import Outputs


def normalise(features: np.ndarray) -> np.ndarray:
    """Each row at unit length (the features every score and map works on)."""
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)


# How much of the average within-bike variance is added to every direction before
# whitening (shrinkage): without it the directions in which the cohort's photos of one bike
# happened not to vary would be blown up. Measured (bench/whitening.py, bench/RESULTS.md,
# "Whitening the backbone's features"): 0.03-1 score alike on the real, rendered and
# listings protocols; 3 whitens too little and gains less.
WHITENING_SHRINK = 0.3


@dataclass(frozen=True)
class Whitening:
    """A linear map of the features that shrinks what varies between photos of one bike.

    A frozen backbone's features of one bike move with the place, the light and the
    framing; a stranger's bike at the same place can be nearer than the bike itself
    somewhere else. Within-class covariance normalisation (WCCN, as speaker and face
    verification use it) learns those directions from a cohort of other bikes, several
    photos each, and scales them down: x -> normalise((x - mean) @ matrix), with
    matrix = (W + shrink * trace(W) / d * I) ** -1/2 and W the cohort's within-bike
    covariance. It needs nothing of the owner's, so it is fitted once, with the backbone.
    """

    mean: np.ndarray  # (d,) the cohort's mean feature
    matrix: np.ndarray  # (d, d) symmetric

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return normalise((np.asarray(features, np.float32) - self.mean) @ self.matrix)


def within_scatter(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """(sum of each photo's outer product about its bike's mean, photos counted)."""
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    scatter = np.zeros((features.shape[1],) * 2)
    for label in np.unique(labels):
        centred = features[labels == label] - features[labels == label].mean(axis=0)
        scatter += centred.T @ centred
    return scatter, len(features)


def fit_whitening(
    features: np.ndarray, labels: np.ndarray, shrink: float = WHITENING_SHRINK
) -> Whitening:
    """The `Whitening` of a cohort: `features` (n, d), unit length, of photos of other
    bikes, `labels` (n,) which bike each shows (at least two photos of some)."""
    features = np.asarray(features, np.float64)
    scatter, count = within_scatter(features, labels)
    within = scatter / count
    if not np.trace(within) > 0:
        raise ValueError("whitening needs several photos of at least one bike")
    ridge = shrink * np.trace(within) / len(within)
    values, vectors = np.linalg.eigh(within + ridge * np.eye(len(within)))
    matrix = (vectors * values**-0.5) @ vectors.T
    return Whitening(features.mean(axis=0).astype(np.float32), matrix.astype(np.float32))


# The match score of a frozen, whitened training (bench/plda.py, bench/RESULTS.md, "A PLDA
# score"): cosine similarity to the bike's nearest photo plus 1/PLDA_SCALE of a PLDA's
# log-likelihood ratio, the PLDA over the PLDA_DIMS directions in which the cohort's bikes
# differ most, its within-bike covariance PLDA_ADAPT of the way to the owner's own photos'.
# Against cosine alone: the 50 and 200 photos at new places 0.909 -> 0.942 and 0.896 ->
# 0.950, the 200 photos of the listings 0.954 -> 0.984, the real photos 0.998 / 0.994 ->
# 0.999 / 0.997; at the threshold 94-98% of the bike's photos at new places accepted
# (82-88% before). The PLDA alone scored alike at new places (0.928, 0.953, 0.978) but
# less on the real photos (0.996 / 0.991; 94% of the unknown bike rejected against 99%):
# the rendered cohort misjudges how real photos vary, and the cosine term, which needs no
# cohort, holds the real photos up. Without the owner's photos (adapt 0) the real photos
# fell to 0.981 / 0.953; 0.1-0.5 scored alike. Every direction kept (not 64): 0.940 at
# new places, but 86-90% of the bike's photos there accepted. The scale: the ratio spans
# about a hundred either side of zero where the cosine spans one; /30 and /300 measured.
PLDA_DIMS = 64
PLDA_ADAPT = 0.2
PLDA_SCALE = 100.0


@dataclass(frozen=True)
class Cohort:
    """What the whitening's cohort says of bikes, in whitened features: their mean, how
    photos of one bike vary (`within`) and how bikes differ from each other (`between`)."""

    mean: np.ndarray  # (d,)
    within: np.ndarray  # (d, d)
    between: np.ndarray  # (d, d)


def cohort_statistics(features: np.ndarray, labels: np.ndarray) -> Cohort:
    """The `Cohort` of whitened features (n, d) of other bikes, `labels` (n,) which bike."""
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    mean = features.mean(axis=0)
    means = np.stack([features[labels == c].mean(axis=0) for c in np.unique(labels)]) - mean
    scatter, count = within_scatter(features, labels)
    return Cohort(
        mean.astype(np.float32),
        (scatter / count).astype(np.float32),
        (means.T @ means / len(means)).astype(np.float32),
    )


@dataclass(frozen=True)
class Plda:
    """Probabilistic LDA (as speaker and face verification score with): a photo's features
    are its bike's point plus the photo's own variation, both Gaussian. In `transform`'s
    coordinates the variation is unit and the bikes spread by `between` along each axis.
    The score of a photo against a bike is the log-likelihood ratio of "the same bike as
    those photos" over "another bike", so a bike's photos count together, each pulling its
    estimate of the bike, and a direction bikes barely differ in counts for little."""

    mean: np.ndarray  # (d,)
    transform: np.ndarray  # (d, k)
    between: np.ndarray  # (k,)

    def log_likelihood_ratios(self, features: np.ndarray, enrolled: np.ndarray) -> np.ndarray:
        """(n,): each of `features` (n, d) against the bike shown by `enrolled` (m, d)."""
        x = (np.asarray(features, np.float64) - self.mean) @ self.transform
        own = (np.asarray(enrolled, np.float64) - self.mean) @ self.transform
        lam, count = self.between.astype(np.float64), len(own)
        centre = count * lam / (count * lam + 1) * own.mean(axis=0)
        spread = lam / (count * lam + 1) + 1
        same = (((x - centre) ** 2) / spread + np.log(spread)).sum(axis=1)
        other = ((x**2) / (lam + 1) + np.log(lam + 1)).sum(axis=1)
        return -0.5 * (same - other)

    def score(self, out: Outputs, refs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """A `Score`: the ratio against the best-matching bike of `refs`."""
        per_bike = [
            self.log_likelihood_ratios(out.features, refs[labels == c]) for c in np.unique(labels)
        ]
        return np.max(per_bike, axis=0).astype(np.float32)


def fit_plda(
    cohort: Cohort,
    refs: np.ndarray,
    labels: np.ndarray,
    *,
    adapt: float = PLDA_ADAPT,
    dims: int = PLDA_DIMS,
) -> Plda:
    """The `Plda` of the cohort, its within-bike covariance moved `adapt` of the way to that
    of the owner's photos `refs` (whitened, by bike `labels`)."""
    within = cohort.within.astype(np.float64)
    scatter, count = within_scatter(refs, labels)
    if count > len(np.unique(labels)):  # some bike has two photos or more
        within = (1 - adapt) * within + adapt * scatter / count
    values, vectors = np.linalg.eigh(within + 1e-6 * np.eye(len(within)))
    to_unit = vectors / np.sqrt(np.maximum(values, 1e-9))  # within -> identity
    spread, axes = np.linalg.eigh(to_unit.T @ cohort.between.astype(np.float64) @ to_unit)
    order = np.argsort(spread)[::-1][:dims]
    return Plda(
        cohort.mean,
        (to_unit @ axes[:, order]).astype(np.float32),
        np.maximum(spread[order], 1e-9).astype(np.float32),
    )
