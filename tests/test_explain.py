"""Grad-CAM heatmaps: do they point at what decided the answer?

Two small models learn photos whose class is a small square at a random place on a
noisy background (class 1 red, class 0 blue); held-out heatmaps must sit on the square.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

import keras
import numpy as np
import pytest

from bikelib import BikeLibError, make_model
from bikelib import explain as ex

SIZE, SQUARE = 64, 12  # photo and square side, pixels
COLOURS = {0: (30, 30, 230), 1: (230, 30, 30)}


def square_photos(n: int, seed: int):
    """n noisy grey photos, each with one red (class 1) or blue (class 0) square."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(110, 30, (n, SIZE, SIZE, 3))
    labels = rng.integers(0, 2, n)
    corners = rng.integers(2, SIZE - SQUARE - 2, (n, 2))
    for photo, label, (r, c) in zip(pixels, labels, corners, strict=True):
        square = np.array(COLOURS[label]) + rng.normal(0, 10, (SQUARE, SQUARE, 3))
        photo[r : r + SQUARE, c : c + SQUARE] = square
    return np.clip(pixels, 0, 255).astype(np.uint8), labels, corners


def trained(arch: str, image_size: int, n: int, epochs: int, learning_rate: float):
    keras.utils.set_random_seed(0)
    photos, labels, _ = square_photos(n, seed=0)
    model = make_model(arch, 2, image_size)
    model.compile(
        keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(photos, labels, batch_size=32, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def held_out():
    return square_photos(24, seed=1)


@pytest.fixture(scope="module")
def default_model():
    return trained("default", SIZE, n=160, epochs=6, learning_rate=1e-2)


@pytest.fixture(scope="module")
def seed_model():
    # 80 px is about the least the seed CNN's four valid 5x5 convolutions allow: its last
    # map is 2x2, so this model can only say which part of the photo, not where exactly.
    return trained("seed", 80, n=128, epochs=4, learning_rate=2e-3)


def box(heat: np.ndarray, r: int, c: int, margin: int = 0) -> np.ndarray:
    return heat[max(r - margin, 0) : r + SQUARE + margin, max(c - margin, 0) : c + SQUARE + margin]


def mirrored(r: int, c: int) -> tuple[int, int]:
    """The square's corner reflected through the photo's centre."""
    return SIZE - SQUARE - r, SIZE - SQUARE - c


def check_points_at_square(model, held_out, peaks: bool):
    photos, labels, corners = held_out
    assert model.evaluate(photos, labels, verbose=0)[1] >= 0.9  # it learned the task
    on_square = beats_mirror = 0
    for photo, label, (r, c) in zip(photos, labels, corners, strict=True):
        explanation = ex.explain(model, photo)
        heat = explanation.heat
        assert explanation.class_index == label
        assert heat.shape == (SIZE, SIZE) and heat.dtype == np.float32
        assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() == pytest.approx(1)
        row, col = np.unravel_index(heat.argmax(), heat.shape)
        on_square += r - 6 <= row < r + SQUARE + 6 and c - 6 <= col < c + SQUARE + 6
        beats_mirror += box(heat, r, c).mean() > box(heat, *mirrored(r, c)).mean()
    n = len(photos)
    assert beats_mirror >= 0.9 * n, f"square hotter than its mirror image in {beats_mirror}/{n}"
    if peaks:
        assert on_square >= 0.75 * n, f"peak on or next to the square in {on_square}/{n}"


def test_default_model_heatmap_points_at_the_square(default_model, held_out):
    # The activation after the main stack's deepest convolution: the smallest map (the
    # colour-bin side branch works at full size). Not checked by name: Keras numbers
    # layers per process, so the name depends on which tests built models before.
    maps = [
        layer
        for layer in default_model.layers
        if isinstance(layer, keras.layers.Activation) and len(layer.output.shape) == 4
    ]
    deepest = min(layer.output.shape[1] for layer in maps)
    expected = [layer.name for layer in maps if layer.output.shape[1] == deepest][-1]
    assert ex.last_conv_layer(default_model) == expected
    check_points_at_square(default_model, held_out, peaks=True)


def test_most_heat_lies_on_the_square(default_model, held_out):
    """The square and 6 pixels around it (at most 14% of the photo) hold most of the heat.

    Both classes: a model that only knew "blue square here" would explain red photos
    by the absence of blue, all over the background.
    """
    photos, labels, corners = held_out
    shares = {0: [], 1: []}
    for photo, label, (r, c) in zip(photos, labels, corners, strict=True):
        heat = ex.heatmap(default_model, photo)
        shares[int(label)].append(box(heat, r, c, margin=6).sum() / heat.sum())
    for label, share in shares.items():
        assert np.median(share) > 0.3, f"class {label}: {np.round(share, 2)}"


def test_the_other_class_is_not_explained_by_the_square(default_model, held_out):
    photos, labels, corners = held_out
    hotter = 0
    for photo, label, (r, c) in zip(photos, labels, corners, strict=True):
        answer = box(ex.heatmap(default_model, photo, class_index=int(label)), r, c).mean()
        other = box(ex.heatmap(default_model, photo, class_index=1 - int(label)), r, c).mean()
        hotter += answer > other
    assert hotter >= 0.9 * len(photos)


def test_seed_cnn_heatmap_points_at_the_square(seed_model, held_out):
    assert ex.last_conv_layer(seed_model) == seed_model.layers[-6].name  # 4th Conv2D
    check_points_at_square(seed_model, held_out, peaks=False)


def test_reloaded_model_gives_the_same_heatmap(default_model, held_out, tmp_path):
    default_model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert ex.last_conv_layer(reloaded) == ex.last_conv_layer(default_model)
    for photo in held_out[0][:4]:
        expected = ex.explain(default_model, photo)
        got = ex.explain(reloaded, photo)
        assert got.class_index == expected.class_index
        np.testing.assert_allclose(got.heat, expected.heat, atol=1e-4)
        np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-5)


# --- without training --------------------------------------------------------------------


def test_import_does_not_load_tensorflow():
    code = "import sys, bikelib.explain; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_last_conv_layer_is_the_main_branch_for_both_architectures():
    default = make_model("default", 3, 96)
    name = ex.last_conv_layer(default)
    layer = default.get_layer(name)
    # The activation after the deepest separable convolution (256 filters), not the
    # colour branch's 1x1 convolution, which comes later in the layer list.
    assert isinstance(layer, keras.layers.Activation) and layer.output.shape[1:] == (12, 12, 256)
    assert name != "colour_bins" and "colour_bins" in [x.name for x in default.layers]

    seed = make_model("seed", 3, 150)
    convs = [x.name for x in seed.layers if isinstance(x, keras.layers.Conv2D)]
    assert len(convs) == 4 and ex.last_conv_layer(seed) == convs[-1]


def test_no_convolution_is_a_clear_error():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="flat")
    with pytest.raises(BikeLibError, match="no 2-D convolution"):
        ex.last_conv_layer(model)
    with pytest.raises(ex.ExplainError):
        ex.heatmap(model, np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(("arch", "size"), [("seed", 96), ("default", 64)])
def test_map_cells_sit_on_their_receptive_fields(arch, size):
    """Each cell's place in the photo is the middle of the pixels it can see.

    Checked against the gradient of one cell with respect to the resized photo: the
    span of pixels it depends on. (Stretching the seed CNN's map edge to edge would put
    its first cell at pixel 11.5 of 96; it sees pixels 0-67.)
    """
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = make_model(arch, 2, size)
    layer = ex.last_conv_layer(model)
    (step, offset, frame), columns = ex._geometry(model, layer)
    assert frame == size and columns == (step, offset, frame)
    probe = keras.Model(model.inputs, [model.get_layer(layer).output])
    photo = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)), tf.float32)
    checked = 0
    for cell in range(probe(photo).shape[1]):
        with tf.GradientTape() as tape:
            tape.watch(photo)
            value = tf.reduce_sum(probe(photo, training=False)[0, cell, cell] ** 2)
        seen = np.abs(tape.gradient(value, photo)[0]).sum(axis=(1, 2))
        rows = np.flatnonzero(seen > seen.max() * 1e-6)
        if rows.min() > 0 and rows.max() < size - 1:  # not cut off by the photo's edge
            assert (rows.min() + rows.max()) / 2 == pytest.approx(step * cell + offset, abs=1)
            checked += 1
    assert checked >= 2


