"""Open-set scores, calibration and verdicts: the numbers behind "is this my bike?"."""

import numpy as np
import pytest

from bikelib import embedding, openset
from bikelib.cohort import PLDA_DIMS, PLDA_SCALE, cohort_statistics, fit_whitening
from bikelib.embedding import Outputs


def outputs(features, logits=None):
    features = openset.normalise(np.asarray(features, dtype=np.float32))
    logits = np.zeros((len(features), 2)) if logits is None else np.asarray(logits, float)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return Outputs(features, logits, shifted / shifted.sum(axis=1, keepdims=True))


REFS = openset.normalise(np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1]]))
LABELS = np.array([0, 0, 1, 1])


def test_auroc_counts_pairs_and_ties():
    assert openset.auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert openset.auroc([0.1], [0.9]) == 0.0
    assert openset.auroc([0.5, 0.9], [0.5, 0.1]) == pytest.approx(0.875)  # one tie of four


def test_calibrate_accepts_the_asked_share():
    known = np.linspace(0.5, 0.99, 20)
    threshold = openset.calibrate(known, accept=0.95)
    assert (known >= threshold).mean() == 0.95
    assert (known >= openset.calibrate(known, accept=1.0)).all()
    assert (known >= openset.calibrate(known, accept=0.8)).mean() == 0.8


def test_trade_off_reports_both_sides():
    assert openset.trade_off(0.5, [0.4, 0.6, 0.7, 0.8], [0.1, 0.6]) == (0.75, 0.5)


def test_nearest_and_centroid_scores_prefer_photos_like_the_references():
    near, far = outputs([[1, 0.05, 0]]), outputs([[0, 0, 1]])
    for name in ("nearest", "nearest_3", "centroid"):
        score = openset.SCORES[name]
        assert score(near, REFS, LABELS)[0] > 0.9 > score(far, REFS, LABELS)[0]


def test_energy_and_max_logit_follow_the_logits():
    confident, flat = outputs([[1, 0, 0]], [[8.0, 0.0]]), outputs([[1, 0, 0]], [[1.0, 1.0]])
    for name in ("max_logit", "energy", "max_probability"):
        score = openset.SCORES[name]
        assert score(confident, REFS, LABELS)[0] > score(flat, REFS, LABELS)[0]


def test_reference_scores_one_bike_alone():
    reference = openset.Reference("nearest", 0.8, 0.95, REFS, LABELS)
    like_bike_1 = outputs([[0, 1, 0]])
    assert reference.scores(like_bike_1)[0] == pytest.approx(1.0)
    assert reference.scores(like_bike_1, bike=0)[0] < 0.2


def test_a_references_scores_bike_by_bike_give_its_score_at_their_best():
    # What Classifier.predict_decoded relies on: one pass for every bike's match.
    reference = openset.Reference("nearest", 0.8, 0.95, REFS, LABELS)
    photos = outputs([[0, 1, 0], [1, 0.2, 0], [0.3, 0.3, 0.9]])
    per_bike = reference.per_bike(photos)
    assert per_bike.shape == (3, 2)
    np.testing.assert_allclose(per_bike.max(axis=1), reference.scores(photos), rtol=1e-6)
    np.testing.assert_allclose(per_bike[:, 0], reference.scores(photos, bike=0), rtol=1e-6)


def test_leave_one_out_never_matches_a_photo_with_itself():
    scores = openset.leave_one_out_scores("nearest", REFS, LABELS)
    assert (scores < 0.999).all() and (scores > 0.9).all()


@pytest.mark.parametrize(
    ("score", "bicycle", "verdict"),
    [
        (0.9, 0.8, openset.BIKE),
        (0.5, 0.8, openset.NOT_MINE),
        (0.9, 0.02, openset.NO_BICYCLE),
        (0.9, None, openset.BIKE),  # no gate: never "no bicycle"
    ],
)
def test_decide_gives_the_verdict_and_a_sentence(score, bicycle, verdict):
    decided = openset.decide("bike3", score, 0.7, bicycle, 0.1)
    assert decided.verdict == verdict
    assert decided.known == (verdict == openset.BIKE)
    assert decided.sentence.endswith(".")
    if verdict != openset.NO_BICYCLE:
        assert "bike3" in decided.sentence


