"""Is this listing MY bike? Every candidate score and training, side by side.

Protocols (the issue's):
  real      umea-bikes leave-one-bike-out, 5 folds: train on four bikes (original
            train split); known = their validation photos, unknown = all 20 photos of
            the fifth. Same campus, same day, same light: the hard case.
  rendered  train on the demo bikes (data/demo-bikes); known = each demo bike rendered
            at new places (not its usual spot), unknown = random other bikes rendered
            at the same places (same seeds): a stranger's photo somewhere else.
            50 photos of the demo bikes (10 each) against 50 strangers' photos.
  rendered200  the same, four times larger: 200 (40 each) against 200, the same first
            seeds; for differences the 50 / 50 cannot tell from its noise (about 0.03).
  rendered200b  a second draw of rendered200 at other seeds, never used to choose
            anything: how far one draw of 200 / 200 lies from another.
  pairs     umea-bikes, the user's "not mine" folder: for a pair of bikes (a, b), train
            on the other three, known = their validation photos, unknown = all 20
            photos of b; once without and once with bike a's photos as the dataset's
            not-mine group (its train photos trained against, its validation photos
            scored in calibration), both with the shipped default (40 rendered
            strangers). `--pairs a:b,...` (default: five pairs, each bike once a, once b).

Trainings: `ce` (the default recipe), `oe` (plus rendered random bikes as outlier
exposure, trained towards the uniform distribution), `oe40` (40 of them), `lite0`,
`lite0-oe40`, `lite0-oe` (the same with the fine-tuned EfficientNet-Lite0 architecture
and its recommended settings); `sc...` adds the contrastive loss (`sc1-oe40` is the
app's default); `...-places` (rendered only) trains on the demo bikes photographed at a
new place every time, 16 per bike, `...-places48` 48 per bike; `...-swapK` (rendered
only) adds K copies of each demo training photo with its surround (outside a centred
ellipse) replaced by a rendered place without a bike, a background swap the app could do
on any owner's photos; `...-reshotK` adds each training shot re-rendered at K new places
(the same bike, pose and framing: a perfect background swap, which needs the renderer,
so the ceiling of that idea). `backbone` = no training at all: the bike backbone's
features as they are (bikelib.backbone, pretrained on 300 other rendered bikes); `pre-X`
= training X started from the backbone's weights instead of random ones, every layer
trained (`pre-sc1-oe40`); `frozen-X` = the same with the backbone's layers kept as they
are, only the softmax trained (`frozen-sc1-oe40`, the app's default).
Scores: see bikelib.openset.SCORES.
For each (training, score): AUROC mean and worst fold; at the threshold calibrated on
held-out known photos (95% accepted), the share of known test photos accepted and of
unknown photos rejected; closed-set accuracy of the training.

    python bench/openset.py [--protocols real,rendered] [--trainings ce,oe] [--seeds 1]
    python bench/openset.py --protocols pairs [--pairs bike1:bike2,...] [--seeds 1]
    python bench/openset.py --protocols rendered --trainings sc1-oe40-places96 --image-size 128
    python bench/openset.py --protocols rendered --trainings sc1-oe40-swap3,sc1-oe40-reshot3
    python bench/openset.py --protocols real,rendered --trainings backbone,pre-sc1-oe40
    python bench/openset.py --protocols rendered --trainings backbone --backbone /tmp/candidate
Raw numbers go to bench/openset-results.json before the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np
from common import ROOT, machine, require_shared_bikes, table

from bikelib import Dataset, TrainConfig, load_split, open_dataset
from bikelib.cohort import fit_plda
from bikelib.embedding import Embedder
from bikelib.openset import (
    CHOSEN_SCORE,
    COSINE_SCORE,
    PLDA_SCORES,
    POOLS,
    SCORES,
    auroc,
    calibrate,
    candidate_scores,
    trade_off,
)

CONFIG_OVERRIDES: dict = {}  # TrainConfig fields set for every training (--image-size)
NEGATIVE_SEEDS = range(10_000, 10_100)  # random bikes for outlier exposure (never tested)
# Per rendered protocol: the seeds of each demo bike's photos at new places, and of the
# strangers' photos (bikes and places alike).
RENDERED_SEEDS = {
    "rendered": (range(50_000, 50_010), range(60_000, 60_050)),
    "rendered200": (range(50_000, 50_040), range(60_000, 60_200)),
    "rendered200b": (range(70_000, 70_040), range(80_000, 80_200)),
}
LISTING_SIZE = (320, 240)


def rendered_negatives(size: int, seeds=NEGATIVE_SEEDS) -> np.ndarray:
    from bikelib import render
    from bikelib.images import to_array

    return np.stack(
        [to_array(render.render_photo(render.random_bike(s), s, (192, 144)), size) for s in seeds]
    )


LISTINGS_PER_BIKE = 10  # listings protocol: listings of each demo bike, and strangers'
STRANGER_LISTINGS = 50
PHOTOS_PER_LISTING = 4  # shots of one bike at one place (render_photo's place_seed)


def multi_photo_listings(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(known, others), each (listings, PHOTOS_PER_LISTING, size, size, 3): every listing
    is one bike photographed 4 times at one new place, as a seller does. Its seeds (place
    p, shots 10p..10p+3) are used nowhere else: not by the trainings' strangers (app:
    900,000+, bench: 10,000+) nor by the demo photos at many places (70,000+)."""
    from bikelib import render
    from bikelib.images import to_array

    def listing(bike, place: int) -> np.ndarray:
        shots = [
            render.render_photo(bike, place * 10 + n, LISTING_SIZE, place="new", place_seed=place)
            for n in range(PHOTOS_PER_LISTING)
        ]
        return np.stack([to_array(shot, size) for shot in shots])

    known = [
        listing(bike, 20_000 + 100 * i + j)
        for i, bike in enumerate(render.DEMO_BIKES)
        for j in range(LISTINGS_PER_BIKE)
    ]
    others = [listing(render.random_bike(30_000 + j), 30_000 + j) for j in range(STRANGER_LISTINGS)]
    return np.stack(known), np.stack(others)


