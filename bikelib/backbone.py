"""The bike backbone: the default CNN pretrained to tell hundreds of rendered bikes apart.

An owner's twenty photos of each bike cannot teach a network what makes one bicycle
another one: trained on them alone, it also learns each bike's usual spot, and a stolen
bike is photographed somewhere else. So, as face recognition does with faces, the
network first learns bike identity from many bikes: `BIKES` random bikes
(`render.random_bike`), `PHOTOS_PER_BIKE` photos of each, every photo at a new place,
one class per bike. An owner's training then starts from these weights instead of
random ones (`TrainConfig.pretrained`), and by default keeps them as they are: only
the softmax over the owner's bikes trains (`TrainConfig.frozen`).

By measurement (bench/RESULTS.md, "A backbone pretrained on rendered bikes"): before
any training on them, its features tell a stranger's bike from the owner's on the real
umea photos (leave one bike out: AUROC 0.997, worst fold 0.994) better than the network
trained on those photos from random weights (0.989, 0.959). Kept frozen with only the
softmax trained (the default): the same 0.997 / 0.994, the umea bikes named right in 3
seeds of 3, and the rendered listings at new places, which stayed at 0.57-0.62 whatever
the score or loss, at 0.835 (0.785-0.789 with every layer fine-tuned).

Shipped in data/backbone/ (backbone.keras and backbone.json: the recipe and how it
scored), made by `python -m bikelib pretrain data/backbone`: nothing is downloaded. Its
bikes' seeds (`FIRST_BIKE_SEED` on) and photo seeds are used nowhere else: not by the shipped
strangers (900,000+) nor by any benchmark.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from .errors import BackboneError

BACKBONE_DIR = Path(__file__).resolve().parent.parent / "data" / "backbone"
WEIGHTS = "backbone.keras"
CARD = "backbone.json"
BIKES = 300
FIRST_BIKE_SEED = 1_000_000  # bike i is random_bike(FIRST_BIKE_SEED + i), for any number
PHOTO_SEEDS = 2_000_000  # photo k of bike i: PHOTO_SEEDS + 100 * i + k
PHOTOS_PER_BIKE = 12  # to train on; and VALIDATION_PER_BIKE more to measure it
VALIDATION_PER_BIKE = 2
PHOTO_SIZE = (192, 144)  # as the shipped strangers: plenty for a 96-pixel network
ARCH = "default"  # the architecture whose weights it holds
HEAD = "probabilities"  # the one layer an owner's model does not take from it (not saved)


def pretraining_recipe():
    """The TrainConfig the shipped backbone was trained with.

    Cross-entropy over the bikes (a classifier with one class per identity learns
    identity features, as face recognition's do); no strangers and no contrastive loss
    (with 300 bikes and batches of 32 a photo rarely meets another of its own bike);
    the last epoch's weights (the validation photos only measure)."""
    from .config import TrainConfig

    return TrainConfig(
        arch=ARCH,
        epochs=30,  # 15 scored lower (bench/RESULTS.md): it was still learning when it ended
        batch_size=32,
        strangers=0,
        contrastive=0.0,
        restore_best=False,
        pretrained=False,
        seed=0,
    )


def _render_one(job: tuple[str, int, int]) -> None:
    from . import render

    folder, bike, photo = job
    split = "train" if photo < PHOTOS_PER_BIKE else "validation"
    path = Path(folder) / split / f"bike{bike:04d}" / f"{photo:02d}.jpg"
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = PHOTO_SEEDS + 100 * bike + photo
    image = render.render_photo(
        render.random_bike(FIRST_BIKE_SEED + bike), seed, PHOTO_SIZE, place="new"
    )
    partial = path.with_suffix(".part")
    render.save_jpeg(image, partial)
    partial.replace(path)  # a stopped run leaves no half-written photo to train on


def render_pretraining_photos(folder: str | Path, bikes: int = BIKES, workers: int = 2) -> Path:
    """Render the backbone's photos into `folder` (train/ and validation/, one folder per
    bike), in `workers` processes; photos already there are kept, so a stopped run goes
    on where it stopped. About 0.1 s a photo on one core."""
    from multiprocessing import Pool

    jobs = [
        (str(folder), bike, photo)
        for bike in range(bikes)
        for photo in range(PHOTOS_PER_BIKE + VALIDATION_PER_BIKE)
    ]
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(_render_one, jobs, chunksize=16):
            pass
    return Path(folder)


def pretrain(
    out: str | Path,
    photos: str | Path,
    *,
    bikes: int = BIKES,
    epochs: int | None = None,
    on_progress=None,
) -> dict:
    """Render the photos (into `photos`), train the backbone and write it to `out`
    (WEIGHTS: the network up to its features; CARD). Returns the card: the recipe, its
    validation accuracy over the bikes and how long it took."""
    from . import open_dataset
    from .training import train

    started = time.perf_counter()
    render_pretraining_photos(photos, bikes)
    rendered = time.perf_counter() - started
    config = pretraining_recipe()
    if epochs:  # a candidate recipe (bench/RESULTS.md compares them)
        config = dataclasses.replace(config, epochs=epochs)
    nothing = _no_photos(config.image_size)  # no threshold to calibrate: no strangers scored
    result = train(open_dataset(photos), config, others=nothing, on_progress=on_progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_features(result.model, out / WEIGHTS)
    card = {
        "what": f"the {ARCH} CNN trained to tell {bikes} rendered bikes apart",
        "made_by": "python -m bikelib pretrain",
        "bikes": bikes,
        "bike_seeds": [FIRST_BIKE_SEED, FIRST_BIKE_SEED + bikes - 1],
        "photos_per_bike": PHOTOS_PER_BIKE,
        "validation_per_bike": VALIDATION_PER_BIKE,
        "photo_size": list(PHOTO_SIZE),
        "config": config.to_dict(),
        "validation_accuracy": result.evaluation.accuracy if result.evaluation else None,
        "render_seconds": round(rendered),
        "train_seconds": round(result.seconds),
    }
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def save_features(model, path: str | Path) -> None:
    """Save `model` up to its features, without the head over the pretraining bikes (no
    owner needs it) and without the optimizer's state: a third of the size."""
    import keras

    from .models import FEATURES

    features = keras.Model(model.input, model.get_layer(FEATURES).output, name="bike_backbone")
    features.save(path)


def _no_photos(size: int):
    import numpy as np

    return np.zeros((0, size, size, 3), np.uint8)


def freeze(model) -> None:
    """Keep every layer but the HEAD as it is while `model` trains (Keras 3 also runs a
    frozen BatchNormalization in inference mode, with the backbone's statistics)."""
    for layer in model.layers:
        if layer.weights and layer.name != HEAD:
            layer.trainable = False


def load_into(model, folder: str | Path | None = None) -> int:
    """Copy the backbone's weights into `model` (built by `make_model(ARCH, ...)`), every
    layer but the HEAD; returns how many layers were copied. Raises BackboneError when
    the backbone is missing or its layers do not line up with the model's."""
    import keras

    path = Path(folder or BACKBONE_DIR) / WEIGHTS
    if not path.is_file():
        raise BackboneError(
            f"The pretrained bike backbone is missing ({path}); "
            "make it with `python -m bikelib pretrain data/backbone`, or train from scratch"
        )
    backbone = keras.models.load_model(path, compile=False)
    ours = [layer for layer in model.layers if layer.weights and layer.name != HEAD]
    theirs = [layer for layer in backbone.layers if layer.weights]
    shapes = [[tuple(w.shape) for w in layer.weights] for layer in ours]
    if shapes != [[tuple(w.shape) for w in layer.weights] for layer in theirs]:
        raise BackboneError(
            f"The bike backbone ({path}) does not fit a '{model.name}' model: "
            "it holds the weights of the default architecture only"
        )
    for mine, pretrained in zip(ours, theirs, strict=True):
        mine.set_weights(pretrained.get_weights())
    return len(ours)
