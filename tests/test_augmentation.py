"""Augmentation: each random layer draws from its own stream."""

import numpy as np
import pytest

from bikelib import Augmentation, ConfigError, TrainConfig


def test_flip_and_brightness_draw_independently():
    # With one shared seed, Keras 3 gave every layer the same random numbers: every
    # flipped photo was also darkened (correlation about -0.9 on this batch).
    only = Augmentation(flip=True, zoom=0, rotation=0, translation=0, brightness=0.3, contrast=0)
    ramp = np.linspace(0, 200, 32, dtype="float32")[None, None, :, None]
    photos = np.tile(ramp, (64, 32, 1, 3))  # dark left, bright right
    out = photos
    for layer in only.layers(seed=0):
        out = layer(out, training=True)
    out = np.asarray(out)
    flipped = out[:, :, :16].mean(axis=(1, 2, 3)) > out[:, :, 16:].mean(axis=(1, 2, 3))
    brighter = out.mean(axis=(1, 2, 3)) - photos.mean(axis=(1, 2, 3))
    assert 0.2 < flipped.mean() < 0.8  # both kinds present
    assert abs(np.corrcoef(flipped, brighter)[0, 1]) < 0.5


def test_layers_get_distinct_seeds_and_repeat():
    first = [layer.seed for layer in Augmentation().layers(seed=3)]
    assert len(set(first)) == len(first) == 6
    assert first == [layer.seed for layer in Augmentation().layers(seed=3)]


def test_fill_reaches_the_moving_layers_and_the_saved_config():
    layers = Augmentation(fill="constant").layers(seed=0)
    fills = {
        type(layer).__name__: layer.fill_mode for layer in layers if hasattr(layer, "fill_mode")
    }
    assert fills == dict.fromkeys(("RandomRotation", "RandomZoom", "RandomTranslation"), "constant")
    config = TrainConfig(augmentation=Augmentation(fill="nearest"))
    assert config.to_dict()["augmentation"]["fill"] == "nearest"
    assert TrainConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["augmentation"]["fill"]  # a model.json saved before the field existed
    assert TrainConfig.from_dict(old).augmentation.fill == "reflect"
    del old["contrastive"]  # and before the contrastive loss: trained without it
    assert TrainConfig.from_dict(old).contrastive == 0.0


def test_an_unknown_fill_is_one_sentence():
    with pytest.raises(ConfigError, match="fill must be one of reflect, constant, nearest"):
        Augmentation(fill="wrap")
