"""The `lite0` architecture (fine-tuned ImageNet EfficientNet-Lite0), briefly trained on
tiny photos: its weights come from the pinned checkpoint, and a saved one loads, answers
as it did when trained, explains itself and exports for phones."""

import json

import numpy as np
import pytest

from bikelib import TrainConfig, load_model, make_model, open_dataset, save_model, train

# 32 px (the smallest size a config allows): a seconds-long training, not a useful model.
TINY = {"image_size": 32, "batch_size": 8, "epochs": 1, "strangers": 0}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from helpers import write_dataset

    root = write_dataset(tmp_path_factory.mktemp("data") / "tiny")
    # No validation photos: one graph fewer to trace (seconds on 2 cores).
    dataset = open_dataset(root, val_fraction=0, seed=0)
    result = train(dataset, TrainConfig.recommended("lite0", **TINY))
    directory = save_model(result, tmp_path_factory.mktemp("models") / "lite0")
    return dataset, result, directory


def test_lite0_starts_from_the_imagenet_weights():
    from bikelib.pretrained import read_pretrained_weights

    model = make_model("lite0", 3, 32)
    state = read_pretrained_weights()
    stem = model.get_layer("conv_stem").get_weights()[0]
    assert np.array_equal(stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    head = model.get_layer("conv_head").get_weights()[0]
    assert np.array_equal(head, state["_conv_head.weight"].transpose(2, 3, 1, 0))
    assert model.get_layer("features").output.shape == (None, 1280)
    assert not model.get_layer("conv_stem").trainable and model.get_layer("conv_head").trainable
    assert not model.get_layer("bn1").trainable  # ImageNet's statistics kept


def test_recommended_lite0_settings_are_its_own():
    config = TrainConfig.recommended("lite0")
    assert config.arch == "lite0" and config.learning_rate < TrainConfig().learning_rate


def test_a_saved_lite0_model_loads_and_predicts_as_trained(saved):
    dataset, result, directory = saved
    meta = json.loads((directory / "model.json").read_text())
    assert meta["architecture"] == "lite0" and meta["image_size"] == 32
    classifier = load_model(directory, gate=False)
    assert not classifier.model.get_layer("bn1").trainable  # the freezing round-trips
    photo = dataset.train[0].path
    prediction = classifier.predict(photo)
    assert prediction.label in dataset.classes
    direct = result.model.predict(classifier.decode(photo)[None], verbose=0)[0]
    np.testing.assert_allclose(list(prediction.probabilities.values()), direct, atol=1e-5)
    assert prediction.confidence == prediction.probabilities[prediction.label]


def test_a_lite0_model_explains_itself_on_its_last_convolution(saved):
    from bikelib import explain

    dataset, _, directory = saved
    classifier = load_model(directory, gate=False)
    assert explain.last_conv_layer(classifier.model) == "head_relu6"
    picture = classifier.explain(dataset.train[0].path, size=64)
    assert picture.size[0] <= 64 and picture.size[1] <= 64


def test_a_lite0_model_exports_to_tflite(saved):
    from bikelib.portable import tflite_bytes

    _, _, directory = saved
    blob, about = tflite_bytes(directory)
    assert blob[4:8] == b"TFL3" and about["image_size"] == 32
