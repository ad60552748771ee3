"""Which views of a photo to average its features over (bikelib.embedding.ZOOMS).

The default model keeps the bike backbone frozen, so its features are the backbone's:
scored here without any training, on bench/openset.py's real (leave one bike out) and
rendered (the demo bikes at new places against strangers there) protocols, and on the
photos of its 4-photo listings each alone (`listings`: 200 against 200). Each
candidate averages the unit-length features of the photo and its mirror image at each
zoom (the centre of the photo, that share of each side kept); the whole photo alone
(`1`) is what every model saved before zoomed views does. For the chosen score and
centroid: AUROC (mean / worst fold), and at the threshold calibrated on the held-out
known photos (95% of them accepted), the share of known test photos accepted and of
unknown ones rejected. Also the CPU time of the views per photo. With `--cohort DIR`
(the whitening's rendered bikes, as bench/whitening.py renders them) every candidate is
also whitened, as the default's features are, by a map fitted on the cohort's features
at the same views.

    python bench/zooms.py [--backbone DIR] [--protocols real,rendered,listings] [--cohort DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import ROOT, machine, table
from openset import Untrained, multi_photo_listings, untrained_cases

from bikelib import backbone, load_split, open_dataset
from bikelib.cohort import fit_whitening, normalise
from bikelib.embedding import Outputs, centre
from bikelib.openset import (
    COSINE_SCORE,
    SCORES,
    auroc,
    calibrate,
    trade_off,
)

CANDIDATES = (
    "1",
    "1 .8",
    "1 .8 .6",
    "1 .7 .5",
    "1 .9 .8 .7 .6",
    "1 .8 .6 .4",
    ".8 .6",
)  # "1" is ZOOMS, the default


def cases(protocol: str, size: int = 96):
    """bench/openset.py's cases; `listings`: every photo of its 4-photo listings alone
    (200 of the demo bikes, 200 of strangers, each listing at a new place)."""
    if protocol != "listings":
        yield from untrained_cases(protocol, size)
        return
    known, others = multi_photo_listings(size)
    dataset = open_dataset(ROOT / "data" / "demo-bikes")
    shape = (-1, size, size, 3)
    yield "listings", dataset, known.reshape(shape), others.reshape(shape)


def case_photos(protocol: str, size: int = 96):
    """Each case of `protocol` as (dataset, its training photos' labels, {"refs": training
    photos, "held": validation photos, "known": known test photos, "other": unknown ones})
    at `size` px (the backbone's: 96 shipped): what every untrained scoring benchmark scores."""
    for _, dataset, known, unknown in cases(protocol, size):
        train = load_split(dataset.train, size)
        held = load_split(dataset.validation, size).images
        photos = {"refs": train.images, "held": held, "known": known, "other": unknown}
        yield dataset, train.labels, photos


def features_by_zoom(photos: dict[str, np.ndarray], classes: int, zooms) -> tuple[dict, dict]:
    """{zoom: {set: the photo's and its mirror's unit-length features at that zoom, summed}}
    with the backbone's frozen features, and {zoom: CPU seconds a photo}."""
    import keras

    model = Untrained(classes).model
    features = keras.Model(model.input, model.get_layer("features").output)

    def embed(images):
        return normalise(np.asarray(features.predict(images, batch_size=32, verbose=0)))

    by_zoom, cpu = {}, {}
    for zoom in zooms:
        started = time.process_time()
        views = {name: centre(np.asarray(x, np.float32), zoom) for name, x in photos.items()}
        by_zoom[zoom] = {name: embed(v) + embed(v[:, :, ::-1]) for name, v in views.items()}
        cpu[zoom] = (time.process_time() - started) / sum(map(len, photos.values()))
    return by_zoom, cpu


def scored(features: dict[str, np.ndarray], labels: np.ndarray, score: str) -> tuple:
    """(AUROC, known accepted, others rejected) at the threshold calibrated on `held`."""

    def match(name):
        x = features[name]
        return SCORES[score](
            Outputs(x, np.zeros((len(x), 1)), np.zeros((len(x), 1))), features["refs"], labels
        )

    known, other = match("known"), match("other")
    return (auroc(known, other), *trade_off(calibrate(match("held")), known, other))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", default="real,rendered,listings")
    parser.add_argument("--backbone", help="a candidate backbone folder (default: the shipped)")
    parser.add_argument("--cohort", help="whiten every candidate with this cohort's map")
    args = parser.parse_args()
    if args.backbone:
        backbone.BACKBONE_DIR = Path(args.backbone)
    zooms = sorted({float(z) for c in CANDIDATES for z in c.split()}, reverse=True)
    print(machine(), "| backbone:", args.backbone or "shipped", "| whitened:", bool(args.cohort))
    maps = {}  # candidate: its whitening, fitted on the cohort at the same views
    if args.cohort:
        backbone.render_pretraining_photos(args.cohort, backbone.COHORT_BIKES, first=backbone.BIKES)
        cohort = load_split(open_dataset(args.cohort).samples, 96)
        by_zoom, _ = features_by_zoom({"cohort": cohort.images}, 2, zooms)
        for candidate in CANDIDATES:
            views = [by_zoom[float(z)]["cohort"] for z in candidate.split()]
            maps[candidate] = fit_whitening(normalise(sum(views)), cohort.labels)
    rows = []
    for protocol in args.protocols.split(","):
        results: dict[tuple[str, str], list[tuple]] = {}
        for dataset, labels, photos in case_photos(protocol):
            by_zoom, cpu = features_by_zoom(photos, len(dataset.classes), zooms)
            for candidate in CANDIDATES:
                chosen = [float(z) for z in candidate.split()]
                features = {k: normalise(sum(by_zoom[z][k] for z in chosen)) for k in photos}
                if maps:
                    features = {k: maps[candidate](x) for k, x in features.items()}
                for score in (COSINE_SCORE, "centroid"):
                    results.setdefault((candidate, score), []).append(
                        scored(features, labels, score)
                    )
        for (candidate, score), folds in results.items():
            v = np.asarray(folds)
            ms = 1000 * sum(cpu[float(z)] for z in candidate.split())
            auc, accepted, rejected = (
                f"{v[:, 0].mean():.3f}",
                f"{v[:, 1].mean():.0%}",
                f"{v[:, 2].mean():.0%}",
            )
            worst = f"{v[:, 0].min():.3f}"
            rows.append([protocol, candidate, score, auc, worst, accepted, rejected, f"{ms:.1f}"])
    headers = ["protocol", "zooms", "score", "AUROC mean", "worst", "known accepted"]
    print(table([*headers, "others rejected", "CPU ms a photo"], rows))


if __name__ == "__main__":
    main()
