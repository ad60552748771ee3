"""The bike backbone: the default CNN pretrained to tell hundreds of rendered bikes apart.

An owner's twenty photos of each bike cannot teach a network what makes one bicycle
another one: trained on them alone, it also learns each bike's usual spot, and a stolen
bike is photographed somewhere else. So, as face recognition does with faces, the
network first learns bike identity from many bikes: `BIKES` random bikes
(`render.random_bike`), `PHOTOS_PER_BIKE` photos of each, every photo at a new place,
one class per bike. An owner's training then starts from these weights instead of
random ones (`TrainConfig.pretrained`), and by default keeps them as they are: only
the softmax over the owner's bikes trains (`TrainConfig.frozen`).

Beside it, a `Whitening` of its features (cohort.Whitening, WCCN): fitted on
`COHORT_BIKES` more rendered bikes it never trained on (the next bike numbers), it scales
down the directions in which photos of one bike differ (place, light, framing). It only
fits these frozen features, so only a frozen training uses it (`whitening_for`). Kept with
it, what the same cohort says of bikes in the whitened features (`cohort.Cohort`:
how photos of one bike vary, how bikes differ; `cohort_for`), from which each frozen
training fits the PLDA its match scores come from (`cohort.fit_plda`).

By measurement (bench/RESULTS.md, "A backbone pretrained on rendered bikes", "Whitening
the backbone's features", "Every backbone, whitened"): kept frozen with only the softmax
trained (the default) and whitened, its features tell a stranger's bike from the owner's
on the real umea photos (leave one bike out: AUROC 0.998, worst fold 0.994) better than
the network trained on those photos from random weights (0.989, 0.959), name the umea
bikes right in 3 seeds of 3, and lift the rendered listings at new places, which stayed at
0.57-0.62 whatever the score or loss from random weights, to 0.909 (0.942 scored with the
cohort's PLDA beside the cosine: "A PLDA score").

Shipped in data/backbone/ (backbone.keras, whitening.npz and backbone.json: the recipe
and how it scored), made by `python -m bikelib pretrain data/backbone`: nothing is
downloaded. Its bikes' seeds (`FIRST_BIKE_SEED` on) and photo seeds are used nowhere else:
not by the shipped strangers (900,000+) nor by any benchmark.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

from .errors import BackboneError

BACKBONE_DIR = Path(__file__).resolve().parent.parent / "data" / "backbone"
WEIGHTS = "backbone.keras"
CARD = "backbone.json"
WHITENING = "whitening.npz"
BIKES = 300
COHORT_BIKES = 300  # bikes BIKES .. BIKES + COHORT_BIKES - 1: the whitening's, never trained on
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
        # Whitened, 30 scored lower at new places than 60, and the same on the real photos
        # (bench/RESULTS.md, "Every backbone, whitened"); unwhitened, 60 lost on the real
        # photos and 15 scored lower than 30 everywhere.
        epochs=60,
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


def render_pretraining_photos(
    folder: str | Path, bikes: int = BIKES, workers: int = 2, *, first: int = 0
) -> Path:
    """Render bikes `first` .. `first + bikes - 1` into `folder` (train/ and validation/,
    one folder per bike), in `workers` processes; photos already there are kept, so a
    stopped run goes on where it stopped. About 0.1 s a photo on one core."""
    from multiprocessing import Pool

    jobs = [
        (str(folder), bike, photo)
        for bike in range(first, first + bikes)
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
    image_size: int | None = None,
    on_progress=None,
) -> dict:
    """Render the photos (into `photos`), train the backbone and write it to `out`
    (WEIGHTS: the network up to its features; CARD). Returns the card: the recipe, its
    validation accuracy over the bikes and how long it took. `epochs` and `image_size`
    make a candidate recipe (bench/RESULTS.md compares them); the whitening is fitted at
    the size the backbone trained at."""
    from . import open_dataset
    from .training import train

    started = time.perf_counter()
    render_pretraining_photos(photos, bikes)
    rendered = time.perf_counter() - started
    config = pretraining_recipe()
    candidate = {"epochs": epochs, "image_size": image_size}
    config = dataclasses.replace(config, **{k: v for k, v in candidate.items() if v})
    nothing = _no_photos(config.image_size)  # no threshold to calibrate: no strangers scored
    result = train(open_dataset(photos), config, others=nothing, on_progress=on_progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_features(result.model, out / WEIGHTS)
    whitened = fit_backbone_whitening(
        out, cohort_folder(photos), first=bikes, image_size=config.image_size
    )
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
        "whitening": whitened,
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


def image_size_of(folder: str | Path | None = None) -> int:
    """The input size the backbone in `folder` was pretrained at (its card's recipe), or
    the recipe's where it has no card."""
    return int(_card_config(folder).get("image_size", pretraining_recipe().image_size))


def arch_of(folder: str | Path | None = None) -> str:
    """The architecture whose weights the backbone in `folder` holds (its card's recipe):
    ARCH for the shipped one; a candidate may hold another (bench/lite0_backbone.py)."""
    return str(_card_config(folder).get("arch", ARCH))


def _card_config(folder: str | Path | None) -> dict:
    card = Path(folder or BACKBONE_DIR) / CARD
    return json.loads(card.read_text())["config"] if card.is_file() else {}


def cohort_folder(photos: str | Path) -> Path:
    """Where the whitening's cohort is rendered: beside the training photos, not among
    them (every bike folder under `photos` is trained on)."""
    photos = Path(photos)
    return photos.with_name(photos.name + "-cohort")


def fit_backbone_whitening(
    folder: str | Path,
    photos: str | Path,
    *,
    first: int = BIKES,
    bikes: int | None = None,
    image_size: int | None = None,
) -> dict:
    """Render the cohort (`bikes` bikes from bike `first` on, into `photos`), fit the
    Whitening of the backbone in `folder` on their features at `image_size` and write it
    there (WHITENING, atomically). Returns what backbone.json says of it."""
    import numpy as np

    from . import make_model, open_dataset
    from .cohort import WHITENING_SHRINK, cohort_statistics, fit_whitening
    from .config import TrainConfig
    from .dataset import load_split
    from .embedding import Embedder

    started = time.perf_counter()
    bikes = bikes or COHORT_BIKES
    render_pretraining_photos(photos, bikes, first=first)
    size = image_size or TrainConfig().image_size
    model = make_model(arch_of(folder), 2, size)
    load_into(model, folder)
    cohort = load_split(open_dataset(photos).samples, size)
    features = Embedder(model)(cohort.images).features
    whitening = fit_whitening(features, cohort.labels)
    statistics = cohort_statistics(whitening(features), cohort.labels)  # for the PLDA
    path = Path(folder) / WHITENING
    partial = path.with_suffix(".part.npz")
    np.savez(
        partial,
        mean=whitening.mean,
        matrix=whitening.matrix,
        image_size=size,
        cohort_mean=statistics.mean,
        cohort_within=statistics.within,
        cohort_between=statistics.between,
    )
    partial.replace(path)
    return {
        "cohort_bike_seeds": [FIRST_BIKE_SEED + first, FIRST_BIKE_SEED + first + bikes - 1],
        "photos": len(cohort.labels),
        "shrink": WHITENING_SHRINK,
        "image_size": size,
        "seconds": round(time.perf_counter() - started),
    }


def whitening_for(folder: str | Path | None = None):
    """The backbone's Whitening, or None for a backbone made before whitening.

    One map for every image size: it is fitted on features of 96-pixel photos, and
    measured at other sizes (bench/RESULTS.md, "The whitening at other image sizes") it
    lifted the real photos everywhere from 64 to 192 px (0.971-0.991 -> 0.995-1.000) and
    the listings' photos from 128 to 192 px (0.901-0.925 -> 0.922-0.955), and was even at
    64 px (0.905 / 0.899); a map fitted at 128 px itself scored no higher than it."""
    from .cohort import Whitening

    stored = _whitening_file(folder)
    return None if stored is None else Whitening(stored["mean"], stored["matrix"])


def cohort_for(folder: str | Path | None = None):
    """The whitened features' `Cohort` (what the PLDA score learns bikes from), or None
    for a backbone whitened before it was kept."""
    from .cohort import Cohort

    stored = _whitening_file(folder)
    if stored is None or "cohort_within" not in stored:
        return None
    return Cohort(stored["cohort_mean"], stored["cohort_within"], stored["cohort_between"])


def _whitening_file(folder: str | Path | None) -> dict | None:
    """WHITENING's arrays (read-only), or None without one: read once per version of the
    file, not at every training (3.6 MB, asked for twice by each)."""
    path = Path(folder or BACKBONE_DIR) / WHITENING
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _read_whitening(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_whitening(path: str, mtime_ns: int, size: int) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    for array in arrays.values():
        array.setflags(write=False)  # shared between trainings: nobody may change them
    return arrays


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
    """Copy the backbone's weights into `model` (built by `make_model(arch_of(folder),
    ...)`), every layer but the HEAD; returns how many layers were copied. Raises
    BackboneError when the backbone is missing or its layers do not line up with the
    model's."""
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
            f"it holds the weights of the '{arch_of(folder)}' architecture only"
        )
    for mine, pretrained in zip(ours, theirs, strict=True):
        mine.set_weights(pretrained.get_weights())
    return len(ours)