def test_heatmap_follows_the_photo_size_and_the_chosen_class():
    keras.utils.set_random_seed(2)
    model = make_model("default", 3, 64)
    photo = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    explanation = ex.explain(model, photo, class_index=2)
    assert explanation.heat.shape == (48, 80) and explanation.class_index == 2
    assert explanation.probabilities.shape == (3,)
    assert explanation.probabilities.sum() == pytest.approx(1, abs=1e-5)
    predicted = ex.explain(model, photo[:30, :20])  # another size: same compiled function
    assert predicted.heat.shape == (30, 20)
    assert predicted.class_index == int(np.argmax(predicted.probabilities))
    for bad in (3, -1):
        with pytest.raises(ex.ExplainError, match="class_index"):
            ex.heatmap(model, photo, class_index=bad)
    for bad_photo in (photo[..., 0], photo[..., :2], photo[:0]):
        with pytest.raises(ex.ExplainError, match="RGB image"):
            ex.heatmap(model, bad_photo)


def test_no_evidence_gives_zeros_not_nan():
    model = make_model("seed", 2, 80)
    last = model.get_layer(ex.last_conv_layer(model))
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])  # features all 0
    heat = ex.heatmap(model, np.full((40, 40, 3), 128, np.uint8))
    assert heat.shape == (40, 40) and heat.dtype == np.float32
    assert not heat.any()