def pooled(pool):
    """A pool of bikelib.openset.POOLS (one listing's scores -> its score), row by row."""
    return lambda scores: np.array([pool(listing) for listing in scores])


# How a listing's photos' scores become the listing's: the Scan page's candidates.
AGGREGATES = {
    "each photo alone": None,  # the photos' own AUROC, for comparison
    **{name: pooled(pool) for name, pool in POOLS.items()},
}


APP_POOLS = ("Classify", "Scan")  # the mean pool per known bike, as each page uses it


def evaluate_listings(result, dataset, known, others, size) -> dict:
    """Every score x every way of pooling a listing's photos: the listings' AUROC, and at
    the threshold calibrated on single held-out photos (as the app sets it), the shares
    of known listings accepted and of strangers' listings rejected."""
    embed = app_embedder(result)
    train = load_split(dataset.train, size)
    refs = embed(train.images).features
    held_out = embed(load_split(dataset.validation, size).images)
    flat_known = embed(known.reshape(-1, *known.shape[2:]))
    flat_others = embed(others.reshape(-1, *others.shape[2:]))
    row = {}
    for name, score in scores_for(embed, refs, train.labels).items():
        threshold = calibrate(score(held_out, refs, train.labels))
        k = score(flat_known, refs, train.labels).reshape(known.shape[:2])
        u = score(flat_others, refs, train.labels).reshape(others.shape[:2])
        row[name] = {}
        for aggregate, pool in AGGREGATES.items():
            pk, pu = (k.ravel(), u.ravel()) if pool is None else (pool(k), pool(u))
            accepted, rejected = trade_off(threshold, pk, pu)
            row[name][aggregate] = {"auroc": auroc(pk, pu), "accepted": accepted}
            row[name][aggregate]["rejected"] = rejected
        row[name].update(
            as_the_app_pools(
                score, threshold, flat_known, flat_others, refs, train.labels, dataset.classes
            )
        )
    row["accuracy"] = result.evaluation.accuracy if result.evaluation else None
    return row


def as_the_app_pools(score, threshold, known, others, refs, labels, classes) -> dict:
    """The mean pool exactly as the app computes it, from each bike's photos alone.

    Classify ("These photos are one listing"): the mean match to each known bike, the
    best bike's. Scan ("Each folder is one listing"): the mean match to the bike looked
    for; known = that bike's listings, others = the strangers', averaged over the bikes.
    `known` holds LISTINGS_PER_BIKE listings per bike in DEMO_BIKES order
    (`multi_photo_listings`); `labels` index `classes` (the dataset's order)."""

    def means(outputs, bike: int) -> np.ndarray:
        own = labels == bike
        return score(outputs, refs[own], labels[own]).reshape(-1, PHOTOS_PER_LISTING).mean(1)

    k_all = np.stack([means(known, b) for b in range(len(classes))])  # (bikes, listings)
    u_all = np.stack([means(others, b) for b in range(len(classes))])
    return app_pools(k_all, u_all, classes, threshold)


