"""Serving: a saved model given a raw photo answers as `Classifier.predict` does."""

from pathlib import Path

import numpy as np
import pytest

from bikelib import load_model, open_image

ROOT = Path(__file__).resolve().parents[1]


def test_raw_photos_through_the_model_match_predict():
    # One resizing filter: Pillow's antialiased bilinear at decode time is the model's own
    # Resizing layer, so 640x480 photos fed straight to model.keras get the same answers.
    # (With Pillow's faster reducing_gap shortcut, probabilities differed by up to 0.022.)
    classifier = load_model(ROOT / "data" / "demo-model")
    photos = sorted((ROOT / "data" / "demo-bikes" / "validation").glob("*/*.jpg"))
    for photo in photos:
        raw = np.asarray(open_image(photo))[None].astype("float32")
        assert raw.shape[1:3] == (480, 640)
        direct = np.asarray(classifier.model(raw, training=False))[0]
        predicted = classifier.predict(photo)
        # Within 0.04: the shipped model of 2026-12-05 (the 60-epoch backbone) differs by
        # at most 0.031, that of 2026-12-02 by 0.017, its predecessor by under 0.01.
        np.testing.assert_allclose(direct, list(predicted.probabilities.values()), atol=0.04)


def test_the_label_is_the_best_match_not_the_most_probable_bike():
    # At new places the two disagree for about one photo in eight, and the match is right
    # far more often (bench/RESULTS.md, "Which bike a verdict names"): a verdict names the
    # bike its score is the match with. Without matches (a model saved before them), the
    # most probable bike.
    classifier = load_model(ROOT / "data" / "demo-model", gate=False)
    bikes = classifier.classes
    probabilities = np.array([0.7, 0.1, 0.1, 0.05, 0.05])  # the softmax says bikes[0]
    matches = np.array([-0.3, -0.4, 0.25, -0.5, -0.2])  # the best match is bikes[2]
    named = classifier._prediction(probabilities, 0.25, None, None, matches)
    assert (named.label, named.matched, named.verdict) == (bikes[2], bikes[2], "bike")
    assert named.confidence == 0.1  # the network's probability of that bike
    assert named.sentence.startswith(f"Looks like {bikes[2]}: it matches that bike's photos")
    asked = classifier._prediction(probabilities, -0.2, None, 4, matches)  # a scan for bikes[4]
    assert (asked.label, asked.matched, asked.verdict) == (bikes[2], bikes[4], "not_mine")
    plain = classifier._prediction(probabilities, float("nan"), None, None)
    assert plain.label == bikes[0] and plain.confidence == 0.7


def test_the_shipped_models_reference_photos_line_up_with_its_features():
    # Each demo training photo's closest reference photo is itself, at a match of 1.
    classifier = load_model(ROOT / "data" / "demo-model", gate=False)
    for photo in sorted((ROOT / "data" / "demo-bikes" / "train").glob("*/*-0[16].jpg")):
        closest = classifier.closest_photo(photo)
        assert (closest.name, closest.bike) == (photo.name, photo.parent.name)
        assert closest.similarity > 0.999


def test_visitors_sharing_one_model_get_the_answers_each_would_alone():
    # A hosted server shares one loaded model (st.cache_resource) among its sessions, and
    # its networks run through Keras' compiled predict functions: those must give each
    # thread its own photo's answer, as one visitor alone would get.
    import threading

    classifier = load_model(ROOT / "data" / "demo-model", gate=False)
    photos = sorted((ROOT / "data" / "demo-bikes" / "validation").glob("*/*.jpg"))[::2]
    alone = {photo: classifier.predict(photo) for photo in photos}
    answers, failures = [], []

    def visitor(offset: int) -> None:
        try:
            for photo in photos[offset:] + photos[:offset]:
                answers.append((photo, classifier.predict(photo)))
        except Exception as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(answers) == 3 * len(photos)
    for photo, answer in answers:
        assert answer.label == alone[photo].label, photo.name
        assert answer.score == pytest.approx(alone[photo].score, abs=1e-5), photo.name
