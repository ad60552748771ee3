"""Model factories, selected by name: the 2018 `seed` CNN and the `default` recipe.

Every model takes raw RGB pixels (0-255, any size) and does its own preprocessing
(resize, rescale), so whatever serves a saved model cannot drift from how it was
trained. Augmentation layers sit inside the model too, but Keras runs random layers
only when training, so prediction sees the photo as it is.
"""

from __future__ import annotations

import keras
from keras import layers

from .config import ARCHITECTURE_LABELS, Augmentation
from .errors import ConfigError

# The penultimate layer of every architecture: what "is this one of my bikes?" compares.
FEATURES = "features"


def _preprocess(
    image_size: int,
    augmentation: Augmentation | None,
    random_seed: int | None,
    *,
    rescale: bool = True,
):
    """Input of any size -> resized, (augmented when training,) rescaled to [0, 1]
    (`rescale=False`: left at 0-255, for a network that scales its input itself).

    Photos arrive already resized by `bikelib.images.decode` with the same filter, so
    this layer acts only when a raw photo is given to the saved model directly.
    """
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Resizing(image_size, image_size, antialias=True, name="resize")(inputs)
    chosen = augmentation.layers(random_seed) if augmentation else []
    if chosen:  # an empty Sequential cannot be built; no augmentation is no block
        x = keras.Sequential(chosen, name="augmentation")(x)
    if rescale:
        x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    return inputs, x


def seed_cnn(num_classes: int, image_size: int = 150, augmentation=None, random_seed=None):
    """The 2018 assignment's network, layer for layer: 4 x (Conv 5x5 + pool), Dense 64."""
    inputs, x = _preprocess(image_size, augmentation, random_seed)
    for filters in (32, 32, 64, 64):
        x = layers.Conv2D(filters, 5, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name=FEATURES)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_bn_relu(x, filters: int, strides: int = 1, separable: bool = True):
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    # momentum 0.9, not Keras' 0.99: with 5 batches an epoch the moving statistics
    # must settle within a few dozen steps, or evaluation sees stale ones.
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def default_cnn(num_classes: int, image_size: int = 96, augmentation=None, random_seed=None):
    """A compact separable CNN beside a learned colour histogram (about 51k weights).

    Why this shape, for 80 photos and 2 CPU cores:
    - separable convolutions: 2.5x faster than plain ones here, with few weights;
    - global average AND max pooling: a bike may fill the photo or be a small part of
      it, and max pooling keeps a small but telling part (a basket, a saddle);
    - the colour-histogram branch (1x1 convolution into 32 soft colour bins, averaged
      over the photo) learns which colours identify a bike; alone it learns little,
      beside the CNN it settles the red-versus-orange and black-versus-green cases.
    """
    inputs, x = _preprocess(image_size, augmentation, random_seed)
    y = _conv_bn_relu(x, 32, strides=2, separable=False)
    for filters in (64, 128, 256):
        y = _conv_bn_relu(y, filters)
        y = layers.MaxPooling2D(2)(y)
    features = [layers.GlobalAveragePooling2D()(y), layers.GlobalMaxPooling2D()(y)]

    colours = layers.AveragePooling2D(2)(x)
    colours = layers.Conv2D(32, 1, name="colour_bins")(colours)
    colours = layers.Softmax(axis=-1)(colours)
    colours = layers.GlobalAveragePooling2D(name="colour_histogram")(colours)
    # Bin shares are tiny numbers next to CNN features; normalising lets both count.
    features.append(layers.BatchNormalization(momentum=0.9)(colours))

    x = layers.Concatenate(name=FEATURES)(features)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="default")


# Lite0's stem and first 10 of its 16 blocks keep ImageNet's weights; blocks 10-15 and
# the head convolution are fine-tuned. By measurement (bench/RESULTS.md, "Fine-tuned
# EfficientNet-Lite0"): with only 3 blocks frozen a learning rate of 5e-4 once collapsed
# the features (every photo alike, 25% right on four bikes); with 10 frozen no run at 3e-4
# or 5e-4 collapsed (1e-3 still did), and 10 epochs took 26 CPU seconds, not 33.
LITE0_FROZEN_BLOCKS = 10
LITE0_HEAD = "probabilities"


def lite0_cnn(
    num_classes: int,
    image_size: int = 128,
    augmentation=None,
    random_seed=None,
    *,
    frozen_blocks: int | None = None,
    frozen_batchnorm: bool = True,
    dropout: float = 0.3,
):
    """ImageNet-pretrained EfficientNet-Lite0 (bikelib.pretrained), fine-tuned.

    Raw pixels in: resized (and augmented when training) on 0-255 values, then the
    network's own `(x - 127) / 128` scaling, its 16 blocks and 1280-wide head
    convolution, global average pooling as the `features`, dropout and a softmax.
    Weights: the pinned ImageNet checkpoint (read and checked on every build; nothing is
    downloaded), the new softmax layer initialised as Keras does. With
    `frozen_batchnorm` every BatchNormalization layer keeps ImageNet's statistics and
    runs in inference mode while training (a batch of 16 photos of five bikes says
    little about the statistics of photos); the stem and the first `frozen_blocks`
    blocks are not trained at all.
    """
    from .pretrained import lite0_trunk, load_torch_weights, read_pretrained_weights

    frozen_blocks = LITE0_FROZEN_BLOCKS if frozen_blocks is None else frozen_blocks
    inputs, x = _preprocess(image_size, augmentation, random_seed, rescale=False)
    x = lite0_trunk(x, pool_name=FEATURES)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=LITE0_HEAD)(x)
    model = keras.Model(inputs, outputs, name="lite0")
    load_torch_weights(model, read_pretrained_weights(), others=(LITE0_HEAD,))
    frozen = ("conv_stem", "bn0", *(f"blocks_{i}_" for i in range(frozen_blocks)))
    for layer in model.layers:
        if frozen_batchnorm and isinstance(layer, layers.BatchNormalization):
            layer.trainable = False  # Keras 3: also runs it in inference mode
        if frozen_blocks and layer.weights and layer.name.startswith(frozen):
            layer.trainable = False
    return model


ARCHITECTURES = {"default": default_cnn, "seed": seed_cnn, "lite0": lite0_cnn}
assert set(ARCHITECTURES) == set(ARCHITECTURE_LABELS)  # config.py names them without Keras


def make_model(
    arch: str,
    num_classes: int,
    image_size: int,
    augmentation: Augmentation | None = None,
    random_seed: int | None = None,
) -> keras.Model:
    """Build an untrained model by architecture name (see ARCHITECTURES).

    `random_seed` seeds the augmentation layers' random streams (not the weights:
    `keras.utils.set_random_seed` does that for the whole run).
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(
            f"Unknown architecture '{arch}'; choose one of {', '.join(ARCHITECTURES)}"
        )
    if num_classes < 2:
        raise ConfigError(f"A classifier needs at least 2 classes, not {num_classes}")
    return ARCHITECTURES[arch](num_classes, image_size, augmentation, random_seed)