def app_pools(k_all: np.ndarray, u_all: np.ndarray, classes, threshold: float) -> dict:
    """`as_the_app_pools` from each listing's mean match to each bike, (bikes, listings)
    with the bikes in `classes`' order: the known listings', the strangers'."""
    from bikelib import render

    pk, pu = k_all.max(axis=0), u_all.max(axis=0)
    accepted, rejected = trade_off(threshold, pk, pu)
    out = {"Classify": {"auroc": auroc(pk, pu), "accepted": accepted, "rejected": rejected}}
    cells = []
    for i, bike in enumerate(render.DEMO_BIKES):
        b = classes.index(bike.name)
        mine = k_all[b, i * LISTINGS_PER_BIKE : (i + 1) * LISTINGS_PER_BIKE]
        cells.append((auroc(mine, u_all[b]), *trade_off(threshold, mine, u_all[b])))
    auc, accepted, rejected = np.mean(cells, axis=0)
    out["Scan"] = {"auroc": auc, "accepted": accepted, "rejected": rejected}
    return out


def listing_shots(
    protocol: str = "rendered", describe=None
) -> tuple[dict[str, list[str]], list[str]]:
    """What each photo of `rendered_listings` shows: by default the kind of shot (whole,
    partial, close-up); `describe(bike, seed, size)` for something else."""
    from bikelib import render

    describe = describe or render.shot_kind
    own, strangers = RENDERED_SEEDS[protocol]
    known = {
        bike.name: [describe(bike, s, LISTING_SIZE) for s in own] for bike in render.DEMO_BIKES
    }
    others = [describe(render.random_bike(s), s, LISTING_SIZE) for s in strangers]
    return known, others


