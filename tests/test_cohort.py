"""The cohort's models: whitening (WCCN) and the PLDA, on synthetic features where the
answer is known."""

import numpy as np
import pytest

from bikelib import openset
from bikelib.cohort import cohort_statistics, fit_plda, fit_whitening, normalise
from bikelib.embedding import Outputs


def outputs(features):
    return Outputs(normalise(features), np.zeros((len(features), 2)), np.zeros((len(features), 2)))


def test_whitening_scales_down_what_varies_between_photos_of_one_bike():
    # 30 bikes, each a point in 32 dimensions, photographed with a large "place" offset
    # along 2 shared directions: a stranger at the same place is nearer than the bike
    # itself at another place, until the cohort's within-bike variation is divided out.
    rng = np.random.default_rng(0)
    places = rng.normal(size=(2, 32))

    def photos(bikes, n):
        shifts = rng.normal(scale=2.0, size=(len(bikes) * n, 2)) @ places
        return normalise(np.repeat(bikes, n, axis=0) + shifts)

    cohort_bikes = rng.normal(size=(30, 32))
    whitening = fit_whitening(photos(cohort_bikes, 6), np.repeat(np.arange(30), 6))
    own_bikes, strangers = rng.normal(size=(5, 32)), rng.normal(size=(40, 32))
    refs, labels = photos(own_bikes, 4), np.repeat(np.arange(5), 4)
    known, other = photos(own_bikes, 8), photos(strangers, 1)

    def separation(transform):
        def nearest(x):
            return openset.nearest_similarity(outputs(transform(x)), transform(refs), labels)

        return openset.auroc(nearest(known), nearest(other))

    plain, whitened = separation(lambda x: x), separation(whitening)
    assert plain < 0.8 and whitened > 0.95, (plain, whitened)  # measured 0.59 and 1.00
    np.testing.assert_allclose(np.linalg.norm(whitening(known), axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="several photos"):
        fit_whitening(refs[:3], np.arange(3))  # one photo of each bike: no variation


def test_plda_weighs_the_directions_bikes_differ_in_and_counts_a_bikes_photos_together():
    # 40 dimensions; bikes differ only in the first 4, every photo varies in all 40 (unit
    # length, as the app's features): cosine hears the 36 noisy directions as loudly as
    # the 4 telling ones, the PLDA does not.
    rng = np.random.default_rng(0)

    def bikes(n):
        return np.concatenate([rng.normal(scale=6.0, size=(n, 4)), np.zeros((n, 36))], axis=1)

    def photos(points, n):
        noisy = np.repeat(points, n, axis=0) + rng.normal(size=(len(points) * n, 40))
        return normalise(noisy)

    cohort = cohort_statistics(photos(bikes(60), 6), np.repeat(np.arange(60), 6))
    own, strangers = bikes(5), bikes(60)
    refs, labels = photos(own, 6), np.repeat(np.arange(5), 6)
    known, other = photos(own, 10), photos(strangers, 1)
    plda = fit_plda(cohort, refs, labels, adapt=0.0, dims=4)
    assert plda.transform.shape == (40, 4) and plda.between.shape == (4,)

    def separation(score):
        return openset.auroc(
            score(outputs(known), refs, labels), score(outputs(other), refs, labels)
        )

    cosine, ratio = separation(openset.nearest_similarity), separation(plda.score)
    assert ratio > 0.95 and cosine < 0.9, (ratio, cosine)  # measured 0.97 and 0.83
    # The ratio against one bike: its own photos score above a stranger's, and one photo
    # at the bike's very centre scores higher than one far out along a telling direction.
    own_scores = plda.log_likelihood_ratios(photos(own[:1], 20), refs[labels == 0])
    other_scores = plda.log_likelihood_ratios(photos(strangers[:20], 1), refs[labels == 0])
    assert np.median(own_scores) > 0 > np.median(other_scores)
    far = own[:1] + 12.0 * np.eye(40)[:1]  # two bikes' spread away along a telling direction
    at_centre, far_out = (
        plda.log_likelihood_ratios(normalise(x), refs[labels == 0]) for x in (own[:1], far)
    )
    assert at_centre[0] > far_out[0], (at_centre, far_out)
    # Adapting to the owner's photos moves the within-bike covariance, not the cohort's
    # mean; an owner with one photo a bike has no variation to adapt to.
    adapted = fit_plda(cohort, refs, labels, adapt=0.5, dims=4)
    assert not np.allclose(adapted.transform, plda.transform)
    np.testing.assert_array_equal(adapted.mean, plda.mean)
    single = fit_plda(cohort, refs[::6], labels[::6], adapt=0.5, dims=4)
    np.testing.assert_allclose(single.between, plda.between, rtol=1e-5)