def test_gradient_function_is_built_once_per_model_and_freed_with_it():
    model = make_model("seed", 2, 80)
    photo = np.zeros((32, 32, 3), np.uint8)
    ex.heatmap(model, photo)
    built = ex._functions[model][ex.last_conv_layer(model)]
    ex.heatmap(model, photo + 50)
    assert ex._functions[model][ex.last_conv_layer(model)] is built
    alive = weakref.ref(model)
    del model, built
    gc.collect()
    assert alive() is None  # the cache does not keep a model alive


def test_overlay_blends_a_colour_scale_that_brightens_with_heat():
    photo = np.full((4, 256, 3), (20, 200, 90), np.uint8)
    heat = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (4, 1))
    assert np.array_equal(ex.overlay(photo, heat, alpha=0), photo)
    colours = ex.overlay(photo, heat, alpha=1)
    assert colours.dtype == np.uint8 and colours.shape == photo.shape
    assert np.array_equal(colours[0], ex.colormap(heat[0]))
    # Relative luminance rises all the way: the scale reads as "more" in greyscale too.
    linear = (colours[0] / 255.0) ** 2.2
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) > 0)
    assert luminance[0] < 0.02 and luminance[-1] > 0.7
    half = ex.overlay(photo, heat, alpha=0.45)
    expected = 0.55 * photo.astype(float) + 0.45 * colours
    assert np.abs(half.astype(float) - expected).max() <= 1
    ends = ex.colormap(np.array([np.nan, -1, 0, 1, 2]))  # NaN and out of range: clipped
    assert (ends[:3] == ends[2]).all() and (ends[3:] == ends[3]).all()
    with pytest.raises(ex.ExplainError, match="does not match"):
        ex.overlay(photo, heat[:, :10])


def test_cells_are_spread_from_their_centres():
    """A one-cell map peaks where that cell's pixels are centred, whatever the photo size."""
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1
    seed_96 = ((8.0, 33.5, 96), (8.0, 33.5, 96))  # the seed CNN's last map at 96 px
    heat = ex._spread(cam, 96, 96, seed_96)
    assert np.unravel_index(heat.argmax(), heat.shape) in {(41, 49), (41, 50), (42, 49), (42, 50)}
    assert heat[:34].max() == heat[0].max()  # before the first centre: the edge cells' value
    tall = ex._spread(cam, 192, 48, seed_96)  # the model squashes it to 96x96: so does the map
    row, col = np.unravel_index(tall.argmax(), tall.shape)
    assert abs(row - 83.5) <= 1 and abs(col - 24.5) <= 1
    even = ex._spread(cam, 8, 8, None)  # unknown geometry: cells evenly over the photo
    assert np.array_equal(np.argwhere(even == even.max()), [[2, 4], [2, 5], [3, 4], [3, 5]])