def rendered_listings(
    size: int, protocol: str = "rendered"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each demo bike at new places, and random other bikes at the same places."""
    from bikelib import render
    from bikelib.images import to_array

    own, strangers = RENDERED_SEEDS[protocol]
    known = {
        bike.name: np.stack(
            [to_array(render.render_photo(bike, s, LISTING_SIZE, place="new"), size) for s in own]
        )
        for bike in render.DEMO_BIKES
    }
    others = np.stack(
        [
            to_array(render.render_photo(render.random_bike(s), s, LISTING_SIZE, place="new"), size)
            for s in strangers
        ]
    )
    return known, others


def strangers_at_usual_spots(size: int, seeds=NEGATIVE_SEEDS) -> np.ndarray:
    """Random bikes photographed where the demo bikes usually stand (hard negatives)."""
    from bikelib import render
    from bikelib.images import to_array

    spots = render.DEMO_BIKES
    return np.stack(
        [
            to_array(
                render.render_photo(
                    replace(render.random_bike(s), name=spots[i % len(spots)].name), s, (192, 144)
                ),
                size,
            )
            for i, s in enumerate(seeds)
        ]
    )


class PretrainedEmbedder:
    """The bicycle gate's ImageNet features (frozen EfficientNet-Lite0), as an Embedder."""

    def __init__(self) -> None:
        from bikelib.gate import load_gate

        self.gate = load_gate()

    def __call__(self, images):
        from bikelib.cohort import normalise
        from bikelib.embedding import Outputs

        scores = self.gate.scores(images)
        flipped = self.gate.scores(images[:, :, ::-1]).features
        features = normalise(normalise(scores.features) + normalise(flipped))
        return Outputs(features, np.log(scores.probabilities + 1e-9), scores.probabilities)


def untrained_cases(protocol: str, size: int):
    """(fold, dataset, known photos, unknown photos) of `protocol` at `size` px, for the
    candidates that train nothing: each real fold (leave one bike out), or the demo bikes
    with the rendered listings."""
    if protocol == "real":
        full = open_dataset(require_shared_bikes())
        for held in full.classes:
            dataset = subset(full, [c for c in full.classes if c != held])
            known = load_split(dataset.validation, size).images
            yield held, dataset, known, load_split(subset(full, [held]).samples, size).images
    else:
        dataset = open_dataset(ROOT / "data" / "demo-bikes")
        listings, others = rendered_listings(size, protocol)
        yield "demo", dataset, np.concatenate([listings[n] for n in dataset.classes]), others


def run_pretrained(protocol: str) -> list[dict]:
    """Frozen pretrained features, no training: the same protocols at 224 px."""
    from bikelib.gate import GATE_SIZE

    embed = PretrainedEmbedder()
    folds = []

    def row(dataset, known, unknown):
        train = load_split(dataset.train, GATE_SIZE)
        refs = embed(train.images).features
        held_out = embed(load_split(dataset.validation, GATE_SIZE).images)
        k, u = embed(known), embed(unknown)
        out = {}
        for name in ("nearest", "nearest_3", "centroid"):
            score = SCORES[name]
            threshold = calibrate(score(held_out, refs, train.labels))
            ks, us = score(k, refs, train.labels), score(u, refs, train.labels)
            accepted, rejected = trade_off(threshold, ks, us)
            out[name] = {"auroc": auroc(ks, us), "accepted": accepted, "rejected": rejected}
        return out

    for fold, dataset, known, unknown in untrained_cases(protocol, GATE_SIZE):
        folds.append({"fold": fold, "seconds": 0, "accuracy": None, **row(dataset, known, unknown)})
    return folds


def demo_bikes_at_many_places(folder, per_bike_train: int = 16, per_bike_val: int = 4):
    """The demo bikes photographed at a new place every time (not their usual spot).

    What an owner gets who follows the advice "photograph your bike in several places":
    the model cannot learn the bike's usual background as a shortcut.
    """
    from pathlib import Path

    from bikelib import render

    for bike in render.DEMO_BIKES:
        for split, count, base in (
            ("train", per_bike_train, 70_000),
            ("validation", per_bike_val, 80_000),
        ):
            out = Path(folder) / split / bike.name
            out.mkdir(parents=True, exist_ok=True)
            for n in range(count):
                seed = base + 100 * render.DEMO_BIKES.index(bike) + n
                photo = render.render_photo(bike, seed, (320, 240), place="new")
                render.save_jpeg(photo, out / f"{bike.name}-{n:02d}.jpg")
    return open_dataset(folder)


SWAP_ELLIPSE = (0.46, 0.42, 0.10)  # half-width, half-height (of the photo), feather
SCENE_SEEDS = 700_000  # render_scene seeds of the swapped-in backgrounds (-swapK)
RESHOT_PLACES = 800_000  # place seeds of the re-rendered shots (-reshotK)


def centre_ellipse(width: int, height: int) -> np.ndarray:
    """(h, w, 1) weights: 1 inside the centred ellipse where a bike mostly is, 0 outside,
    a feathered edge between."""
    rx, ry, feather = SWAP_ELLIPSE
    y, x = np.mgrid[0:height, 0:width]
    d = np.hypot((x + 0.5 - width / 2) / (rx * width), (y + 0.5 - height / 2) / (ry * height))
    return np.clip((1 + feather - d) / feather, 0, 1)[:, :, None]


def demo_bikes_with_new_backgrounds(folder, copies: int, how: str) -> Dataset:
    """data/demo-bikes plus `copies` more of each training photo somewhere else.

    how="swap": the photo's surround replaced by a rendered place with no bike
    (`render_scene`), keeping a centred ellipse: no mask of the bike needed, so the app
    could do it to any photo. how="reshot": the same shot (bike, pose, framing) rendered
    again at a new place: the background swap a perfect mask would give.
    """
    import shutil
    from pathlib import Path

    from PIL import Image

    from bikelib import render
    from bikelib.render.dataset import plan_dataset

    demo = open_dataset(ROOT / "data" / "demo-bikes")
    for split, samples in (("train", demo.train), ("validation", demo.validation)):
        for sample in samples:
            out = Path(folder) / split / demo.classes[sample.label]
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample.path, out / Path(sample.path).name)
    n = 0
    for item in plan_dataset(16, 4):  # the demo set's own files and seeds
        if not item.relative_path.startswith("train/"):
            continue
        out = Path(folder) / item.relative_path
        for k in range(copies):
            n += 1
            if how == "reshot":
                photo = render.render_photo(
                    item.bike, item.seed, (320, 240), place="new", place_seed=RESHOT_PLACES + n
                )
            else:
                own = np.asarray(Image.open(ROOT / "data" / "demo-bikes" / item.relative_path))
                own = own.astype(np.float32)
                height, width = own.shape[:2]
                place = np.asarray(render.render_scene(SCENE_SEEDS + n, (width, height)))
                keep = centre_ellipse(width, height)
                mixed = own * keep + place.astype(np.float32) * (1 - keep)
                photo = Image.fromarray(mixed.astype(np.uint8))
            render.save_jpeg(photo, out.with_name(f"{out.stem}-{how}{k}.jpg"))
    return open_dataset(folder)


def subset(dataset: Dataset, keep: list[str]) -> Dataset:
    index = {name: i for i, name in enumerate(keep)}
    old = dataset.classes

    def pick(samples):
        return tuple(
            replace(s, label=index[old[s.label]]) for s in samples if old[s.label] in index
        )

    return replace(
        dataset, classes=tuple(keep), train=pick(dataset.train), validation=pick(dataset.validation)
    )