def test_a_match_with_another_bikes_photo_is_said_as_such():
    same = openset.decide("bike3", 0.93, 0.9, 0.8, 0.1, matched="bike3")
    assert same.sentence == (
        "Looks like bike3: it matches that bike's photos (match 0.93, threshold 0.90)."
    )
    other = openset.decide("bike3", 0.93, 0.9, 0.8, 0.1, matched="bike1")
    assert other.verdict == openset.BIKE
    assert other.sentence == (
        "Looks like bike3: though the photo of yours it matches best is of bike1 "
        "(match 0.93, threshold 0.90)."
    )


def test_a_predictions_matched_bike_is_the_one_its_score_is_with():
    from bikelib.artifacts import Prediction

    probabilities = {"bike1": 0.3, "bike3": 0.7}
    plain = Prediction(
        "bike3", 0.7, probabilities, score=0.93, matches={"bike1": 0.93, "bike3": 0.9}
    )
    assert plain.matched == "bike1"  # the nearest photo is bike1's, though bike3 is named
    assert "matches best is of bike1" in plain.decided(0.9, 0.1).sentence
    asked = Prediction(
        "bike3", 0.7, probabilities, score=0.9, matches={"bike1": 0.93, "bike3": 0.9}
    )
    assert asked.matched == "bike3"  # a scan's score about bike3 is bike3's match
    assert Prediction("bike3", 0.7, probabilities).matched is None  # saved without matches


def test_centre_keeps_the_middle_of_each_photo():
    photos = np.arange(2 * 10 * 20 * 3).reshape(2, 10, 20, 3)
    middle = embedding.centre(photos, 0.6)
    assert middle.shape == (2, 6, 12, 3)
    np.testing.assert_array_equal(middle, photos[:, 2:8, 4:16])
    assert embedding.centre(photos, 1.0) is photos


def test_the_embedder_averages_the_mirror_and_the_zoomed_views():
    import keras

    from bikelib import make_model

    model = make_model("default", 2, 32)
    photos = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer("features").output)

    def view(images):
        return openset.normalise(np.asarray(features(images, training=False)))

    whole = embedding.Embedder(model, zooms=(1.0,))(photos)
    mirror = view(photos[:, :, ::-1])
    # Whole photo only (as every model saved before zooms): the photo and its mirror.
    np.testing.assert_allclose(whole.features, openset.normalise(view(photos) + mirror), atol=1e-5)
    zoomed = embedding.Embedder(model, zooms=(1.0, 0.5))(photos)
    middle = photos[:, 10:30, 10:30]
    expected = view(photos) + mirror + view(middle) + view(middle[:, :, ::-1])
    np.testing.assert_allclose(zoomed.features, openset.normalise(expected), atol=1e-5)
    # The probabilities stay the whole photo's, as the model itself gives them.
    probabilities = np.asarray(model(photos, training=False))
    np.testing.assert_allclose(zoomed.probabilities, probabilities, atol=1e-5)


def test_a_reference_with_a_cohort_scores_with_the_plda_and_without_one_by_cosine():
    from bikelib import make_model

    model = make_model("default", 2, 32)
    photos = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    embed = embedding.Embedder(model)
    features = embed(photos).features
    cohort = cohort_statistics(features, labels)
    reference = openset.fit_reference(embed, photos[::2], labels[::2], photos[1::2], cohort=cohort)
    assert reference.score == openset.CHOSEN_SCORE == "nearest+plda"
    assert reference.describe()["plda_dims"] == min(PLDA_DIMS, features.shape[1])
    held = embed(photos[1::2])
    fused = openset.nearest_plus_plda(reference.plda)
    expected = fused(held, reference.features, reference.labels)
    np.testing.assert_allclose(reference.known_scores, expected, rtol=1e-5)
    assert reference.threshold == openset.calibrate(expected)
    # Against one bike: the cosine to its nearest photo plus the ratio / PLDA_SCALE.
    photo = embed(photos[:1])
    own = reference.features[reference.labels == 1]
    ratio = reference.plda.log_likelihood_ratios(photo.features, own)
    nearest = (photo.features @ own.T).max(axis=1)
    expected_one = nearest + ratio / PLDA_SCALE
    np.testing.assert_allclose(reference.scores(photo, bike=1), expected_one, rtol=1e-5)
    alone = openset.fit_reference(embed, photos[::2], labels[::2], cohort=cohort, score="plda")
    np.testing.assert_allclose(alone.scores(photo, bike=1), ratio, rtol=1e-5)
    plain = openset.fit_reference(embed, photos[::2], labels[::2], photos[1::2])
    assert plain.score == openset.COSINE_SCORE and plain.plda is None
    assert plain.describe()["plda_dims"] is None


