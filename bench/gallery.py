"""Crops of the owner's photos as extra references, and as photos to calibrate on.

At new places the bike's photos that fail are mostly close-ups (bench/plda.py's table by
part: a front wheel or the saddle up close), while the owner's photos show the whole bike.
Two ways crops of the owner's photos could meet them, measured on bench/plda.py's
protocols with the app's score (`nearest+plda`, the whitened frozen backbone, no
training):

- as references ("gallery augmentation", as in person re-identification): each bike's
  nearest-photo cosine becomes the larger of its nearest photo's and its nearest crop's
  (times a weight), the PLDA's ratio stays on the photos; crops on a grid (`.5 3x3`: nine
  crops half each side's length; `.6 2x2 + .4 3x3`: four larger and nine smaller ones);
- as calibration photos: the threshold accepts 95% of the held-out photos AND their
  crops (the `.6 2x2 + .4 3x3` grid), instead of the held-out photos alone, so the promise
  ("95% of your bike's photos accepted") is kept on photos framed as listings frame them.

For each candidate: AUROC (mean / worst fold) and, at its threshold, the bike's photos
accepted / other bikes' rejected; both 200 / 200 draws pooled last.

    python bench/gallery.py [--backbone DIR]   (a candidate backbone, as bench/plda.py's)
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import machine, table
from openset import Untrained
from plda import DRAWS, PROTOCOLS, features, pool, summary
from zooms import case_photos

from bikelib import backbone
from bikelib.cohort import PLDA_SCALE, fit_plda
from bikelib.embedding import Embedder, Outputs
from bikelib.images import open_image, to_array
from bikelib.openset import calibrate, nearest_similarity


def grid(side: float, n: int) -> list[tuple[float, float, float]]:
    """n x n square crops (left, top, side as shares of the photo), evenly spread."""
    starts = np.linspace(0, 1 - side, n)
    return [(x, y, side) for y in starts for x in starts]


GRIDS = {".5 3x3": grid(0.5, 3), ".6 2x2 + .4 3x3": grid(0.6, 2) + grid(0.4, 3)}
CALIBRATION_GRID = ".6 2x2 + .4 3x3"


def crops(path, boxes, size: int) -> np.ndarray:
    """The photo's `boxes`, cut from the full-size photo and decoded as the app decodes."""
    image = open_image(path)
    w, h = image.size
    return np.stack(
        [
            to_array(image.crop((int(x * w), int(y * h), int((x + s) * w), int((y + s) * h))), size)
            for x, y, s in boxes
        ]
    )


def score(x, fold: dict, plda, gallery=None, weight: float = 1.0) -> np.ndarray:
    """The app's score (`openset.nearest_plus_plda`), the nearest crop counted as a photo."""
    refs, labels = fold["refs"], fold["labels"]
    out, per_bike = Outputs(x, None, None), []
    for bike in np.unique(labels):
        nearest = nearest_similarity(out, refs[labels == bike], None)
        if gallery is not None:
            crop_refs, crop_labels = gallery
            crop = nearest_similarity(out, crop_refs[crop_labels == bike], None)
            nearest = np.maximum(nearest, weight * crop)
        per_bike.append(nearest + plda.log_likelihood_ratios(x, refs[labels == bike]) / PLDA_SCALE)
    return np.max(per_bike, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", help="a candidate backbone folder (default: the shipped)")
    args = parser.parse_args()
    if args.backbone:
        backbone.BACKBONE_DIR = Path(args.backbone)
    size = backbone.image_size_of()
    print(machine(), "| backbone:", args.backbone or "shipped", f"({size} px)")
    started = time.perf_counter()
    embed = Embedder(Untrained(2, size).model, whitening=backbone.whitening_for())
    cohort = backbone.cohort_for()
    by_protocol = features(embed, size)
    cropped = {}  # (photo, grid): its crops' features, once (the real folds share photos)

    def crop_features(samples, grid_name: str) -> np.ndarray:
        for sample in samples:
            if (sample.path, grid_name) not in cropped:
                views = crops(sample.path, GRIDS[grid_name], size)
                cropped[sample.path, grid_name] = embed(views).features
        return np.concatenate([cropped[sample.path, grid_name] for sample in samples])

    galleries, held_crops = {}, {}  # (protocol, fold): crop features (and their labels)
    for protocol in ("real", *DRAWS, "listings"):
        for i, (dataset, _, _) in enumerate(case_photos(protocol, size)):
            for name, boxes in GRIDS.items():
                labels = np.repeat([s.label for s in dataset.train], len(boxes))
                galleries[protocol, i, name] = (crop_features(dataset.train, name), labels)
            held_crops[protocol, i] = crop_features(dataset.validation, CALIBRATION_GRID)
    for key in [k for k in galleries if k[0] == DRAWS[0]]:  # 50 / 50: rendered200's first
        galleries["rendered", *key[1:]] = galleries[key]
    held_crops["rendered", 0] = held_crops[DRAWS[0], 0]
    print(f"features: {time.perf_counter() - started:.0f} s")
    # The PLDA hangs on the fold's training photos only: fitted once a fold.
    pldas = {
        (protocol, i): fit_plda(cohort, fold["refs"], fold["labels"])
        for protocol, folds in by_protocol.items()
        for i, fold in enumerate(folds)
    }

    candidates = {"photos (shipped)": (None, 1.0)}
    for name in GRIDS:
        for weight in (1.0, 0.95):
            candidates[f"photos + crops {name}, crops x {weight:g}"] = (name, weight)
    rows = []
    for calibration in ("held-out", "held-out + crops"):
        for candidate, (grid_name, weight) in candidates.items():
            row, drawn = [candidate, calibration], []
            for protocol in PROTOCOLS:
                folds = []
                for i, fold in enumerate(by_protocol[protocol]):
                    gallery = galleries[protocol, i, grid_name] if grid_name else None
                    plda = pldas[protocol, i]
                    scored = partial(score, fold=fold, plda=plda, gallery=gallery, weight=weight)
                    held = scored(fold["held"])
                    if calibration != "held-out":
                        held = np.concatenate([held, scored(held_crops[protocol, i])])
                    folds.append((scored(fold["known"]), scored(fold["other"]), calibrate(held)))
                row += summary(folds)
                drawn += folds if protocol in DRAWS else []
            rows.append([*row, *summary([pool(drawn)])])
    headers = ["references", "calibrated on"]
    for protocol in (*PROTOCOLS, "both draws"):
        headers += [f"{protocol} AUROC", "accepted / rejected"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