def evaluate(result, dataset, known_test, unknown_test, size, groups=None) -> dict:
    """Every score for one trained model: AUROC, and the calibrated trade-off.

    `groups` ({name: (known mask, unknown mask)}) adds the chosen score's AUROC within
    each group as "by_group": which photos it gets wrong."""
    embed = app_embedder(result)
    train = load_split(dataset.train, size)
    refs = embed(train.images).features
    held_out = embed(load_split(dataset.validation, size).images)
    known, unknown = embed(known_test), embed(unknown_test)
    row, scored = {}, {}
    for name, score in scores_for(embed, refs, train.labels).items():
        k, u = scored[name] = score(known, refs, train.labels), score(unknown, refs, train.labels)
        threshold = calibrate(score(held_out, refs, train.labels))
        accepted, rejected = trade_off(threshold, k, u)
        row[name] = {"auroc": auroc(k, u), "accepted": accepted, "rejected": rejected}
    reference = result.reference
    if reference is not None and reference.second is not None:  # the app's: both backbones
        k, u = scored[SECOND_OPINION] = reference.scores(known), reference.scores(unknown)
        accepted, rejected = trade_off(reference.threshold, k, u)
        row[SECOND_OPINION] = {"auroc": auroc(k, u), "accepted": accepted, "rejected": rejected}
    row["accuracy"] = result.evaluation.accuracy if result.evaluation else None
    if groups:
        k, u = scored[chosen_in(scored)]
        row["by_group"] = {
            name: {"auroc": auroc(k[km], u[um]), "known": int(km.sum()), "others": int(um.sum())}
            for name, (km, um) in groups.items()
        }
    return row


def timed_fold(name, dataset, config, negatives, known, unknown, groups=None) -> dict:
    """Train on `dataset`, score every candidate, and time it (wall, CPU, fit, load)."""
    import keras

    from bikelib import train

    started, cpu = time.perf_counter(), time.process_time()
    result = train(dataset, config, negatives=negatives)
    row = evaluate(result, dataset, known, unknown, config.image_size, groups)
    keras.backend.clear_session()  # free the fold's graph before the next
    return {
        "fold": name,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "fit_seconds": result.seconds,
        "load": os.getloadavg()[0],
        **row,
    }


def fold_timing(fold: dict) -> str:
    return (
        f"closed-set {fold['accuracy']:.0%}, fit {fold['fit_seconds']:.0f} s, "
        f"{fold['cpu_seconds']:.0f} CPU s, load {fold['load']:.1f}"
    )


# The app's score for a model with the second backbone: `nearest+plda` in each backbone,
# averaged (`openset.Reference.scores`), at the model's own calibrated threshold.
SECOND_OPINION = "nearest+plda, both backbones"
# The PLDA's: where the features are whitened; both backbones': where the model has both.
ALL_SCORES = (*SCORES, *PLDA_SCORES, SECOND_OPINION)


def scores_for(embed: Embedder, refs: np.ndarray, labels: np.ndarray) -> dict:
    """Every candidate score for features made by `embed`: SCORES, and where they are
    whitened, the PLDA the app fits on the same training photos (`fit_reference`)."""
    from bikelib.backbone import cohort_for

    cohort = cohort_for() if embed.whitening is not None else None
    return candidate_scores(fit_plda(cohort, refs, labels) if cohort is not None else None)


def chosen_in(scored: dict) -> str:
    """The app's score among those `scored`: both backbones' where the model has the second
    (`bikelib.second`), else the PLDA, or for unwhitened features, cosine."""
    for name in (SECOND_OPINION, CHOSEN_SCORE):
        if name in scored:
            return name
    return COSINE_SCORE


def app_embedder(result) -> Embedder:
    """`result`'s features as the app makes them: as its reference's were made (views,
    whitening); for the untrained backbone, whitened as a frozen training's are."""
    if result.reference is not None:
        second = None
        if result.reference.second is not None:
            from bikelib.second import load_second

            second = load_second()
        return result.reference.embedder(result.model, second)
    return Embedder(result.model, whitening=getattr(result, "whitening", None))


class Untrained:
    """A TrainResult's stand-in for `evaluate`: the backbone's network (`arch_of`: the
    default one, as shipped) holding the bike backbone's weights as they are (no training
    on the known bikes; its head unused), whitened as a frozen training's features are."""

    evaluation = reference = None

    def __init__(self, classes: int, size: int = 96) -> None:
        from bikelib import make_model
        from bikelib.backbone import arch_of, load_into, whitening_for

        self.model = make_model(arch_of(), classes, size)
        load_into(self.model)
        self.whitening = whitening_for()


def run_backbone(protocol: str) -> list[dict]:
    """The bike backbone's features, frozen: no training on the known bikes at all."""
    return [
        {"fold": fold, "seconds": 0, **evaluate(Untrained(len(d.classes)), d, known, unknown, 96)}
        for fold, d, known, unknown in untrained_cases(protocol, 96)
    ]