def test_the_embedder_whitens_its_features_and_the_reference_keeps_the_map():
    from bikelib import make_model

    model = make_model("default", 2, 32)
    photos = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
    plain = embedding.Embedder(model)(photos)
    whitening = fit_whitening(plain.features, np.array([0, 0, 0, 1, 1, 1]))
    embed = embedding.Embedder(model, whitening=whitening)
    whitened = embed(photos)
    np.testing.assert_allclose(whitened.features, whitening(plain.features), atol=1e-5)
    np.testing.assert_allclose(whitened.probabilities, plain.probabilities, atol=1e-6)
    reference = openset.fit_reference(embed, photos, np.array([0, 0, 0, 1, 1, 1]))
    assert reference.whitening is whitening and reference.describe()["whitened"] is True
    plain_reference = openset.fit_reference(embedding.Embedder(model), photos, [0, 0, 0, 1, 1, 1])
    assert plain_reference.whitening is None


def test_a_second_space_averages_the_two_scores_bike_by_bike():
    from bikelib.cohort import Plda

    rng = np.random.default_rng(0)
    second_refs = openset.normalise(rng.normal(size=(4, 5)))
    plda = Plda(np.zeros(5), np.eye(5)[:, :2], np.array([2.0, 1.0]))
    second = openset.SecondSpace(second_refs, plda, weight=0.5, backbone="abc")
    reference = openset.Reference("nearest", 0.8, 0.95, REFS, LABELS, second=second)
    photo = outputs([[0, 1, 0]])
    photo = Outputs(photo.features, photo.logits, photo.probabilities, second_refs[:1])
    first = openset.Reference("nearest", 0.8, 0.95, REFS, LABELS).per_bike(photo)
    fused = openset.nearest_plus_plda(plda)
    query = Outputs(second_refs[:1], None, None)
    other = [fused(query, second_refs[own], LABELS[own]) for own in (LABELS == 0, LABELS == 1)]
    expected = 0.5 * first[0] + 0.5 * np.concatenate(other)
    np.testing.assert_allclose(reference.per_bike(photo)[0], expected, rtol=1e-5)
    assert reference.scores(photo)[0] == pytest.approx(expected.max(), rel=1e-5)
    assert reference.scores(photo, bike=1)[0] == pytest.approx(expected[1], rel=1e-5)
    assert reference.describe()["second"] == {"backbone": "abc", "weight": 0.5, "plda_dims": 2}
    # Left out, a photo leaves both spaces, in step; a query without the second's features
    # cannot be scored against a reference that has them.
    fewer = reference.without(0)
    assert len(fewer.features) == len(fewer.second.features) == 3
    with pytest.raises(ValueError, match="second backbone"):
        reference.scores(outputs([[0, 1, 0]]))


def test_fit_reference_with_a_second_backbone_calibrates_on_the_averaged_score():
    from bikelib import make_model
    from bikelib.second import SecondBackbone

    model = make_model("default", 2, 32)
    photos = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    features = embedding.Embedder(model)(photos).features
    cohort = cohort_statistics(features, labels)
    whitening = fit_whitening(features, labels)
    network = make_model("default", 2, 32)  # a stand-in network: any features will do
    import keras

    network = keras.Model(network.input, network.get_layer("features").output)
    second = SecondBackbone(network, whitening, cohort, fingerprint="f00")
    embed = embedding.Embedder(model, second=second)
    out = embed(photos)
    assert out.second is not None and out.second.shape == out.features.shape
    reference = openset.fit_reference(embed, photos[::2], labels[::2], photos[1::2], cohort=cohort)
    assert reference.second.backbone == "f00" and reference.second.weight == 0.5
    np.testing.assert_allclose(
        reference.known_scores, reference.per_bike(embed(photos[1::2])).max(axis=1), rtol=1e-5
    )
    # Without held-out photos, each training photo against the others, in both spaces.
    alone = openset.fit_reference(embed, photos[::2], labels[::2], cohort=cohort)
    trained = embed(photos[::2])
    first_photo = Outputs(trained.features[:1], None, None, trained.second[:1])
    expected = alone.without(0).scores(first_photo)[0]
    assert alone.known_scores[0] == pytest.approx(expected, rel=1e-5)