def run(protocol: str, training: str, seed: int) -> list[dict]:
    if training == "pretrained":
        return run_pretrained(protocol)
    if training == "backbone":
        return run_backbone(protocol)
    # "pre-...": the same training, started from the bike backbone (bikelib.backbone)
    # instead of random weights, every layer trained; "frozen-...": started from it and
    # only the softmax trained (the app's default since 2026-12-04).
    pretrained, frozen = training.startswith(("pre-", "frozen-")), training.startswith("frozen-")
    # "lite0", "lite0-oe40": the fine-tuned EfficientNet-Lite0 with its recommended
    # settings, trained like "ce" / "oe40"; every other name trains the default recipe.
    name = training.removeprefix("pre-").removeprefix("frozen-")
    if name == "lite0" or name.startswith("lite0-"):
        arch, recipe = "lite0", name.removeprefix("lite0").removeprefix("-") or "ce"
    else:
        arch, recipe = "default", name
    # "sc..." = the same with a supervised contrastive loss beside cross-entropy ("sc"
    # weight 0.5, "sc1" 1, "sc2" 2; "sc1-oe40" with 40 strangers: the default since
    # 2026-12-02). Every other name is cross-entropy alone (contrastive 0), as measured.
    # "...-places" (rendered protocol): trained on the demo bikes photographed at a new
    # place every time instead of data/demo-bikes, 16 training photos per bike as there;
    # "...-places48": 48 per bike (and a quarter as many validation photos, at least 4).
    base, _, rest = recipe.partition("-")
    contrastive = {"sc": 0.5, "sc1": 1.0, "sc2": 2.0}.get(base, 0.0)
    if contrastive:
        recipe = rest or "ce"
    # Negatives are passed explicitly below (none for "ce"): the config's own strangers off.
    config = TrainConfig.recommended(
        arch,
        seed=seed,
        restore_best=False,
        strangers=0,
        **{
            "contrastive": contrastive,
            "pretrained": pretrained,
            "frozen": frozen,
            **CONFIG_OVERRIDES,
        },
    )
    size = config.image_size
    counts = {"ce": 0, "oe": 100, "oe40": 40, "oe-spot": 100}
    recipe, at_places, per_bike = recipe.partition("-places")
    recipe, swapped, swaps = recipe.partition("-swap")
    recipe, reshot, reshots = recipe.partition("-reshot")
    count = counts[recipe]
    negatives = rendered_negatives(size, NEGATIVE_SEEDS[:count]) if count else None
    if recipe == "oe-spot":  # strangers parked at the demo bikes' own usual spots
        negatives = strangers_at_usual_spots(size)
    folds = []
    if protocol == "real":
        full = open_dataset(require_shared_bikes())
        for held in full.classes:
            keep = [c for c in full.classes if c != held]
            dataset = subset(full, keep)
            known = load_split(dataset.validation, size).images
            unknown = load_split(subset(full, [held]).samples, size).images
            fold = timed_fold(held, dataset, config, negatives, known, unknown)
            folds.append(fold)
            chosen = chosen_in(fold)
            print(
                f"  {protocol} {training} seed {seed} without {held}: "
                f"{chosen} {fold[chosen]['auroc']:.3f} max_probability "
                f"{fold['max_probability']['auroc']:.3f}, {fold_timing(fold)}",
                flush=True,
            )
    else:
        if at_places:
            import tempfile

            per_bike = int(per_bike or 16)
            dataset = demo_bikes_at_many_places(
                tempfile.mkdtemp(prefix="places-"), per_bike, max(4, per_bike // 4)
            )
        elif swapped or reshot:
            import tempfile

            how, copies = ("swap", swaps) if swapped else ("reshot", reshots)
            folder = tempfile.mkdtemp(prefix=f"{how}-")
            dataset = demo_bikes_with_new_backgrounds(folder, int(copies or 3), how)
        else:
            dataset = open_dataset(ROOT / "data" / "demo-bikes")
        if protocol == "listings":
            return [listings_fold(dataset, config, negatives, training, seed)]
        listings, others = rendered_listings(size, protocol)
        known = np.concatenate([listings[name] for name in dataset.classes])
        known_shots, other_shots = listing_shots(protocol)
        known_shots = np.array([k for name in dataset.classes for k in known_shots[name]])
        groups = {k: (known_shots == k, np.array(other_shots) == k) for k in set(other_shots)}
        fold = timed_fold("demo", dataset, config, negatives, known, others, groups)
        folds.append(fold)
        shots = ", ".join(
            f"{k} {v['auroc']:.3f} ({v['known']}/{v['others']})"
            for k, v in sorted(fold["by_group"].items())
        )
        chosen = chosen_in(fold)
        print(
            f"  {protocol} {training} seed {seed}: {chosen} {fold[chosen]['auroc']:.3f} "
            f"(by shot, known/others photos: {shots}), {fold_timing(fold)}",
            flush=True,
        )
    return folds


def listings_fold(dataset, config, negatives, training: str, seed: int) -> dict:
    import keras

    from bikelib import train

    known, others = multi_photo_listings(config.image_size)
    started, cpu = time.perf_counter(), time.process_time()
    result = train(dataset, config, negatives=negatives)
    fold = evaluate_listings(result, dataset, known, others, config.image_size)
    keras.backend.clear_session()
    fold.update(fold="demo", seconds=time.perf_counter() - started)
    fold.update(cpu_seconds=time.process_time() - cpu, fit_seconds=result.seconds)
    fold["load"] = os.getloadavg()[0]
    chosen = chosen_in(fold)
    pooled = ", ".join(f"{k} {v['auroc']:.3f}" for k, v in fold[chosen].items())
    print(f"  listings {training} seed {seed}: {chosen} {pooled}, {fold_timing(fold)}")
    return fold


def listings_table(results: dict) -> str:
    rows = []
    for key, folds in results.items():
        if not key.startswith("listings/"):
            continue
        _, training, seed = key.split("/")
        for name in (n for n in ALL_SCORES if n in folds[0]):
            pooled = [
                f"{v['auroc']:.3f} ({v['accepted']:.0%} / {v['rejected']:.0%})"
                for v in (folds[0][name][a] for a in (*AGGREGATES, *APP_POOLS))
            ]
            rows.append([training, seed, name, *pooled, accuracy(folds)])
    pools = [*AGGREGATES, *(f"mean, as {page} does" for page in APP_POOLS)]
    return table(["training", "seed", "score", *pools, "closed-set acc"], rows)


DEFAULT_PAIRS = "bike1:bike2,bike2:bike3,bike3:bike4,bike4:bike5,bike5:bike1"


def as_not_mine(samples) -> tuple:
    from bikelib.dataset import NOT_MINE_LABEL

    return tuple(replace(s, label=NOT_MINE_LABEL) for s in samples)


def run_pairs(pairs: list[tuple[str, str]], seed: int) -> list[dict]:
    """Bike a as the not-mine group or not at all; bike b unknown; the other three known."""
    import keras

    from bikelib import train

    full = open_dataset(require_shared_bikes())  # skips, saying why, where it is absent
    # The shipped default: 40 strangers (and, since 2026-12-02, the contrastive loss).
    config = TrainConfig(seed=seed, restore_best=False, **CONFIG_OVERRIDES)
    size = config.image_size
    rows = []
    for a, b in pairs:
        keep = [c for c in full.classes if c not in (a, b)]
        plain = subset(full, keep)
        group = subset(full, [a])
        with_group = replace(
            plain,
            not_mine_train=as_not_mine(group.train),
            not_mine_validation=as_not_mine(group.validation),
        )
        known = load_split(plain.validation, size).images
        unknown = load_split(subset(full, [b]).samples, size).images
        row = {"pair": f"{a}:{b}"}
        for arm, dataset in (("without", plain), ("with", with_group)):
            started = time.perf_counter()
            result = train(dataset, config)
            scores = evaluate(result, dataset, known, unknown, size)
            reference = result.reference
            chosen = chosen_in(scores)
            row[arm] = {
                "score": chosen,
                "auroc": scores[chosen]["auroc"],
                "unknown_rejected": scores[chosen]["rejected"],
                "accuracy": scores["accuracy"],
                "not_mine_rejected": reference.describe()["not_mine_rejected"],
                "not_mine": result.not_mine,
                "seconds": time.perf_counter() - started,
            }
            keras.backend.clear_session()
        print(
            f"  pairs seed {seed} not mine {a}, unknown {b}: {chosen} AUROC "
            f"{row['without']['auroc']:.3f} -> {row['with']['auroc']:.3f}, closed-set "
            f"{row['without']['accuracy']:.0%} -> {row['with']['accuracy']:.0%}",
            flush=True,
        )
        rows.append(row)
    return rows


def pairs_table(rows: list[dict]) -> str:
    def cell(row, arm, key, fmt):
        value = row[arm][key]
        return "n/a" if value is None else format(value, fmt)

    lines = []
    for row in rows:
        lines.append(
            [
                row["pair"].replace(":", " / "),
                *(cell(row, arm, "auroc", ".3f") for arm in ("without", "with")),
                *(cell(row, arm, "unknown_rejected", ".0%") for arm in ("without", "with")),
                cell(row, "with", "not_mine_rejected", ".0%"),
                *(cell(row, arm, "accuracy", ".0%") for arm in ("without", "with")),
                f"{np.mean([row[arm]['seconds'] for arm in ('without', 'with')]):.0f}",
            ]
        )

    def mean(arm, key, fmt):
        values = [r[arm][key] for r in rows if r[arm][key] is not None]
        return format(np.mean(values), fmt) if values else "n/a"

    lines.append(
        [
            f"**mean of {len(rows)}**",
            mean("without", "auroc", ".3f"),
            mean("with", "auroc", ".3f"),
            mean("without", "unknown_rejected", ".0%"),
            mean("with", "unknown_rejected", ".0%"),
            mean("with", "not_mine_rejected", ".0%"),
            mean("without", "accuracy", ".0%"),
            mean("with", "accuracy", ".0%"),
            "",
        ]
    )
    headers = [
        "not mine (a) / unknown (b)",
        "AUROC without",
        "AUROC with",
        "b rejected without",
        "b rejected with",
        "a's val rejected",
        "closed-set without",
        "closed-set with",
        "s/training",
    ]
    return table(headers, lines)


def accuracy(folds) -> str:
    values = [f["accuracy"] for f in folds if f["accuracy"] is not None]
    return f"{np.mean(values):.0%}" if values else "n/a"


def cpu_seconds(folds) -> str:
    """CPU seconds (all threads) per fold: unlike wall time, not slowed by other jobs."""
    values = [f["cpu_seconds"] for f in folds if f.get("cpu_seconds") is not None]
    return f"{np.mean(values):.0f}" if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", default="real,rendered")
    parser.add_argument("--trainings", default="ce,oe")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, ...")
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="a:b,... for --protocols pairs")
    parser.add_argument("--out", default=str(ROOT / "bench" / "openset-results.json"))
    parser.add_argument("--image-size", type=int, help="every training at this size (px)")
    parser.add_argument(
        "--backbone", help="a candidate backbone folder for `backbone` and `pre-...` runs"
    )
    args = parser.parse_args()
    if args.image_size:
        CONFIG_OVERRIDES["image_size"] = args.image_size
    if args.backbone:  # every training runs in this process: the module's folder is enough
        from pathlib import Path

        from bikelib import backbone

        backbone.BACKBONE_DIR = Path(args.backbone)
    results = {}
    if "pairs" in args.protocols.split(","):
        pairs = [tuple(pair.split(":")) for pair in args.pairs.split(",")]
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            results[f"pairs/{seed}"] = run_pairs(pairs, seed)
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
        print(f"\nThe not-mine group (the app's score), {machine()}\n")
        print(pairs_table([row for k, v in results.items() if k.startswith("pairs/") for row in v]))
        print()
    for protocol in args.protocols.split(","):
        if protocol == "pairs":
            continue
        for training in args.trainings.split(","):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                results[f"{protocol}/{training}/{seed}"] = run(protocol, training, seed)
                with open(args.out, "w") as f:
                    json.dump(results, f, indent=1)
    if args.protocols == "pairs":
        return
    print(f"\nOpen-set scores, {machine()}\n")
    if "listings" in args.protocols.split(","):
        print(
            f"### listings ({PHOTOS_PER_LISTING} photos at one new place each: "
            f"{LISTINGS_PER_BIKE} per demo bike, {STRANGER_LISTINGS} of strangers): AUROC "
            "(known listings accepted / strangers' rejected at the calibrated threshold)\n"
        )
        print(listings_table(results))
        print()
    for protocol in args.protocols.split(","):
        if protocol in ("pairs", "listings"):
            continue
        rows = []
        for training in args.trainings.split(","):
            folds = [
                f for k, v in results.items() if k.startswith(f"{protocol}/{training}/") for f in v
            ]
            for name in ALL_SCORES:
                if not folds or name not in folds[0]:
                    continue
                aurocs = [f[name]["auroc"] for f in folds]
                rows.append(
                    [
                        training,
                        name,
                        f"{np.mean(aurocs):.3f}",
                        f"{min(aurocs):.3f}",
                        f"{np.mean([f[name]['accepted'] for f in folds]):.0%}",
                        f"{np.mean([f[name]['rejected'] for f in folds]):.0%}",
                        accuracy(folds),
                        f"{np.mean([f['seconds'] for f in folds]):.0f}",
                        cpu_seconds(folds),
                    ]
                )
        print(f"### {protocol}\n")
        print(
            table(
                [
                    "training",
                    "score",
                    "AUROC mean",
                    "worst",
                    "known accepted",
                    "others rejected",
                    "closed-set acc",
                    "s/fold",
                    "CPU s/fold",
                ],
                rows,
            )
        )
        print()


if __name__ == "__main__":
    main()
